//! The customer's signed statement of what it imports: which key, into which
//! partition, for which operations, encrypted to which TEE and provider keys, after
//! which validations. Its digest is the associated data of both encryption layers, so
//! a layer made for one statement opens under no other.

use crate::ImportError;
use crate::formats::ImportFormat;
use crate::keys::{KeyCheck, KeyType, Operation};
use serde::{Deserialize, Serialize};
use veritee_crypto::sign::{self, VerificationScheme};

/// Metadata format version.
pub const METADATA_VERSION: u32 = 1;
/// Largest metadata document.
pub const MAX_METADATA_LEN: usize = 8 * 1024;
/// Most validation statements one import names.
pub const MAX_VALIDATIONS: usize = 16;
/// Shortest rotation period a key's metadata may set.
pub const MIN_ROTATION_SECS: u64 = 60;
/// Longest rotation period (100 years).
pub const MAX_ROTATION_SECS: u64 = 100 * 365 * 86_400;
/// Longest validation statement.
pub const MAX_VALIDATION_LEN: usize = 512;
/// Most tenants whose tasks one key's metadata may allow.
pub const MAX_TASK_SIGNERS: usize = 16;
/// Label of the customer's signature over metadata.
pub const METADATA_SIGNATURE_LABEL: &[u8] = b"veritee import metadata v1\0";
const DIGEST_LABEL: &[u8] = b"veritee import metadata digest v1\0";

/// What the customer states about one import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportMetadata {
    /// [`METADATA_VERSION`].
    pub version: u32,
    /// The customer (tenant id).
    pub tenant: String,
    /// The node whose enclave the key is for.
    pub node_id: String,
    /// The partition it goes into.
    pub partition: String,
    /// Its id in the partition.
    pub key_id: String,
    /// Its type.
    pub key_type: KeyType,
    /// What it may be used for.
    pub operations: Vec<Operation>,
    /// Its salted check value, `salt:value` hex. Empty only for a key that arrives in
    /// a standard format already wrapped (the customer's tooling wrapped it, and the
    /// enclave's confirmation then names the check value of what it unwrapped).
    pub key_check: String,
    /// The TEE key the inner layer is encrypted to (hex of 16 bytes of its SHA-256).
    pub tee_key_id: String,
    /// The provider key the outer layer is encrypted to (same form).
    pub provider_key_id: String,
    /// What the customer checked before encrypting, one statement each.
    pub validations: Vec<String>,
    /// When the customer made it, RFC 3339.
    pub created: String,
    /// Rotate the key (a new version made in the enclave) once its newest version is
    /// this many seconds old, at its next use; `None`: only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_after_secs: Option<u64>,
    /// When the TEE layer carries revocation data: how often the enclave asks the
    /// endpoint, seconds (the layer's own value must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_interval_secs: Option<u64>,
    /// The TEE layer's format: veritee's own unless stated.
    #[serde(default, skip_serializing_if = "ImportFormat::is_veritee")]
    pub format: ImportFormat,
    /// For a standard format: hex SHA-256 of the TEE layer. Those formats have no
    /// associated data, so this is what binds the wrapped key to these metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_sha256: Option<String>,
    /// Which other nodes' enclaves may hold a replica (fetched from this node's over
    /// the mutually attested peer channel); `None`: this node's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<KeyRelease>,
    /// Tenants (ids, 32 lowercase hex digits) whose signed task initiations may name the
    /// key for a compartment; empty: no task may use it. Absent from metadata signed
    /// before tasks could use keys, which therefore still open, and allow no task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_signers: Vec<String>,
}

/// Which enclaves may receive a replica of an imported key, relative to the enclave
/// it was imported into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRelease {
    /// Enclaves with the same signer and product.
    SameSigner,
    /// Enclaves running exactly the same code.
    SameMeasurement,
}

impl KeyRelease {
    /// Its name on the command line and in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameSigner => "same-signer",
            Self::SameMeasurement => "same-measurement",
        }
    }
}

impl core::str::FromStr for KeyRelease {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "same-signer" => Ok(Self::SameSigner),
            "same-measurement" => Ok(Self::SameMeasurement),
            other => Err(format!(
                "release {other:?}: use same-signer or same-measurement (leave it out for this node only)"
            )),
        }
    }
}

/// The id of a public key: hex of the first 16 bytes of its SHA-256.
pub fn key_id_of(public_key: &[u8]) -> String {
    hex::encode(&veritee_crypto::digest::sha256(public_key)[..16])
}

