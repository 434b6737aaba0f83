//! Revocation of an imported key by its owner, checked by the enclave.
//!
//! The customer puts revocation data inside the TEE layer of an import: the endpoint's
//! URL, the endpoint's Ed25519 public key, a random token shared with the endpoint, and
//! how often to ask. The enclave asks before the key's first use and then at that
//! interval, which it bounds to [`MIN_INTERVAL_SECS`]..=[`MAX_INTERVAL_SECS`]. The host
//! relays the question and the answer, so both are protected against it:
//! - the question carries the token's id and an HMAC of a fresh nonce under the token
//!   (the token itself never leaves the enclave), so only an enclave holding the token
//!   can ask, and the endpoint's answer covers that nonce;
//! - the answer is signed by the endpoint's key, which came inside the encrypted layer,
//!   so the host can neither forge one nor replay an old "active".
//!
//! An answer "revoked" disables the key for good. A host that keeps the endpoint silent
//! buys at most [`MAX_INTERVAL_SECS`] after the last good answer; then use is suspended
//! until the endpoint answers again.

use crate::ImportError;
use serde::{Deserialize, Serialize};
use veritee_crypto::Confidential;
use veritee_crypto::sign::{self, Ed25519SigningKey, VerificationScheme};

/// Shortest interval between checks the enclave accepts.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// Longest interval between checks, and the longest silence the enclave tolerates
/// after the last good answer before it suspends use.
pub const MAX_INTERVAL_SECS: u64 = 86_400;
/// Length of a revocation token.
pub const TOKEN_LEN: usize = 32;
/// Longest endpoint URL.
pub const MAX_ENDPOINT_LEN: usize = 512;
/// Largest answer read.
pub const MAX_ANSWER_LEN: usize = 4096;
const PROOF_LABEL: &[u8] = b"veritee revocation query v1\0";
/// Label of the endpoint's signature over its answer.
pub const ANSWER_LABEL: &[u8] = b"veritee revocation answer v1\0";

/// What the customer gives the enclave for one key.
pub struct RevocationData {
    /// Where to ask (http or https).
    pub endpoint: String,
    /// The Ed25519 key the endpoint signs its answers with.
    pub endpoint_key: [u8; 32],
    /// The token shared with the endpoint.
    pub token: Confidential<[u8; TOKEN_LEN]>,
    /// Seconds between checks.
    pub interval_secs: u64,
}

impl core::fmt::Debug for RevocationData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RevocationData")
            .field("endpoint", &self.endpoint)
            .field("token_id", &self.token_id())
            .field("interval_secs", &self.interval_secs)
            .finish()
    }
}

/// The endpoint's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationStatus {
    /// The key may be used.
    Active,
    /// The key is revoked, for good.
    Revoked,
}

/// The enclave's question (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationQuery {
    /// Which token (hex of 16 bytes of its SHA-256).
    pub token_id: String,
    /// The enclave's fresh nonce, hex.
    pub nonce: String,
    /// HMAC-SHA-256(token, label || nonce), hex: proof the asker holds the token.
    pub proof: String,
}

/// What the endpoint states (JSON, signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationStatement {
    /// The token asked about.
    pub token_id: String,
    /// The question's nonce.
    pub nonce: String,
    /// The verdict.
    pub status: RevocationStatus,
}

/// The endpoint's answer (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationAnswer {
    /// The statement's JSON, hex.
    pub statement: String,
    /// Ed25519 over label || statement, hex.
    pub signature: String,
}

/// The id of a token.
pub fn token_id(token: &[u8; TOKEN_LEN]) -> String {
    hex::encode(&veritee_crypto::digest::sha256(token)[..16])
}

fn proof(token: &[u8; TOKEN_LEN], nonce: &[u8]) -> [u8; 32] {
    let mut msg = PROOF_LABEL.to_vec();
    msg.extend_from_slice(nonce);
    veritee_crypto::mac::hmac_sha256(token, &msg)
}

