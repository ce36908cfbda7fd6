//! One rustls client configuration per account: the system's roots plus the account's `tls_ca`,
//! and the certificates the user trusts by SHA-256 fingerprint (`tls_pins`).
//!
//! Certificates are always verified (invariant 8); there is no switch to turn that off. A pin is
//! the user's explicit trust in one certificate (a self-signed one, typically made with
//! `openssl req -x509`, which webpki refuses as `CaUsedAsEndEntity` even when given as `tls_ca`):
//!
//! ```text
//!   server certificate ─ pins for this host? ─ yes: its SHA-256 is one of them ─► trusted
//!        │                                   └─ no ─► refused: "changed", both fingerprints
//!        └─ none ─► webpki (system roots + tls_ca) ─► trusted, or refused with its fingerprint
//! ```
//!
//! A pinned certificate is trusted as it is: its name, dates and issuer are the user's call, made
//! when `account add` showed them. The handshake's signatures are still checked against its key.
//! A [`Witness`] keeps the certificates refused (and those a pin let through), so that
//! `account add` can show them and ask.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// The SHA-256 of a certificate's DER bytes, written `AB:CD:…` as `openssl x509 -fingerprint
/// -sha256` prints it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256 {self}")
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Accepts `AB:CD:…`, `abcd…`, with an optional `SHA256:` / `sha256 Fingerprint=` prefix.
    fn from_str(text: &str) -> Result<Fingerprint, String> {
        let t = text.trim();
        let t = t.rsplit_once('=').map_or(t, |(_, v)| v);
        let t = t
            .strip_prefix("SHA256:")
            .or_else(|| t.strip_prefix("sha256:"))
            .unwrap_or(t);
        let hex: String = t.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        let bad = || format!("`{text}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)");
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

/// The pinned certificates of an account: per host (any port: TLS does not tell the verifier
/// the port), and, for `account add` only, fingerprints trusted on whichever host shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    by_host: BTreeMap<String, Vec<Fingerprint>>,
    any_host: Vec<Fingerprint>,
}

impl Pins {
    /// Adds `fingerprint` for `host` (a DNS name or an IP address, any case).
    pub fn pin(&mut self, host: &str, fingerprint: Fingerprint) {
        let list = self.by_host.entry(host.to_ascii_lowercase()).or_default();
        if !list.contains(&fingerprint) {
            list.push(fingerprint);
        }
    }

    /// Trusts `fingerprint` on any host (the `--trust-fingerprint` of `account add`; what it
    /// let through is written to the config per host).
    pub fn pin_anywhere(&mut self, fingerprint: Fingerprint) {
        self.any_host.push(fingerprint);
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty() && self.any_host.is_empty()
    }

    /// Whether a certificate is pinned for `host` (or for any host).
    pub fn covers(&self, host: &str) -> bool {
        !self.any_host.is_empty() || self.by_host.contains_key(&host.to_ascii_lowercase())
    }

    /// Per host, as the config writes them.
    pub fn hosts(&self) -> &BTreeMap<String, Vec<Fingerprint>> {
        &self.by_host
    }
}

/// A certificate a connection saw that the user may have to decide about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub host: String,
    pub fingerprint: Fingerprint,
    pub der: Vec<u8>,
    /// Why it was refused; `None` when a pin let it through.
    pub refused: Option<String>,
}

/// Collects what the verifier saw (shared by clones); `account add` reads it after a probe.
#[derive(Debug, Clone, Default)]
pub struct Witness(Arc<Mutex<Vec<Presented>>>);

impl Witness {
    fn note(&self, p: Presented) {
        if let Ok(mut seen) = self.0.lock()
            && !seen
                .iter()
                .any(|s| s.host == p.host && s.fingerprint == p.fingerprint)
        {
            seen.push(p);
        }
    }