impl ImportMetadata {
    /// Checks every field's form and range; names the first that is wrong. Returns the
    /// check value the customer stated, if any.
    pub fn check(&self) -> Result<Option<KeyCheck>, ImportError> {
        let bad = |what: String| ImportError::Malformed(format!("import metadata: {what}"));
        if self.version != METADATA_VERSION {
            return Err(bad(format!(
                "version {} (this build reads {METADATA_VERSION})",
                self.version
            )));
        }
        for (field, value) in [
            ("tenant", &self.tenant),
            ("tee_key_id", &self.tee_key_id),
            ("provider_key_id", &self.provider_key_id),
        ] {
            if value.len() != 32 || hex::decode(value).is_err() {
                return Err(bad(format!("{field} must be 32 hex digits")));
            }
        }
        if self.node_id.is_empty() || self.node_id.len() > 64 || hex::decode(&self.node_id).is_err()
        {
            return Err(bad("node_id must be hex".into()));
        }
        veritee_proto::names::check_name(&self.partition)
            .map_err(|e| bad(format!("partition: {e}")))?;
        veritee_proto::names::check_name(&self.key_id).map_err(|e| bad(format!("key_id: {e}")))?;
        if self.operations.is_empty() {
            return Err(bad("operations is empty: the key could do nothing".into()));
        }
        let possible = self.key_type.possible_operations();
        for (i, op) in self.operations.iter().enumerate() {
            if !possible.contains(op) {
                return Err(bad(format!(
                    "a {} key cannot {}",
                    self.key_type.as_str(),
                    op.as_str()
                )));
            }
            if self.operations[..i].contains(op) {
                return Err(bad(format!("operation {} is named twice", op.as_str())));
            }
        }
        if self.validations.len() > MAX_VALIDATIONS
            || self
                .validations
                .iter()
                .any(|v| v.len() > MAX_VALIDATION_LEN)
        {
            return Err(bad(format!(
                "at most {MAX_VALIDATIONS} validations of {MAX_VALIDATION_LEN} bytes each"
            )));
        }
        if self
            .rotate_after_secs
            .is_some_and(|s| !(MIN_ROTATION_SECS..=MAX_ROTATION_SECS).contains(&s))
        {
            return Err(bad(format!(
                "rotate_after_secs is {MIN_ROTATION_SECS} to {MAX_ROTATION_SECS} seconds"
            )));
        }
        if let Some(secs) = self.revocation_interval_secs {
            crate::revocation::check_interval(secs)?;
        }
        if self.release.is_some() && self.rotate_after_secs.is_some() {
            return Err(bad(
                "a key other nodes may hold is not rotated on a schedule: each node's versions would part ways"
                    .into(),
            ));
        }
        match (self.format, &self.wrapped_sha256) {
            (ImportFormat::Veritee, None) => {}
            (ImportFormat::Veritee, Some(_)) => {
                return Err(bad(
                    "wrapped_sha256 is for the standard formats; veritee's own binds the metadata itself"
                        .into(),
                ));
            }
            (format, None) => {
                return Err(bad(format!(
                    "the {} format needs wrapped_sha256, the digest of the wrapped key",
                    format.as_str()
                )));
            }
            (format, Some(d)) => {
                if d.len() != 64 || hex::decode(d).is_err() {
                    return Err(bad("wrapped_sha256 must be 64 hex digits".into()));
                }
                if self.revocation_interval_secs.is_some() {
                    return Err(bad(format!(
                        "the {} format carries the key alone: revocation data need veritee's own format",
                        format.as_str()
                    )));
                }
            }
        }
        self.check_task_signers()?;
        time::OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| bad(format!("created {:?} is not RFC 3339", self.created)))?;
        if self.key_check.is_empty() && self.format != ImportFormat::Veritee {
            return Ok(None);
        }
        KeyCheck::from_hex(&self.key_check).map(Some)
    }

    /// Form, count and uniqueness of [`ImportMetadata::task_signers`].
    fn check_task_signers(&self) -> Result<(), ImportError> {
        let bad =
            |what: String| ImportError::Malformed(format!("import metadata: task_signers: {what}"));
        if self.task_signers.len() > MAX_TASK_SIGNERS {
            return Err(bad(format!(
                "{} tenants named, at most {MAX_TASK_SIGNERS}",
                self.task_signers.len()
            )));
        }
        for (i, signer) in self.task_signers.iter().enumerate() {
            // Lowercase only: the enclave compares ids as text, so an uppercase spelling
            // of a tenant would silently allow nobody.
            if !veritee_proto::names::is_tenant_id(signer) {
                return Err(bad(format!(
                    "{signer:?} is not a tenant id (32 lowercase hex digits)"
                )));
            }
            if self.task_signers[..i].contains(signer) {
                return Err(bad(format!("tenant {signer} is named twice")));
            }
        }
        Ok(())
    }

    /// Whether tasks initiated (signed) by `tenant` may use the key.
    pub fn allows_task_signer(&self, tenant: &str) -> bool {
        self.task_signers.iter().any(|t| t == tenant)
    }

    /// Whether the key may be used for `op`.
    pub fn allows(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }
}

