//! Cross-resource analysis: what `istioctl analyze` reports about networking
//! configuration, with the same codes, levels and message wording
//! (`../shared/spec/validation-rules.md` §7), each finding placed on the resource it
//! is about and on the field at fault.
//!
//! Where to begin reading: [`analyze`] builds one [`Context`] (indexes over the inputs,
//! built once, so each check is a lookup rather than a scan) and runs the checks, one
//! module per Istio analyzer: `vs_destinations` (hosts, ports, subsets), `vs_gateways`,
//! `mesh_hosts`, `gateways` (selectors, ports, credentials, conflicts),
//! `destination_rules`, `service_entries`, `sidecars`, `annotations`. Findings repeated
//! by several checks are reported once, and the `galley.istio.io/analyze-suppress`
//! annotation silences codes on the resource that carries it.
//!
//! Offline, analysis also sees what istioctl assumes a cluster has: a Pod labelled
//! `istio: ingressgateway` and the Service `istio-ingressgateway` in `istio-system`
//! ([`default_ingress`]).

mod annotation_table;
mod annotations;
mod context;
mod destination_rules;
mod gateways;
mod mesh_hosts;
mod service_entries;
mod sidecars;
mod vs_destinations;
mod vs_gateways;

use std::collections::{BTreeMap, HashSet};

use weir_model::k8s::{CoreKind, CoreObject, CoreSpec, ServicePort};
use weir_model::{Diagnostic, FieldPath, Origin, Resource, Severity};

pub use context::Context;

/// The annotation that silences findings on the resource carrying it: a comma-separated
/// list of codes, `*` for all.
pub const SUPPRESS_ANNOTATION: &str = "galley.istio.io/analyze-suppress";

/// What analysis reads: Istio resources (valid or not: a resource that breaks a schema
/// rule still has references worth checking, as istioctl checks them) and Kubernetes
/// objects.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Istio networking resources.
    pub resources: Vec<Resource>,
    /// Services, Pods, Namespaces, Secrets...
    pub core: Vec<CoreObject>,
    /// The mesh captures DNS and allocates ServiceEntry addresses
    /// (`defaultConfig.proxyMetadata` `ISTIO_META_DNS_CAPTURE` with
    /// `ISTIO_META_DNS_AUTO_ALLOCATE` or `PILOT_ENABLE_IP_AUTOALLOCATE`): entries
    /// without `addresses` are then fine.
    pub dns_auto_allocate: bool,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// An Istio resource.
    Istio(&'a Resource),
    /// A Kubernetes object.
    Core(&'a CoreObject),
}

impl Subject<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Subject::Istio(r) => r.kind().as_str(),
            Subject::Core(o) => o.kind.as_str(),
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Subject::Istio(r) => &r.meta.namespace,
            Subject::Core(o) => &o.namespace,
        }
    }

    fn name(&self) -> &str {
        match self {
            Subject::Istio(r) => &r.meta.name,
            Subject::Core(o) => &o.name,
        }
    }

    fn origin(&self) -> &Origin {
        match self {
            Subject::Istio(r) => &r.origin,
            Subject::Core(o) => &o.origin,
        }
    }
}

/// One analyzer finding, before it is placed at a line and column.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `IST####`.
    pub code: &'static str,
    /// Istio's level for the code.
    pub severity: Severity,
    /// Kind of the resource it lands on.
    pub kind: &'static str,
    /// Its namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Where the resource was written.
    pub origin: Origin,
    /// The field at fault (root: the resource as a whole).
    pub path: FieldPath,
    /// Istio's message.
    pub message: String,
}

impl Finding {
    /// `Kind ns/name`, as istioctl names resources.
    pub fn resource(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// As a diagnostic at the resource's own position (place it on `path` with the
    /// source text: `weir_model::place`).
    pub fn into_diagnostic(self) -> Diagnostic {
        Diagnostic {
            severity: self.severity,
            code: self.code,
            file: self.origin.file,
            line: self.origin.pos.line,
            column: self.origin.pos.column,
            kind: Some(self.kind.to_string()),
            namespace: (!self.namespace.is_empty()).then_some(self.namespace),
            name: Some(self.name),
            path: self.path.to_string(),
            message: self.message,
            source_line: None,
        }
    }
}

/// Collects findings.
#[derive(Debug, Default)]
pub(crate) struct Report {
    findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn add(
        &mut self,
        subject: Subject<'_>,
        (code, severity): (&'static str, Severity),
        path: FieldPath,
        message: String,
    ) {
        self.findings.push(Finding {
            code,
            severity,
            kind: subject.kind(),
            namespace: subject.namespace().to_string(),
            name: subject.name().to_string(),
            origin: subject.origin().clone(),
            path,
            message,
        });
    }
}

/// Istio's analyzer messages: code and level.
pub mod msg {
    use weir_model::Severity::{self, Error, Info, Warning};

