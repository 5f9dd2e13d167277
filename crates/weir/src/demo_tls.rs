//! The demo's TLS material: a throwaway CA and a certificate for
//! `bookinfo.example.com`, written as the credential `bookinfo-credential` the way
//! `weir run --credentials DIR` reads it, plus the CA as `ca.pem` for curl to trust.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Host name on the demo's HTTPS gateway server.
pub(crate) const HOST: &str = "bookinfo.example.com";
/// The credential the demo's Gateway names.
pub(crate) const CREDENTIAL: &str = "bookinfo-credential";

/// Where the demo wrote its material.
pub(crate) struct Material {
    /// The credentials directory (`--credentials`).
    pub(crate) credentials: PathBuf,
    /// The CA certificate a client trusts.
    pub(crate) ca: PathBuf,
}

/// Makes a CA and a leaf for [`HOST`] under `dir`.
pub(crate) fn generate(dir: &Path) -> Result<Material, String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot make the demo certificate: {e}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.distinguished_name.push(DnType::CommonName, "weir demo CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec![HOST.to_string()]).map_err(|e| err(&e))?;
    leaf.distinguished_name.push(DnType::CommonName, HOST);
    let key = KeyPair::generate().map_err(|e| err(&e))?;
    let cert = leaf.signed_by(&key, &issuer).map_err(|e| err(&e))?;

    let credentials = dir.join("credentials");
    let own = credentials.join(CREDENTIAL);
    std::fs::create_dir_all(&own).map_err(|e| err(&e))?;
    std::fs::write(own.join("tls.crt"), cert.pem()).map_err(|e| err(&e))?;
    std::fs::write(own.join("tls.key"), key.serialize_pem()).map_err(|e| err(&e))?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).map_err(|e| err(&e))?;
    Ok(Material { credentials, ca })
}
