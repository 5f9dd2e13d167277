//! Gateway rules (GW-01 .. GW-08), plus the server TLS checks Sidecar ingress reuses.

use super::{Report, rules};
use crate::path::FieldPath;
use crate::types::{Gateway, Server, ServerTlsMode, ServerTlsSettings, TlsProtocol};

pub(super) fn validate(gw: &Gateway, name: &str, spec: &FieldPath, rep: &mut Report) {
    // GW-01
    if !name.is_empty() && !rules::is_dns1123_label(name) {
        rep.error(
            &FieldPath::root().key("metadata").key("name"),
            format!("gateway name {name:?} must be a DNS-1123 label (no dots)"),
        );
    }
    // GW-02
    if gw.servers.is_empty() {
        rep.error(&spec.key("servers"), "a gateway must have at least one server");
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, s) in gw.servers.iter().enumerate() {
        let sp = spec.key("servers").index(i);
        server(s, &sp, rep);
        if let Some(port) = &s.port {
            if port_names.contains(&port.name.as_str()) {
                rep.error(
                    &sp.key("port").key("name"),
                    format!("port names must be unique across servers: {:?} is repeated", port.name),
                );
            }
            port_names.push(&port.name);
            if rules::proto_family(&port.protocol) != rules::Proto::Http
                && s.tls.as_ref().is_some_and(|t| t.https_redirect)
            {
                rep.warn(&sp.key("tls").key("httpsRedirect"), "httpsRedirect only has an effect on HTTP servers");
            }
        }
    }
}

fn server(s: &Server, p: &FieldPath, rep: &mut Report) {
    // GW-03
    if s.hosts.is_empty() {
        rep.error(&p.key("hosts"), "a server needs at least one host");
    }
    for (i, h) in s.hosts.iter().enumerate() {
        namespaced_host(h, true, &p.key("hosts").index(i), rep);
    }
    // GW-04
    let unix = s.bind.starts_with("unix://");
    let mut port_ok = true;
    match &s.port {
        None => {
            rep.error(&p.key("port"), "missing required field `port`");
            port_ok = false;
        }
        Some(port) => {
            let pp = p.key("port");
            if let Err(m) = rules::protocol(&port.protocol, false) {
                rep.error(&pp.key("protocol"), m);
                port_ok = false;
            }
            if (port.number > 0 || !unix)
                && let Err(m) = rules::port(port.number)
            {
                rep.error(&pp.key("number"), m);
                port_ok = false;
            }
            if port.target_port > 0 {
                rep.error(&pp.key("targetPort"), "targetPort has no effect on gateways");
                port_ok = false;
            }
            if port.name.is_empty() {
                rep.error(&pp.key("name"), "port name is required");
                port_ok = false;
            }
        }
    }
    // GW-05
    if let Some(addr) = s.bind.strip_prefix("unix://") {
        rep.check(&p.key("bind"), rules::unix_address(addr));
        if let Some(port) = &s.port
            && port.number != 0
        {
            rep.error(
                &p.key("port").key("number"),
                format!("port number must be 0 for a unix domain socket bind, found {}", port.number),
            );
        }
    } else if !s.bind.is_empty() && !rules::is_ip(&s.bind) {
        rep.error(&p.key("bind"), format!("bind {:?} must be an IP address or unix://path", s.bind));
    }
    if let Some(tls) = &s.tls {
        server_tls(tls, &p.key("tls"), rep);
    }
    // GW-06, GW-07
    if let (true, Some(port)) = (port_ok, &s.port) {
        match rules::proto_family(&port.protocol) {
            rules::Proto::Tls if s.tls.is_none() => {
                rep.error(&p.key("tls"), format!("a server with protocol {} needs tls settings", port.protocol))
            }
            rules::Proto::Http => {
                if let Some(t) = &s.tls {
                    // Istio's test: a passthrough mode and no certificate files; a
                    // credentialName (often copied with the HTTPS server's block) only
                    // draws GW-08's "ignored" warning.
                    let passthrough =
                        matches!(t.effective_mode(), ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough);
                    let files =
                        !t.server_certificate.is_empty() || !t.private_key.is_empty() || !t.ca_certificates.is_empty();
                    if !passthrough || files {
                        rep.error(
                            &p.key("tls"),
                            "a plain-text HTTP server may only use tls for httpsRedirect (no mode, no certificates)",
                        );
                    }
                }
            }
            rules::Proto::Other if s.tls.is_some() => {
                rep.error(&p.key("tls"), format!("a server with protocol {} cannot have tls settings", port.protocol))
            }
            _ => {}
        }
    }
}

