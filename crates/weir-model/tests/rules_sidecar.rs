//! Sidecar rules (SC-01 .. SC-05) and the shared building blocks they use (C-2, C-3,
//! C-4, C-5, C-13, C-15), one invalid case and its nearest valid case each. The line
//! marked `#<` is where the finding must point; `fix` turns the case valid.

mod support;

use support::{Case, run_cases};

const E: &str = "IST0106";
const W: &str = "IST0133";

const CASES: &[Case] = &[
    // --- SC-01 top level ---------------------------------------------------------------------
    Case {
        rule: "SC-01 empty spec",
        kind: "Sidecar",
        body: "
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: test, namespace: ns1}
spec: {} #<",
        code: E,
        path: "spec",
        fix: ("{} #<", "{egress: [{hosts: ['./*']}]} #<"),
    },
    Case {
        rule: "SC-01 a workloadSelector alone is not enough",
        kind: "Sidecar",
        body: "
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: test, namespace: ns1}
spec: #<
  workloadSelector: {labels: {app: reviews}}",
        code: E,
        path: "spec",
        fix: ("{labels: {app: reviews}}", "{labels: {app: reviews}}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}"),
    },
    Case {
        rule: "SC-01 workload selector with a wildcard (C-15)",
        kind: "Sidecar",
        body: "
  workloadSelector:
    labels:
      app: reviews-* #<
  egress:
  - hosts: ['./*']",
        code: E,
        path: "spec.workloadSelector.labels.app",
        fix: ("reviews-*", "reviews"),
    },
    Case {
        rule: "SC-01 workload selector without labels warns (C-15)",
        kind: "Sidecar",
        body: "
  workloadSelector:
    labels: {} #<
  egress:
  - hosts: ['./*']",
        code: W,
        path: "spec.workloadSelector.labels",
        fix: ("{}", "{app: reviews}"),
    },
    // --- SC-02 egress hosts ------------------------------------------------------------------
    Case {
        rule: "SC-02 egress listener without hosts",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 9080, protocol: HTTP, name: http} #<",
        code: E,
        path: "spec.egress[0].hosts",
        fix: ("name: http} #<", "name: http} #<\n    hosts: ['./*']"),
    },
    Case {
        rule: "SC-02 egress listener with an empty host list",
        kind: "Sidecar",
        body: "
  egress:
  - hosts: [] #<",
        code: E,
        path: "spec.egress[0].hosts",
        fix: ("[]", "['istio-system/*']"),
    },
    Case {
        rule: "SC-02 host without a namespace",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - reviews.default.svc.cluster.local #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("- reviews.default", "- default/reviews.default"),
    },
    Case {
        rule: "SC-02 bare * without a namespace",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - '*' #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("'*'", "'*/*'"),
    },
    Case {
        rule: "SC-02 namespace not a DNS-1123 label (C-5)",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - prod_ns/* #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("prod_ns", "prod-ns"),
    },
    Case {
        rule: "SC-02 excluded namespace ~ns must still be a label",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ~prod_ns/* #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("~prod_ns", "~prod-ns"),
    },
    Case {
        rule: "SC-02 short dnsName",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ./reviews #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("./reviews", "./reviews.ns1.svc.cluster.local"),
    },
    Case {
        rule: "SC-02 partial wildcard dnsName",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ./*foo.com #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("./*foo.com", "./*.foo.com"),
    },
    Case {
        rule: "SC-02 wildcard in a later label (C-3)",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ./foo.*.com #<",
        code: E,
        path: "spec.egress[0].hosts[0]",
        fix: ("./foo.*.com", "./*.foo.com"),
    },
    Case {
        rule: "SC-02 duplicated host warns",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ./reviews.ns1.svc.cluster.local
    - ns1/reviews.ns1.svc.cluster.local #<",
        code: W,
        path: "spec.egress[0].hosts[1]",
        fix: ("ns1/reviews.ns1", "ns1/ratings.ns1"),
    },
    Case {
        rule: "SC-02 host already covered by ns/* warns",
        kind: "Sidecar",
        body: "
  egress:
  - hosts:
    - ./*
    - ./reviews.ns1.svc.cluster.local #<",
        code: W,
        path: "spec.egress[0].hosts[1]",
        fix: ("\n    - ./reviews.ns1.svc.cluster.local #<", ""),
    },
    Case {
        rule: "SC-02 */* mixed with other hosts warns",
        kind: "Sidecar",
        body: "
  egress:
  - hosts: #<
    - '*/*'
    - istio-system/*",
        code: W,
        path: "spec.egress[0].hosts",
        fix: ("\n    - istio-system/*", ""),
    },
    // --- SC-03 egress ports ------------------------------------------------------------------
    Case {
        rule: "SC-03 the listener without a port must be the last one",
        kind: "Sidecar",
        body: "
  egress:
  - hosts: ['./*'] #<
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0]",
        fix: ("- hosts: ['./*'] #<", "- port: {number: 8080, protocol: HTTP, name: http-alt}\n    hosts: ['./*'] #<"),
    },
    Case {
        rule: "SC-03 only one listener may omit its port (the first one is then not last)",
        kind: "Sidecar",
        body: "
  egress:
  - hosts: ['./*'] #<
  - hosts: ['istio-system/*']",
        code: E,
        path: "spec.egress[0]",
        fix: ("  - hosts: ['./*'] #<\n", ""),
    },
    Case {
        rule: "SC-03 port name not a DNS-1123 label (C-5)",
        kind: "Sidecar",
        body: "
  egress:
  - port:
      number: 9080
      protocol: HTTP
      name: http_web #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].port.name",
        fix: ("http_web", "http-web"),
    },
    Case {
        rule: "SC-03 unknown protocol (C-13)",
        kind: "Sidecar",
        body: "
  egress:
  - port:
      number: 9080
      protocol: HTTP11 #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].port.protocol",
        fix: ("HTTP11", "HTTP"),
    },
    Case {
        rule: "SC-03 port number above 65535 (C-2)",
        kind: "Sidecar",
        body: "
  egress:
  - port:
      number: 90800 #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].port.number",
        fix: ("90800", "9080"),
    },
    Case {
        rule: "SC-03 port 0 without a unix bind",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 0, protocol: HTTP} #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].bind",
        fix: ("protocol: HTTP} #<", "protocol: HTTP} #<\n    bind: unix:///var/run/egress.sock"),
    },
    Case {
        rule: "SC-03 port 0 with a relative unix path",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 0, protocol: HTTP}
    bind: unix://egress.sock #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].bind",
        fix: ("unix://egress.sock", "unix://@egress"),
    },
    Case {
        rule: "SC-03 port 0 with captureMode IPTABLES",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 0, protocol: HTTP}
    bind: unix:///var/run/egress.sock
    captureMode: IPTABLES #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].captureMode",
        fix: ("IPTABLES", "NONE"),
    },
    Case {
        rule: "SC-03 bind of an IP listener not an IP",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 9080, protocol: HTTP}
    bind: localhost #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].bind",
        fix: ("localhost", "127.0.0.1"),
    },
    Case {
        rule: "SC-03 IP-bound port numbers must be unique",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 9080, protocol: HTTP}
    hosts: ['./*']
  - port: {number: 9080, protocol: HTTP} #<
    hosts: ['istio-system/*']",
        code: E,
        path: "spec.egress[1].port.number",
        fix: ("{number: 9080, protocol: HTTP} #<", "{number: 9081, protocol: HTTP} #<"),
    },
    Case {
        rule: "SC-03 unix socket paths must be unique",
        kind: "Sidecar",
        body: "
  egress:
  - port: {number: 0, protocol: HTTP}
    bind: unix:///var/run/egress.sock
    hosts: ['./*']
  - port: {number: 0, protocol: TCP}
    bind: unix:///var/run/egress.sock #<
    hosts: ['istio-system/*']",
        code: E,
        path: "spec.egress[1].bind",
        fix: ("egress.sock #<", "egress-tcp.sock #<"),
    },
    Case {
        rule: "SC-03 targetPort is an error",
        kind: "Sidecar",
        body: "
  egress:
  - port:
      number: 9080
      targetPort: 8080 #<
    hosts: ['./*']",
        code: E,
        path: "spec.egress[0].port.targetPort",
        fix: ("\n      targetPort: 8080 #<", ""),
    },
    // --- SC-04 ingress -----------------------------------------------------------------------
    Case {
        rule: "SC-04 ingress listener without a port",
        kind: "Sidecar",
        body: "
  ingress:
  - defaultEndpoint: 127.0.0.1:8080 #<",
        code: E,
        path: "spec.ingress[0].port",
        fix: ("- defaultEndpoint", "- port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint"),
    },
    Case {
        rule: "SC-04 ingress port name not a DNS-1123 label (C-5)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http.web} #<",
        code: E,
        path: "spec.ingress[0].port.name",
        fix: ("http.web", "http-web"),
    },
    Case {
        rule: "SC-04 ingress unknown protocol (C-13)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: SMTP} #<",
        code: E,
        path: "spec.ingress[0].port.protocol",
        fix: ("SMTP", "TCP"),
    },
    Case {
        rule: "SC-04 ingress port number 0 (C-2)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 0, protocol: HTTP} #<",
        code: E,
        path: "spec.ingress[0].port.number",
        fix: ("number: 0", "number: 9080"),
    },
    Case {
        rule: "SC-04 ingress targetPort is an error",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP, targetPort: 8080} #<",
        code: E,
        path: "spec.ingress[0].port.targetPort",
        fix: (", targetPort: 8080", ""),
    },
    Case {
        rule: "SC-04 ingress port numbers must be unique",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
  - port: {number: 9080, protocol: GRPC} #<",
        code: E,
        path: "spec.ingress[1].port.number",
        fix: ("{number: 9080, protocol: GRPC}", "{number: 9090, protocol: GRPC}"),
    },
    Case {
        rule: "SC-04 ingress bind must be an IP",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    bind: unix:///var/run/app.sock #<",
        code: E,
        path: "spec.ingress[0].bind",
        fix: ("unix:///var/run/app.sock", "0.0.0.0"),
    },
    Case {
        rule: "SC-04 defaultEndpoint host other than loopback or any",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    defaultEndpoint: 10.0.0.5:8080 #<",
        code: E,
        path: "spec.ingress[0].defaultEndpoint",
        fix: ("10.0.0.5:8080", "0.0.0.0:8080"),
    },
    Case {
        rule: "SC-04 defaultEndpoint with a host name",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    defaultEndpoint: localhost:8080 #<",
        code: E,
        path: "spec.ingress[0].defaultEndpoint",
        fix: ("localhost:8080", "'[::1]:8080'"),
    },
    Case {
        rule: "SC-04 defaultEndpoint without a port number",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:http #<",
        code: E,
        path: "spec.ingress[0].defaultEndpoint",
        fix: ("127.0.0.1:http", "':8080'"),
    },
    Case {
        rule: "SC-04 defaultEndpoint port 0 (C-2)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    defaultEndpoint: 127.0.0.1:0 #<",
        code: E,
        path: "spec.ingress[0].defaultEndpoint",
        fix: ("127.0.0.1:0", "127.0.0.1:8080"),
    },
    Case {
        rule: "SC-04 defaultEndpoint unix socket with a relative path",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    defaultEndpoint: unix://app.sock #<",
        code: E,
        path: "spec.ingress[0].defaultEndpoint",
        fix: ("unix://app.sock", "unix:///var/run/app.sock"),
    },
    Case {
        rule: "SC-04 ingress tls on an HTTP port",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    tls: #<
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.ingress[0].tls",
        fix: ("protocol: HTTP}", "protocol: HTTPS}"),
    },
    Case {
        rule: "SC-04 ingress tls with subjectAltNames",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls:
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
      subjectAltNames: [client.example.com] #<",
        code: E,
        path: "spec.ingress[0].tls.subjectAltNames",
        fix: ("\n      subjectAltNames: [client.example.com] #<", ""),
    },
    Case {
        rule: "SC-04 ingress tls with httpsRedirect",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls:
      httpsRedirect: true #<
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.ingress[0].tls.httpsRedirect",
        fix: ("      httpsRedirect: true #<\n", ""),
    },
    Case {
        rule: "SC-04 ingress tls with credentialName",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: app-cert} #<",
        code: E,
        path: "spec.ingress[0].tls",
        fix: ("credentialName: app-cert", "serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem"),
    },
    Case {
        rule: "SC-04 ingress tls with credentialNames",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialNames: [app-rsa, app-ecdsa]} #<",
        code: E,
        path: "spec.ingress[0].tls",
        fix: (
            "credentialNames: [app-rsa, app-ecdsa]",
            "serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem",
        ),
    },
    Case {
        rule: "SC-04 ingress tls with tlsCertificates",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: #<
      mode: SIMPLE
      tlsCertificates:
      - {serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem}",
        code: E,
        path: "spec.ingress[0].tls",
        fix: (
            "tlsCertificates:\n      - {serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem}",
            "serverCertificate: /etc/certs/cert.pem\n      privateKey: /etc/certs/key.pem",
        ),
    },
    Case {
        rule: "SC-04 ingress tls mode ISTIO_MUTUAL",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: {mode: ISTIO_MUTUAL} #<",
        code: E,
        path: "spec.ingress[0].tls.mode",
        fix: ("ISTIO_MUTUAL", "PASSTHROUGH"),
    },
    Case {
        rule: "SC-04 ingress tls mode AUTO_PASSTHROUGH",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: TLS}
    tls:
      mode: AUTO_PASSTHROUGH #<",
        code: E,
        path: "spec.ingress[0].tls.mode",
        fix: ("AUTO_PASSTHROUGH", "PASSTHROUGH"),
    },
    Case {
        rule: "SC-04 ingress tls follows GW-08 (SIMPLE needs a key)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem} #<",
        code: E,
        path: "spec.ingress[0].tls.privateKey",
        fix: ("/etc/certs/cert.pem}", "/etc/certs/cert.pem, privateKey: /etc/certs/key.pem}"),
    },
    Case {
        rule: "SC-04 ingress tls follows GW-08 (MUTUAL needs caCertificates)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9443, protocol: HTTPS}
    tls: #<
      mode: MUTUAL
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.ingress[0].tls.caCertificates",
        fix: (
            "      privateKey: /etc/certs/key.pem",
            "      privateKey: /etc/certs/key.pem\n      caCertificates: /etc/certs/ca.pem",
        ),
    },
    Case {
        rule: "SC-04 ingress connectionPool {} (DR-06)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    connectionPool: {} #<",
        code: E,
        path: "spec.ingress[0].connectionPool",
        fix: ("{} #<", "{http: {http1MaxPendingRequests: 100}} #<"),
    },
    Case {
        rule: "SC-04 ingress connectionPool negative counter (DR-06)",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 9080, protocol: HTTP}
    connectionPool:
      tcp:
        maxConnections: -1 #<",
        code: E,
        path: "spec.ingress[0].connectionPool.tcp.maxConnections",
        fix: ("-1", "100"),
    },
    Case {
        rule: "SC-04 HTTP pool settings on a TCP port warn",
        kind: "Sidecar",
        body: "
  ingress:
  - port: {number: 3306, protocol: TCP}
    connectionPool:
      http: {http1MaxPendingRequests: 100} #<",
        code: W,
        path: "spec.ingress[0].connectionPool.http",
        fix: ("http: {http1MaxPendingRequests: 100}", "tcp: {maxConnections: 100}"),
    },
    Case {
        rule: "SC-01 inboundConnectionPool follows DR-06",
        kind: "Sidecar",
        body: "
  inboundConnectionPool:
    http:
      idleTimeout: 0s #<",
        code: E,
        path: "spec.inboundConnectionPool.http.idleTimeout",
        fix: ("0s", "1h"),
    },
    // --- SC-05 outboundTrafficPolicy ------------------------------------------------------------
    Case {
        rule: "SC-05 egressProxy with mode REGISTRY_ONLY",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: #<
      host: egress.example.com
      port: {number: 3128}",
        code: E,
        path: "spec.outboundTrafficPolicy.egressProxy",
        fix: ("REGISTRY_ONLY", "ALLOW_ANY"),
    },
    Case {
        rule: "SC-05 egressProxy without a mode (REGISTRY_ONLY by default)",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    egressProxy: {host: egress.example.com, port: {number: 3128}} #<",
        code: E,
        path: "spec.outboundTrafficPolicy.egressProxy",
        fix: ("    egressProxy:", "    mode: ALLOW_ANY\n    egressProxy:"),
    },
    Case {
        rule: "SC-05 egressProxy host not an FQDN (C-4)",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: '*.example.com' #<
      port: {number: 3128}",
        code: E,
        path: "spec.outboundTrafficPolicy.egressProxy.host",
        fix: ("'*.example.com'", "egress.example.com"),
    },
    Case {
        rule: "SC-05 egressProxy without a port",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: {host: egress.example.com} #<",
        code: E,
        path: "spec.outboundTrafficPolicy.egressProxy.port",
        fix: ("{host: egress.example.com}", "{host: egress.example.com, port: {number: 3128}}"),
    },
    Case {
        rule: "SC-05 egressProxy port out of range (C-2)",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: egress.example.com
      port: {number: 0} #<",
        code: E,
        path: "spec.outboundTrafficPolicy.egressProxy.port.number",
        fix: ("{number: 0}", "{number: 3128}"),
    },
    Case {
        rule: "SC-05 egressProxy is deprecated",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: {host: egress.example.com, port: {number: 3128}} #<",
        code: "IST0002",
        path: "spec.outboundTrafficPolicy.egressProxy",
        fix: ("\n    egressProxy: {host: egress.example.com, port: {number: 3128}} #<", ""),
    },
    Case {
        rule: "SC-05 ALLOW_ANY_DYNAMIC_DNS is mesh-config only",
        kind: "Sidecar",
        body: "
  outboundTrafficPolicy:
    mode: ALLOW_ANY_DYNAMIC_DNS #<",
        code: E,
        path: "spec.outboundTrafficPolicy.mode",
        fix: ("ALLOW_ANY_DYNAMIC_DNS", "ALLOW_ANY"),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}
