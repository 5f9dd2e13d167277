//! VirtualService rules (VS-01 .. VS-42) and the shared building blocks they use (C-n),
//! one invalid case and its nearest valid case each. The line marked `#<` is where the
//! finding must point; `fix` turns the case valid.

mod support;

use support::{Case, run_cases};

const E: &str = "IST0106";
const W: &str = "IST0133";

const CASES: &[Case] = &[
    // --- VS-01 delegates -------------------------------------------------------------
    Case {
        rule: "VS-01 delegate with gateways",
        kind: "VirtualService",
        body: "
  gateways: [gw] #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.gateways",
        fix: ("  gateways: [gw] #<\n", ""),
    },
    Case {
        rule: "VS-01 delegate with tcp",
        kind: "VirtualService",
        body: "
  http:
  - route: [{destination: {host: a}}]
  tcp: #<
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tcp",
        fix: ("  tcp: #<\n  - route: [{destination: {host: a}}]", ""),
    },
    Case {
        rule: "VS-01 delegate with tls",
        kind: "VirtualService",
        body: "
  http:
  - route: [{destination: {host: a}}]
  tls: #<
  - match: [{sniHosts: [a.com]}]
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tls",
        fix: ("  tls: #<\n  - match: [{sniHosts: [a.com]}]\n    route: [{destination: {host: a}}]", ""),
    },
    Case {
        rule: "VS-01 delegate route delegates again",
        kind: "VirtualService",
        body: "
  http:
  - delegate: {name: other} #<",
        code: E,
        path: "spec.http[0].delegate",
        fix: ("delegate: {name: other}", "route: [{destination: {host: a}}]"),
    },
    // --- VS-02 .. VS-05 hosts ------------------------------------------------------------
    Case {
        rule: "VS-02 invalid host",
        kind: "VirtualService",
        body: "
  hosts:
  - foo.*.com #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("foo.*.com", "'*.foo.com'"),
    },
    Case {
        rule: "VS-02 an IP host is accepted (its nearest invalid: a bad IP)",
        kind: "VirtualService",
        body: "
  hosts:
  - 10.0.0.256 #<
  gateways: [gw]
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("10.0.0.256", "10.0.0.1"),
    },
    Case {
        rule: "VS-03 * bound to mesh",
        kind: "VirtualService",
        body: "
  hosts:
  - '*' #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("  http:", "  gateways: [gw]\n  http:"),
    },
    Case {
        rule: "VS-03 * with mesh among gateways",
        kind: "VirtualService",
        body: "
  hosts:
  - '*' #<
  gateways: [gw, mesh]
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[0]",
        fix: ("[gw, mesh]", "[gw]"),
    },
    Case {
        rule: "VS-04 duplicate host",
        kind: "VirtualService",
        body: "
  hosts:
  - a.com
  - a.com #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[1]",
        fix: ("  - a.com #<", "  - b.com #<"),
    },
    Case {
        rule: "VS-04 overlapping wildcards",
        kind: "VirtualService",
        body: "
  hosts:
  - '*.foo.bar'
  - '*.bar' #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[1]",
        fix: ("'*.bar'", "'*.baz'"),
    },
    Case {
        rule: "VS-04 wildcard covers a name",
        kind: "VirtualService",
        body: "
  hosts:
  - '*.example.com'
  - shop.example.com #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.hosts[1]",
        fix: ("shop.example.com", "example.com"),
    },
    Case {
        rule: "VS-05 no routes",
        kind: "VirtualService",
        body: "
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: test, namespace: ns1}
spec: #<
  hosts: [a]",
        code: E,
        path: "spec",
        fix: ("hosts: [a]", "hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]"),
    },
    // --- VS-06 gateway names ----------------------------------------------------------
    Case {
        rule: "VS-06 namespace wildcard",
        kind: "VirtualService",
        body: "
  hosts: [a]
  gateways:
  - '*/gw' #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.gateways[0]",
        fix: ("'*/gw'", "ns1/gw"),
    },
    Case {
        rule: "VS-06 name wildcard",
        kind: "VirtualService",
        body: "
  hosts: [a]
  gateways:
  - ns/* #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.gateways[0]",
        fix: ("ns/*", "ns/gw"),
    },
    Case {
        rule: "VS-06 legacy name.namespace warns",
        kind: "VirtualService",
        body: "
  hosts: [a]
  gateways:
  - gw.ns1 #<
  http:
  - route: [{destination: {host: a}}]",
        code: W,
        path: "spec.gateways[0]",
        fix: ("gw.ns1", "ns1/gw"),
    },
    Case {
        rule: "VS-06 bare name must be an FQDN",
        kind: "VirtualService",
        body: "
  hosts: [a]
  gateways:
  - bad_gw #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.gateways[0]",
        fix: ("bad_gw", "good-gw"),
    },
    Case {
        rule: "VS-06 match gateways",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - gateways: ['*/gw'] #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].gateways[0]",
        fix: ("'*/gw'", "ns1/gw"),
    },
    // --- VS-07 JWT claims ---------------------------------------------------------------
    Case {
        rule: "VS-07 JWT claim on a mesh VS",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - headers:
        '@request.auth.claims.group': {exact: admin} #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].headers[\"@request.auth.claims.group\"]",
        fix: ("  http:", "  gateways: [gw]\n  http:"),
    },
    Case {
        rule: "VS-07 JWT claim on a VS bound to gateways and the mesh",
        kind: "VirtualService",
        body: "
  hosts: [a]
  gateways: [gw, mesh]
  http:
  - match:
    - withoutHeaders:
        '@request.auth.claims.group': {exact: admin} #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].withoutHeaders[\"@request.auth.claims.group\"]",
        fix: ("[gw, mesh]", "[gw]"),
    },
    // --- VS-08 exportTo (C-7) ------------------------------------------------------------
    Case {
        rule: "C-7 * mixed with others",
        kind: "VirtualService",
        body: "
  hosts: [a]
  exportTo: ['*', ns2] #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.exportTo",
        fix: ("['*', ns2]", "['*']"),
    },
    Case {
        rule: "C-7 . and own namespace",
        kind: "VirtualService",
        body: "
  hosts: [a]
  exportTo:
  - .
  - ns1 #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.exportTo[1]",
        fix: ("  - ns1 #<", "  - ns2 #<"),
    },
    Case {
        rule: "C-7 invalid namespace",
        kind: "VirtualService",
        body: "
  hosts: [a]
  exportTo:
  - Not_A_Namespace #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.exportTo[0]",
        fix: ("Not_A_Namespace", "ns2"),
    },
    Case {
        rule: "C-7 ~ is for service entries only",
        kind: "VirtualService",
        body: "
  hosts: [a]
  exportTo:
  - '~' #<
  http:
  - route: [{destination: {host: a}}]",
        code: E,
        path: "spec.exportTo[0]",
        fix: ("'~'", "."),
    },
    // --- VS-10 one action per rule -----------------------------------------------------
    Case {
        rule: "VS-10 no action",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - name: nothing #<",
        code: E,
        path: "spec.http[0]",
        fix: ("name: nothing #<", "route: [{destination: {host: a}}]"),
    },
    Case {
        rule: "VS-10 route and redirect",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    redirect: {uri: /x} #<",
        code: E,
        path: "spec.http[0].redirect",
        fix: ("    redirect: {uri: /x} #<", ""),
    },
    Case {
        rule: "VS-10 redirect and fault",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect: {uri: /x} #<
    fault: {abort: {httpStatus: 500, percentage: {value: 1}}}",
        code: E,
        path: "spec.http[0].redirect",
        fix: ("\n    fault: {abort: {httpStatus: 500, percentage: {value: 1}}}", ""),
    },
    Case {
        rule: "VS-10 redirect and rewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect: {uri: /x} #<
    rewrite: {uri: /y}",
        code: E,
        path: "spec.http[0].redirect",
        fix: ("\n    rewrite: {uri: /y}", ""),
    },
    Case {
        rule: "VS-10 redirect and directResponse",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect: {uri: /x} #<
    directResponse: {status: 200}",
        code: E,
        path: "spec.http[0].redirect",
        fix: ("\n    directResponse: {status: 200}", ""),
    },
    Case {
        rule: "VS-10 route and directResponse",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    directResponse: {status: 200} #<",
        code: E,
        path: "spec.http[0].directResponse",
        fix: ("  - route: [{destination: {host: a}}]\n", "  -\n"),
    },
    Case {
        rule: "VS-10 directResponse and rewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - directResponse: {status: 200} #<
    rewrite: {uri: /y}",
        code: E,
        path: "spec.http[0].directResponse",
        fix: ("\n    rewrite: {uri: /y}", ""),
    },
    Case {
        rule: "VS-10 directResponse and fault",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - directResponse: {status: 200} #<
    fault: {abort: {httpStatus: 500}}",
        code: E,
        path: "spec.http[0].directResponse",
        fix: ("\n    fault: {abort: {httpStatus: 500}}", ""),
    },
    Case {
        rule: "VS-10 delegate and route",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - delegate: {name: d} #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].delegate",
        fix: ("\n    route: [{destination: {host: a}}]", ""),
    },
    // --- VS-11 mirrors --------------------------------------------------------------------
    Case {
        rule: "VS-11 mirror and mirrors",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror: {host: b}
    mirrors: [{destination: {host: c}}] #<",
        code: E,
        path: "spec.http[0].mirrors",
        fix: ("\n    mirror: {host: b}", ""),
    },
    Case {
        rule: "VS-11 mirrors entry without destination",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirrors:
    - percentage: {value: 5} #<",
        code: E,
        path: "spec.http[0].mirrors[0].destination",
        fix: ("- percentage: {value: 5}", "- {destination: {host: c}, percentage: {value: 5}}"),
    },
    Case {
        rule: "VS-11 mirrors percentage over 100",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirrors:
    - destination: {host: c}
      percentage: {value: 101} #<",
        code: E,
        path: "spec.http[0].mirrors[0].percentage.value",
        fix: ("101", "100"),
    },
    Case {
        rule: "VS-11 mirrorPercentage over 100",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror: {host: b}
    mirrorPercentage: {value: 150} #<",
        code: E,
        path: "spec.http[0].mirrorPercentage.value",
        fix: ("150", "50"),
    },
    Case {
        rule: "VS-11 mirrorPercent over 100",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror: {host: b}
    mirrorPercent: 101 #<",
        code: E,
        path: "spec.http[0].mirrorPercent",
        fix: ("mirrorPercent: 101", "mirrorPercentage: {value: 100}"),
    },
    Case {
        rule: "VS-11 mirrorPercent is deprecated",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror: {host: b}
    mirrorPercent: 50 #<",
        code: W,
        path: "spec.http[0].mirrorPercent",
        fix: ("mirrorPercent: 50", "mirrorPercentage: {value: 50}"),
    },
    Case {
        rule: "VS-11 mirror destination host",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    mirror:
      host: '*' #<",
        code: E,
        path: "spec.http[0].mirror.host",
        fix: ("'*'", "b"),
    },
    // --- VS-12, VS-13 destinations ---------------------------------------------------------
    Case {
        rule: "VS-12 route entry without destination",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - weight: 100 #<",
        code: E,
        path: "spec.http[0].route[0].destination",
        fix: ("- weight: 100", "- {weight: 100, destination: {host: a}}"),
    },
    Case {
        rule: "VS-12 negative weight",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
      weight: -1 #<",
        code: E,
        path: "spec.http[0].route[0].weight",
        fix: ("-1", "1"),
    },
    Case {
        rule: "VS-12 all weights zero",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: #<
    - {destination: {host: a, subset: v1}, weight: 0}
    - {destination: {host: a, subset: v2}, weight: 0}",
        code: E,
        path: "spec.http[0].route",
        fix: ("weight: 0}\n", "weight: 1}\n"),
    },
    Case {
        rule: "VS-12 tcp all weights zero (totals above 100 are fine)",
        kind: "VirtualService",
        body: "
  hosts: [a]
  tcp:
  - route: #<
    - {destination: {host: a, subset: v1}}
    - {destination: {host: a, subset: v2}}",
        code: E,
        path: "spec.tcp[0].route",
        fix: ("v1}}", "v1}, weight: 150}"),
    },
    Case {
        rule: "VS-13 destination host *",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination:
        host: '*' #<",
        code: E,
        path: "spec.http[0].route[0].destination.host",
        fix: ("'*'", "'*foo.baz'"),
    },
    Case {
        rule: "VS-13 destination host with a slash",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination:
        host: default/reviews #<",
        code: E,
        path: "spec.http[0].route[0].destination.host",
        fix: ("default/reviews", "reviews.default"),
    },
    Case {
        rule: "VS-13 subset not a DNS label",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination:
        host: a
        subset: v1.0 #<",
        code: E,
        path: "spec.http[0].route[0].destination.subset",
        fix: ("v1.0", "v1-0"),
    },
    Case {
        rule: "VS-13 destination port out of range",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination:
        host: a
        port:
          number: 70000 #<",
        code: E,
        path: "spec.http[0].route[0].destination.port.number",
        fix: ("70000", "9080"),
    },
    // --- VS-14 timeout -------------------------------------------------------------------
    Case {
        rule: "VS-14 timeout 0s",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    timeout: 0s #<",
        code: E,
        path: "spec.http[0].timeout",
        fix: ("0s", "1s"),
    },
    Case {
        rule: "C-1 negative duration",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    timeout: -5s #<",
        code: E,
        path: "spec.http[0].timeout",
        fix: ("-5s", "5s"),
    },
    Case {
        rule: "C-1 below 1ms",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    timeout: 500us #<",
        code: E,
        path: "spec.http[0].timeout",
        fix: ("500us", "500ms"),
    },
    Case {
        rule: "C-1 sub-millisecond precision",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    timeout: 1.5ms #<",
        code: E,
        path: "spec.http[0].timeout",
        fix: ("1.5ms", "1.5s"),
    },
    // --- VS-15 retries ---------------------------------------------------------------------
    Case {
        rule: "VS-15 negative attempts",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries:
      attempts: -1 #<",
        code: E,
        path: "spec.http[0].retries.attempts",
        fix: ("-1", "1"),
    },
    Case {
        rule: "VS-15 settings with attempts 0",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries: #<
      attempts: 0
      perTryTimeout: 2s",
        code: E,
        path: "spec.http[0].retries",
        fix: ("attempts: 0", "attempts: 3"),
    },
    Case {
        rule: "VS-15 retryOn without attempts",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries: #<
      retryOn: 5xx",
        code: E,
        path: "spec.http[0].retries",
        fix: ("retryOn: 5xx", "attempts: 0"),
    },
    Case {
        rule: "VS-15 unknown retryOn policy",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries:
      attempts: 3
      retryOn: 5xx,bogus #<",
        code: E,
        path: "spec.http[0].retries.retryOn",
        fix: ("5xx,bogus", "5xx,gateway-error,503"),
    },
    Case {
        rule: "VS-15 retryOn unknown status code",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries:
      attempts: 3
      retryOn: '600' #<",
        code: E,
        path: "spec.http[0].retries.retryOn",
        fix: ("'600'", "'503'"),
    },
    Case {
        rule: "VS-15 perTryTimeout duration",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries:
      attempts: 3
      perTryTimeout: 0s #<",
        code: E,
        path: "spec.http[0].retries.perTryTimeout",
        fix: ("0s", "2s"),
    },
    Case {
        rule: "VS-15 backoff duration",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retries:
      attempts: 3
      backoff: 0.5ms #<",
        code: E,
        path: "spec.http[0].retries.backoff",
        fix: ("0.5ms", "25ms"),
    },
    // --- VS-16 fault -----------------------------------------------------------------------
    Case {
        rule: "VS-16 empty fault",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault: {} #<",
        code: E,
        path: "spec.http[0].fault",
        fix: ("fault: {}", "fault: {delay: {fixedDelay: 1s, percentage: {value: 10}}}"),
    },
    Case {
        rule: "VS-16 abort status 601",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort:
        httpStatus: 601 #<",
        code: E,
        path: "spec.http[0].fault.abort.httpStatus",
        fix: ("601", "600"),
    },
    Case {
        rule: "VS-16 abort status below 200",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort:
        httpStatus: 199 #<",
        code: E,
        path: "spec.http[0].fault.abort.httpStatus",
        fix: ("199", "200"),
    },
    Case {
        rule: "VS-16 grpcStatus by number",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort:
        grpcStatus: '14' #<",
        code: E,
        path: "spec.http[0].fault.abort.grpcStatus",
        fix: ("'14'", "UNAVAILABLE"),
    },
    Case {
        rule: "VS-16 http2Error unsupported",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort:
        http2Error: STREAM_CLOSED #<",
        code: E,
        path: "spec.http[0].fault.abort.http2Error",
        fix: ("http2Error: STREAM_CLOSED", "httpStatus: 503"),
    },
    Case {
        rule: "VS-16 abort without error type warns",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort: #<
        percentage: {value: 5}",
        code: W,
        path: "spec.http[0].fault.abort",
        fix: ("percentage: {value: 5}", "percentage: {value: 5}\n        httpStatus: 503"),
    },
    Case {
        rule: "C-8 fault percentage over 100",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      abort:
        httpStatus: 503
        percentage:
          value: 101 #<",
        code: E,
        path: "spec.http[0].fault.abort.percentage.value",
        fix: ("101", "100"),
    },
    Case {
        rule: "C-8 fault percentage below 0.0001",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      delay:
        fixedDelay: 1s
        percentage:
          value: 0.00001 #<",
        code: E,
        path: "spec.http[0].fault.delay.percentage.value",
        fix: ("0.00001", "0.0001"),
    },
    Case {
        rule: "VS-16 fixedDelay duration",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      delay:
        fixedDelay: 0s #<",
        code: E,
        path: "spec.http[0].fault.delay.fixedDelay",
        fix: ("0s", "5s"),
    },
    Case {
        rule: "VS-16 exponentialDelay unsupported",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      delay:
        exponentialDelay: 1s #<",
        code: E,
        path: "spec.http[0].fault.delay.exponentialDelay",
        fix: ("exponentialDelay", "fixedDelay"),
    },
    Case {
        rule: "IST0002 delay percent is deprecated",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    fault:
      delay:
        fixedDelay: 1s
        percent: 10 #<",
        code: "IST0002",
        path: "spec.http[0].fault.delay.percent",
        fix: ("percent: 10", "percentage: {value: 10}"),
    },
    // --- VS-17 redirect ---------------------------------------------------------------------
    Case {
        rule: "VS-17 redirect with only a code",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect: #<
      redirectCode: 302",
        code: E,
        path: "spec.http[0].redirect",
        fix: ("redirectCode: 302", "redirectCode: 302\n      uri: /new"),
    },
    Case {
        rule: "VS-17 redirect code not 3xx",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect:
      uri: /new
      redirectCode: 200 #<",
        code: E,
        path: "spec.http[0].redirect.redirectCode",
        fix: ("200", "307"),
    },
    Case {
        rule: "VS-17 redirect scheme",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect:
      scheme: ftp #<",
        code: E,
        path: "spec.http[0].redirect.scheme",
        fix: ("ftp", "https"),
    },
    Case {
        rule: "VS-17 redirect port",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - redirect:
      port: 70000 #<",
        code: E,
        path: "spec.http[0].redirect.port",
        fix: ("70000", "8443"),
    },
    Case {
        rule: "VS-17 uri and prefixRewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect:
      uri: /new
      prefixRewrite: /new #<",
        code: E,
        path: "spec.http[0].redirect.prefixRewrite",
        fix: ("      uri: /new\n", ""),
    },
    Case {
        rule: "VS-17 prefixRewrite needs prefix matches",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{uri: {exact: /old}}]
    redirect:
      prefixRewrite: /new #<",
        code: E,
        path: "spec.http[0].redirect.prefixRewrite",
        fix: ("exact: /old", "prefix: /old"),
    },
    // --- VS-18 direct response ---------------------------------------------------------------
    Case {
        rule: "VS-18 status out of range",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - directResponse:
      status: 700 #<",
        code: E,
        path: "spec.http[0].directResponse.status",
        fix: ("700", "600"),
    },
    Case {
        rule: "VS-18 body not base64",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - directResponse:
      status: 200
      body:
        bytes: '!!!' #<",
        code: E,
        path: "spec.http[0].directResponse.body.bytes",
        fix: ("'!!!'", "aGVsbG8="),
    },
    // --- VS-19, VS-20 rewrite ----------------------------------------------------------------
    Case {
        rule: "VS-19 empty rewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    rewrite: {} #<",
        code: E,
        path: "spec.http[0].rewrite",
        fix: ("rewrite: {}", "rewrite: {uri: /v2}"),
    },
    Case {
        rule: "VS-19 uri and uriRegexRewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    rewrite: #<
      uri: /v2
      uriRegexRewrite: {match: '^/v1/(.*)', rewrite: '/v2/\\1'}",
        code: E,
        path: "spec.http[0].rewrite",
        fix: ("      uri: /v2\n", ""),
    },
    Case {
        rule: "VS-19 uriRegexRewrite needs rewrite",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    rewrite:
      uriRegexRewrite: {match: '^/v1/(.*)'} #<",
        code: E,
        path: "spec.http[0].rewrite.uriRegexRewrite",
        fix: ("'^/v1/(.*)'}", "'^/v1/(.*)', rewrite: '/v2/\\1'}"),
    },
    Case {
        rule: "VS-19 uriRegexRewrite bad regex",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    rewrite:
      uriRegexRewrite:
        match: '^/v1/(?=x)' #<
        rewrite: /v2",
        code: E,
        path: "spec.http[0].rewrite.uriRegexRewrite.match",
        fix: ("(?=x)", "(x)"),
    },
    Case {
        rule: "VS-20 authority rewritten twice",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    rewrite: {authority: b.com}
    headers:
      request:
        set:
          host: c.com #<",
        code: E,
        path: "spec.http[0].headers.request.set.host",
        fix: ("    rewrite: {authority: b.com}\n", ""),
    },
    // --- VS-21 header operations (C-9, C-10) ----------------------------------------------------
    Case {
        rule: "C-9 request set of a pseudo-header",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      request:
        set:
          ':path': /x #<",
        code: E,
        path: "spec.http[0].headers.request.set[\":path\"]",
        fix: ("':path'", "x-path"),
    },
    Case {
        rule: "C-9 an operation name that is not an HTTP token is only a warning",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      response:
        remove: ['Server Timing'] #<",
        code: W,
        path: "spec.http[0].headers.response.remove[0]",
        fix: ("'Server Timing'", "server-timing"),
    },
    Case {
        rule: "C-9 request remove host",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      request:
        remove:
        - Host #<",
        code: E,
        path: "spec.http[0].headers.request.remove[0]",
        fix: ("- Host", "- x-debug"),
    },
    Case {
        rule: "C-9 response set of :authority",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      response:
        set:
          ':authority': x #<",
        code: E,
        path: "spec.http[0].headers.response.set[\":authority\"]",
        fix: ("':authority'", "x-served-by"),
    },
    Case {
        rule: "C-10 unescaped percent",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      response:
        add:
          x-deal: 50%off #<",
        code: E,
        path: "spec.http[0].headers.response.add.x-deal",
        fix: ("50%off", "50%%off"),
    },
    Case {
        rule: "C-10 destination-level header value",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
      headers:
        request:
          set:
            x-id: '%REQ(x-id' #<",
        code: E,
        path: "spec.http[0].route[0].headers.request.set.x-id",
        fix: ("'%REQ(x-id'", "'%REQ(x-id)%'"),
    },
    // --- VS-22 match requests (C-9, C-11, C-12, C-2, C-5, C-6) -------------------------------------
    Case {
        rule: "VS-22 null header match",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - headers:
        end-user: #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].headers.end-user",
        fix: ("end-user: #<", "end-user: {} #<"),
    },
    Case {
        rule: "C-9 invalid header match name",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - headers:
        'end user': {exact: jason} #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].headers[\"end user\"]",
        fix: ("'end user'", "end-user"),
    },
    Case {
        rule: "C-12 empty header prefix",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - headers:
        end-user:
          prefix: '' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].headers.end-user.prefix",
        fix: ("prefix: ''", "prefix: j"),
    },
    Case {
        rule: "C-12 empty uri prefix is allowed; empty regex is not",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - uri:
        regex: '' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].uri.regex",
        fix: ("regex: ''", "prefix: ''"),
    },
    Case {
        rule: "C-12 empty method prefix",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - method:
        prefix: '' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].method.prefix",
        fix: ("prefix: ''", "exact: GET"),
    },
    Case {
        rule: "C-11 uri regex with a look-ahead",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - uri:
        regex: '/api(?!/internal).*' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].uri.regex",
        fix: ("'/api(?!/internal).*'", "'/api(/public)?.*'"),
    },
    Case {
        rule: "C-11 regex with a backreference",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - authority:
        regex: '(a)\\1' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].authority.regex",
        fix: ("'(a)\\1'", "'(a)+'"),
    },
    Case {
        // RE2's \\w is ASCII: a long repetition of it is small (Istio accepts it).
        rule: "C-11 an unbalanced regex next to a valid long \\w repetition",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - uri:
        regex: '^/[\\w-]{1,64}/\\w{30}(' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].uri.regex",
        fix: ("{30}('", "{30}'"),
    },
    Case {
        rule: "VS-22 null query parameter match",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - queryParams:
        debug: #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].queryParams.debug",
        fix: ("debug: #<", "debug: {exact: ''} #<"),
    },
    Case {
        rule: "C-12 withoutHeaders regex * means presence",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - withoutHeaders:
        x-canary:
          regex: '[' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].withoutHeaders.x-canary.regex",
        fix: ("'['", "'*'"),
    },
    Case {
        rule: "StringMatch oneof: two forms",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - uri: {exact: /a, prefix: /b} #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].uri",
        fix: ("exact: /a, ", ""),
    },
    Case {
        rule: "C-2 match port",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - port: 65536 #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].port",
        fix: ("65536", "8080"),
    },
    Case {
        rule: "C-6 sourceLabels key",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - sourceLabels:
        -app: reviews #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].sourceLabels.-app",
        fix: ("-app", "app"),
    },
    Case {
        rule: "C-6 sourceLabels value",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - sourceLabels:
        app: 'not valid' #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].sourceLabels.app",
        fix: ("'not valid'", "valid"),
    },
    Case {
        rule: "C-5 sourceNamespace",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - sourceNamespace: Not.A.Label #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.http[0].match[0].sourceNamespace",
        fix: ("Not.A.Label", "ns2"),
    },
    // --- VS-23 CORS ------------------------------------------------------------------------------
    Case {
        rule: "VS-23 empty allowOrigins entry",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      allowOrigins:
      - exact: '' #<",
        code: E,
        path: "spec.http[0].corsPolicy.allowOrigins[0]",
        fix: ("exact: ''", "exact: https://a.com"),
    },
    Case {
        rule: "VS-23 allowOrigins regex",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      allowOrigins:
      - regex: 'https://(' #<",
        code: E,
        path: "spec.http[0].corsPolicy.allowOrigins[0].regex",
        fix: ("'https://('", "'https://.*\\.a\\.com'"),
    },
    Case {
        rule: "VS-23 method is case-sensitive",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      allowMethods:
      - get #<",
        code: E,
        path: "spec.http[0].corsPolicy.allowMethods[0]",
        fix: ("- get", "- GET"),
    },
    Case {
        rule: "VS-23 allowHeaders token",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      allowHeaders:
      - 'x y' #<",
        code: E,
        path: "spec.http[0].corsPolicy.allowHeaders[0]",
        fix: ("'x y'", "x-y"),
    },
    Case {
        rule: "VS-23 exposeHeaders token",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      exposeHeaders:
      - 'a,b' #<",
        code: E,
        path: "spec.http[0].corsPolicy.exposeHeaders[0]",
        fix: ("'a,b'", "'*'"),
    },
    Case {
        rule: "VS-23 maxAge whole seconds",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    corsPolicy:
      maxAge: 1500ms #<",
        code: E,
        path: "spec.http[0].corsPolicy.maxAge",
        fix: ("1500ms", "24h"),
    },
    // --- VS-30 TLS routes ----------------------------------------------------------------------
    Case {
        rule: "VS-30 the gateway outbound_ SNI form only on gateway-bound services",
        kind: "VirtualService",
        body: "
  hosts: [outbound_.443_._.app.default.svc.cluster.local]
  gateways: [mesh]
  tls:
  - match:
    - sniHosts:
      - outbound_.443_._.app.default.svc.cluster.local #<
    route: [{destination: {host: app.default.svc.cluster.local, port: {number: 443}}}]",
        code: E,
        path: "spec.tls[0].match[0].sniHosts[0]",
        fix: ("[mesh]", "[cross-network-gateway]"),
    },
    Case {
        rule: "VS-30 TLS route without match",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - route: [{destination: {host: a}}] #<",
        code: E,
        path: "spec.tls[0].match",
        fix: ("  - route:", "  - match: [{sniHosts: [a.example.com]}]\n    route:"),
    },
    Case {
        rule: "VS-30 TLS match without sniHosts",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - match:
    - port: 443 #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tls[0].match[0].sniHosts",
        fix: ("- port: 443", "- {port: 443, sniHosts: [a.example.com]}"),
    },
    Case {
        rule: "VS-30 SNI host not covered by the hosts",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - match:
    - sniHosts:
      - a.example.org #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tls[0].match[0].sniHosts[0]",
        fix: ("a.example.org", "a.example.com"),
    },
    Case {
        rule: "VS-30 SNI host that is an IP warns",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - match:
    - sniHosts:
      - 10.0.0.1 #<
    route: [{destination: {host: a}}]",
        code: W,
        path: "spec.tls[0].match[0].sniHosts[0]",
        fix: ("10.0.0.1", "b.example.com"),
    },
    Case {
        rule: "VS-30 TLS route without route",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - match: [{sniHosts: [a.example.com]}] #<",
        code: E,
        path: "spec.tls[0].route",
        fix: ("[a.example.com]}]", "[a.example.com]}]\n    route: [{destination: {host: a}}]"),
    },
    Case {
        rule: "VS-30 destinationSubnets",
        kind: "VirtualService",
        body: "
  hosts: ['*.example.com']
  tls:
  - match:
    - sniHosts: [a.example.com]
      destinationSubnets:
      - 10.0.0.0/33 #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tls[0].match[0].destinationSubnets[0]",
        fix: ("10.0.0.0/33", "10.0.0.0/16"),
    },
    // --- VS-31 TCP routes ------------------------------------------------------------------------
    Case {
        rule: "VS-31 TCP route without route",
        kind: "VirtualService",
        body: "
  hosts: [a]
  tcp:
  - match: [{port: 3306}] #<",
        code: E,
        path: "spec.tcp[0].route",
        fix: ("[{port: 3306}]", "[{port: 3306}]\n    route: [{destination: {host: a}}]"),
    },
    Case {
        rule: "VS-31 TCP match port",
        kind: "VirtualService",
        body: "
  hosts: [a]
  tcp:
  - match:
    - port: 0x10000 #<
    route: [{destination: {host: a}}]",
        code: E,
        path: "spec.tcp[0].match[0].port",
        fix: ("0x10000", "3306"),
    },
    // --- VS-40 .. VS-42 reachability -----------------------------------------------------------
    Case {
        rule: "VS-40 two catch-all rules",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a, subset: v1}}]
  - route: [{destination: {host: a, subset: v2}}] #<",
        code: "IST0130",
        path: "spec.http[1]",
        fix: (
            "  - route: [{destination: {host: a, subset: v1}}]",
            "  - match: [{uri: {prefix: /v1}}]\n    route: [{destination: {host: a, subset: v1}}]",
        ),
    },
    Case {
        rule: "VS-40 rule after a catch-all",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - route: [{destination: {host: a, subset: v1}}]
  - match: [{uri: {prefix: /v2}}] #<
    route: [{destination: {host: a, subset: v2}}]",
        code: "IST0130",
        path: "spec.http[1]",
        fix: ("  - route: [{destination: {host: a, subset: v1}}]\n", ""),
    },
    Case {
        rule: "VS-41 all matches duplicated",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{name: first, uri: {prefix: /api}}]
    route: [{destination: {host: a, subset: v1}}]
  - match: [{name: second, uri: {prefix: /api}}] #<
    route: [{destination: {host: a, subset: v2}}]",
        code: "IST0130",
        path: "spec.http[1]",
        fix: ("name: second, uri: {prefix: /api}", "name: second, uri: {prefix: /web}"),
    },
    Case {
        rule: "VS-41 a duplicate match is ineffective",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{uri: {exact: /a}}]
    route: [{destination: {host: a, subset: v1}}]
  - match:
    - uri: {exact: /b}
    - uri: {exact: /a} #<
    route: [{destination: {host: a, subset: v2}}]",
        code: "IST0131",
        path: "spec.http[1].match[1]",
        fix: ("    - uri: {exact: /a} #<", "    - uri: {exact: /c} #<"),
    },
    Case {
        rule: "VS-42 prefix covered by an earlier prefix",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{uri: {prefix: /api/v1/product}}]
    route: [{destination: {host: a, subset: v1}}]
  - match:
    - uri: {prefix: /api/v1/products} #<
    route: [{destination: {host: a, subset: v2}}]",
        code: "IST0131",
        path: "spec.http[1].match[0].uri",
        fix: ("{prefix: /api/v1/products}", "{prefix: /api/v2/products}"),
    },
    Case {
        rule: "VS-42 prefix covered inside one rule",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match:
    - uri: {prefix: /api}
    - uri: {prefix: /api/v1} #<
    route: [{destination: {host: a}}]",
        code: "IST0131",
        path: "spec.http[0].match[1].uri",
        fix: ("/api/v1}", "/web}"),
    },
    Case {
        rule: "VS-42 covering compares headers",
        kind: "VirtualService",
        body: "
  hosts: [a]
  http:
  - match: [{uri: {prefix: /api}, headers: {x-user: {exact: a}}}]
    route: [{destination: {host: a, subset: v1}}]
  - match:
    - {uri: {prefix: /api/v1}, headers: {x-user: {exact: a}}} #<
    route: [{destination: {host: a, subset: v2}}]",
        code: "IST0131",
        path: "spec.http[1].match[0].uri",
        fix: ("x-user: {exact: a}}} #<", "x-user: {exact: b}}} #<"),
    },
    Case {
        rule: "VS-40 TCP rule after a catch-all",
        kind: "VirtualService",
        body: "
  hosts: [a]
  tcp:
  - route: [{destination: {host: a}}]
  - match: [{port: 3306}] #<
    route: [{destination: {host: b}}]",
        code: "IST0130",
        path: "spec.tcp[1]",
        fix: ("  - route: [{destination: {host: a}}]\n", ""),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}

