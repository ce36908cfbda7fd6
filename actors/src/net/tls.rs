//! One rustls client configuration per account: the system's roots plus the account's `tls_ca`.
//!
//! Certificates are always verified (invariant 8); there is no switch to turn that off.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::error::ServiceError;

/// Builds the client configuration. A `tls_ca` that cannot be read or holds no certificate is a
/// configuration error naming the file.
pub fn client_config(tls_ca: Option<&Path>) -> Result<Arc<ClientConfig>, ServiceError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate is skipped; the rest still count.
        let _ = roots.add(cert);
    }
    if let Some(path) = tls_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ServiceError::Config(format!("tls_ca {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| ServiceError::Config(format!("tls_ca {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ServiceError::Config(format!(
                "tls_ca {}: no PEM certificate in the file",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ServiceError::Config(format!("tls_ca {}: {e}", path.display())))?;
        }
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Puts a rustls handshake failure in words a user can act on.
pub fn describe_tls_error(err: &std::io::Error) -> String {
    let text = err.to_string();
    if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("{text} (the server's certificate is not trusted; for a self-hosted server set tls_ca)")
    } else {
        text
    }
}
