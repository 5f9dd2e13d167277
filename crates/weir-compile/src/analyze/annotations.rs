//! Istio annotations on Kubernetes objects (istioctl's annotations.K8sAnalyzer): on
//! Namespaces, Services, Pods and Deployments, an `*istio.io/` annotation Istio does
//! not define is reported (IST0108), one on a kind it does not apply to (IST0107), and
//! a deprecated one (IST0135). Networking resources are not checked, as in istioctl.

use weir_model::FieldPath;
use weir_model::k8s::CoreKind;

use super::annotation_table::{ALWAYS_IGNORED, KNOWN, On};
use super::{Context, Report, Subject, msg};

/// The `sidecar.istio.io/inject` annotation, deprecated in favour of the label.
const SIDECAR_INJECT: &str = "sidecar.istio.io/inject";

fn istio_annotation(name: &str) -> bool {
    name == "kubernetes.io/ingress.class" || name.split('/').next().is_some_and(|p| p.ends_with("istio.io"))
}

pub(crate) fn check(cx: &Context<'_>, report: &mut Report) {
    for o in cx.core {
        let kind = match o.kind {
            CoreKind::Namespace | CoreKind::Service | CoreKind::Pod | CoreKind::Deployment => o.kind.as_str(),
            _ => continue,
        };
        for name in o.annotations.keys() {
            if !istio_annotation(name) || ALWAYS_IGNORED.contains(&name.as_str()) {
                continue;
            }
            let path = FieldPath::root().key("metadata").key("annotations").key(name);
            let subject = Subject::Core(o);
            let Some(known) = KNOWN.iter().find(|k| k.name == name) else {
                report.add(subject, msg::UNKNOWN_ANNOTATION, path, format!("Unknown annotation: {name}"));
                continue;
            };
            if known.deprecated && !(name == SIDECAR_INJECT && o.labels.contains_key(SIDECAR_INJECT)) {
                let extra =
                    if name == SIDECAR_INJECT { " in favor of the \"sidecar.istio.io/inject\" label" } else { "" };
                let m = format!(
                    "Annotation {name:?} has been deprecated{extra} and may not work in future Istio versions."
                );
                report.add(subject, msg::DEPRECATED_ANNOTATION, path.clone(), m);
            }
            if known.on.contains(&On::Any) {
                continue;
            }
            let on: Vec<&str> = known.on.iter().map(|k| k.as_str()).filter(|s| *s != "Unknown").collect();
            if !on.contains(&kind) {
                let m = format!("Misplaced annotation: {name} can only be applied to {}", on.join(", "));
                report.add(subject, msg::MISPLACED_ANNOTATION, path, m);
                continue;
            }
            if let Err(why) = validate_value(name, &o.annotations[name]) {
                report.add(subject, msg::INVALID_ANNOTATION, path, format!("Invalid annotation {name}: {why}"));
            }
        }
    }
}

/// The value rules Istio's injector applies (`inject.AnnotationValidation`), for the
/// annotations whose values are simple to check; others are accepted.
fn validate_value(name: &str, value: &str) -> Result<(), String> {
    let port = |v: &str| v.trim().parse::<u16>().map(drop).map_err(|_| format!("{v:?} is not a valid port"));
    let ports = |v: &str, star: bool| -> Result<(), String> {
        if v.is_empty() || (star && v == "*") {
            return Ok(());
        }
        v.split(',').try_for_each(port)
    };
    let cidrs = |v: &str, star: bool| -> Result<(), String> {
        if v.is_empty() || (star && v == "*") {
            return Ok(());
        }
        v.split(',').try_for_each(|c| {
            let (ip, len) = c.split_once('/').ok_or_else(|| format!("{c:?} is not a CIDR"))?;
            let max = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) => 32,
                Ok(std::net::IpAddr::V6(_)) => 128,
                Err(_) => return Err(format!("{c:?} is not a CIDR")),
            };
            len.parse::<u8>().ok().filter(|&l| l <= max).map(drop).ok_or_else(|| format!("{c:?} is not a CIDR"))
        })
    };
    let interfaces = |v: &str| -> Result<(), String> {
        if v.is_empty() {
            return Ok(());
        }
        v.split(',').map(str::trim).try_for_each(|i| {
            let ok = !i.is_empty()
                && i.len() <= 15
                && i.starts_with(|c: char| c.is_ascii_alphabetic())
                && i.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if ok { Ok(()) } else { Err(format!("{i:?} is not a valid interface name")) }
        })
    };
    match name {
        "sidecar.istio.io/interceptionMode" => match value {
            "REDIRECT" | "TPROXY" | "NONE" => Ok(()),
            _ => Err(format!("{value:?} is not a valid interception mode (REDIRECT, TPROXY or NONE)")),
        },
        "status.sidecar.istio.io/port" => port(value),
        "readiness.status.sidecar.istio.io/initialDelaySeconds"
        | "readiness.status.sidecar.istio.io/periodSeconds"
        | "readiness.status.sidecar.istio.io/failureThreshold" => {
            value.parse::<u32>().map(drop).map_err(|_| format!("{value:?} is not a valid unsigned integer"))
        }
        "traffic.sidecar.istio.io/includeOutboundIPRanges" => cidrs(value, true),
        "traffic.sidecar.istio.io/excludeOutboundIPRanges" => cidrs(value, false),
        "traffic.sidecar.istio.io/includeInboundPorts" => ports(value, true),
        "traffic.sidecar.istio.io/excludeInboundPorts" | "traffic.sidecar.istio.io/excludeOutboundPorts" => {
            ports(value, false)
        }
        "traffic.sidecar.istio.io/excludeInterfaces"
        | "traffic.sidecar.istio.io/kubevirtInterfaces"
        | "istio.io/reroute-virtual-interfaces" => interfaces(value),
        "prometheus.istio.io/merge-metrics" => match value {
            "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(()),
            _ => Err(format!("{value:?} is not a boolean")),
        },
        _ => Ok(()),
    }
}