/// `ns/dnsName` host selectors (GW-03, SC-02). Gateways also accept a bare `dnsName`.
pub(super) fn namespaced_host(h: &str, gateway: bool, p: &FieldPath, rep: &mut Report) {
    let (ns, name) = match h.split_once('/') {
        Some(parts) => parts,
        None if gateway => return host_part(h, true, p, rep),
        None => {
            rep.error(
                p,
                format!("host {h:?} must have the form namespace/dnsName (for example \"./{h}\" or \"*/{h}\")"),
            );
            return;
        }
    };
    if ns.is_empty() || name.is_empty() {
        rep.error(p, format!("host {h:?}: namespace and dnsName must not be empty"));
    }
    let ns_ok = if gateway {
        ns == "*" || ns == "." || rules::is_dns1123_label(ns)
    } else {
        let bare = ns.strip_prefix('~').unwrap_or(ns);
        bare.is_empty() || bare == "*" || bare == "." || rules::is_dns1123_label(bare)
    };
    if !ns_ok && !ns.is_empty() {
        let what = if gateway { "gateway" } else { "sidecar" };
        rep.error(
            p,
            format!("invalid namespace {ns:?} in {what} host {h:?}: expected \"*\", \".\" or a namespace name"),
        );
    }
    host_part(name, gateway, p, rep);
}

fn host_part(name: &str, gateway: bool, p: &FieldPath, rep: &mut Report) {
    if name != "*" && !name.contains('.') {
        rep.error(p, format!("short name {name:?} is not allowed here; use a fully qualified name"));
    }
    if let Err(m) = rules::wildcard_domain(name)
        && !(gateway && rules::is_ip(name))
    {
        rep.error(p, m);
    }
    rep.check(p, rules::partial_wildcard(name));
}

/// Envoy's cipher suite names (what Istio accepts in `cipherSuites`).
const CIPHERS: [&str; 21] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "PSK-AES128-CBC-SHA",
    "PSK-AES256-CBC-SHA",
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]",
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]",
];

/// The certificate fields: what PASSTHROUGH ignores (GW-08).
fn has_certificate_fields(t: &ServerTlsSettings) -> bool {
    !t.server_certificate.is_empty()
        || !t.private_key.is_empty()
        || !t.ca_certificates.is_empty()
        || !t.ca_crl.is_empty()
        || !t.credential_name.is_empty()
        || !t.credential_names.is_empty()
        || !t.tls_certificates.is_empty()
}

