//! The provider's answer for its own import key: "this host key is mine, for this
//! node, now", signed with the provider's Ed25519 key over the customer's fresh nonce
//! (a provider revokes a host key by no longer vouching for it). The customer pins the provider's key (obtained out of band), so a man
//! in the middle that swaps the host key, or replays an older answer, is refused.

use crate::ImportError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use veritee_crypto::sign::{self, Ed25519SigningKey, VerificationScheme};

/// Label of the provider's signature.
pub const PROVIDER_SIGNATURE_LABEL: &[u8] = b"veritee provider key statement v1\0";
/// Largest statement.
pub const MAX_STATEMENT_LEN: usize = 4096;

/// What the provider states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderStatement {
    /// The provider's Ed25519 public key, hex (who states it).
    pub provider: String,
    /// The host's import key (HPKE X25519 public key), hex.
    pub host_key: String,
    /// The node it serves.
    pub node_id: String,
    /// The customer's nonce, hex.
    pub nonce: String,
    /// When it was stated, RFC 3339.
    pub issued: String,
}

/// A statement and the provider's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedProviderStatement {
    /// The statement's JSON, hex-free: base64 in the API, raw here.
    #[serde(with = "serde_bytes")]
    pub statement: Vec<u8>,
    /// Ed25519 over [`PROVIDER_SIGNATURE_LABEL`] and the statement.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

fn signed_bytes(statement: &[u8]) -> Vec<u8> {
    let mut out = PROVIDER_SIGNATURE_LABEL.to_vec();
    out.extend_from_slice(statement);
    out
}

impl SignedProviderStatement {
    /// The provider states `statement` with `key`.
    pub fn sign(
        key: &Ed25519SigningKey,
        statement: &ProviderStatement,
    ) -> Result<Self, ImportError> {
        let statement = serde_json::to_vec(statement)
            .map_err(|e| ImportError::Malformed(format!("provider statement: {e}")))?;
        let signature = key.sign(&signed_bytes(&statement))?.to_vec();
        Ok(Self {
            statement,
            signature,
        })
    }

    /// Checks the statement against the pinned provider key, the customer's nonce,
    /// the node and the time; returns the host key it vouches for.
    pub fn validate(
        &self,
        pinned_provider: &[u8; 32],
        nonce: &[u8],
        node_id: &str,
        now: OffsetDateTime,
        max_age: time::Duration,
    ) -> Result<ProviderStatement, ImportError> {
        let refuse =
            |why: String| ImportError::BadSignature(format!("provider key refused: {why}"));
        if self.statement.len() > MAX_STATEMENT_LEN {
            return Err(refuse(format!(
                "a statement of {} bytes (at most {MAX_STATEMENT_LEN})",
                self.statement.len()
            )));
        }
        sign::verify(
            VerificationScheme::Ed25519,
            pinned_provider,
            &signed_bytes(&self.statement),
            &self.signature,
        )
        .map_err(|_| {
            refuse("it is not signed by the pinned provider key (swapped in transit, or another provider)".into())
        })?;
        let s: ProviderStatement = serde_json::from_slice(&self.statement)
            .map_err(|e| refuse(format!("unreadable statement: {e}")))?;
        if s.provider != hex::encode(pinned_provider) {
            return Err(refuse(
                "it names another provider than the pinned one".into(),
            ));
        }
        if !veritee_crypto::ct_eq(s.nonce.as_bytes(), hex::encode(nonce).as_bytes()) {
            return Err(refuse(
                "it answers another nonce (a replayed answer)".into(),
            ));
        }
        if s.node_id != node_id {
            return Err(refuse(format!(
                "it is for node {}, not node {node_id}",
                s.node_id
            )));
        }
        let issued = OffsetDateTime::parse(&s.issued, &Rfc3339)
            .map_err(|_| refuse(format!("issued {:?} is not RFC 3339", s.issued)))?;
        if issued > now + max_age || now - issued > max_age {
            return Err(refuse(format!(
                "issued at {} which is more than {max_age} away from now",
                s.issued
            )));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(provider: &Ed25519SigningKey, nonce: &[u8]) -> ProviderStatement {
        ProviderStatement {
            provider: hex::encode(provider.public_key()),
            host_key: "ab".repeat(32),
            node_id: "0011223344556677".into(),
            nonce: hex::encode(nonce),
            issued: OffsetDateTime::now_utc().format(&Rfc3339).unwrap(),
        }
    }

    #[test]
    fn the_pinned_provider_fresh_nonce_and_node_are_required() {
        let provider = Ed25519SigningKey::generate().unwrap();
        let pin = provider.public_key();
        let now = OffsetDateTime::now_utc();
        let age = time::Duration::minutes(5);
        let nonce = [3u8; 32];
        let signed =
            SignedProviderStatement::sign(&provider, &statement(&provider, &nonce)).unwrap();
        let s = signed
            .validate(&pin, &nonce, "0011223344556677", now, age)
            .unwrap();
        assert_eq!(s.host_key, "ab".repeat(32));

        let other = Ed25519SigningKey::generate().unwrap();
        let err = |r: Result<ProviderStatement, ImportError>| r.unwrap_err().to_string();
        // A man in the middle signing with its own key.
        let mitm = SignedProviderStatement::sign(&other, &statement(&other, &nonce)).unwrap();
        assert!(err(mitm.validate(&pin, &nonce, "0011223344556677", now, age)).contains("pinned"));
        // A swapped host key in a genuine statement.
        let mut swapped = signed.clone();
        let text = String::from_utf8(swapped.statement.clone()).unwrap();
        swapped.statement = text
            .replace(&"ab".repeat(32), &"cd".repeat(32))
            .into_bytes();
        assert!(
            err(swapped.validate(&pin, &nonce, "0011223344556677", now, age)).contains("pinned")
        );
        // Replayed for another nonce, another node, too old, oversized.
        assert!(
            err(signed.validate(&pin, &[4u8; 32], "0011223344556677", now, age)).contains("nonce")
        );
        assert!(err(signed.validate(&pin, &nonce, "8899", now, age)).contains("node"));
        assert!(
            err(signed.validate(
                &pin,
                &nonce,
                "0011223344556677",
                now + time::Duration::hours(1),
                age
            ))
            .contains("away from now")
        );
        let mut big = signed.clone();
        big.statement = vec![b' '; MAX_STATEMENT_LEN + 1];
        assert!(err(big.validate(&pin, &nonce, "0011223344556677", now, age)).contains("at most"));
        let mut truncated = signed;
        truncated.signature.truncate(10);
        assert!(
            truncated
                .validate(&pin, &nonce, "0011223344556677", now, age)
                .is_err()
        );
    }
}
