//! Sessions kept between processes: a one-shot command (a fresh `veritee secret get`)
//! resumes the session an earlier command attested, in one round trip, instead of
//! fetching and verifying the node's evidence again.
//!
//! One file per node, tenant and appraisal (policy, trust anchors, collateral: see
//! [`Appraiser::fingerprint`]), so a session attested under one policy is never resumed
//! under another. A file is a [`StoredSession`] (format in
//! [`veritee_channel::stored`]): the enclave's audience, which the tenant's signatures
//! name, and what resuming the session needs.
//!
//! It holds the resumption secret, so it is kept as the tenant key is: a 0600 file in a
//! directory only its owner may enter (a directory others can read or write is not
//! used). A file that does not read back, or has expired, is removed and the command
//! attests afresh; so is one the enclave refuses (it restarted, or the ticket expired).

use crate::{ClientError, NodeClient, enclave_answer};
use std::io::Read;
use std::path::{Path, PathBuf};
use veritee_channel::client::{Appraiser, TenantKey};
use veritee_channel::ops::{Request, Response};
use veritee_channel::stored::StoredSession;
use veritee_crypto::SecretBytes;

/// A cached session this close to its expiry is not resumed.
const EXPIRY_MARGIN_SECS: i64 = 5;
/// Label of a cache file's name.
const NAME_LABEL: &str = "veritee session cache v1";

/// A directory of cached sessions.
#[derive(Debug, Clone)]
pub struct SessionCache {
    dir: PathBuf,
}

impl SessionCache {
    /// Sessions cached in `dir` (created 0700 when the first is kept).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/veritee/sessions`, else `$HOME/.cache/veritee/sessions`; none
    /// without either.
    pub fn default_dir() -> Option<PathBuf> {
        let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        from("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| from("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|cache| cache.join("veritee").join("sessions"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the session with `node` as `tenant_id` under an appraisal of
    /// `fingerprint`.
    pub fn path(&self, node: &str, tenant_id: &str, fingerprint: &[u8; 32]) -> PathBuf {
        let name = veritee_crypto::memo::digest_of(
            NAME_LABEL,
            &[node.as_bytes(), tenant_id.as_bytes(), fingerprint],
        );
        self.dir.join(hex::encode(&name[..16]))
    }

    /// Whether the directory is one only its owner can enter and write; a cache
    /// anyone else could read would give the resumption secret away.
    fn private_dir(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.dir) {
            Ok(m) => m.is_dir() && m.mode() & 0o077 == 0 && Some(m.uid()) == effective_uid(),
            Err(_) => false,
        }
    }

    /// The session cached at `path`, if a usable one is; a file that does not read
    /// back or has expired is removed.
    pub fn load(&self, path: &Path, now: i64) -> Option<StoredSession> {
        if !self.private_dir() {
            return None;
        }
        // At most one byte past the largest stored session: a larger file is refused
        // by its length without being read whole. Room for all of it up front, so
        // that no buffer holding the resumption secret is grown and left behind.
        let mut bytes = SecretBytes::new(Vec::with_capacity(
            veritee_channel::stored::MAX_STORED_LEN + 1,
        ));
        std::fs::File::open(path)
            .ok()?
            .take(veritee_channel::stored::MAX_STORED_LEN as u64 + 1)
            .read_to_end(bytes.expose_mut())
            .ok()?;
        match StoredSession::from_bytes(bytes.expose()) {
            // A margin, so that it does not expire on the way.
            Ok(cached) if cached.resumption.expires_at() > now + EXPIRY_MARGIN_SECS => Some(cached),
            Ok(_) => {
                tracing::debug!(path = %path.display(), "cached session expired; removed");
                forget(path);
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cached session removed: {e}");
                forget(path);
                None
            }
        }
    }

    /// Keeps `session` at `path`, replacing what was there.
    pub fn store(&self, path: &Path, session: &StoredSession) -> Result<(), ClientError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| cache_error(&self.dir, e))?;
        if !self.private_dir() {
            return Err(ClientError::Protocol(format!(
                "the session cache {} may be read or written by others (it must be 0700 and \
                 yours); not keeping a session there",
                self.dir.display()
            )));
        }
        let bytes = session.to_bytes()?;
        // Not synced: a file a crash damages does not read back, and the next command
        // then attests afresh, which is all that a lost cache entry costs.
        veritee_platform::fsutil::replace_unsynced(path, bytes.expose(), 0o600)
            .map_err(|e| ClientError::Protocol(format!("session cache: {e}")))
    }
}