fn signed_bytes(statement: &[u8]) -> Vec<u8> {
    let mut out = ANSWER_LABEL.to_vec();
    out.extend_from_slice(statement);
    out
}

impl RevocationData {
    /// Checks the endpoint and the interval; names what is wrong.
    pub fn check(&self) -> Result<(), ImportError> {
        let bad = |what: String| ImportError::Malformed(format!("revocation data: {what}"));
        if self.endpoint.len() > MAX_ENDPOINT_LEN
            || !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"))
        {
            return Err(bad(format!(
                "the endpoint must be an http or https URL of at most {MAX_ENDPOINT_LEN} bytes"
            )));
        }
        check_interval(self.interval_secs)
    }

    /// The token's id.
    pub fn token_id(&self) -> String {
        token_id(self.token.expose())
    }

    /// The question for `nonce`, as JSON.
    pub fn query(&self, nonce: &[u8]) -> Vec<u8> {
        let q = RevocationQuery {
            token_id: self.token_id(),
            nonce: hex::encode(nonce),
            proof: hex::encode(proof(self.token.expose(), nonce)),
        };
        serde_json::to_vec(&q).unwrap_or_default()
    }

    /// Reads the endpoint's answer to the question for `nonce`.
    pub fn read_answer(
        &self,
        nonce: &[u8],
        answer: &[u8],
    ) -> Result<RevocationStatus, ImportError> {
        let refuse =
            |why: &str| ImportError::BadSignature(format!("revocation answer refused: {why}"));
        if answer.len() > MAX_ANSWER_LEN {
            return Err(refuse("it is oversized"));
        }
        let a: RevocationAnswer =
            serde_json::from_slice(answer).map_err(|_| refuse("it is not an answer"))?;
        let statement = hex::decode(&a.statement).map_err(|_| refuse("statement is not hex"))?;
        let signature = hex::decode(&a.signature).map_err(|_| refuse("signature is not hex"))?;
        sign::verify(
            VerificationScheme::Ed25519,
            &self.endpoint_key,
            &signed_bytes(&statement),
            &signature,
        )
        .map_err(|_| refuse("it is not signed by the endpoint's key"))?;
        let s: RevocationStatement =
            serde_json::from_slice(&statement).map_err(|_| refuse("unreadable statement"))?;
        if s.token_id != self.token_id() {
            return Err(refuse("it is about another token"));
        }
        if !veritee_crypto::ct_eq(s.nonce.as_bytes(), hex::encode(nonce).as_bytes()) {
            return Err(refuse("it answers another question (a replayed answer)"));
        }
        Ok(s.status)
    }
}

/// Checks a check interval against the enclave's bounds.
pub fn check_interval(secs: u64) -> Result<(), ImportError> {
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&secs) {
        return Err(ImportError::Malformed(format!(
            "revocation data: the check interval is {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS} seconds, not {secs}"
        )));
    }
    Ok(())
}

