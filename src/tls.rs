//! TLS material: PEM files → rustls configurations, for the client-facing
//! listener (ALPN h2 and http/1.1) and for `https://` upstreams (webpki
//! roots plus an optional CA file). Uses the aws-lc-rs provider explicitly,
//! never a process-wide default. Reads files; opens no sockets.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be used. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("cannot read certificates from {path}: {reason}")]
    Certs { path: String, reason: String },
    /// The key file is missing, unreadable or holds no private key.
    #[error("cannot read a private key from {path}: {reason}")]
    Key { path: String, reason: String },
    /// rustls refused the combination (e.g. the key does not match).
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// The crypto provider usher uses everywhere.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A server configuration from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: pem_reason(&e),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting the webpki roots and, if given, the
/// certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::Certs {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certs {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(certs)
}

/// A PEM error as a short reason; never the file's bytes.
fn pem_reason(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(io) => io.kind().to_string(),
        Error::NoItemsFound => "no matching PEM section found".into(),
        _ => "not valid PEM".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_name_the_path() {
        let e =
            server_config(Path::new("/nonexistent/cert.pem"), Path::new("/nonexistent/key.pem")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(client_config(None).is_ok());
    }
}
