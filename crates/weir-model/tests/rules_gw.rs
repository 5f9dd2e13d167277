//! Gateway rules (GW-01 .. GW-08) and the shared building blocks they use (C-2, C-3,
//! C-5, C-13), one invalid case and its nearest valid case each. The line marked `#<` is
//! where the finding must point; `fix` turns the case valid.

mod support;

use support::{Case, run_cases};

const E: &str = "IST0106";
const W: &str = "IST0133";

const CASES: &[Case] = &[
    // --- GW-01 name ----------------------------------------------------------------------
    Case {
        rule: "GW-01 gateway name with a dot",
        kind: "Gateway",
        body: "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo.gateway #<
  namespace: ns1
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']",
        code: E,
        path: "metadata.name",
        fix: ("bookinfo.gateway", "bookinfo-gateway"),
    },
    // --- GW-02 servers -------------------------------------------------------------------
    Case {
        rule: "GW-02 empty server list",
        kind: "Gateway",
        body: "
  selector: {istio: ingressgateway}
  servers: [] #<",
        code: E,
        path: "spec.servers",
        fix: ("[] #<", "[{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}] #<"),
    },
    Case {
        rule: "GW-02 no servers at all",
        kind: "Gateway",
        body: "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: test, namespace: ns1}
spec: #<
  selector: {istio: ingressgateway}",
        code: E,
        path: "spec.servers",
        fix: (
            "selector: {istio: ingressgateway}",
            "selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']",
        ),
    },
    // --- GW-03 hosts ---------------------------------------------------------------------
    Case {
        rule: "GW-03 server without hosts",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP} #<",
        code: E,
        path: "spec.servers[0].hosts",
        fix: ("protocol: HTTP} #<", "protocol: HTTP} #<\n    hosts: ['*']"),
    },
    Case {
        rule: "GW-03 server with an empty host list",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [] #<",
        code: E,
        path: "spec.servers[0].hosts",
        fix: ("[]", "['*']"),
    },
    Case {
        rule: "GW-03 short host name",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - reviews #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("reviews", "reviews.example.com"),
    },
    Case {
        rule: "GW-03 short host name after a namespace",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - ns1/reviews #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("ns1/reviews", "ns1/reviews.example.com"),
    },
    Case {
        rule: "GW-03 partial wildcard",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - '*bar.com' #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("'*bar.com'", "'*.bar.com'"),
    },
    Case {
        rule: "GW-03 wildcard in a later label (C-3)",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - foo.*.com #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("foo.*.com", "'*.foo.com'"),
    },
    Case {
        rule: "GW-03 namespace ~ is rejected for Istio gateways",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - ~/bookinfo.com #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("~/bookinfo.com", "./bookinfo.com"),
    },
    Case {
        rule: "GW-03 namespace not a DNS-1123 label (C-5)",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - ns_1/bookinfo.com #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("ns_1/", "ns-1/"),
    },
    Case {
        rule: "GW-03 empty namespace",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - /bookinfo.com #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("/bookinfo.com", "'*/bookinfo.com'"),
    },
    Case {
        rule: "GW-03 an IP host is accepted (its nearest invalid: a bad IP)",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - 10.0.0.256 #<",
        code: E,
        path: "spec.servers[0].hosts[0]",
        fix: ("10.0.0.256", "10.0.0.1"),
    },
    // --- GW-04 port ----------------------------------------------------------------------
    Case {
        rule: "GW-04 server without a port",
        kind: "Gateway",
        body: "
  servers:
  - hosts: ['*'] #<",
        code: E,
        path: "spec.servers[0].port",
        fix: ("- hosts:", "- port: {number: 80, name: http, protocol: HTTP}\n    hosts:"),
    },
    Case {
        rule: "GW-04 unknown protocol (C-13)",
        kind: "Gateway",
        body: "
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP1 #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.protocol",
        fix: ("HTTP1", "http"),
    },
    Case {
        rule: "GW-04 empty protocol",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http} #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.protocol",
        fix: ("name: http}", "name: http, protocol: HTTP}"),
    },
    Case {
        rule: "GW-04 port number 0 (C-2)",
        kind: "Gateway",
        body: "
  servers:
  - port:
      number: 0 #<
      name: http
      protocol: HTTP
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.number",
        fix: ("number: 0", "number: 80"),
    },
    Case {
        rule: "GW-04 port number above 65535 (C-2)",
        kind: "Gateway",
        body: "
  servers:
  - port:
      number: 70000 #<
      name: http
      protocol: HTTP
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.number",
        fix: ("70000", "65535"),
    },
    Case {
        rule: "GW-04 targetPort has no effect on gateways",
        kind: "Gateway",
        body: "
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
      targetPort: 8080 #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.targetPort",
        fix: ("\n      targetPort: 8080 #<", ""),
    },
    Case {
        rule: "GW-04 port without a name",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, protocol: HTTP} #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.name",
        fix: ("{number: 80, protocol: HTTP}", "{number: 80, name: http, protocol: HTTP}"),
    },
    Case {
        rule: "GW-04 port names repeat across servers",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example.com]
  - port: {number: 8080, name: http, protocol: HTTP} #<
    hosts: [b.example.com]",
        code: E,
        path: "spec.servers[1].port.name",
        fix: ("name: http, protocol: HTTP} #<", "name: http-alt, protocol: HTTP} #<"),
    },
    // --- GW-05 bind ----------------------------------------------------------------------
    Case {
        rule: "GW-05 bind not an IP address",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    bind: localhost #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].bind",
        fix: ("localhost", "127.0.0.1"),
    },
    Case {
        rule: "GW-05 unix bind with a relative path",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 0, name: http, protocol: HTTP}
    bind: unix://var/run/gw.sock #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].bind",
        fix: ("unix://var/run/gw.sock", "unix:///var/run/gw.sock"),
    },
    Case {
        rule: "GW-05 unix bind with a non-zero port",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 8080, name: http, protocol: HTTP} #<
    bind: unix:///var/run/gw.sock
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.number",
        fix: ("number: 8080", "number: 0"),
    },
    Case {
        rule: "GW-05 unix bind to an abstract socket takes port 0",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP} #<
    bind: unix://@gateway
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].port.number",
        fix: ("number: 80", "number: 0"),
    },
    // --- GW-06 .. GW-07 tls and protocol -----------------------------------------------
    Case {
        rule: "GW-06 HTTPS without tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS} #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("hosts: ['*']", "hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: bookinfo-cert}"),
    },
    Case {
        rule: "GW-06 TLS without tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: tls, protocol: TLS} #<
    hosts: ['*']",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("hosts: ['*']", "hosts: ['*']\n    tls: {mode: PASSTHROUGH}"),
    },
    Case {
        rule: "GW-07 HTTP with SIMPLE tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
    tls: {mode: SIMPLE, credentialName: bookinfo-cert} #<",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("{mode: SIMPLE, credentialName: bookinfo-cert}", "{httpsRedirect: true}"),
    },
    Case {
        rule: "GW-07 HTTP redirect carrying a certificate",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
    tls: {httpsRedirect: true, serverCertificate: /etc/certs/cert.pem} #<",
        code: E,
        path: "spec.servers[0].tls",
        fix: (", serverCertificate: /etc/certs/cert.pem", ""),
    },
    Case {
        // Istio accepts this (only certificate files make it an error); the credential
        // is ignored with GW-08's passthrough warning.
        rule: "GW-07 HTTP redirect carrying a credentialName is only a warning",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
    tls: {httpsRedirect: true, credentialName: bookinfo-cert} #<",
        code: W,
        path: "spec.servers[0].tls",
        fix: (", credentialName: bookinfo-cert", ""),
    },
    Case {
        rule: "GW-07 GRPC (HTTP family) with MUTUAL tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 8080, name: grpc, protocol: GRPC}
    hosts: ['*']
    tls: {mode: MUTUAL, credentialName: bookinfo-cert} #<",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("protocol: GRPC", "protocol: HTTPS"),
    },
    Case {
        rule: "GW-07 TCP with tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ['*']
    tls: {mode: PASSTHROUGH} #<",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("protocol: TCP", "protocol: TLS"),
    },
    Case {
        rule: "GW-07 MONGO with an httpsRedirect-only tls",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 27017, name: mongo, protocol: MONGO}
    hosts: ['*']
    tls: {httpsRedirect: true} #<",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("\n    tls: {httpsRedirect: true} #<", ""),
    },
    Case {
        rule: "GW-07 httpsRedirect on a non-HTTP server warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      httpsRedirect: true #<
      mode: SIMPLE
      credentialName: bookinfo-cert",
        code: W,
        path: "spec.servers[0].tls.httpsRedirect",
        fix: ("      httpsRedirect: true #<\n", ""),
    },
    // --- GW-08 tls settings --------------------------------------------------------------
    Case {
        rule: "GW-08 ISTIO_MUTUAL with serverCertificate",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      serverCertificate: /etc/certs/cert.pem #<",
        code: E,
        path: "spec.servers[0].tls.serverCertificate",
        fix: ("\n      serverCertificate: /etc/certs/cert.pem #<", ""),
    },
    Case {
        rule: "GW-08 ISTIO_MUTUAL with privateKey",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      privateKey: /etc/certs/key.pem #<",
        code: E,
        path: "spec.servers[0].tls.privateKey",
        fix: ("\n      privateKey: /etc/certs/key.pem #<", ""),
    },
    Case {
        rule: "GW-08 ISTIO_MUTUAL with caCertificates",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      caCertificates: /etc/certs/ca.pem #<",
        code: E,
        path: "spec.servers[0].tls.caCertificates",
        fix: ("\n      caCertificates: /etc/certs/ca.pem #<", ""),
    },
    Case {
        rule: "GW-08 ISTIO_MUTUAL with credentialName",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      credentialName: bookinfo-cert #<",
        code: E,
        path: "spec.servers[0].tls.credentialName",
        fix: ("ISTIO_MUTUAL", "MUTUAL"),
    },
    Case {
        rule: "GW-08 ISTIO_MUTUAL with credentialNames",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      credentialNames: [bookinfo-rsa, bookinfo-ecdsa] #<",
        code: E,
        path: "spec.servers[0].tls.credentialNames",
        fix: ("ISTIO_MUTUAL", "SIMPLE"),
    },
    Case {
        rule: "GW-08 ISTIO_MUTUAL with tlsCertificates",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: ISTIO_MUTUAL
      tlsCertificates: #<
      - {serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem}",
        code: E,
        path: "spec.servers[0].tls.tlsCertificates",
        fix: ("ISTIO_MUTUAL", "SIMPLE"),
    },
    Case {
        rule: "GW-08 credentialName without a mode is PASSTHROUGH and warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {credentialName: bookinfo-cert} #<",
        code: W,
        path: "spec.servers[0].tls",
        fix: ("{credentialName: bookinfo-cert}", "{mode: SIMPLE, credentialName: bookinfo-cert}"),
    },
    Case {
        rule: "GW-08 AUTO_PASSTHROUGH with certificates warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ['*.local']
    tls: {mode: AUTO_PASSTHROUGH, caCertificates: /etc/certs/ca.pem} #<",
        code: W,
        path: "spec.servers[0].tls",
        fix: (", caCertificates: /etc/certs/ca.pem", ""),
    },
    Case {
        rule: "GW-08 SIMPLE without serverCertificate",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: SIMPLE
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.servers[0].tls.serverCertificate",
        fix: ("      mode: SIMPLE", "      mode: SIMPLE\n      serverCertificate: /etc/certs/cert.pem"),
    },
    Case {
        rule: "GW-08 SIMPLE without privateKey",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem",
        code: E,
        path: "spec.servers[0].tls.privateKey",
        fix: ("      mode: SIMPLE", "      mode: SIMPLE\n      privateKey: /etc/certs/key.pem"),
    },
    Case {
        rule: "GW-08 SIMPLE with nothing (a credentialName completes it)",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE} #<",
        code: E,
        path: "spec.servers[0].tls.serverCertificate",
        fix: ("{mode: SIMPLE}", "{mode: SIMPLE, credentialName: bookinfo-cert}"),
    },
    Case {
        rule: "GW-08 SIMPLE with credentialNames is complete",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE} #<",
        code: E,
        path: "spec.servers[0].tls.privateKey",
        fix: ("{mode: SIMPLE}", "{mode: SIMPLE, credentialNames: [bookinfo-rsa, bookinfo-ecdsa]}"),
    },
    Case {
        rule: "GW-08 tlsCertificates entry without privateKey",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      tlsCertificates:
      - {serverCertificate: /etc/certs/rsa.pem} #<",
        code: E,
        path: "spec.servers[0].tls.tlsCertificates[0].privateKey",
        fix: (
            "{serverCertificate: /etc/certs/rsa.pem}",
            "{serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}",
        ),
    },
    Case {
        rule: "GW-08 more than 2 tlsCertificates warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      tlsCertificates: #<
      - {serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}
      - {serverCertificate: /etc/certs/ecdsa.pem, privateKey: /etc/certs/ecdsa.key}
      - {serverCertificate: /etc/certs/extra.pem, privateKey: /etc/certs/extra.key}",
        code: W,
        path: "spec.servers[0].tls.tlsCertificates",
        fix: ("\n      - {serverCertificate: /etc/certs/extra.pem, privateKey: /etc/certs/extra.key}", ""),
    },
    Case {
        rule: "GW-08 MUTUAL without caCertificates",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: MUTUAL
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.servers[0].tls.caCertificates",
        fix: (
            "      privateKey: /etc/certs/key.pem",
            "      privateKey: /etc/certs/key.pem\n      caCertificates: /etc/certs/ca.pem",
        ),
    },
    Case {
        rule: "GW-08 OPTIONAL_MUTUAL without caCertificates",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: OPTIONAL_MUTUAL
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.servers[0].tls.caCertificates",
        fix: (
            "      privateKey: /etc/certs/key.pem",
            "      privateKey: /etc/certs/key.pem\n      caCertificates: /etc/certs/ca.pem",
        ),
    },
    Case {
        rule: "GW-08 MUTUAL with credentialName is complete",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: MUTUAL} #<",
        code: E,
        path: "spec.servers[0].tls.caCertificates",
        fix: ("{mode: MUTUAL}", "{mode: MUTUAL, credentialName: bookinfo-cert}"),
    },
    Case {
        rule: "GW-08 two certificate sources: files and credentialName",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: SIMPLE
      credentialName: bookinfo-cert
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("\n      serverCertificate: /etc/certs/cert.pem\n      privateKey: /etc/certs/key.pem", ""),
    },
    Case {
        rule: "GW-08 two certificate sources: credentialName and credentialNames",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: SIMPLE
      credentialName: bookinfo-cert
      credentialNames: [bookinfo-rsa, bookinfo-ecdsa]",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("\n      credentialName: bookinfo-cert", ""),
    },
    Case {
        rule: "GW-08 two certificate sources: credentialName and tlsCertificates",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: #<
      mode: SIMPLE
      credentialName: bookinfo-cert
      tlsCertificates:
      - {serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}",
        code: E,
        path: "spec.servers[0].tls",
        fix: ("\n      credentialName: bookinfo-cert", ""),
    },
    Case {
        rule: "GW-08 caCrl with credentialName",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: MUTUAL
      credentialName: bookinfo-cert
      caCrl: /etc/certs/crl.pem #<",
        code: E,
        path: "spec.servers[0].tls.caCrl",
        fix: ("\n      caCrl: /etc/certs/crl.pem #<", ""),
    },
    Case {
        rule: "GW-08 caCrl in SIMPLE mode",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
      caCrl: /etc/certs/crl.pem #<",
        code: E,
        path: "spec.servers[0].tls.caCrl",
        fix: ("mode: SIMPLE", "mode: MUTUAL\n      caCertificates: /etc/certs/ca.pem"),
    },
    Case {
        rule: "GW-08 caCrl in SIMPLE mode with credentialNames",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      credentialNames: [bookinfo-rsa, bookinfo-ecdsa]
      caCrl: /etc/certs/crl.pem #<",
        code: E,
        path: "spec.servers[0].tls.caCrl",
        fix: ("\n      caCrl: /etc/certs/crl.pem #<", ""),
    },
    Case {
        rule: "GW-08 TLSV1_0 without cipherSuites warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      minProtocolVersion: TLSV1_0 #<",
        code: W,
        path: "spec.servers[0].tls.minProtocolVersion",
        fix: ("TLSV1_0 #<", "TLSV1_0 #<\n      cipherSuites: [ECDHE-RSA-AES128-SHA]"),
    },
    Case {
        rule: "GW-08 TLSV1_1 without cipherSuites warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      minProtocolVersion: TLSV1_1 #<",
        code: W,
        path: "spec.servers[0].tls.minProtocolVersion",
        fix: ("TLSV1_1", "TLSV1_2"),
    },
    Case {
        rule: "GW-08 unknown cipher suite warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      cipherSuites:
      - ECDHE-RSA-AES128-GCM-SHA257 #<",
        code: W,
        path: "spec.servers[0].tls.cipherSuites[0]",
        fix: ("SHA257", "SHA256"),
    },
    Case {
        rule: "GW-08 duplicate cipher suite warns",
        kind: "Gateway",
        body: "
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      cipherSuites:
      - ECDHE-RSA-AES128-GCM-SHA256
      - ECDHE-RSA-AES128-GCM-SHA256 #<",
        code: W,
        path: "spec.servers[0].tls.cipherSuites[1]",
        fix: ("ECDHE-RSA-AES128-GCM-SHA256 #<", "ECDHE-RSA-AES256-GCM-SHA384 #<"),
    },
];

#[test]
fn every_rule_has_an_invalid_and_a_valid_case() {
    run_cases(CASES);
}