    /// A code with its level.
    pub type Code = (&'static str, Severity);
    /// ReferencedResourceNotFound.
    pub const REFERENCED_RESOURCE_NOT_FOUND: Code = ("IST0101", Error);
    /// MisplacedAnnotation.
    pub const MISPLACED_ANNOTATION: Code = ("IST0107", Warning);
    /// UnknownAnnotation.
    pub const UNKNOWN_ANNOTATION: Code = ("IST0108", Warning);
    /// InvalidAnnotation.
    pub const INVALID_ANNOTATION: Code = ("IST0125", Warning);
    /// DeprecatedAnnotation.
    pub const DEPRECATED_ANNOTATION: Code = ("IST0135", Info);
    /// ConflictingMeshGatewayVirtualServiceHosts.
    pub const CONFLICTING_MESH_GATEWAY_VS_HOSTS: Code = ("IST0109", Error);
    /// ConflictingSidecarWorkloadSelectors.
    pub const CONFLICTING_SIDECAR_SELECTORS: Code = ("IST0110", Error);
    /// MultipleSidecarsWithoutWorkloadSelectors.
    pub const MULTIPLE_SIDECARS_WITHOUT_SELECTORS: Code = ("IST0111", Error);
    /// VirtualServiceDestinationPortSelectorRequired.
    pub const DESTINATION_PORT_SELECTOR_REQUIRED: Code = ("IST0112", Error);
    /// NoServerCertificateVerificationDestinationLevel.
    pub const NO_SERVER_CERT_VERIFICATION_DESTINATION: Code = ("IST0128", Warning);
    /// NoServerCertificateVerificationPortLevel.
    pub const NO_SERVER_CERT_VERIFICATION_PORT: Code = ("IST0129", Warning);
    /// VirtualServiceHostNotFoundInGateway.
    pub const VS_HOST_NOT_FOUND_IN_GATEWAY: Code = ("IST0132", Warning);
    /// ServiceEntryAddressesRequired.
    pub const SERVICE_ENTRY_ADDRESSES_REQUIRED: Code = ("IST0134", Warning);
    /// GatewayDuplicateCertificate.
    pub const GATEWAY_DUPLICATE_CERTIFICATE: Code = ("IST0138", Warning);
    /// IngressRouteRulesNotAffected.
    pub const INGRESS_ROUTE_RULES_NOT_AFFECTED: Code = ("IST0140", Warning);
    /// ConflictingGateways.
    pub const CONFLICTING_GATEWAYS: Code = ("IST0145", Error);
    /// JwtClaimBasedRoutingWithoutRequestAuthN.
    pub const JWT_CLAIM_ROUTING_WITHOUT_REQUEST_AUTHN: Code = ("IST0149", Error);
    /// InvalidGatewayCredential.
    pub const INVALID_GATEWAY_CREDENTIAL: Code = ("IST0161", Error);
    /// GatewayPortNotDefinedOnService.
    pub const GATEWAY_PORT_NOT_DEFINED_ON_SERVICE: Code = ("IST0162", Warning);
    /// ReferencedInternalGateway.
    pub const REFERENCED_INTERNAL_GATEWAY: Code = ("IST0165", Warning);
    /// IneffectivePolicy.
    pub const INEFFECTIVE_POLICY: Code = ("IST0167", Warning);
    /// DestinationRuleSubsetNotSelectPods.
    pub const SUBSET_SELECTS_NO_PODS: Code = ("IST0173", Error);
    /// UnknownDestinationRuleHost.
    pub const UNKNOWN_DESTINATION_RULE_HOST: Code = ("IST0174", Warning);
    /// ConflictingServiceEntryProtocol.
    pub const CONFLICTING_SERVICE_ENTRY_PROTOCOL: Code = ("IST0177", Warning);
    /// Every code analysis reports, with validation's (IST0106, IST0133, IST0130,
    /// IST0131, IST0002): for checking `--suppress` codes.
    pub const ALL: [&str; 29] = [
        "IST0002", "IST0101", "IST0106", "IST0107", "IST0108", "IST0109", "IST0110", "IST0111", "IST0112", "IST0125",
        "IST0128", "IST0129", "IST0130", "IST0131", "IST0132", "IST0133", "IST0134", "IST0135", "IST0138", "IST0140",
        "IST0145", "IST0149", "IST0161", "IST0162", "IST0165", "IST0167", "IST0173", "IST0174", "IST0177",
    ];
}

/// Where [`default_ingress`]'s objects say they come from: they stand in for a
/// cluster's and do not count as Services or Pods the user gave.
const DEFAULT_ORIGIN: &str = "<istioctl default>";

/// The Pod and Service istioctl assumes offline: the ingress gateway in `istio-system`
/// (ports 80, 443, 31400, 15443), so that Gateways selecting `istio: ingressgateway`
/// find a workload.
pub fn default_ingress() -> Vec<CoreObject> {
    let origin = Origin { file: DEFAULT_ORIGIN.into(), pos: weir_model::node::Pos::new(0, 0) };
    let labels = BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]);
    let port = |name: &str, port: u32| ServicePort {
        name: name.into(),
        port,
        target_port: Some(port),
        protocol: "TCP".into(),
        app_protocol: None,
    };
    vec![
        CoreObject {
            kind: CoreKind::Pod,
            name: "istio-ingressgateway-dummypod".into(),
            namespace: "istio-system".into(),
            labels: labels.clone(),
            annotations: BTreeMap::new(),
            spec: CoreSpec::Pod { node_name: String::new() },
            origin: origin.clone(),
        },
        CoreObject {
            kind: CoreKind::Service,
            name: "istio-ingressgateway".into(),
            namespace: "istio-system".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            spec: CoreSpec::Service {
                selector: labels,
                ports: vec![port("http2", 80), port("https", 443), port("tcp", 31400), port("tls", 15443)],
                cluster_ips: Vec::new(),
                external_name: None,
            },
            origin,
        },
    ]
}

/// Checks that need parts of the cluster the inputs may not describe. As
/// `istioctl analyze --use-kube=false` skips every analyzer that reads a Kubernetes
/// kind, weir skips a check when the inputs hold none of what it reads — a file of
/// VirtualServices alone says nothing about which hosts exist — and runs it as soon
/// as they do (any Service or ServiceEntry, Pod, Secret...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Destination hosts and ports (IST0101, IST0112, IST0140) and DestinationRule
    /// hosts and subsets (IST0174, IST0173): no Service or ServiceEntry in the inputs.
    Registry,
    /// Gateway credentials (IST0101 credentialName, IST0161): no Secret.
    GatewayCredentials,
    /// Sidecar selectors (IST0101 selector, IST0110): no Pod.
    SidecarSelectors,
}

