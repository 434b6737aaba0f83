//! TLS to PostgreSQL: `sslmode=verify-full` with the CA in `sslrootcert`, over rustls.
//!
//! tokio-postgres parses `sslmode` only up to `require` (encryption without checking
//! who answers) and knows no `sslrootcert`, so both are read here, from the URL's
//! query or a `key=value` connection string, and taken out before it parses the rest.
//! Only two modes are accepted, both saying what they do: `disable` (the default: a
//! database on loopback or a trusted network) and `verify-full` (the server's chain to
//! the given CA, and its name, checked). libpq's `allow`, `prefer`, `require` and
//! `verify-ca` would each let a man in the middle read the store's traffic unseen, so
//! they are refused with that reason.

use crate::StoreError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS, the server's certificate chained to this CA file and naming the host.
    VerifyFull {
        /// The CA certificates, PEM.
        root_cert: PathBuf,
    },
}

/// Splits `sslmode` and `sslrootcert` out of a connection URL or string; returns what
/// is left for tokio-postgres to parse, and the TLS mode.
pub(crate) fn split_tls_params(url: &str) -> Result<(String, TlsMode), StoreError> {
    let (rest, params) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    };
    let mut mode = None;
    let mut root_cert = None;
    for (key, value) in params {
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root_cert = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    let mode = match mode.as_deref() {
        None | Some("disable") => TlsMode::Disable,
        Some("verify-full") => TlsMode::VerifyFull {
            root_cert: root_cert.ok_or_else(|| {
                StoreError::InvalidInput(
                    "sslmode=verify-full needs sslrootcert=FILE: the CA that issued the \
                     server's certificate"
                        .into(),
                )
            })?,
        },
        Some(weak @ ("allow" | "prefer" | "require" | "verify-ca")) => {
            return Err(StoreError::InvalidInput(format!(
                "sslmode={weak} would not check which server answers; use \
                 sslmode=verify-full with sslrootcert=FILE (or sslmode=disable on loopback)"
            )));
        }
        Some(other) => {
            return Err(StoreError::InvalidInput(format!(
                "unknown sslmode={other}: use verify-full (with sslrootcert=FILE) or disable"
            )));
        }
    };
    Ok((rest, mode))
}

/// `postgres://...?a=b&sslmode=...`: the query's TLS parameters taken out.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        if key == "sslmode" || key == "sslrootcert" {
            // Decoded as a URL's query is (a path may carry %-escapes).
            taken.extend(
                url::form_urlencoded::parse(pair.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

/// `host=... sslmode=...`: the TLS parameters taken out (values without spaces).
fn split_key_values(conninfo: &str) -> (String, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for token in conninfo.split_whitespace() {
        match token.split_once('=') {
            Some((key @ ("sslmode" | "sslrootcert"), value)) => {
                taken.push((key.to_string(), value.trim_matches('\'').to_string()));
            }
            _ => kept.push(token),
        }
    }
    (kept.join(" "), taken)
}

/// The rustls connector for `verify-full` with the CA certificates in `root_cert`.
pub(crate) fn connector(
    root_cert: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let invalid = |why: String| {
        StoreError::InvalidInput(format!("sslrootcert {}: {why}", root_cert.display()))
    };
    let pem = std::fs::read(root_cert).map_err(|e| invalid(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CERTIFICATE block".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls_and_connection_strings() {
        let (rest, mode) = split_tls_params(
            "postgres://u:p@127.0.0.1:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .expect("verify-full");
        assert_eq!(rest, "postgres://u:p@127.0.0.1:5432/db?application_name=x");
        assert_eq!(
            mode,
            TlsMode::VerifyFull {
                root_cert: "/tmp/ca.pem".into()
            }
        );
        let (rest, mode) =
            split_tls_params("host=db user=u sslmode=verify-full sslrootcert=/ca.pem")
                .expect("key=value");
        assert_eq!(rest, "host=db user=u");
        assert_eq!(
            mode,
            TlsMode::VerifyFull {
                root_cert: "/ca.pem".into()
            }
        );
        for plain in [
            "postgres://u@h/db",
            "postgres://u@h/db?sslmode=disable",
            "host=h",
        ] {
            assert_eq!(split_tls_params(plain).expect(plain).1, TlsMode::Disable);
        }
    }

    #[test]
    fn modes_that_do_not_check_the_server_are_refused_with_the_reason() {
        for weak in ["allow", "prefer", "require", "verify-ca"] {
            let e = split_tls_params(&format!("postgres://u@h/db?sslmode={weak}"))
                .expect_err(weak)
                .to_string();
            assert!(e.contains("verify-full"), "{weak}: {e}");
        }
        let e = split_tls_params("postgres://u@h/db?sslmode=verify-full")
            .expect_err("no root cert")
            .to_string();
        assert!(e.contains("sslrootcert"), "{e}");
        let e = split_tls_params("postgres://u@h/db?sslmode=bogus")
            .expect_err("bogus")
            .to_string();
        assert!(e.contains("unknown sslmode"), "{e}");
    }

    #[test]
    fn a_root_certificate_file_that_is_missing_or_not_pem_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let Err(e) = connector(&missing) else {
            panic!("a missing file was accepted")
        };
        let e = e.to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, b"not a certificate").expect("write");
        let Err(e) = connector(&junk) else {
            panic!("a file without certificates was accepted")
        };
        let e = e.to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }
}
