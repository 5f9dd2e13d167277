//! Property tests: whatever text arrives, the loader and validator return diagnostics
//! and never panic. Three generators: arbitrary text, mutations of the real examples,
//! and random trees built from the schema's own field names (which reach deep into
//! validation with odd combinations).

use proptest::prelude::*;
use weir_model::load_str;

const EXAMPLES: &[&str] = &[
    include_str!("../../../examples/seed/1-basic-routing.yaml"),
    include_str!("../../../examples/seed/2-canary.yaml"),
    include_str!("../../../examples/seed/3-circuit-breaker.yaml"),
    include_str!("../../../examples/seed/4-retry-timeout.yaml"),
    include_str!("../../../examples/seed/5-mirroring.yaml"),
    include_str!("../../../examples/seed/6-fault-injection.yaml"),
    include_str!("../../../examples/seed/7-ingress-gateway.yaml"),
    include_str!("../../../examples/bookinfo/gateway.yaml"),
    include_str!("../../../examples/bookinfo/services.yaml"),
];

/// Field names from every kind, so random trees hit real fields.
const FIELDS: &[&str] = &[
    "hosts",
    "gateways",
    "http",
    "tcp",
    "tls",
    "exportTo",
    "match",
    "route",
    "destination",
    "host",
    "subset",
    "port",
    "number",
    "weight",
    "headers",
    "request",
    "response",
    "set",
    "add",
    "remove",
    "uri",
    "exact",
    "prefix",
    "regex",
    "redirect",
    "rewrite",
    "authority",
    "uriRegexRewrite",
    "directResponse",
    "status",
    "body",
    "string",
    "bytes",
    "delegate",
    "name",
    "namespace",
    "timeout",
    "retries",
    "attempts",
    "perTryTimeout",
    "retryOn",
    "fault",
    "delay",
    "abort",
    "fixedDelay",
    "percentage",
    "value",
    "percent",
    "httpStatus",
    "grpcStatus",
    "mirror",
    "mirrors",
    "mirrorPercentage",
    "corsPolicy",
    "allowOrigins",
    "allowMethods",
    "maxAge",
    "sniHosts",
    "destinationSubnets",
    "trafficPolicy",
    "subsets",
    "labels",
    "loadBalancer",
    "simple",
    "consistentHash",
    "httpCookie",
    "ttl",
    "maglev",
    "tableSize",
    "ringHash",
    "minimumRingSize",
    "localityLbSetting",
    "distribute",
    "failover",
    "from",
    "to",
    "connectionPool",
    "maxConnections",
    "idleTimeout",
    "h2UpgradePolicy",
    "outlierDetection",
    "interval",
    "baseEjectionTime",
    "maxEjectionPercent",
    "consecutive5xxErrors",
    "portLevelSettings",
    "mode",
    "credentialName",
    "servers",
    "selector",
    "protocol",
    "bind",
    "httpsRedirect",
    "serverCertificate",
    "privateKey",
    "caCertificates",
    "tlsCertificates",
    "cipherSuites",
    "minProtocolVersion",
    "addresses",
    "ports",
    "location",
    "resolution",
    "endpoints",
    "address",
    "workloadSelector",
    "egress",
    "ingress",
    "defaultEndpoint",
    "outboundTrafficPolicy",
    "egressProxy",
    "warmup",
    "duration",
    "tunnel",
    "targetHost",
    "targetPort",
    "queryParams",
    "withoutHeaders",
    "sourceLabels",
    "ignoreUriCase",
];

const KINDS: &[&str] = &["VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "WorkloadEntry", "Sidecar"];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("''".to_string()),
        Just("'*'".to_string()),
        Just("0s".to_string()),
        Just("-1".to_string()),
        Just("1.5ms".to_string()),
        Just("SIMPLE".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("4294967296".to_string()),
        Just("'%REQ('".to_string()),
        Just("'[('".to_string()),
        Just("unix://".to_string()),
        "[a-z0-9*./:_-]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f}")),
    ]
}

fn tree(depth: u32) -> BoxedStrategy<String> {
    let leaf = scalar().boxed();
    if depth == 0 {
        return leaf;
    }
    prop_oneof![
        2 => leaf,
        3 => prop::collection::vec((prop::sample::select(FIELDS), tree(depth - 1)), 0..5).prop_map(|entries| {
            let mut seen = Vec::new();
            let body: Vec<String> = entries
                .into_iter()
                .filter(|(k, _)| if seen.contains(k) { false } else { seen.push(*k); true })
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("{{{}}}", body.join(", "))
        }),
        2 => prop::collection::vec(tree(depth - 1), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
    ]
    .boxed()
}

fn mutate(text: &str, ops: &[(u8, usize, String)]) -> String {
    let mut s = text.as_bytes().to_vec();
    for (op, at, chunk) in ops {
        if s.is_empty() {
            break;
        }
        let at = at % s.len();
        match op % 4 {
            0 => {
                let end = (at + chunk.len().max(1)).min(s.len());
                s.drain(at..end);
            }
            1 => {
                s.splice(at..at, chunk.bytes());
            }
            2 => {
                let line_end = s[at..].iter().position(|b| *b == b'\n').map_or(s.len(), |p| at + p + 1);
                let line: Vec<u8> = s[at..line_end].to_vec();
                s.splice(line_end..line_end, line);
            }
            _ => {
                let end = (at + chunk.len()).min(s.len());
                s[at..end].copy_from_slice(&chunk.as_bytes()[..end - at]);
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn yamlish_text_never_panics(text in "[a-zA-Z0-9:{}\\[\\],'\"&*!|>#%@`\\- \n\t.]{0,300}") {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0..EXAMPLES.len(),
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), "[ -~\n]{0,8}"), 1..6),
    ) {
        let text = mutate(EXAMPLES[which], &ops);
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn schema_shaped_trees_never_panic(kind in prop::sample::select(KINDS), spec in tree(4)) {
        let text = format!("apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {{name: x}}\nspec: {spec}\n");
        let report = load_str("fuzz.yaml", &text);
        // Every diagnostic is placed somewhere in the text.
        for d in &report.diagnostics {
            prop_assert!(d.line as usize <= text.lines().count() + 1, "{d:?}");
        }
    }
}