impl Skipped {
    /// What was not checked and how to have it checked.
    pub fn describe(self) -> &'static str {
        match self {
            Skipped::Registry => {
                "destination hosts and DestinationRule subsets were not checked: the inputs hold no Service or \
                 ServiceEntry (add the files that define your services)"
            }
            Skipped::GatewayCredentials => "gateway credentialName Secrets were not checked: the inputs hold no Secret",
            Skipped::SidecarSelectors => "Sidecar workload selectors were not checked: the inputs hold no Pod",
        }
    }
}

/// What analysis found, and which checks it could not run.
#[derive(Debug, Default)]
pub struct Analysis {
    /// The findings, placed on their resources.
    pub findings: Vec<Finding>,
    /// Checks skipped for want of inputs.
    pub skipped: Vec<Skipped>,
}

/// Runs every check over `inputs`. Findings come out in a stable order (by file,
/// position, code), each once, without those the resource's suppression annotation
/// silences.
pub fn analyze(inputs: &Inputs) -> Analysis {
    let cx = Context::new(inputs);
    // Objects read from the Kubernetes API have no position (line 0): only the offline
    // defaults are told apart, by their origin.
    let given =
        |kinds: &[CoreKind]| inputs.core.iter().any(|o| kinds.contains(&o.kind) && &*o.origin.file != DEFAULT_ORIGIN);
    let registry = given(&[CoreKind::Service]) || !cx.service_entries.is_empty();
    let mut skipped = Vec::new();
    let mut report = Report::default();
    vs_destinations::check(&cx, &mut report, registry);
    if registry {
        destination_rules::check_hosts(&cx, &mut report);
    } else if !cx.destination_rules.is_empty()
        || cx.virtual_services.iter().any(|(_, vs)| !vs.http.is_empty() || !vs.tcp.is_empty() || !vs.tls.is_empty())
    {
        skipped.push(Skipped::Registry);
    }
    let credentials = given(&[CoreKind::Secret]);
    gateways::check(&cx, &mut report, credentials);
    let wants_credentials = cx
        .gateways
        .iter()
        .any(|(_, g)| g.servers.iter().any(|s| s.tls.as_ref().is_some_and(|t| !t.credential_name.is_empty())));
    if !credentials && wants_credentials {
        skipped.push(Skipped::GatewayCredentials);
    }
    vs_gateways::check(&cx, &mut report);
    mesh_hosts::check(&cx, &mut report);
    destination_rules::check_tls(&cx, &mut report);
    service_entries::check(&cx, &mut report);
    let pods = given(&[CoreKind::Pod]);
    sidecars::check(&cx, &mut report, pods);
    if !pods && cx.sidecars.iter().any(|(_, s)| s.workload_selector.as_ref().is_some_and(|w| !w.labels.is_empty())) {
        skipped.push(Skipped::SidecarSelectors);
    }
    annotations::check(&cx, &mut report);

    let suppressed = |f: &Finding| -> bool {
        cx.suppressed(f.kind, &f.namespace, &f.name)
            .is_some_and(|codes| codes.split(',').map(str::trim).any(|c| c == "*" || c == f.code))
    };
    let mut seen = HashSet::new();
    let mut out: Vec<Finding> = report
        .findings
        .into_iter()
        .filter(|f| !suppressed(f))
        // Istio drops a message only when it repeats another exactly, place included.
        .filter(|f| {
            seen.insert((f.code, f.kind, f.namespace.clone(), f.name.clone(), f.path.to_string(), f.message.clone()))
        })
        .collect();
    out.sort_by(|a, b| {
        (&*a.origin.file, a.origin.pos, a.code, &a.message).cmp(&(&*b.origin.file, b.origin.pos, b.code, &b.message))
    });
    Analysis { findings: out, skipped }
}
