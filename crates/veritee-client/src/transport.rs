//! How a client reaches a node: HTTPS, verified by the system's roots or by a pinned
//! certificate fingerprint; plain HTTP only to loopback for anything that carries a
//! credential (the admin token, a tenant's signed request).
//!
//! A pinned certificate is the way to trust a node's self-signed certificate
//! (`veritee node` prints its fingerprint): the client accepts exactly the
//! certificates whose SHA-256 it was given, whatever names they carry, and rustls still
//! checks that the server holds the certificate's key.

use crate::ClientError;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Certificate fingerprints pinned in this process.
static PINS: Mutex<Vec<[u8; 32]>> = Mutex::new(Vec::new());

/// Pins a node certificate by the SHA-256 of its DER. Every [`crate::NodeClient`] made
/// afterwards in this process accepts, over HTTPS, only certificates pinned so (and no
/// longer the system's roots).
pub fn pin_certificate(fingerprint: [u8; 32]) {
    let mut pins = PINS.lock().unwrap_or_else(|e| e.into_inner());
    if !pins.contains(&fingerprint) {
        pins.push(fingerprint);
    }
}

/// Reads a SHA-256 fingerprint written as hex, in either case, with or without colons.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], ClientError> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    hex::decode(&digits)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ClientError::Protocol(format!(
                "a certificate fingerprint is 64 hex digits (SHA-256), not {text:?}"
            ))
        })
}

/// The HTTP client of one node client at `base`.
pub(crate) fn http_client(
    base: &str,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, ClientError> {
    let pins = PINS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut builder = reqwest::blocking::Client::builder().timeout(timeout);
    if !pins.is_empty() {
        builder = builder.tls_backend_preconfigured(pinned_config(pins)?);
    } else if base.starts_with("http://") {
        // No TLS to this node, so no system roots to load: that costs a one-shot
        // command about 4 ms of CPU (BENCHMARKS.md). An empty root store trusts nothing,
        // should a redirect lead to https.
        builder = builder.tls_backend_preconfigured(no_roots_config()?);
    }
    builder
        .build()
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// Refuses to send a credential in clear to anything but loopback.
pub(crate) fn check_credential_transport(base: &str) -> Result<(), ClientError> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| ClientError::Transport(format!("node URL {base}: {e}")))?;
    if url.scheme() == "https" {
        return Ok(());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(ClientError::Insecure(format!(
            "refusing to send a credential over plain HTTP to {base}: use https:// (with \
             --node-fingerprint for a node's self-signed certificate)"
        )))
    }
}

/// An error with its causes, outermost first: reqwest's own message ("error sending
/// request") says nothing of why, its sources do (a refused connection, an unpinned
/// certificate).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn no_roots_config() -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn pinned_config(pins: Vec<[u8; 32]>) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedCertificates {
        pins,
        algorithms: provider.signature_verification_algorithms,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Accepts exactly the pinned certificates; the handshake signatures are checked as
/// always (the server must hold the pinned certificate's key).
#[derive(Debug)]
struct PinnedCertificates {
    pins: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = veritee_crypto::digest::sha256(end_entity.as_ref());
        if self.pins.iter().any(|pin| veritee_crypto::ct_eq(pin, &got)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the node's certificate has SHA-256 fingerprint {}, which is not pinned",
                hex::encode(got)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_in_clear_to_loopback_only() {
        for ok in [
            "http://127.0.0.1:8440",
            "http://127.3.2.1",
            "http://localhost:1",
            "http://[::1]:8440",
            "https://node.example:8443",
            "https://10.0.0.5",
        ] {
            assert!(check_credential_transport(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.5:8440",
            "http://node.example",
            "http://0.0.0.0:8440",
            "http://localhost.evil.example",
            "http://[2001:db8::1]:80",
        ] {
            let e = check_credential_transport(refused).expect_err(refused);
            assert!(matches!(e, ClientError::Insecure(_)), "{refused}: {e}");
        }
    }

    #[test]
    fn fingerprints_are_read_with_or_without_colons() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&hex).expect("hex"), [0xab; 32]);
        assert_eq!(parse_fingerprint(&colons).expect("colons"), [0xab; 32]);
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32)] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }
}
