//! DestinationRule rules (DR-01 .. DR-12) and the shared building blocks they use (C-1,
//! C-5, C-6, C-7, C-8, C-15), one invalid case and its nearest valid case each. The line
//! marked `#<` is where the finding must point; `fix` turns the case valid.

mod support;

use support::{Case, run_cases};

const E: &str = "IST0106";
const W: &str = "IST0133";

const CASES: &[Case] = &[
    // --- DR-01 host --------------------------------------------------------------------
    Case {
        rule: "DR-01 empty host",
        kind: "DestinationRule",
        body: "
  host: '' #<",
        code: E,
        path: "spec.host",
        fix: ("''", "reviews"),
    },
    Case {
        rule: "DR-01 missing host",
        kind: "DestinationRule",
        body: "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: test, namespace: ns1}
spec: #<
  subsets:
  - name: v1",
        code: E,
        path: "spec.host",
        fix: ("  subsets:", "  host: reviews\n  subsets:"),
    },
    Case {
        rule: "DR-01 invalid host (C-3)",
        kind: "DestinationRule",
        body: "
  host: reviews..svc #<",
        code: E,
        path: "spec.host",
        fix: ("reviews..svc", "reviews.svc"),
    },
    Case {
        rule: "DR-01 wildcard only in the first label (C-3)",
        kind: "DestinationRule",
        body: "
  host: foo.*.com #<",
        code: E,
        path: "spec.host",
        fix: ("foo.*.com", "'*.foo.com'"),
    },
    Case {
        rule: "DR-01 IPv4 is not a host name (C-3)",
        kind: "DestinationRule",
        body: "
  host: 10.0.0.1 #<",
        code: E,
        path: "spec.host",
        fix: ("10.0.0.1", "reviews.ns1.svc.cluster.local"),
    },
    // --- DR-02 subsets -------------------------------------------------------------------
    Case {
        rule: "DR-02 subset without a name",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - labels: {version: v1} #<",
        code: E,
        path: "spec.subsets[0].name",
        fix: ("- labels:", "- name: v1\n    labels:"),
    },
    Case {
        rule: "DR-02 subset name not a DNS-1123 label (C-5)",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1.0 #<",
        code: E,
        path: "spec.subsets[0].name",
        fix: ("v1.0", "v1-0"),
    },
    Case {
        rule: "DR-02 duplicate subset name",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
  - name: v1 #<",
        code: E,
        path: "spec.subsets[1].name",
        fix: ("v1 #<", "v2 #<"),
    },
    Case {
        rule: "DR-02 subset label key invalid (C-6)",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
    labels:
      version_: v1 #<",
        code: E,
        path: "spec.subsets[0].labels.version_",
        fix: ("version_:", "version:"),
    },
    Case {
        rule: "DR-02 subset label key with a bad prefix (C-6)",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
    labels:
      Example.com/version: v1 #<",
        code: E,
        path: "spec.subsets[0].labels[\"Example.com/version\"]",
        fix: ("Example.com/", "example.com/"),
    },
    Case {
        rule: "DR-02 subset label value invalid (C-6)",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1- #<",
        code: E,
        path: "spec.subsets[0].labels.version",
        fix: ("v1- #<", "v1 #<"),
    },
    Case {
        rule: "DR-02 subset trafficPolicy is checked too",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
    trafficPolicy: {} #<",
        code: E,
        path: "spec.subsets[0].trafficPolicy",
        fix: ("{}", "{tls: {mode: ISTIO_MUTUAL}}"),
    },
    // --- DR-03 exportTo (C-7) and workloadSelector (C-15) --------------------------------
    Case {
        rule: "DR-03 exportTo entry not a namespace",
        kind: "DestinationRule",
        body: "
  host: reviews
  exportTo:
  - ns.2 #<",
        code: E,
        path: "spec.exportTo[0]",
        fix: ("ns.2", "ns2"),
    },
    Case {
        rule: "DR-03 exportTo ~ is ServiceEntry-only",
        kind: "DestinationRule",
        body: "
  host: reviews
  exportTo:
  - '~' #<",
        code: E,
        path: "spec.exportTo[0]",
        fix: ("'~'", "'.'"),
    },
    Case {
        rule: "DR-03 exportTo . and the own namespace repeat each other",
        kind: "DestinationRule",
        body: "
  host: reviews
  exportTo:
  - '.'
  - ns1 #<",
        code: E,
        path: "spec.exportTo[1]",
        fix: ("ns1 #<", "ns2 #<"),
    },
    Case {
        rule: "DR-03 exportTo duplicate namespace",
        kind: "DestinationRule",
        body: "
  host: reviews
  exportTo:
  - ns2
  - ns2 #<",
        code: E,
        path: "spec.exportTo[1]",
        fix: ("ns2 #<", "ns3 #<"),
    },
    Case {
        rule: "DR-03 exportTo * must stand alone",
        kind: "DestinationRule",
        body: "
  host: reviews
  exportTo: #<
  - '*'
  - ns2",
        code: E,
        path: "spec.exportTo",
        fix: ("\n  - ns2", ""),
    },
    Case {
        rule: "DR-03 workload-selector DR exported beyond its namespace",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels: {app: productpage}
  exportTo: ['*'] #<",
        code: E,
        path: "spec.exportTo",
        fix: ("['*']", "['.']"),
    },
    Case {
        rule: "DR-03 workload-selector DR exported to its namespace and another",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels: {app: productpage}
  exportTo: [ns1, ns2] #<",
        code: E,
        path: "spec.exportTo",
        fix: ("[ns1, ns2]", "[ns1]"),
    },
    Case {
        rule: "DR-03 workload selector with a wildcard value (C-15)",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels:
      app: '*' #<",
        code: E,
        path: "spec.workloadSelector.matchLabels.app",
        fix: ("'*'", "productpage"),
    },
    Case {
        rule: "DR-03 workload selector with a wildcard key (C-15)",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels:
      app*: productpage #<",
        code: E,
        path: "spec.workloadSelector.matchLabels[\"app*\"]",
        fix: ("app*:", "app:"),
    },
    Case {
        rule: "DR-03 workload selector with an empty key (C-15)",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels:
      '': productpage #<",
        code: E,
        path: "spec.workloadSelector.matchLabels[\"\"]",
        fix: ("'':", "app:"),
    },
    Case {
        rule: "DR-03 workload selector without labels warns (C-15)",
        kind: "DestinationRule",
        body: "
  host: reviews
  workloadSelector:
    matchLabels: {} #<",
        code: W,
        path: "spec.workloadSelector.matchLabels",
        fix: ("{}", "{app: productpage}"),
    },
    // --- DR-04 trafficPolicy ------------------------------------------------------------
    Case {
        rule: "DR-04 empty trafficPolicy",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy: {} #<",
        code: E,
        path: "spec.trafficPolicy",
        fix: ("{}", "{tls: {mode: ISTIO_MUTUAL}}"),
    },
    Case {
        rule: "DR-04 tunnel together with proxyProtocol",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy: #<
    tunnel: {targetHost: egress.example.com, targetPort: 443}
    proxyProtocol: {version: V1}",
        code: E,
        path: "spec.trafficPolicy",
        fix: ("\n    proxyProtocol: {version: V1}", ""),
    },
    // --- DR-05 portLevelSettings ----------------------------------------------------------
    Case {
        rule: "DR-05 port-level setting without a port",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    portLevelSettings:
    - tls: {mode: ISTIO_MUTUAL} #<",
        code: E,
        path: "spec.trafficPolicy.portLevelSettings[0].port",
        fix: ("- tls:", "- port: {number: 9080}\n      tls:"),
    },
    Case {
        rule: "DR-05 port-level setting with nothing to set",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080} #<",
        code: E,
        path: "spec.trafficPolicy.portLevelSettings[0]",
        fix: ("{number: 9080}", "{number: 9080}\n      tls: {mode: ISTIO_MUTUAL}"),
    },
    Case {
        rule: "DR-05 port-level policies follow the same rules",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {} #<",
        code: E,
        path: "spec.trafficPolicy.portLevelSettings[0].connectionPool",
        fix: ("{} #<", "{tcp: {maxConnections: 100}} #<"),
    },
    // --- DR-06 connectionPool -------------------------------------------------------------
    Case {
        rule: "DR-06 empty connectionPool",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool: {} #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool",
        fix: ("{}", "{tcp: {maxConnections: 100}}"),
    },
    Case {
        rule: "DR-06 negative maxConnections",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.maxConnections",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 negative http1MaxPendingRequests",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http1MaxPendingRequests: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 negative http2MaxRequests",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http2MaxRequests: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.http2MaxRequests",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 negative maxRequestsPerConnection",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        maxRequestsPerConnection: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 negative maxRetries",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        maxRetries: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.maxRetries",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 negative maxConcurrentStreams",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        maxConcurrentStreams: -1 #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.maxConcurrentStreams",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-06 connectTimeout 0s (C-1 minimum)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        connectTimeout: 0s #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        fix: ("0s", "1ms"),
    },
    Case {
        rule: "DR-06 connectTimeout below 1ms (C-1 minimum)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        connectTimeout: 500us #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
        fix: ("500us", "1ms"),
    },
    Case {
        rule: "DR-06 maxConnectionDuration not whole milliseconds (C-1 precision)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnectionDuration: 1.5ms #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration",
        fix: ("1.5ms", "2ms"),
    },
    Case {
        rule: "DR-06 negative tcp idleTimeout; 0s is allowed (C-1a)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        idleTimeout: -5s #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.idleTimeout",
        fix: ("-5s", "0s"),
    },
    Case {
        rule: "DR-06 tcp idleTimeout below 1ms (C-1a allows only exactly 0s)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        idleTimeout: 100us #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.idleTimeout",
        fix: ("100us", "0s"),
    },
    Case {
        rule: "DR-06 tcpKeepalive time below 1ms",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        tcpKeepalive:
          time: 500us #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
        fix: ("500us", "7200s"),
    },
    Case {
        rule: "DR-06 negative tcpKeepalive interval",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        tcpKeepalive:
          interval: -75s #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
        fix: ("-75s", "75s"),
    },
    Case {
        rule: "DR-06 http idleTimeout 0s is an error (only tcp.idleTimeout may be 0s)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        idleTimeout: 0s #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.idleTimeout",
        fix: ("0s", "1h"),
    },
    Case {
        rule: "DR-06 http2KeepAlive without timeout",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http2KeepAlive: {interval: 30s} #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
        fix: ("{interval: 30s}", "{interval: 30s, timeout: 5s}"),
    },
    Case {
        rule: "DR-06 http2KeepAlive without interval",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http2KeepAlive: {timeout: 5s} #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval",
        fix: ("{timeout: 5s}", "{interval: 30s, timeout: 5s}"),
    },
    Case {
        rule: "DR-06 http2KeepAlive timeout 0s (C-1)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http2KeepAlive:
          interval: 30s
          timeout: 0s #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
        fix: ("timeout: 0s", "timeout: 5s"),
    },
    Case {
        rule: "DR-06 h2UpgradePolicy UPGRADE with useClientProtocol",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        h2UpgradePolicy: UPGRADE
        useClientProtocol: true #<",
        code: E,
        path: "spec.trafficPolicy.connectionPool.http.useClientProtocol",
        fix: ("UPGRADE", "DEFAULT"),
    },
    // --- DR-07 outlierDetection -----------------------------------------------------------
    Case {
        rule: "DR-07 outlier interval 0s",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      interval: 0s #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.interval",
        fix: ("0s", "10s"),
    },
    Case {
        rule: "DR-07 baseEjectionTime not whole milliseconds",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      baseEjectionTime: 1.5ms #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.baseEjectionTime",
        fix: ("1.5ms", "30s"),
    },
    Case {
        rule: "DR-07 maxEjectionPercent above 100 (C-8)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      maxEjectionPercent: 101 #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
        fix: ("101", "100"),
    },
    Case {
        rule: "DR-07 negative maxEjectionPercent (C-8)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      maxEjectionPercent: -1 #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
        fix: ("-1", "0"),
    },
    Case {
        rule: "DR-07 minHealthPercent above 100 (C-8)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      minHealthPercent: 150 #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.minHealthPercent",
        fix: ("150", "50"),
    },
    Case {
        rule: "DR-07 consecutiveLocalOriginFailures without splitExternalLocalOriginErrors",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      consecutiveLocalOriginFailures: 5 #<",
        code: E,
        path: "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
        fix: (
            "consecutiveLocalOriginFailures: 5",
            "consecutiveLocalOriginFailures: 5\n      splitExternalLocalOriginErrors: true",
        ),
    },
    Case {
        rule: "DR-07 deprecated consecutiveErrors warns",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection:
      consecutiveErrors: 5 #<",
        code: W,
        path: "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        fix: ("consecutiveErrors", "consecutiveGatewayErrors"),
    },
    // --- DR-08 consistentHash -------------------------------------------------------------
    Case {
        rule: "DR-08 httpCookie without a name",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {ttl: 0s} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
        fix: ("{ttl: 0s}", "{name: user, ttl: 0s}"),
    },
    Case {
        rule: "DR-08 cookie attribute without a name",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          attributes:
          - value: Strict #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[0].name",
        fix: ("- value: Strict", "- name: SameSite\n            value: Strict"),
    },
    Case {
        rule: "DR-08 duplicate cookie attribute",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          attributes:
          - {name: SameSite, value: Strict}
          - {name: SameSite, value: Lax} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name",
        fix: ("{name: SameSite, value: Lax}", "{name: Partitioned}"),
    },
    Case {
        rule: "DR-08 maglev without tableSize",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        maglev: {} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        fix: ("{}", "{tableSize: 65537}"),
    },
    Case {
        rule: "DR-08 maglev tableSize not prime",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        maglev:
          tableSize: 65536 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        fix: ("65536", "65537"),
    },
    Case {
        rule: "DR-08 maglev tableSize too big",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        maglev:
          tableSize: 5000011 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        fix: ("5000011", "65537"),
    },
    Case {
        rule: "DR-08 deprecated minimumRingSize warns",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        minimumRingSize: 1024 #<",
        code: W,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        fix: ("minimumRingSize: 1024", "ringHash: {minimumRingSize: 1024}"),
    },
    Case {
        rule: "DR-08 minimumRingSize together with ringHash",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        minimumRingSize: 1024 #<
        ringHash: {minimumRingSize: 1024}",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        fix: ("        minimumRingSize: 1024 #<\n", ""),
    },
    Case {
        rule: "DR-08 minimumRingSize together with maglev",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
        minimumRingSize: 1024 #<
        maglev: {tableSize: 65537}",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        fix: ("        minimumRingSize: 1024 #<\n", ""),
    },
    // --- DR-09 localityLbSetting -----------------------------------------------------------
    Case {
        rule: "DR-09 distribute and failover together",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting: #<
        distribute:
        - {from: us-east/*, to: {us-west/*: 100}}
        failover:
        - {from: us-east, to: us-west}",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting",
        fix: ("\n        failover:\n        - {from: us-east, to: us-west}", ""),
    },
    Case {
        rule: "DR-09 locality weight 0",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to:
            us-east/*: 100
            us-west/*: 0 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-west/*\"]",
        fix: ("\n            us-west/*: 0 #<", ""),
    },
    Case {
        rule: "DR-09 locality weight above 100",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to:
            us-east/*: 101 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east/*\"]",
        fix: ("101", "100"),
    },
    Case {
        rule: "DR-09 locality weights must total 100",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: #<
            us-east/*: 80
            us-west/*: 10",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        fix: ("us-west/*: 10", "us-west/*: 20"),
    },
    Case {
        rule: "DR-09 wildcard not at the end of a locality",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: #<
            us-west/*/rack1: 100",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        fix: ("us-west/*/rack1", "us-west/zone1/*"),
    },
    Case {
        rule: "DR-09 two wildcards in a locality",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: #<
            us-west/*/*: 100",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        fix: ("us-west/*/*", "us-west/*"),
    },
    Case {
        rule: "DR-09 empty locality segment",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: #<
            us-west//rack1: 100",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        fix: ("us-west//rack1", "us-west/zone1/rack1"),
    },
    Case {
        rule: "DR-09 overlapping destination localities",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: #<
            us-west/*: 50
            us-west/zone1: 50",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        fix: ("us-west/*: 50", "us-west/zone2: 50"),
    },
    Case {
        rule: "DR-09 overlapping source localities",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute: #<
        - {from: us-east/*, to: {us-west/*: 100}}
        - {from: us-east/zone1/*, to: {us-central/*: 100}}",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute",
        fix: ("from: us-east/zone1/*", "from: us-north/zone1/*"),
    },
    Case {
        rule: "DR-09 failover to the same region",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failover:
        - {from: us-east, to: us-east} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
        fix: ("to: us-east}", "to: us-west}"),
    },
    Case {
        rule: "DR-09 failover names a zone",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failover:
        - {from: us-east/zone1, to: us-west} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
        fix: ("us-east/zone1", "us-east"),
    },
    Case {
        rule: "DR-09 failover with a wildcard",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failover:
        - {from: us-east, to: '*'} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
        fix: ("'*'", "us-west"),
    },
    Case {
        rule: "DR-09 failover with a topology label in failoverPriority",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        failover:
        - {from: us-east, to: us-west}
        failoverPriority:
        - topology.kubernetes.io/region #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]",
        fix: ("topology.kubernetes.io/region", "topology.istio.io/network"),
    },
    Case {
        rule: "DR-09 failover without outlierDetection warns",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting: #<
        failover:
        - {from: us-east, to: us-west}",
        code: W,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting",
        fix: ("  trafficPolicy:", "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 5}"),
    },
    Case {
        rule: "DR-09 failoverPriority without outlierDetection warns",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting: #<
        failoverPriority: [topology.istio.io/network]",
        code: W,
        path: "spec.trafficPolicy.loadBalancer.localityLbSetting",
        fix: ("  trafficPolicy:", "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 5}"),
    },
    Case {
        rule: "DR-09 localityLbSetting and zoneAwareLbSetting together",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer: #<
      localityLbSetting: {enabled: true}
      zoneAwareLbSetting: {enabled: true}",
        code: E,
        path: "spec.trafficPolicy.loadBalancer",
        fix: ("\n      zoneAwareLbSetting: {enabled: true}", ""),
    },
    // --- DR-10 warmup -----------------------------------------------------------------------
    Case {
        rule: "DR-10 warmup without duration",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup: {minimumPercent: 10} #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.warmup.duration",
        fix: ("{minimumPercent: 10}", "{duration: 60s, minimumPercent: 10}"),
    },
    Case {
        rule: "DR-10 warmup duration 0s (C-1)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup:
        duration: 0s #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.warmup.duration",
        fix: ("0s", "60s"),
    },
    Case {
        rule: "DR-10 warmup minimumPercent above 100",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup:
        duration: 60s
        minimumPercent: 101 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
        fix: ("101", "100"),
    },
    Case {
        rule: "DR-10 warmup aggression 0",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup:
        duration: 60s
        aggression: 0 #<",
        code: E,
        path: "spec.trafficPolicy.loadBalancer.warmup.aggression",
        fix: ("aggression: 0", "aggression: 1.5"),
    },
    // --- DR-11 client TLS ----------------------------------------------------------------------
    Case {
        rule: "DR-11 MUTUAL without clientCertificate",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.trafficPolicy.tls.clientCertificate",
        fix: ("      mode: MUTUAL", "      mode: MUTUAL\n      clientCertificate: /etc/certs/cert.pem"),
    },
    Case {
        rule: "DR-11 MUTUAL without privateKey",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      clientCertificate: /etc/certs/cert.pem",
        code: E,
        path: "spec.trafficPolicy.tls.privateKey",
        fix: ("      mode: MUTUAL", "      mode: MUTUAL\n      privateKey: /etc/certs/key.pem"),
    },
    Case {
        rule: "DR-11 MUTUAL with no certificate at all (a credentialName completes it)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: {mode: MUTUAL} #<",
        code: E,
        path: "spec.trafficPolicy.tls.privateKey",
        fix: ("{mode: MUTUAL}", "{mode: MUTUAL, credentialName: reviews-client}"),
    },
    Case {
        rule: "DR-11 credentialName with clientCertificate",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      credentialName: reviews-client
      clientCertificate: /etc/certs/cert.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      clientCertificate: /etc/certs/cert.pem", ""),
    },
    Case {
        rule: "DR-11 credentialName with privateKey",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      credentialName: reviews-client
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      privateKey: /etc/certs/key.pem", ""),
    },
    Case {
        rule: "DR-11 credentialName with caCertificates",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: SIMPLE
      credentialName: reviews-ca
      caCertificates: /etc/certs/ca.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      caCertificates: /etc/certs/ca.pem", ""),
    },
    Case {
        rule: "DR-11 credentialName with caCrl",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: SIMPLE
      credentialName: reviews-ca
      caCrl: /etc/certs/crl.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      caCrl: /etc/certs/crl.pem", ""),
    },
    Case {
        rule: "DR-11 SIMPLE insecureSkipVerify with caCertificates",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: SIMPLE
      insecureSkipVerify: true
      caCertificates: /etc/certs/ca.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      caCertificates: /etc/certs/ca.pem", ""),
    },
    Case {
        rule: "DR-11 SIMPLE insecureSkipVerify with credentialName",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: SIMPLE
      insecureSkipVerify: true
      credentialName: reviews-ca",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      credentialName: reviews-ca", ""),
    },
    Case {
        rule: "DR-11 SIMPLE insecureSkipVerify with subjectAltNames",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: SIMPLE
      insecureSkipVerify: true
      subjectAltNames: [reviews.example.com]",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      subjectAltNames: [reviews.example.com]", ""),
    },
    Case {
        rule: "DR-11 MUTUAL insecureSkipVerify with caCertificates",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      insecureSkipVerify: true
      clientCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      caCertificates: /etc/certs/ca.pem", ""),
    },
    Case {
        rule: "DR-11 MUTUAL insecureSkipVerify with subjectAltNames (its credentialName stays allowed)",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls: #<
      mode: MUTUAL
      insecureSkipVerify: true
      credentialName: reviews-client
      subjectAltNames: [reviews.example.com]",
        code: E,
        path: "spec.trafficPolicy.tls",
        fix: ("\n      subjectAltNames: [reviews.example.com]", ""),
    },
    Case {
        rule: "DR-11 configmap credential in another namespace",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tls:
      mode: SIMPLE
      credentialName: configmap://ns2/reviews-ca #<",
        code: E,
        path: "spec.trafficPolicy.tls.credentialName",
        fix: ("configmap://ns2/", "configmap://ns1/"),
    },
    Case {
        rule: "DR-11 subset-level tls follows the same rules",
        kind: "DestinationRule",
        body: "
  host: reviews
  subsets:
  - name: v1
    trafficPolicy:
      tls: {mode: MUTUAL, privateKey: /etc/certs/key.pem} #<",
        code: E,
        path: "spec.subsets[0].trafficPolicy.tls.clientCertificate",
        fix: ("privateKey: /etc/certs/key.pem", "credentialName: reviews-client"),
    },
    Case {
        rule: "DR-11 port-level tls follows the same rules",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem} #<",
        code: E,
        path: "spec.trafficPolicy.portLevelSettings[0].tls.privateKey",
        fix: ("clientCertificate: /etc/certs/cert.pem", "credentialName: reviews-client"),
    },
    // --- DR-12 tunnel and proxyProtocol --------------------------------------------------------
    Case {
        rule: "DR-12 tunnel protocol not CONNECT or POST",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel:
      protocol: PUT #<
      targetHost: egress.example.com
      targetPort: 443",
        code: E,
        path: "spec.trafficPolicy.tunnel.protocol",
        fix: ("PUT", "POST"),
    },
    Case {
        rule: "DR-12 tunnel protocol is case-sensitive",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel:
      protocol: connect #<
      targetHost: egress.example.com
      targetPort: 443",
        code: E,
        path: "spec.trafficPolicy.tunnel.protocol",
        fix: ("connect", "CONNECT"),
    },
    Case {
        rule: "DR-12 tunnel targetHost not an FQDN or IP",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel:
      targetHost: '*.example.com' #<
      targetPort: 443",
        code: E,
        path: "spec.trafficPolicy.tunnel.targetHost",
        fix: ("'*.example.com'", "10.0.0.1"),
    },
    Case {
        rule: "DR-12 tunnel targetHost missing",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel: #<
      targetPort: 443",
        code: E,
        path: "spec.trafficPolicy.tunnel.targetHost",
        fix: ("      targetPort: 443", "      targetHost: egress.example.com\n      targetPort: 443"),
    },
    Case {
        rule: "DR-12 tunnel targetPort 0",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel:
      targetHost: egress.example.com
      targetPort: 0 #<",
        code: E,
        path: "spec.trafficPolicy.tunnel.targetPort",
        fix: ("targetPort: 0", "targetPort: 443"),
    },
    Case {
        rule: "DR-12 tunnel targetPort above 65535",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    tunnel:
      targetHost: egress.example.com
      targetPort: 65536 #<",
        code: E,
        path: "spec.trafficPolicy.tunnel.targetPort",
        fix: ("65536", "65535"),
    },
    Case {
        rule: "DR-12 proxyProtocol version other than V1/V2 (0/1) does not decode",
        kind: "DestinationRule",
        body: "
  host: reviews
  trafficPolicy:
    proxyProtocol:
      version: V3 #<",
        code: "WEIR003",
        path: "spec.trafficPolicy.proxyProtocol.version",
        fix: ("V3", "V2"),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}
