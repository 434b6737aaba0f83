//! The vendor's validator: "is this TEE's machine one I certified, issued to this
//! provider, and not revoked?", answered over the customer's fresh nonce and signed
//! with the vendor's root key, which the customer pins (the same root its evidence
//! chains to). It complements the evidence's own chain and revocation lists, which
//! may be as old as their collateral: the validator answers now.

use crate::ImportError;
use serde::{Deserialize, Serialize};
use veritee_crypto::sign::{self, EcdsaSigningKey, VerificationScheme};

/// Label of the vendor's signature.
pub const VALIDATION_LABEL: &[u8] = b"veritee vendor validation v1\0";
/// Largest answer read.
pub const MAX_ANSWER_LEN: usize = 4096;

/// The customer's question (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationQuery {
    /// The machine (platform id from the evidence), hex.
    pub machine_id: String,
    /// The provider's key the customer pinned, hex.
    pub provider: String,
    /// The customer's fresh nonce, hex.
    pub nonce: String,
}

/// What the vendor states (JSON, signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationStatement {
    /// The question, repeated.
    pub query: ValidationQuery,
    /// Whether the vendor certified this machine.
    pub certified: bool,
    /// Whether the vendor revoked it.
    pub revoked: bool,
    /// Whether the vendor issued it to this provider.
    pub issued_to_provider: bool,
}

/// The vendor's answer (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationAnswer {
    /// The statement's JSON, hex.
    pub statement: String,
    /// ECDSA P-384 SHA-384 `r || s` by the vendor's root key over label || statement, hex.
    pub signature: String,
}

fn signed_bytes(statement: &[u8]) -> Vec<u8> {
    let mut out = VALIDATION_LABEL.to_vec();
    out.extend_from_slice(statement);
    out
}

/// The vendor's side: states the machine's standing, signed.
pub fn answer(
    root_key: &EcdsaSigningKey,
    statement: &ValidationStatement,
) -> Result<ValidationAnswer, ImportError> {
    let bytes = serde_json::to_vec(statement).map_err(|e| ImportError::Malformed(e.to_string()))?;
    let signature = root_key.sign(&signed_bytes(&bytes))?;
    Ok(ValidationAnswer {
        statement: hex::encode(bytes),
        signature: hex::encode(signature),
    })
}

/// The customer's side: checks the answer to `query` against the pinned vendor root's
/// public key (SPKI DER, P-384) and accepts only a machine certified, not revoked and
/// issued to the provider; names what is wrong.
pub fn check_answer(
    root_spki: &[u8],
    query: &ValidationQuery,
    answer: &[u8],
) -> Result<ValidationStatement, ImportError> {
    let refuse =
        |why: String| ImportError::BadSignature(format!("vendor validation refused: {why}"));
    if answer.len() > MAX_ANSWER_LEN {
        return Err(refuse("the answer is oversized".into()));
    }
    let a: ValidationAnswer =
        serde_json::from_slice(answer).map_err(|_| refuse("not a validation answer".into()))?;
    let statement = hex::decode(&a.statement).map_err(|_| refuse("statement is not hex".into()))?;
    let signature = hex::decode(&a.signature).map_err(|_| refuse("signature is not hex".into()))?;
    sign::verify(
        VerificationScheme::EcdsaP384Sha384Fixed,
        root_spki,
        &signed_bytes(&statement),
        &signature,
    )
    .map_err(|_| refuse("it is not signed by the pinned vendor root".into()))?;
    let s: ValidationStatement =
        serde_json::from_slice(&statement).map_err(|_| refuse("unreadable statement".into()))?;
    if s.query != *query {
        return Err(refuse(
            "it answers another question (another machine, provider or nonce: replayed or swapped)"
                .into(),
        ));
    }
    let machine = &query.machine_id;
    if !s.certified {
        return Err(ImportError::Forbidden(format!(
            "the vendor says it never certified machine {machine}"
        )));
    }
    if s.revoked {
        return Err(ImportError::Forbidden(format!(
            "the vendor says machine {machine} is revoked"
        )));
    }
    if !s.issued_to_provider {
        return Err(ImportError::Forbidden(format!(
            "the vendor says machine {machine} was not issued to provider {}",
            query.provider
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::sign::EcdsaCurve;

    #[test]
    fn only_the_pinned_vendor_vouches_and_only_for_this_question() {
        let root = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
        let spki = root.public_key_spki().unwrap();
        let query = ValidationQuery {
            machine_id: "00".repeat(16),
            provider: "ab".repeat(32),
            nonce: "11".repeat(32),
        };
        let standing = |revoked, issued| ValidationStatement {
            query: query.clone(),
            certified: true,
            revoked,
            issued_to_provider: issued,
        };
        let json = |a: ValidationAnswer| serde_json::to_vec(&a).unwrap();
        let good = json(answer(&root, &standing(false, true)).unwrap());
        assert!(check_answer(&spki, &query, &good).is_ok());
        let err = |r: Result<ValidationStatement, ImportError>| r.unwrap_err().to_string();
        assert!(
            err(check_answer(
                &spki,
                &query,
                &json(answer(&root, &standing(true, true)).unwrap())
            ))
            .contains("is revoked")
        );
        assert!(
            err(check_answer(
                &spki,
                &query,
                &json(answer(&root, &standing(false, false)).unwrap())
            ))
            .contains("not issued to provider")
        );
        let other = EcdsaSigningKey::generate(EcdsaCurve::P384).unwrap();
        assert!(
            err(check_answer(
                &spki,
                &query,
                &json(answer(&other, &standing(false, true)).unwrap())
            ))
            .contains("pinned vendor root")
        );
        let mut later = query.clone();
        later.nonce = "22".repeat(32);
        assert!(err(check_answer(&spki, &later, &good)).contains("another question"));
        assert!(check_answer(&spki, &query, &good[..good.len() - 5]).is_err());
        // Every byte of the statement and of the signature is covered: a flip anywhere
        // (a "revoked": true turned false, a nonce moved) is refused.
        let sent = answer(&root, &standing(false, true)).unwrap();
        let (statement, signature) = (
            hex::decode(&sent.statement).unwrap(),
            hex::decode(&sent.signature).unwrap(),
        );
        for (which, bytes) in [(0, &statement), (1, &signature)] {
            for i in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[i] ^= 0x01;
                let mut tampered = sent.clone();
                if which == 0 {
                    tampered.statement = hex::encode(&flipped);
                } else {
                    tampered.signature = hex::encode(&flipped);
                }
                assert!(check_answer(&spki, &query, &json(tampered)).is_err());
            }
        }
        // A signature lifted from another (revoked) answer does not carry over.
        let mut swapped = sent.clone();
        swapped.signature = answer(&root, &standing(true, true)).unwrap().signature;
        assert!(err(check_answer(&spki, &query, &json(swapped))).contains("pinned vendor root"));
        assert!(
            err(check_answer(&spki, &query, &vec![b' '; MAX_ANSWER_LEN + 1])).contains("oversized")
        );
    }
}
