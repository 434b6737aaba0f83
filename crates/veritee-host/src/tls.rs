//! HTTPS for the node: the same router behind rustls.
//!
//! The node's TLS key is the host's own (it protects the admin token and tenants'
//! signed requests in transit, and keeps a network observer from learning session ids);
//! nothing secret of a tenant depends on it, since sessions are end-to-end encrypted
//! into the enclave. A node either serves a certificate it is given, or generates a
//! self-signed one that clients pin by its SHA-256 fingerprint.

use crate::HostError;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain and its private key, as the node serves them.
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl core::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &hex::encode(self.fingerprint()))
            .finish()
    }
}

/// A generated self-signed identity, with its PEM forms to store.
pub struct GeneratedIdentity {
    /// The identity.
    pub identity: TlsIdentity,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (zeroized on drop).
    pub key_pem: veritee_crypto::Confidential<String>,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, SEC1 or
    /// PKCS#1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, HostError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HostError::Config(format!("TLS certificate: {e}")))?;
        if chain.is_empty() {
            return Err(HostError::Config(
                "TLS certificate: no CERTIFICATE block in the file".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| HostError::Config(format!("TLS key: {e}")))?;
        let identity = Self { chain, key };
        // Refused now, with its reason, rather than at the first handshake.
        identity.server_config()?;
        Ok(identity)
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names or IP
    /// addresses).
    pub fn self_signed(names: &[String]) -> Result<GeneratedIdentity, HostError> {
        let generated = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| HostError::Config(format!("cannot generate a TLS certificate: {e}")))?;
        let cert_pem = generated.cert.pem();
        let key_pem = veritee_crypto::Confidential::new(generated.signing_key.serialize_pem());
        let identity = Self::from_pem(cert_pem.as_bytes(), key_pem.expose().as_bytes())?;
        Ok(GeneratedIdentity {
            identity,
            cert_pem,
            key_pem,
        })
    }

    /// SHA-256 of the leaf certificate's DER: what clients pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        veritee_crypto::digest::sha256(self.chain[0].as_ref())
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, HostError> {
        // The provider is named, not taken from the process default, so a second
        // provider linked in by some dependency cannot make this ambiguous.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HostError::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| HostError::Config(format!("TLS certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Serves `app` over TLS on `listener` until the task is aborted, or until `stop`
/// turns true: then it takes no more connections and returns once those open have
/// finished the requests in progress.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    identity: &TlsIdentity,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let config = identity
        .server_config()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stopping = crate::stopped(stop);
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopping => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was
                // accepted: the listener itself is fine.
                warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // The client's address, as plain HTTP's connect info gives it (per-client
            // limits read it).
            let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let service = TowerToHyperService::new(app);
            let builder = Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Whether plain HTTP may be served on `addr`: only on loopback.
pub fn plain_http_allowed(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_only() {
        for ok in ["127.0.0.1:8440", "127.9.9.9:1", "[::1]:8440"] {
            assert!(plain_http_allowed(&ok.parse().expect("addr")), "{ok}");
        }
        for not in [
            "0.0.0.0:8440",
            "[::]:8440",
            "10.0.0.5:8440",
            "192.168.1.2:443",
        ] {
            assert!(!plain_http_allowed(&not.parse().expect("addr")), "{not}");
        }
    }

    #[test]
    fn a_certificate_and_key_that_do_not_fit_are_refused_with_the_reason() {
        let a = TlsIdentity::self_signed(&["localhost".into()]).expect("a");
        let b = TlsIdentity::self_signed(&["localhost".into()]).expect("b");
        assert_ne!(a.identity.fingerprint(), b.identity.fingerprint());
        let again =
            TlsIdentity::from_pem(a.cert_pem.as_bytes(), a.key_pem.expose().as_bytes()).expect("a");
        assert_eq!(again.fingerprint(), a.identity.fingerprint());
        let mismatched =
            TlsIdentity::from_pem(a.cert_pem.as_bytes(), b.key_pem.expose().as_bytes())
                .expect_err("another key");
        assert!(mismatched.to_string().contains("TLS"), "{mismatched}");
        for (cert, key, what) in [
            (&b""[..], a.key_pem.expose().as_bytes(), "no certificate"),
            (
                a.cert_pem.as_bytes(),
                &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
                "a broken key",
            ),
            (
                &a.cert_pem.as_bytes()[..40],
                a.key_pem.expose().as_bytes(),
                "a truncated certificate",
            ),
        ] {
            let e = TlsIdentity::from_pem(cert, key).expect_err(what);
            assert!(e.to_string().contains("TLS"), "{what}: {e}");
        }
        assert!(!format!("{:?}", a.identity).contains("PRIVATE"));
    }
}
