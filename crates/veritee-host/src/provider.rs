//! The provider's keys for secret import (flow 3): the host's import key, to which
//! customers encrypt the outer layer of an import, and the provider's signing key,
//! which vouches for that host key over each customer's fresh nonce.
//!
//! Both belong to the provider, not to any customer: the host's key only ever opens
//! the outer layer, under which the key is still encrypted to the enclave.
//!
//! Where the outer layer is opened is the provider's choice ([`ProviderLayer`]): by
//! the host, with the key above; or in the enclave, with a key made and sealed there,
//! which the provider's signing key then states as its host key. Either way the
//! customer checks the same statement and encrypts the same way.

use crate::HostError;
use std::path::Path;
use veritee_crypto::hpke::{HpkeKeyPair, HpkePublicKey};
use veritee_crypto::sign::Ed25519SigningKey;
use veritee_import::provider::{ProviderStatement, SignedProviderStatement};

/// Who opens the provider's (outer) layer of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderLayer {
    /// The host, with its own import key; it passes the TEE layer on.
    #[default]
    Host,
    /// The enclave, with a provider-layer key made and sealed there: the host never
    /// holds the key to either layer.
    Enclave,
}

impl core::str::FromStr for ProviderLayer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Self::Host),
            "enclave" => Ok(Self::Enclave),
            other => Err(format!("provider layer {other:?}: use host or enclave")),
        }
    }
}

/// The provider's keys as one node's host holds them.
pub struct ProviderKeys {
    signing: Ed25519SigningKey,
    host_key: HpkeKeyPair,
    layer: ProviderLayer,
}

impl core::fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProviderKeys")
            .field("provider", &hex::encode(self.signing.public_key()))
            .finish()
    }
}

const SIGNING_FILE: &str = "provider-signing.pk8";
const HOST_KEY_FILE: &str = "host-import.key";
/// The file holding the provider's public key (hex), which customers pin.
pub const PROVIDER_PUBLIC_FILE: &str = "provider.pub";

fn io(path: &Path, e: impl core::fmt::Display) -> HostError {
    HostError::Config(format!("{}: {e}", path.display()))
}

impl ProviderKeys {
    /// Fresh keys (for tests).
    pub fn generate() -> Result<Self, HostError> {
        Ok(Self {
            signing: Ed25519SigningKey::generate()
                .map_err(|e| HostError::Internal(e.to_string()))?,
            host_key: HpkeKeyPair::generate(),
            layer: ProviderLayer::Host,
        })
    }

    /// The same keys, with the provider layer opened where `layer` says.
    pub fn with_layer(mut self, layer: ProviderLayer) -> Self {
        self.layer = layer;
        self
    }

    /// Who opens the provider layer.
    pub fn layer(&self) -> ProviderLayer {
        self.layer
    }

    /// The keys in `dir`, created on first use (private files); writes the provider's
    /// public key to `dir/provider.pub` for the operator to hand to customers.
    pub fn load_or_create(dir: &Path) -> Result<Self, HostError> {
        create_private_dir(dir)?;
        let signing_path = dir.join(SIGNING_FILE);
        let host_path = dir.join(HOST_KEY_FILE);
        if signing_path.exists() != host_path.exists() {
            // Half a key set: making the other half would change what customers pinned
            // or what old imports were encrypted to. The operator decides.
            let (present, missing) = if signing_path.exists() {
                (&signing_path, &host_path)
            } else {
                (&host_path, &signing_path)
            };
            return Err(io(
                missing,
                format!(
                    "missing while {} exists: restore it, or remove both to make new provider keys",
                    present.display()
                ),
            ));
        }
        let keys = if signing_path.exists() {
            let der = std::fs::read(&signing_path).map_err(|e| io(&signing_path, e))?;
            let signing = Ed25519SigningKey::from_pkcs8(&der)
                .map_err(|e| io(&signing_path, format!("not an Ed25519 PKCS#8 key: {e}")))?;
            let raw = std::fs::read(&host_path).map_err(|e| io(&host_path, e))?;
            let mut private = veritee_crypto::Confidential::new([0u8; 32]);
            if raw.len() != 32 {
                return Err(io(&host_path, "not a 32-byte X25519 private key"));
            }
            private.expose_mut().copy_from_slice(&raw);
            let host_key =
                HpkeKeyPair::from_private_bytes(&private).map_err(|e| io(&host_path, e))?;
            Self {
                signing,
                host_key,
                layer: ProviderLayer::Host,
            }
        } else {
            let keys = Self::generate()?;
            let der = keys
                .signing
                .to_pkcs8()
                .map_err(|e| HostError::Internal(e.to_string()))?;
            write_private(&signing_path, der.expose())?;
            write_private(&host_path, keys.host_key.private_bytes().expose())?;
            keys
        };
        let public = dir.join(PROVIDER_PUBLIC_FILE);
        std::fs::write(&public, format!("{}\n", keys.provider_public_hex()))
            .map_err(|e| io(&public, e))?;
        Ok(keys)
    }

    /// The provider's public key, hex: what customers pin.
    pub fn provider_public_hex(&self) -> String {
        hex::encode(self.signing.public_key())
    }

    /// The host's import key pair.
    pub fn host_key(&self) -> &HpkeKeyPair {
        &self.host_key
    }

    /// The provider's statement for the host key, over a customer's nonce.
    pub fn statement(
        &self,
        node_id: &str,
        nonce: &[u8],
    ) -> Result<SignedProviderStatement, HostError> {
        self.statement_for(&self.host_key.public_key(), node_id, nonce)
    }

    /// The provider's statement naming `host_key` (the enclave's provider-layer key,
    /// when the enclave opens that layer), over a customer's nonce.
    pub fn statement_for(
        &self,
        host_key: &HpkePublicKey,
        node_id: &str,
        nonce: &[u8],
    ) -> Result<SignedProviderStatement, HostError> {
        let issued = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| HostError::Internal(e.to_string()))?;
        SignedProviderStatement::sign(
            &self.signing,
            &ProviderStatement {
                provider: self.provider_public_hex(),
                host_key: hex::encode(host_key.as_bytes()),
                node_id: node_id.to_string(),
                nonce: hex::encode(nonce),
                issued,
            },
        )
        .map_err(|e| HostError::Internal(e.to_string()))
    }
}

fn create_private_dir(dir: &Path) -> Result<(), HostError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProviderKeys::load_or_create(dir.path()).unwrap();
        let again = ProviderKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.provider_public_hex(), again.provider_public_hex());
        assert_eq!(
            first.host_key().public_key().as_bytes(),
            again.host_key().public_key().as_bytes()
        );
        let pinned = std::fs::read_to_string(dir.path().join(PROVIDER_PUBLIC_FILE)).unwrap();
        assert_eq!(pinned.trim(), first.provider_public_hex());
        std::fs::write(dir.path().join(HOST_KEY_FILE), b"short").unwrap();
        let err = ProviderKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("32-byte"), "{err}");
        // Half a key set is named, not silently completed.
        std::fs::remove_file(dir.path().join(HOST_KEY_FILE)).unwrap();
        let err = ProviderKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("missing while"), "{err}");
        assert!(
            dir.path().join(SIGNING_FILE).exists(),
            "nothing was removed"
        );
    }
}