    pub fn seen(&self) -> Vec<Presented> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Builds the client configuration without pins.
pub fn client_config(tls_ca: Option<&Path>) -> Result<Arc<ClientConfig>, ServiceError> {
    client_config_with(tls_ca, &Pins::default(), None)
}

/// Builds the client configuration. A `tls_ca` that cannot be read or holds no certificate is a
/// configuration error naming the file.
pub fn client_config_with(
    tls_ca: Option<&Path>,
    pins: &Pins,
    witness: Option<Witness>,
) -> Result<Arc<ClientConfig>, ServiceError> {
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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Without any anchor (a bare container) webpki cannot be built: only pins can vouch then.
    let webpki = match roots.is_empty() {
        true => None,
        false => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ServiceError::Config(format!("TLS: {e}")))?,
        ),
    };
    let verifier = PinningVerifier {
        webpki,
        pins: pins.clone(),
        witness,
        provider,
    };
    let config = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A pin that no longer matches, or a certificate nothing vouches for.
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

#[derive(Debug)]
struct PinningVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pins: Pins,
    witness: Option<Witness>,
    provider: Arc<CryptoProvider>,
}

fn host_of(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_ascii_lowercase(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

fn refuse(text: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(text)))))
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let host = host_of(server_name);
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        let seen = |refused: Option<String>| {
            if let Some(w) = &self.witness {
                w.note(Presented {
                    host: host.clone(),
                    fingerprint,
                    der: end_entity.as_ref().to_vec(),
                    refused,
                });
            }
        };
        if let Some(pinned) = self.pins.by_host.get(&host) {
            if pinned.contains(&fingerprint) {
                seen(None);
                return Ok(ServerCertVerified::assertion());
            }
            let was: Vec<String> = pinned.iter().map(|f| format!("SHA256 {f}")).collect();
            let why = format!(
                "the certificate of {host} changed: the pinned one is {}, the server now shows SHA256 \
                 {fingerprint}; if the server's administrator confirms the new one, put \
                 \"{fingerprint}\" for \"{host}\" in the account's tls_pins in the config",
                was.join(" or ")
            );
            seen(Some(why.clone()));
            return Err(refuse(why));
        }
        if self.pins.any_host.contains(&fingerprint) {
            seen(None);
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = match &self.webpki {
            Some(webpki) => {
                webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        verdict.map_err(|e| {
            let why = format!(
                "{}: the certificate of {host} (SHA256 {fingerprint}) is not trusted; for a \
                 self-hosted server set tls_ca, or trust this one certificate: `account add … \
                 --trust-fingerprint {fingerprint}`, or tls_pins = {{ \"{host}\" = \"{fingerprint}\" }} \
                 in the account's config",
                tidy(&e.to_string()).trim_start_matches("invalid peer certificate: ")
            );
            seen(Some(why.clone()));
            refuse(why)
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `text` without rustls's `Other(OtherError(…))` wrapping around a verifier's own words.
pub fn tidy(text: &str) -> String {
    let mut out = text.to_owned();
    while let Some(at) = out.find("Other(OtherError(") {
        out.replace_range(at..at + "Other(OtherError(".len(), "");
        match out[at..].rfind("))") {
            Some(end) => out.replace_range(at + end..at + end + 2, ""),
            None => break,
        }
    }
    out
}

/// Puts a rustls handshake failure in words a user can act on.
pub fn describe_tls_error(err: &std::io::Error) -> String {
    let text = tidy(&err.to_string());
    if text.contains("is not trusted") || text.contains("changed: the pinned one") {
        text
    } else if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("{text} (the server's certificate is not trusted; for a self-hosted server set tls_ca)")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_as_openssl_prints_them() {
        let f = Fingerprint::of(b"x");
        let text = f.to_string();
        assert_eq!(text.len(), 95);
        assert_eq!(text.parse::<Fingerprint>(), Ok(f));
        assert_eq!(format!("sha256 Fingerprint={text}").parse::<Fingerprint>(), Ok(f));
        assert_eq!(text.replace(':', "").to_lowercase().parse::<Fingerprint>(), Ok(f));
        assert_eq!(format!("SHA256:{text}").parse::<Fingerprint>(), Ok(f));
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!("é".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn the_verifiers_words_are_unwrapped() {
        assert_eq!(
            tidy("invalid peer certificate: Other(OtherError(the certificate of h changed: x))"),
            "invalid peer certificate: the certificate of h changed: x"
        );
        assert_eq!(tidy("plain"), "plain");
    }
}