/// Metadata as the customer signed them: the exact bytes, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMetadata {
    /// The JSON document, as signed.
    pub bytes: Vec<u8>,
    /// ECDSA P-256 `r || s` over [`METADATA_SIGNATURE_LABEL`] and the bytes.
    pub signature: Vec<u8>,
}

impl SignedMetadata {
    /// Signs `metadata` with `sign` (the tenant key's signing function).
    pub fn sign(
        metadata: &ImportMetadata,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, ImportError>,
    ) -> Result<Self, ImportError> {
        metadata.check()?;
        let bytes = serde_json::to_vec(metadata)
            .map_err(|e| ImportError::Malformed(format!("import metadata: {e}")))?;
        // What the enclave would refuse to read is not signed at all.
        if bytes.len() > MAX_METADATA_LEN {
            return Err(ImportError::Malformed(format!(
                "import metadata of {} bytes (at most {MAX_METADATA_LEN}): fewer or shorter validations",
                bytes.len()
            )));
        }
        let signature = sign(&Self::signed_bytes(&bytes))?;
        Ok(Self { bytes, signature })
    }

    fn signed_bytes(bytes: &[u8]) -> Vec<u8> {
        let mut out = METADATA_SIGNATURE_LABEL.to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// Checks the signature with the tenant's key, then reads and checks the metadata.
    pub fn open(
        &self,
        tenant_spki: &[u8],
    ) -> Result<(ImportMetadata, Option<KeyCheck>), ImportError> {
        if self.bytes.len() > MAX_METADATA_LEN {
            return Err(ImportError::Malformed(format!(
                "import metadata of {} bytes (at most {MAX_METADATA_LEN})",
                self.bytes.len()
            )));
        }
        sign::verify(
            VerificationScheme::EcdsaP256Sha256Fixed,
            tenant_spki,
            &Self::signed_bytes(&self.bytes),
            &self.signature,
        )
        .map_err(|_| {
            ImportError::BadSignature(
                "the import metadata are not signed by the tenant's key, or were changed after signing"
                    .into(),
            )
        })?;
        let metadata: ImportMetadata = serde_json::from_slice(&self.bytes)
            .map_err(|e| ImportError::Malformed(format!("import metadata: {e}")))?;
        let check = metadata.check()?;
        Ok((metadata, check))
    }

    /// The digest both encryption layers take as associated data.
    pub fn digest(&self) -> [u8; 32] {
        digest(&self.bytes)
    }
}

/// The associated data of both layers for metadata `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut d = veritee_crypto::digest::Sha256::default();
    d.update(DIGEST_LABEL);
    d.update(bytes);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyCheck, KeyType, Operation};
    use veritee_crypto::SecretBytes;
    use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};

    fn metadata(validations: Vec<String>) -> ImportMetadata {
        ImportMetadata {
            version: METADATA_VERSION,
            tenant: "00".repeat(16),
            node_id: "0011223344556677".into(),
            partition: "payments".into(),
            key_id: "card-key".into(),
            key_type: KeyType::Aes256Gcm,
            operations: vec![Operation::Encrypt],
            key_check: KeyCheck::new(&SecretBytes::copy_from(&[1; 32]))
                .unwrap()
                .to_hex(),
            tee_key_id: "11".repeat(16),
            provider_key_id: "22".repeat(16),
            validations,
            created: "2026-12-06T08:00:00Z".into(),
            rotate_after_secs: None,
            revocation_interval_secs: None,
            format: ImportFormat::Veritee,
            wrapped_sha256: None,
            release: None,
            task_signers: Vec::new(),
        }
    }

    #[test]
    fn a_standard_format_is_bound_by_its_digest_and_carries_the_key_alone() {
        let wrapped = Some("ab".repeat(32));
        let mut m = metadata(vec![]);
        m.format = ImportFormat::RsaAesKeyWrap;
        let err = m.check().unwrap_err().to_string();
        assert!(err.contains("needs wrapped_sha256"), "{err}");
        m.wrapped_sha256 = Some("ab".repeat(31));
        let err = m.check().unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        m.wrapped_sha256 = wrapped.clone();
        assert!(m.check().unwrap().is_some());
        // Wrapped by the customer's own tooling: no check value stated.
        m.key_check.clear();
        assert!(m.check().unwrap().is_none());
        m.revocation_interval_secs = Some(600);
        let err = m.check().unwrap_err().to_string();
        assert!(
            err.contains("revocation data need veritee's own format"),
            "{err}"
        );
        // Veritee's own format: a check value always, and no wrapped digest.
        let mut own = metadata(vec![]);
        own.wrapped_sha256 = wrapped;
        let err = own.check().unwrap_err().to_string();
        assert!(
            err.contains("wrapped_sha256 is for the standard formats"),
            "{err}"
        );
        let mut own = metadata(vec![]);
        own.key_check.clear();
        assert!(own.check().is_err());
        // Metadata without the new fields (as signed before they existed) still read.
        let json = serde_json::to_string(&metadata(vec![])).unwrap();
        assert!(
            !json.contains("format") && !json.contains("wrapped_sha256"),
            "{json}"
        );
    }

    #[test]
    fn task_signers_are_tenant_ids_few_and_each_once() {
        let refused = |signers: Vec<String>, word: &str| {
            let mut m = metadata(Vec::new());
            m.task_signers = signers;
            let err = m.check().expect_err(word).to_string();
            assert!(err.contains("task_signers") && err.contains(word), "{err}");
        };
        let mut m = metadata(Vec::new());
        m.task_signers = vec!["ab".repeat(16), "cd".repeat(16)];
        assert!(m.check().is_ok());
        assert!(m.allows_task_signer(&"cd".repeat(16)));
        assert!(!m.allows_task_signer(&"ef".repeat(16)));
        refused(vec!["ab".repeat(15)], "not a tenant id");
        refused(vec!["AB".repeat(16)], "not a tenant id");
        refused(vec!["zz".repeat(16)], "not a tenant id");
        refused(vec!["ab".repeat(16), "ab".repeat(16)], "named twice");
        refused(
            (0..=MAX_TASK_SIGNERS)
                .map(|i| format!("{i:032x}"))
                .collect(),
            "at most 16",
        );
        // Metadata signed before the field existed read as allowing no task, and an
        // empty list is not written, so what was signed then is what is signed now.
        let old = serde_json::to_vec(&metadata(Vec::new())).unwrap();
        assert!(!String::from_utf8_lossy(&old).contains("task_signers"));
        let back: ImportMetadata = serde_json::from_slice(&old).unwrap();
        assert!(back.task_signers.is_empty() && !back.allows_task_signer(&"00".repeat(16)));
    }

    #[test]
    fn what_is_signed_opens_and_what_could_not_open_is_not_signed() {
        let tenant = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
        let spki = tenant.public_key_spki().unwrap();
        let sign = |m: &ImportMetadata| {
            SignedMetadata::sign(m, |b| {
                tenant
                    .sign(b)
                    .map_err(|e| ImportError::Malformed(e.to_string()))
            })
        };
        let signed = sign(&metadata(vec!["tee-key: checked".into()])).unwrap();
        assert!(signed.open(&spki).is_ok());
        // Tampered (one byte) or truncated: the signature no longer holds.
        let mut flipped = signed.clone();
        flipped.bytes[10] ^= 1;
        assert!(flipped.open(&spki).is_err());
        let mut short = signed.clone();
        short.bytes.truncate(short.bytes.len() - 1);
        assert!(short.open(&spki).is_err());
        // The most validations `check` allows, each of the longest: too big to open,
        // so refused before signing.
        let big = metadata(vec!["v".repeat(MAX_VALIDATION_LEN); MAX_VALIDATIONS]);
        assert!(big.check().is_ok());
        let err = sign(&big).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");
    }
}
