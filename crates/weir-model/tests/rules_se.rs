//! ServiceEntry rules (SE-01 .. SE-11) and WorkloadEntry rules (WE-01 .. WE-03), with the
//! shared building blocks they use (C-2 .. C-7, C-13, C-15), one invalid case and its
//! nearest valid case each. The line marked `#<` is where the finding must point; `fix`
//! turns the case valid.

mod support;

use support::{Case, run_cases};

const E: &str = "IST0106";
const W: &str = "IST0133";

const CASES: &[Case] = &[
    // --- SE-01 hosts ---------------------------------------------------------------------
    Case {
        rule: "SE-01 no hosts",
        kind: "ServiceEntry",
        body: "
  hosts: [] #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: E,
        path: "spec.hosts",
        fix: ("[] #<", "[api.example.com] #<"),
    },
    Case {
        rule: "SE-01 host * alone",
        kind: "ServiceEntry",
        body: "
  hosts:
  - '*' #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("'*' #<", "'*.example.com' #<"),
    },
    Case {
        rule: "SE-01 invalid host (C-3)",
        kind: "ServiceEntry",
        body: "
  hosts:
  - api..example.com #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("api..example.com", "api.example.com"),
    },
    Case {
        rule: "SE-01 a short host passes (its nearest invalid: an underscore)",
        kind: "ServiceEntry",
        body: "
  hosts:
  - my_api #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("my_api", "my-api"),
    },
    Case {
        rule: "SE-01 partial wildcard warns",
        kind: "ServiceEntry",
        body: "
  hosts:
  - '*example.com' #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: W,
        path: "spec.hosts[0]",
        fix: ("'*example.com'", "'*.example.com'"),
    },
    Case {
        rule: "SE-01 partial wildcard is not checked with DYNAMIC_DNS",
        kind: "ServiceEntry",
        body: "
  hosts:
  - '*example.com' #<
  ports: [{number: 443, name: https, protocol: TLS}]",
        code: W,
        path: "spec.hosts[0]",
        fix: ("  ports:", "  resolution: DYNAMIC_DNS\n  ports:"),
    },
    // --- SE-02 addresses -----------------------------------------------------------------
    Case {
        rule: "SE-02 address not an IP",
        kind: "ServiceEntry",
        body: "
  hosts: [db.example.com]
  addresses:
  - db.example.com #<
  ports: [{number: 5432, name: tcp, protocol: TCP}]",
        code: E,
        path: "spec.addresses[0]",
        fix: ("- db.example.com #<", "- 240.0.0.10 #<"),
    },
    Case {
        rule: "SE-02 CIDR prefix too long",
        kind: "ServiceEntry",
        body: "
  hosts: [db.example.com]
  addresses:
  - 10.0.0.0/33 #<
  ports: [{number: 5432, name: tcp, protocol: TCP}]",
        code: E,
        path: "spec.addresses[0]",
        fix: ("10.0.0.0/33", "10.0.0.0/24"),
    },
    Case {
        rule: "SE-02 CIDR with resolution DNS",
        kind: "ServiceEntry",
        body: "
  hosts: [db.example.com]
  addresses: [10.0.0.0/24] #<
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS",
        code: E,
        path: "spec.addresses",
        fix: ("10.0.0.0/24", "10.0.0.10"),
    },
    // --- SE-03 ports ---------------------------------------------------------------------
    Case {
        rule: "SE-03 duplicate port name",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 8080, name: http, protocol: HTTP} #<",
        code: E,
        path: "spec.ports[1].name",
        fix: ("name: http, protocol: HTTP} #<", "name: http-alt, protocol: HTTP} #<"),
    },
    Case {
        rule: "SE-03 null port entry",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - ~ #<",
        code: E,
        path: "spec.ports[0].number",
        fix: ("- ~", "- {number: 80, name: http, protocol: HTTP}"),
    },
    Case {
        rule: "SE-03 port name not a DNS-1123 label (C-5)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http_1 #<
    protocol: HTTP",
        code: E,
        path: "spec.ports[0].name",
        fix: ("http_1", "http-1"),
    },
    Case {
        rule: "SE-03 port without a name",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - {number: 80, protocol: HTTP} #<",
        code: E,
        path: "spec.ports[0].name",
        fix: ("{number: 80, protocol: HTTP}", "{number: 80, name: http, protocol: HTTP}"),
    },
    Case {
        rule: "SE-03 duplicate port number",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 80, name: grpc, protocol: GRPC} #<",
        code: E,
        path: "spec.ports[1].number",
        fix: ("{number: 80, name: grpc", "{number: 9090, name: grpc"),
    },
    Case {
        rule: "SE-03 port number 0 (C-2)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - number: 0 #<
    name: http
    protocol: HTTP",
        code: E,
        path: "spec.ports[0].number",
        fix: ("number: 0", "number: 80"),
    },
    Case {
        rule: "SE-03 port number above 65535 (C-2)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - number: 65536 #<
    name: http
    protocol: HTTP",
        code: E,
        path: "spec.ports[0].number",
        fix: ("65536", "65535"),
    },
    Case {
        rule: "SE-03 targetPort above 65535",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: 70000 #<
  resolution: DNS",
        code: E,
        path: "spec.ports[0].targetPort",
        fix: ("70000", "8080"),
    },
    Case {
        rule: "SE-03 unknown protocol (C-13)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http
    protocol: HTTP3 #<",
        code: E,
        path: "spec.ports[0].protocol",
        fix: ("HTTP3", "HTTP2"),
    },
    // --- SE-04 workloadSelector (C-15) and endpoints ------------------------------------
    Case {
        rule: "SE-04 workloadSelector together with endpoints",
        kind: "ServiceEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: test, namespace: ns1}
spec: #<
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: api}}
  endpoints: [{address: 10.0.0.1}]",
        code: E,
        path: "spec",
        fix: ("\n  endpoints: [{address: 10.0.0.1}]", ""),
    },
    Case {
        rule: "SE-04 workload selector with a wildcard (C-15)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector:
    labels:
      app: '*' #<",
        code: E,
        path: "spec.workloadSelector.labels.app",
        fix: ("'*'", "api"),
    },
    Case {
        rule: "SE-04 workload selector without labels warns (C-15)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector:
    labels: {} #<",
        code: W,
        path: "spec.workloadSelector.labels",
        fix: ("{}", "{app: api}"),
    },
    // --- SE-05 resolution NONE -------------------------------------------------------------
    Case {
        rule: "SE-05 endpoints with resolution NONE (the default)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}] #<",
        code: E,
        path: "spec.endpoints",
        fix: ("  endpoints:", "  resolution: STATIC\n  endpoints:"),
    },
    Case {
        rule: "SE-05 workloadSelector with resolution NONE warns",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
  workloadSelector: {labels: {app: api}} #<",
        code: W,
        path: "spec.workloadSelector",
        fix: ("resolution: NONE", "resolution: STATIC"),
    },
    // --- SE-06 resolution STATIC -----------------------------------------------------------
    Case {
        rule: "SE-06 STATIC endpoint with an FQDN address",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: api.internal.example.com #<",
        code: E,
        path: "spec.endpoints[0].address",
        fix: ("api.internal.example.com", "10.0.0.1"),
    },
    Case {
        rule: "SE-06 STATIC endpoint port not declared in ports",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports:
      https: 8443 #<",
        code: E,
        path: "spec.endpoints[0].ports.https",
        fix: ("https: 8443", "http: 8080"),
    },
    Case {
        rule: "SE-06 STATIC endpoint port out of range (C-2)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports:
      http: 0 #<",
        code: E,
        path: "spec.endpoints[0].ports.http",
        fix: ("http: 0", "http: 8080"),
    },
    Case {
        rule: "SE-06 STATIC endpoint label value invalid (C-6)",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    labels:
      version: v1/canary #<",
        code: E,
        path: "spec.endpoints[0].labels.version",
        fix: ("v1/canary", "v1-canary"),
    },
    Case {
        rule: "SE-06 unix endpoint with ports",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: unix:///var/run/api.sock
    ports: {http: 8080} #<",
        code: E,
        path: "spec.endpoints[0].ports",
        fix: ("\n    ports: {http: 8080} #<", ""),
    },
    Case {
        rule: "SE-06 unix endpoint with a relative path",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - address: unix://var/run/api.sock #<",
        code: E,
        path: "spec.endpoints[0].address",
        fix: ("unix://var", "unix:///var"),
    },
    Case {
        rule: "SE-06 unix endpoints need exactly one service port",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: #<
  - {number: 80, name: http, protocol: HTTP}
  - {number: 9090, name: grpc, protocol: GRPC}
  resolution: STATIC
  endpoints:
  - address: unix:///var/run/api.sock",
        code: E,
        path: "spec.ports",
        fix: ("\n  - {number: 9090, name: grpc, protocol: GRPC}", ""),
    },
    // --- SE-07 resolution DNS / DNS_ROUND_ROBIN --------------------------------------------
    Case {
        rule: "SE-07 DNS without endpoints needs FQDN hosts",
        kind: "ServiceEntry",
        body: "
  hosts:
  - '*.example.com' #<
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS",
        code: E,
        path: "spec.hosts[0]",
        fix: ("resolution: DNS", "resolution: DNS\n  endpoints: [{address: api.example.com}]"),
    },
    Case {
        rule: "SE-07 DNS_ROUND_ROBIN without endpoints needs FQDN hosts",
        kind: "ServiceEntry",
        body: "
  hosts:
  - '*.example.com' #<
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS_ROUND_ROBIN",
        code: E,
        path: "spec.hosts[0]",
        fix: ("'*.example.com'", "api.example.com"),
    },
    Case {
        rule: "SE-07 DNS endpoint address neither IP nor FQDN",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
  endpoints:
  - address: api_1.example.com #<",
        code: E,
        path: "spec.endpoints[0].address",
        fix: ("api_1", "api-1"),
    },
    Case {
        rule: "SE-07 DNS endpoint with a unix address",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
  endpoints:
  - address: unix:///var/run/api.sock #<",
        code: E,
        path: "spec.endpoints[0].address",
        fix: ("resolution: DNS", "resolution: STATIC"),
    },
    Case {
        rule: "SE-07 DNS endpoint port not declared in ports",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
  endpoints:
  - address: api.example.com
    ports:
      tls: 8443 #<",
        code: E,
        path: "spec.endpoints[0].ports.tls",
        fix: ("tls: 8443", "https: 8443"),
    },
    Case {
        rule: "SE-07 DNS_ROUND_ROBIN with two endpoints",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS_ROUND_ROBIN
  endpoints: #<
  - address: a.api.example.com
  - address: b.api.example.com",
        code: E,
        path: "spec.endpoints",
        fix: ("\n  - address: b.api.example.com", ""),
    },
    Case {
        rule: "SE-07 several hosts with addresses and a TCP-based port warns",
        kind: "ServiceEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: test, namespace: ns1}
spec: #<
  hosts: [a.example.com, b.example.com]
  addresses: [240.0.0.10]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS",
        code: W,
        path: "spec",
        fix: ("[a.example.com, b.example.com]", "[a.example.com]"),
    },
    // --- SE-08 resolution DYNAMIC_DNS ------------------------------------------------------
    Case {
        rule: "SE-08 DYNAMIC_DNS host not wildcarded",
        kind: "ServiceEntry",
        body: "
  hosts:
  - api.example.com #<
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS",
        code: E,
        path: "spec.hosts[0]",
        fix: ("api.example.com", "'*.example.com'"),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS with addresses",
        kind: "ServiceEntry",
        body: "
  hosts: ['*.example.com']
  addresses: [240.0.0.10] #<
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS",
        code: E,
        path: "spec.addresses",
        fix: ("\n  addresses: [240.0.0.10] #<", ""),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS with endpoints",
        kind: "ServiceEntry",
        body: "
  hosts: ['*.example.com']
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS
  endpoints: [{address: 10.0.0.1}] #<",
        code: E,
        path: "spec.endpoints",
        fix: ("\n  endpoints: [{address: 10.0.0.1}] #<", ""),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS with a TCP port",
        kind: "ServiceEntry",
        body: "
  hosts: ['*.example.com']
  ports:
  - number: 443
    name: tls
    protocol: TCP #<
  resolution: DYNAMIC_DNS",
        code: E,
        path: "spec.ports[0].protocol",
        fix: ("protocol: TCP", "protocol: TLS"),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS with an HTTPS port (only HTTP, TLS, GRPC, HTTP2)",
        kind: "ServiceEntry",
        body: "
  hosts: ['*.example.com']
  ports:
  - number: 443
    name: https
    protocol: HTTPS #<
  resolution: DYNAMIC_DNS",
        code: E,
        path: "spec.ports[0].protocol",
        fix: ("protocol: HTTPS", "protocol: TLS"),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS MESH_INTERNAL behind a waypoint",
        kind: "ServiceEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: test
  namespace: ns1
  labels: {istio.io/use-waypoint: egress-waypoint}
spec:
  hosts: ['*.example.com']
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS
  location: MESH_INTERNAL #<",
        code: E,
        path: "spec.location",
        fix: ("MESH_INTERNAL", "MESH_EXTERNAL"),
    },
    Case {
        rule: "SE-08 DYNAMIC_DNS MESH_INTERNAL is fine without a waypoint",
        kind: "ServiceEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: test
  namespace: ns1
  labels: {istio.io/use-waypoint: egress-waypoint}
spec:
  hosts: ['*.example.com']
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS
  location: MESH_INTERNAL #<",
        code: E,
        path: "spec.location",
        fix: ("  labels: {istio.io/use-waypoint: egress-waypoint}\n", ""),
    },
    // --- SE-09 several hosts -------------------------------------------------------------
    Case {
        rule: "SE-09 several hosts with a TCP port",
        kind: "ServiceEntry",
        body: "
  hosts: [a.example.com, b.example.com]
  ports:
  - number: 5432
    name: tcp
    protocol: TCP #<
  resolution: DNS",
        code: E,
        path: "spec.ports[0].protocol",
        fix: ("protocol: TCP", "protocol: TLS"),
    },
    Case {
        rule: "SE-09 several hosts with an unset protocol",
        kind: "ServiceEntry",
        body: "
  hosts: [a.example.com, b.example.com]
  ports:
  - {number: 5432, name: db} #<
  resolution: STATIC",
        code: E,
        path: "spec.ports[0].protocol",
        fix: ("{number: 5432, name: db}", "{number: 5432, name: db, protocol: TLS}"),
    },
    // --- SE-10 addresses for TCP ports ------------------------------------------------------
    Case {
        rule: "SE-10 TCP port without addresses and resolution NONE warns",
        kind: "ServiceEntry",
        body: "
  hosts: [db.example.com]
  ports:
  - number: 5432
    name: tcp
    protocol: TCP #<",
        code: W,
        path: "spec.ports[0].protocol",
        fix: ("  ports:", "  addresses: [240.0.0.10]\n  ports:"),
    },
    Case {
        rule: "SE-10 unset protocol without addresses warns (auto-allocation fixes it)",
        kind: "ServiceEntry",
        body: "
  hosts: [db.example.com]
  ports:
  - {number: 5432, name: db} #<",
        code: W,
        path: "spec.ports[0].protocol",
        fix: ("  ports:", "  resolution: DNS\n  ports:"),
    },
    Case {
        rule: "SE-10 auto-allocation turned off by label",
        kind: "ServiceEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: test
  namespace: ns1
  labels: {networking.istio.io/enable-autoallocate-ip: 'false'}
spec:
  hosts: [db.example.com]
  ports:
  - number: 5432
    name: tcp
    protocol: TCP #<
  resolution: DNS",
        code: W,
        path: "spec.ports[0].protocol",
        fix: ("'false'", "'true'"),
    },
    // --- SE-11 exportTo (C-7) --------------------------------------------------------------
    Case {
        rule: "SE-11 ~ must stand alone",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  exportTo: ['~', '.'] #<",
        code: E,
        path: "spec.exportTo",
        fix: ("['~', '.']", "['~']"),
    },
    Case {
        rule: "SE-11 * must stand alone",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  exportTo: ['*', ns2] #<",
        code: E,
        path: "spec.exportTo",
        fix: ("['*', ns2]", "['*']"),
    },
    Case {
        rule: "SE-11 exportTo entry not a namespace",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  exportTo:
  - ns_2 #<",
        code: E,
        path: "spec.exportTo[0]",
        fix: ("ns_2", "ns-2"),
    },
    Case {
        rule: "SE-11 exportTo . and the own namespace repeat each other",
        kind: "ServiceEntry",
        body: "
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  exportTo:
  - ns1
  - '.' #<",
        code: E,
        path: "spec.exportTo[1]",
        fix: ("'.' #<", "ns2 #<"),
    },
    // --- WE-01 .. WE-03 WorkloadEntry -------------------------------------------------------
    Case {
        rule: "WE-01 no address and no network",
        kind: "WorkloadEntry",
        body: "
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: test, namespace: ns1}
spec: #<
  labels: {app: vm}",
        code: E,
        path: "spec.address",
        fix: ("  labels: {app: vm}", "  address: 10.0.0.5\n  labels: {app: vm}"),
    },
    Case {
        rule: "WE-01 empty address and no network",
        kind: "WorkloadEntry",
        body: "
  address: '' #<
  labels: {app: vm}",
        code: E,
        path: "spec.address",
        fix: ("''", "10.0.0.5"),
    },
    Case {
        rule: "WE-01 no address with a network warns",
        kind: "WorkloadEntry",
        body: "
  address: '' #<
  network: vpc-1",
        code: W,
        path: "spec.address",
        fix: ("''", "10.0.0.5"),
    },
    Case {
        rule: "WE-02 address with a port",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5:8080 #<",
        code: E,
        path: "spec.address",
        fix: ("10.0.0.5:8080", "10.0.0.5"),
    },
    Case {
        rule: "WE-02 address an FQDN with a wildcard (C-4)",
        kind: "WorkloadEntry",
        body: "
  address: '*.vm.example.com' #<",
        code: E,
        path: "spec.address",
        fix: ("'*.vm.example.com'", "vm1.vm.example.com"),
    },
    Case {
        rule: "WE-02 unix address with a relative path",
        kind: "WorkloadEntry",
        body: "
  address: unix://var/run/app.sock #<",
        code: E,
        path: "spec.address",
        fix: ("unix://var", "unix:///var"),
    },
    Case {
        rule: "WE-02 unix address ending in /",
        kind: "WorkloadEntry",
        body: "
  address: unix:///var/run/ #<",
        code: E,
        path: "spec.address",
        fix: ("/var/run/", "@app"),
    },
    Case {
        rule: "WE-02 unix address with ports",
        kind: "WorkloadEntry",
        body: "
  address: unix:///var/run/app.sock
  ports: {http: 8080} #<",
        code: E,
        path: "spec.ports",
        fix: ("\n  ports: {http: 8080} #<", ""),
    },
    Case {
        rule: "WE-03 port key not a DNS-1123 label",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5
  ports:
    http_alt: 8080 #<",
        code: E,
        path: "spec.ports.http_alt",
        fix: ("http_alt", "http-alt"),
    },
    Case {
        rule: "WE-03 port value 0",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5
  ports:
    http: 0 #<",
        code: E,
        path: "spec.ports.http",
        fix: ("http: 0", "http: 8080"),
    },
    Case {
        rule: "WE-03 port value above 65535",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5
  ports:
    http: 65536 #<",
        code: E,
        path: "spec.ports.http",
        fix: ("65536", "65535"),
    },
    Case {
        rule: "WE-03 label key invalid (C-6)",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5
  labels:
    -app: vm #<",
        code: E,
        path: "spec.labels.-app",
        fix: ("-app:", "app:"),
    },
    Case {
        rule: "WE-03 label value too long (C-6)",
        kind: "WorkloadEntry",
        body: "
  address: 10.0.0.5
  labels:
    app: a123456789012345678901234567890123456789012345678901234567890123 #<",
        code: E,
        path: "spec.labels.app",
        fix: (
            "a123456789012345678901234567890123456789012345678901234567890123",
            "a12345678901234567890123456789012345678901234567890123456789012",
        ),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}