/// GW-08.
pub(super) fn server_tls(t: &ServerTlsSettings, p: &FieldPath, rep: &mut Report) {
    let mode = t.effective_mode();
    let has_pair = !t.server_certificate.is_empty() || !t.private_key.is_empty();
    let has_cert_fields = has_certificate_fields(t);
    if mode == ServerTlsMode::IstioMutual {
        for (field, set) in [
            ("serverCertificate", !t.server_certificate.is_empty()),
            ("privateKey", !t.private_key.is_empty()),
            ("caCertificates", !t.ca_certificates.is_empty()),
            ("credentialName", !t.credential_name.is_empty()),
            ("credentialNames", !t.credential_names.is_empty()),
            ("tlsCertificates", !t.tls_certificates.is_empty()),
        ] {
            if set {
                rep.error(
                    &p.key(field),
                    format!("ISTIO_MUTUAL uses the gateway's Istio certificate: {field} cannot be set"),
                );
            }
        }
        return;
    }
    if matches!(mode, ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough) && has_cert_fields {
        let m = if mode == ServerTlsMode::Passthrough { "PASSTHROUGH" } else { "AUTO_PASSTHROUGH" };
        let hint =
            if t.mode.is_none() { " (PASSTHROUGH is the default: set mode: SIMPLE to terminate TLS)" } else { "" };
        rep.warn(p, format!("{m} mode does not use certificates; they will be ignored{hint}"));
    }
    let terminating = matches!(mode, ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual);
    let sources =
        [has_pair, !t.credential_name.is_empty(), !t.credential_names.is_empty(), !t.tls_certificates.is_empty()];
    if sources.iter().filter(|b| **b).count() > 1 {
        rep.error(p, "only one certificate source may be set: serverCertificate/privateKey, credentialName, credentialNames or tlsCertificates");
    }
    if t.credential_names.len() > 2 {
        rep.error(&p.key("credentialNames"), "credentialNames may list at most 2 secrets");
    }
    if t.tls_certificates.len() > 2 {
        rep.warn(
            &p.key("tlsCertificates"),
            "more than 2 tlsCertificates; only one RSA and one ECDSA certificate are used",
        );
    }
    if !t.ca_crl.is_empty() && !t.credential_name.is_empty() {
        rep.error(&p.key("caCrl"), "caCrl cannot be used with credentialName");
    }
    if !t.ca_crl.is_empty() && mode == ServerTlsMode::Simple {
        rep.error(&p.key("caCrl"), "caCrl is not supported with SIMPLE TLS");
    }
    if terminating && (!t.credential_name.is_empty() || !t.credential_names.is_empty()) {
        // Certificates come from the credential.
    } else if terminating {
        let m = match mode {
            ServerTlsMode::Simple => "SIMPLE",
            ServerTlsMode::Mutual => "MUTUAL",
            _ => "OPTIONAL_MUTUAL",
        };
        if t.tls_certificates.is_empty() {
            if t.server_certificate.is_empty() {
                rep.error(
                    &p.key("serverCertificate"),
                    format!("{m} TLS needs a serverCertificate (or a credentialName)"),
                );
            }
            if t.private_key.is_empty() {
                rep.error(&p.key("privateKey"), format!("{m} TLS needs a privateKey (or a credentialName)"));
            }
        } else {
            for (i, c) in t.tls_certificates.iter().enumerate() {
                let cp = p.key("tlsCertificates").index(i);
                if c.server_certificate.is_empty() {
                    rep.error(&cp.key("serverCertificate"), format!("{m} TLS needs a serverCertificate"));
                }
                if c.private_key.is_empty() {
                    rep.error(&cp.key("privateKey"), format!("{m} TLS needs a privateKey"));
                }
            }
        }
        if mode != ServerTlsMode::Simple && t.ca_certificates.is_empty() {
            rep.error(&p.key("caCertificates"), format!("{m} TLS needs caCertificates (the client CA bundle)"));
        }
    }
    if matches!(t.min_protocol_version, Some(TlsProtocol::V1_0 | TlsProtocol::V1_1)) && t.cipher_suites.is_empty() {
        rep.warn(
            &p.key("minProtocolVersion"),
            "TLS 1.0 and 1.1 need cipherSuites to be set; the default suites are TLS 1.2+ only",
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in t.cipher_suites.iter().enumerate() {
        let cp = p.key("cipherSuites").index(i);
        if !CIPHERS.contains(&c.as_str()) {
            rep.warn(&cp, format!("unknown cipher suite {c:?}; it will be ignored"));
        } else if seen.contains(&c.as_str()) {
            rep.warn(&cp, format!("duplicate cipher suite {c:?}"));
        }
        seen.push(c);
    }
}
