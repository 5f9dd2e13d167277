//! Certificate material from a [`CertSource`]: a credential directory (the keys of a
//! Kubernetes TLS secret, or Istio's generic `cert`/`key`/`cacert`) or file paths. The
//! pieces (a credential's files, a chain, a key, a CA bundle) also serve upstream TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use weir_table::CertSource;

use super::ConfigError;

/// A server's certificate chain, key, and the CA its client certificates must chain to.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) client_ca: Option<Arc<RootCertStore>>,
}

/// Loads `src`; also returns every path looked at, so that a file appearing, changing
/// or going away is noticed.
pub(crate) fn load(src: &CertSource, credentials: Option<&Path>) -> (Result<Loaded, ConfigError>, Vec<PathBuf>) {
    let mut seen = Vec::new();
    let r = match src {
        CertSource::Files { cert, key, ca } => {
            let (cert, key) = (PathBuf::from(&**cert), PathBuf::from(&**key));
            let ca = ca.as_deref().map(PathBuf::from);
            seen.push(cert.clone());
            seen.push(key.clone());
            seen.extend(ca.clone());
            material(&cert, &key, ca.as_deref())
        }
        CertSource::Credential { name } => match credentials {
            None => Err(format!(
                "credentialName {name:?} needs a credentials directory: `weir run --credentials DIR` reads DIR/{name}/tls.crt and tls.key"
            )
            .into()),
            Some(dir) => credential(dir, name, &mut seen),
        },
    };
    (r, seen)
}

/// The first of `names` that exists under `dir` (all are remembered as looked at).
fn first(dir: &Path, names: &[&str], seen: &mut Vec<PathBuf>) -> Option<PathBuf> {
    let mut found = None;
    for n in names {
        let p = dir.join(n);
        if found.is_none() && p.is_file() {
            found = Some(p.clone());
        }
        seen.push(p);
    }
    found
}

/// The files of credential `name` under `dir`, those that exist.
#[derive(Debug)]
pub(crate) struct CredentialFiles {
    /// The credential's own directory.
    pub(crate) dir: PathBuf,
    /// `tls.crt`, else `cert`.
    pub(crate) cert: Option<PathBuf>,
    /// `tls.key`, else `key`.
    pub(crate) key: Option<PathBuf>,
    /// `ca.crt`, else `cacert`; in the credential itself or, as Istio also reads it,
    /// in `<name>-cacert`.
    pub(crate) ca: Option<PathBuf>,
}

/// Finds credential `name`'s files under `dir`; every path looked at goes to `seen`.
pub(crate) fn credential_files(
    dir: &Path,
    name: &str,
    seen: &mut Vec<PathBuf>,
) -> Result<CredentialFiles, ConfigError> {
    if name.contains('/') || name.contains("..") {
        return Err(format!("credentialName {name:?} is not a plain name").into());
    }
    let own = dir.join(name);
    let cert = first(&own, &["tls.crt", "cert"], seen);
    let key = first(&own, &["tls.key", "key"], seen);
    let ca = first(&own, &["ca.crt", "cacert"], seen)
        .or_else(|| first(&dir.join(format!("{name}-cacert")), &["ca.crt", "cacert"], seen));
    Ok(CredentialFiles { dir: own, cert, key, ca })
}

fn credential(dir: &Path, name: &str, seen: &mut Vec<PathBuf>) -> Result<Loaded, ConfigError> {
    let files = credential_files(dir, name, seen)?;
    let (Some(cert), Some(key)) = (files.cert, files.key) else {
        return Err(format!(
            "credential {name:?}: {} holds no tls.crt and tls.key (or cert and key)",
            files.dir.display()
        )
        .into());
    };
    material(&cert, &key, files.ca.as_deref())
}

fn material(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Loaded, ConfigError> {
    let chain = certs(cert)?;
    let key = private_key(key)?;
    let client_ca = match ca {
        None => None,
        Some(p) => Some(Arc::new(roots(p)?)),
    };
    Ok(Loaded { chain, key, client_ca })
}

/// The private key in PEM file `path`.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| ConfigError::from(format!("{}: no usable private key: {e}", path.display())))
}

/// A root store of the CA certificates in PEM file `path`.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for c in certs(path)? {
        roots
            .add(c)
            .map_err(|e| ConfigError::from(format!("{}: a CA certificate is unusable: {e}", path.display())))?;
    }
    Ok(roots)
}

/// Where operating systems keep their CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine and
/// macOS, SUSE); `SSL_CERT_FILE` first, as OpenSSL reads it.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The operating system's trust store, read once: what Istio verifies an upstream
/// against when a DestinationRule's `tls` names no `caCertificates`. Certificates
/// rustls cannot use are skipped (bundles carry a few). `None` when there is none.
pub(crate) fn system_roots() -> Option<Arc<RootCertStore>> {
    static ROOTS: std::sync::OnceLock<Option<Arc<RootCertStore>>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let path = from_env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from))
                .find(|p| p.is_file())?;
            let certs = CertificateDer::pem_file_iter(&path).ok()?.filter_map(Result::ok);
            let mut roots = RootCertStore::empty();
            let (added, _skipped) = roots.add_parsable_certificates(certs);
            tracing::debug!(bundle = %path.display(), added, "system trust store");
            (added > 0).then(|| Arc::new(roots))
        })
        .clone()
}

/// The certificates in PEM file `path` (at least one).
pub(crate) fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError::from(format!("{}: cannot read certificates: {e}", path.display())))?;
    let chain: Vec<_> =
        iter.collect::<Result<_, _>>().map_err(|e| ConfigError::from(format!("{}: bad PEM: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()).into());
    }
    Ok(chain)
}
