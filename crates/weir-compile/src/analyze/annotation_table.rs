//! Istio's resource annotations (istio/api `annotation/annotations.yaml` at commit b8f8791d9653b2edc77a071d48887e582cfe84bf): the names
//! `istioctl analyze` knows, whether each is deprecated, and the kinds it attaches to.
//! Regenerate from that file when Istio adds annotations.

/// Kinds an annotation may be placed on (`Any`: every kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Any,
    AuthorizationPolicy,
    Gateway,
    GatewayClass,
    Ingress,
    Namespace,
    Pod,
    Service,
    ServiceEntry,
    WorkloadEntry,
}

impl On {
    /// The Kubernetes kind name istioctl prints for this resource type (`ResourceTypes.String()`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            On::Any => "Any",
            On::AuthorizationPolicy => "AuthorizationPolicy",
            On::Gateway => "Gateway",
            On::GatewayClass => "GatewayClass",
            On::Ingress => "Ingress",
            On::Namespace => "Namespace",
            On::Pod => "Pod",
            On::Service => "Service",
            On::ServiceEntry => "ServiceEntry",
            On::WorkloadEntry => "WorkloadEntry",
        }
    }
}

/// One known annotation.
pub(crate) struct Known {
    pub(crate) name: &'static str,
    pub(crate) deprecated: bool,
    pub(crate) on: &'static [On],
}

/// Every annotation `AllResourceAnnotations()` returns, sorted by name.
pub(crate) const KNOWN: &[Known] = &[
    Known { name: "alpha.istio.io/canonical-serviceaccounts", deprecated: true, on: &[On::Service] },
    Known { name: "alpha.istio.io/kubernetes-serviceaccounts", deprecated: true, on: &[On::Service] },
    Known { name: "ambient.istio.io/bypass-inbound-capture", deprecated: false, on: &[On::Pod] },
    Known { name: "ambient.istio.io/dns-capture", deprecated: false, on: &[On::Pod] },
    Known { name: "ambient.istio.io/redirection", deprecated: false, on: &[On::Pod] },
    Known {
        name: "ambient.istio.io/waypoint-inbound-binding",
        deprecated: false,
        on: &[On::GatewayClass, On::Gateway],
    },
    Known { name: "galley.istio.io/analyze-suppress", deprecated: false, on: &[On::Any] },
    Known { name: "gateway.istio.io/controller-version", deprecated: false, on: &[On::Any] },
    Known { name: "gateway.istio.io/name-override", deprecated: false, on: &[On::Gateway] },
    Known { name: "gateway.istio.io/service-account", deprecated: false, on: &[On::Gateway] },
    Known { name: "inject.istio.io/templates", deprecated: false, on: &[On::Pod] },
    Known { name: "istio.io/autoRegistrationGroup", deprecated: false, on: &[On::WorkloadEntry] },
    Known { name: "istio.io/connectedAt", deprecated: false, on: &[On::WorkloadEntry] },
    Known { name: "istio.io/disconnectedAt", deprecated: false, on: &[On::WorkloadEntry] },
    Known { name: "istio.io/dry-run", deprecated: false, on: &[On::AuthorizationPolicy] },
    Known { name: "istio.io/reroute-virtual-interfaces", deprecated: false, on: &[On::Pod] },
    Known { name: "istio.io/rev", deprecated: false, on: &[On::Pod] },
    Known {
        name: "istio.io/use-waypoint-canary-weight",
        deprecated: false,
        on: &[On::Service, On::ServiceEntry, On::Namespace],
    },
    Known { name: "istio.io/workloadController", deprecated: false, on: &[On::WorkloadEntry] },
    Known { name: "kubernetes.io/ingress.class", deprecated: false, on: &[On::Ingress] },
    Known { name: "networking.istio.io/exportTo", deprecated: false, on: &[On::Service] },
    Known { name: "networking.istio.io/service-type", deprecated: false, on: &[On::Gateway] },
    Known {
        name: "networking.istio.io/traffic-distribution",
        deprecated: false,
        on: &[On::Namespace, On::Service, On::ServiceEntry],
    },
    Known { name: "prometheus.istio.io/merge-metrics", deprecated: false, on: &[On::Pod] },
    Known { name: "proxy.istio.io/config", deprecated: false, on: &[On::Pod] },
    Known { name: "proxy.istio.io/overrides", deprecated: false, on: &[On::Pod] },
    Known { name: "readiness.status.sidecar.istio.io/applicationPorts", deprecated: false, on: &[On::Pod] },
    Known { name: "readiness.status.sidecar.istio.io/failureThreshold", deprecated: false, on: &[On::Pod] },
    Known { name: "readiness.status.sidecar.istio.io/initialDelaySeconds", deprecated: false, on: &[On::Pod] },
    Known { name: "readiness.status.sidecar.istio.io/periodSeconds", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/agentLogLevel", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/bootstrapOverride", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/componentLogLevel", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/discoveryAddress", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/extraStatTags", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/inject", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/interceptionMode", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/logLevel", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/nativeSidecar", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyCPU", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyCPULimit", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyImage", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyImageType", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyMemory", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/proxyMemoryLimit", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/rewriteAppHTTPProbers", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsCompression", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsEvictionInterval", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsFlushInterval", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsHistogramBins", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsHistogramBuckets", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsInclusionPrefixes", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsInclusionRegexps", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/statsInclusionSuffixes", deprecated: true, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/status", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/userVolume", deprecated: false, on: &[On::Pod] },
    Known { name: "sidecar.istio.io/userVolumeMount", deprecated: false, on: &[On::Pod] },
    Known { name: "status.sidecar.istio.io/port", deprecated: false, on: &[On::Pod] },
    Known { name: "topology.istio.io/controlPlaneClusters", deprecated: false, on: &[On::Namespace] },
    Known { name: "traffic.istio.io/nodeSelector", deprecated: false, on: &[On::Service] },
    Known { name: "traffic.sidecar.istio.io/excludeInboundPorts", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/excludeInterfaces", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/excludeOutboundIPRanges", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/excludeOutboundPorts", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/includeInboundPorts", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/includeOutboundIPRanges", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/includeOutboundPorts", deprecated: false, on: &[On::Pod] },
    Known { name: "traffic.sidecar.istio.io/kubevirtInterfaces", deprecated: true, on: &[On::Pod] },
];

/// Annotations the analyzer never reports (maturity.AlwaysIgnoredAnnotations).
pub(crate) const ALWAYS_IGNORED: &[&str] =
    &["gateway.istio.io/controller-version", "istio.io/rev", "sidecar.istio.io/status"];
