//! Certificate material from a [`CertSource`]: a credential directory (the keys of a
//! Kubernetes TLS secret, or Istio's generic `cert`/`key`/`cacert`) or file paths.

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

fn credential(dir: &Path, name: &str, seen: &mut Vec<PathBuf>) -> Result<Loaded, ConfigError> {
    if name.contains('/') || name.contains("..") {
        return Err(format!("credentialName {name:?} is not a plain name").into());
    }
    let own = dir.join(name);
    let cert = first(&own, &["tls.crt", "cert"], seen);
    let key = first(&own, &["tls.key", "key"], seen);
    // The CA may be in the credential itself or, as Istio also reads it, in
    // `<name>-cacert`.
    let ca = first(&own, &["ca.crt", "cacert"], seen)
        .or_else(|| first(&dir.join(format!("{name}-cacert")), &["ca.crt", "cacert"], seen));
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err(
            format!("credential {name:?}: {} holds no tls.crt and tls.key (or cert and key)", own.display()).into()
        );
    };
    material(&cert, &key, ca.as_deref())
}

fn material(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Loaded, ConfigError> {
    let chain = certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ConfigError::from(format!("{}: no usable private key: {e}", key.display())))?;
    let client_ca = match ca {
        None => None,
        Some(p) => {
            let mut roots = RootCertStore::empty();
            for c in certs(p)? {
                roots
                    .add(c)
                    .map_err(|e| ConfigError::from(format!("{}: a CA certificate is unusable: {e}", p.display())))?;
            }
            Some(Arc::new(roots))
        }
    };
    Ok(Loaded { chain, key, client_ca })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError::from(format!("{}: cannot read certificates: {e}", path.display())))?;
    let chain: Vec<_> =
        iter.collect::<Result<_, _>>().map_err(|e| ConfigError::from(format!("{}: bad PEM: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()).into());
    }
    Ok(chain)
}