/// The endpoint's side: checks a question's proof against the token it holds for the
/// id (`None`: unknown, answered as revoked) and answers, signed.
pub fn answer(
    key: &Ed25519SigningKey,
    query: &RevocationQuery,
    token: Option<&[u8; TOKEN_LEN]>,
    revoked: bool,
) -> Result<RevocationAnswer, ImportError> {
    let nonce = hex::decode(&query.nonce)
        .ok()
        .filter(|n| (16..=64).contains(&n.len()))
        .ok_or_else(|| {
            ImportError::Malformed("revocation query: nonce must be 16 to 64 bytes of hex".into())
        })?;
    let status = match token {
        Some(token) => {
            let given = hex::decode(&query.proof).unwrap_or_default();
            if !veritee_crypto::ct_eq(&proof(token, &nonce), &given) {
                return Err(ImportError::BadSignature(
                    "revocation query: the proof does not match the token".into(),
                ));
            }
            if revoked {
                RevocationStatus::Revoked
            } else {
                RevocationStatus::Active
            }
        }
        // A token the endpoint no longer knows was withdrawn by its owner.
        None => RevocationStatus::Revoked,
    };
    let statement = serde_json::to_vec(&RevocationStatement {
        token_id: query.token_id.clone(),
        nonce: query.nonce.clone(),
        status,
    })
    .map_err(|e| ImportError::Malformed(e.to_string()))?;
    let signature = key.sign(&signed_bytes(&statement))?;
    Ok(RevocationAnswer {
        statement: hex::encode(statement),
        signature: hex::encode(signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(key: &Ed25519SigningKey) -> RevocationData {
        RevocationData {
            endpoint: "http://127.0.0.1:9/revocation".into(),
            endpoint_key: key.public_key(),
            token: Confidential::new([7u8; TOKEN_LEN]),
            interval_secs: 60,
        }
    }

    #[test]
    fn only_the_endpoint_answers_and_only_this_question() {
        let endpoint = Ed25519SigningKey::generate().unwrap();
        let d = data(&endpoint);
        assert!(!format!("{d:?}").contains("0707"));
        let nonce = [1u8; 32];
        let q: RevocationQuery = serde_json::from_slice(&d.query(&nonce)).unwrap();
        let token = [7u8; TOKEN_LEN];
        let json = |a: &RevocationAnswer| serde_json::to_vec(a).unwrap();
        let active = answer(&endpoint, &q, Some(&token), false).unwrap();
        assert_eq!(
            d.read_answer(&nonce, &json(&active)).unwrap(),
            RevocationStatus::Active
        );
        let revoked = answer(&endpoint, &q, Some(&token), true).unwrap();
        assert_eq!(
            d.read_answer(&nonce, &json(&revoked)).unwrap(),
            RevocationStatus::Revoked
        );
        assert_eq!(
            d.read_answer(&nonce, &json(&answer(&endpoint, &q, None, false).unwrap()))
                .unwrap(),
            RevocationStatus::Revoked
        );
        // An old "active" replayed for a new question; one signed by another key; a
        // flipped statement; garbage; oversized.
        let err = |r: Result<RevocationStatus, ImportError>| r.unwrap_err().to_string();
        assert!(err(d.read_answer(&[2u8; 32], &json(&active))).contains("replayed"));
        let other = Ed25519SigningKey::generate().unwrap();
        let forged = answer(&other, &q, Some(&token), false).unwrap();
        assert!(err(d.read_answer(&nonce, &json(&forged))).contains("not signed"));
        let mut flipped = active.clone();
        flipped.statement = flipped
            .statement
            .replace(&hex::encode("active"), &hex::encode("revokd"));
        assert!(d.read_answer(&nonce, &json(&flipped)).is_err());
        assert!(err(d.read_answer(&nonce, b"{}")).contains("not an answer"));
        assert!(err(d.read_answer(&nonce, &vec![b' '; MAX_ANSWER_LEN + 1])).contains("oversized"));
        // The endpoint refuses a question without the token.
        let mut wrong = q.clone();
        wrong.proof = hex::encode([0u8; 32]);
        assert!(answer(&endpoint, &wrong, Some(&token), false).is_err());
        let mut short = q;
        short.nonce = "00".into();
        assert!(answer(&endpoint, &short, Some(&token), false).is_err());
    }

    #[test]
    fn endpoints_and_intervals_are_bounded() {
        let endpoint = Ed25519SigningKey::generate().unwrap();
        let mut d = data(&endpoint);
        assert!(d.check().is_ok());
        d.interval_secs = 59;
        assert!(d.check().unwrap_err().to_string().contains("60 to 86400"));
        d.interval_secs = MAX_INTERVAL_SECS + 1;
        assert!(d.check().is_err());
        d.interval_secs = 60;
        d.endpoint = "file:///etc/passwd".into();
        assert!(d.check().is_err());
    }
}