/// After a catch-all rule Istio reports each later rule unreachable and does not go on to
/// compare its matches with earlier ones (no IST0131 for them).
#[test]
fn rules_after_a_catch_all_are_not_compared_further() {
    let doc = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: test, namespace: ns1}
spec:
  hosts: [a]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: a, subset: v1}}]
  - route: [{destination: {host: a, subset: v1}}]
  - match: [{uri: {prefix: /api}}, {uri: {prefix: /api/v2}}]
    route: [{destination: {host: a, subset: v2}}]
";
    let diags = weir_model::load_str("case.yaml", doc).diagnostics;
    let codes: Vec<_> = diags.iter().map(|d| (d.code, d.path.to_string())).collect();
    assert_eq!(codes, [("IST0130", "spec.http[2]".to_string())], "{diags:#?}");
    assert!(diags[0].message.contains("route without matches defined before"), "{}", diags[0].message);
}

/// Findings stay bounded: a VirtualService repeating one host 2,000 times gets one
/// finding per repeated host (against the first), not one per pair (two million).
#[test]
fn repeated_hosts_get_one_finding_each() {
    let hosts: String = (0..2000).map(|_| "  - reviews\n").collect();
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: dup, namespace: ns}}
spec:
  hosts:
{hosts}  http:
  - route: [{{destination: {{host: reviews}}}}]
"
    );
    let report = weir_model::load_str("dup.yaml", &yaml);
    let dups: Vec<_> = report.diagnostics.iter().filter(|d| d.message.starts_with("duplicate hosts")).collect();
    assert_eq!(dups.len(), 1999);
    assert_eq!(dups[0].path, "spec.hosts[1]");
    assert_eq!(dups[1998].path, "spec.hosts[1999]");
}