fn cache_error(dir: &Path, e: std::io::Error) -> ClientError {
    ClientError::Protocol(format!("session cache {}: {e}", dir.display()))
}

fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// This process's effective user: Linux gives `/proc/self` to it.
fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

impl NodeClient {
    /// Sends one request in an attested session: resumed from `cache` when it holds a
    /// session with this node, tenant and appraisal that the enclave still honours
    /// (one round trip, no evidence verified), else newly attested and then kept
    /// there for the next command. A request goes again in a new session only when
    /// the node refused the resumption before opening it, so it is served once.
    pub fn call_once(
        &self,
        tenant: &TenantKey,
        appraiser: &Appraiser<'_>,
        cache: Option<&SessionCache>,
        request: &Request,
    ) -> Result<Response, ClientError> {
        let slot = match cache {
            Some(cache) => Some((
                cache,
                cache.path(&self.base, &tenant.tenant_id()?, &appraiser.fingerprint()?),
            )),
            None => None,
        };
        let now = appraiser.at.unix_timestamp();
        if let Some((cache, path)) = &slot
            && let Some(cached) = cache.load(path, now)
        {
            self.remember_audience(cached.audience);
            match self.resume_session(tenant, &cached.resumption, request) {
                Ok((_, response)) => return enclave_answer(response),
                // Refusals that come before the request is opened: the ticket or the
                // tenant's signature refused (400, 401, 403), the tenant or the
                // session unknown or gone (404, 410), the session taken (409), the body
                // too large for a resumption (413). The session is forgotten unless
                // only the size was refused. Anything else (a busy node, an error after
                // the request was served) is the command's error.
                Err(ClientError::Node {
                    status: status @ (400 | 401 | 403 | 404 | 409 | 410 | 413),
                    code,
                    message,
                }) => {
                    tracing::debug!(
                        "cached session not resumed ({status} {code}: {message}), attesting afresh"
                    );
                    if status != 413 {
                        forget(path);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut session = self.open_session(tenant, appraiser)?;
        let Some((cache, path)) = &slot else {
            return session.call(request);
        };
        // The ticket comes with the answer, in the same round trip; a request the
        // enclave refused leaves the session as good as one it served, so it is kept
        // either way.
        let kept = session.call_keeping(request)?;
        let stored = kept.resumption.and_then(|resumption| {
            let audience = self.audience(false)?;
            cache.store(
                path,
                &StoredSession {
                    audience,
                    resumption,
                },
            )
        });
        if let Err(e) = stored {
            tracing::warn!("the session is not kept for the next command: {e}");
        }
        kept.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_differ_by_node_tenant_and_appraisal() {
        let cache = SessionCache::new("/nonexistent");
        let a = cache.path("http://127.0.0.1:1", "t", &[0; 32]);
        assert_ne!(a, cache.path("http://127.0.0.1:2", "t", &[0; 32]));
        assert_ne!(a, cache.path("http://127.0.0.1:1", "u", &[0; 32]));
        assert_ne!(a, cache.path("http://127.0.0.1:1", "t", &[1; 32]));
        assert_eq!(a, cache.path("http://127.0.0.1:1", "t", &[0; 32]));
    }

    #[test]
    fn an_oversized_or_damaged_file_is_removed_and_nothing_is_resumed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = SessionCache::new(dir.path().join("sessions"));
        std::fs::create_dir(cache.dir()).unwrap();
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = cache.path("http://127.0.0.1:1", "t", &[0; 32]);
        for bytes in [
            vec![0u8; veritee_channel::stored::MAX_STORED_LEN + 10],
            b"VTSESSN\x01 cut short".to_vec(),
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(cache.load(&path, 0).is_none());
            assert!(!path.exists(), "a file that does not read back stays");
        }
    }

    #[test]
    fn a_directory_others_may_enter_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = SessionCache::new(dir.path().join("sessions"));
        std::fs::create_dir(cache.dir()).unwrap();
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!cache.private_dir());
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(cache.private_dir());
    }
}
