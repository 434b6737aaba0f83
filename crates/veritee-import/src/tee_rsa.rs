//! The enclave's RSA import key, for keys that arrive in the CKM_RSA_AES_KEY_WRAP
//! format ([`crate::formats`]): made and kept in the enclave, and stated by the
//! enclave's audit key, which the enclave's evidence binds. So a customer who
//! appraised the evidence trusts the RSA key as far as the X25519 one.

use crate::ImportError;
use serde::{Deserialize, Serialize};

/// Label of the audit key's signature over a [`TeeRsaKeyStatement`].
pub const TEE_RSA_KEY_LABEL: &[u8] = b"veritee import tee rsa key v1";
/// Size of the enclave's RSA import key (what Google Cloud KMS and AWS KMS offer as
/// their import wrapping key's usual size).
pub const TEE_RSA_KEY_BITS: usize = 3072;
/// Longest statement read (a 4096-bit key's SPKI is about 550 bytes, twice in hex).
pub const MAX_STATEMENT_LEN: usize = 2048;

/// What the enclave states about its RSA import key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeRsaKeyStatement {
    /// The node whose enclave holds it.
    pub node_id: String,
    /// Its SubjectPublicKeyInfo (DER), hex.
    pub public_key: String,
}

impl TeeRsaKeyStatement {
    /// Reads a statement's JSON body and checks it names `node_id`; returns the key's
    /// SPKI DER.
    pub fn read(body: &[u8], node_id: &str) -> Result<Vec<u8>, ImportError> {
        let bad = |what: &str| ImportError::Malformed(format!("the TEE's RSA key: {what}"));
        if body.len() > MAX_STATEMENT_LEN {
            return Err(bad("its statement is too long"));
        }
        let statement: TeeRsaKeyStatement = serde_json::from_slice(body)
            .map_err(|_| bad("its statement is not JSON of the expected shape"))?;
        if statement.node_id != node_id {
            return Err(ImportError::Forbidden(format!(
                "the TEE's RSA key is stated for node {}, the evidence is node {node_id}'s",
                statement.node_id
            )));
        }
        let spki =
            hex::decode(&statement.public_key).map_err(|_| bad("its public key is not hex"))?;
        veritee_crypto::rsa::check_public_key(&spki)
            .map_err(|e| bad(&format!("its public key is refused: {e}")))?;
        Ok(spki)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::rsa::RsaPrivateKey;

    fn body(node_id: &str, public_key: String) -> Vec<u8> {
        serde_json::to_vec(&TeeRsaKeyStatement {
            node_id: node_id.into(),
            public_key,
        })
        .unwrap()
    }

    #[test]
    fn a_statement_names_its_node_and_an_rsa_key_of_an_accepted_size() {
        let spki = RsaPrivateKey::generate(2048)
            .unwrap()
            .public_key_spki()
            .unwrap();
        let good = body("00112233", hex::encode(&spki));
        assert_eq!(TeeRsaKeyStatement::read(&good, "00112233").unwrap(), spki);
        let refused = |bytes: &[u8], node: &str, word: &str| {
            let err = TeeRsaKeyStatement::read(bytes, node)
                .unwrap_err()
                .to_string();
            assert!(err.contains(word), "{word}: {err}");
        };
        refused(&good, "44556677", "stated for node 00112233");
        for cut in [0, 1, good.len() / 2, good.len() - 1] {
            refused(&good[..cut], "00112233", "not JSON");
        }
        let mut longer = good.clone();
        longer.extend_from_slice(&vec![b' '; MAX_STATEMENT_LEN]);
        refused(&longer, "00112233", "too long");
        let mut extra: serde_json::Value = serde_json::from_slice(&good).unwrap();
        extra["rsa_bits"] = 4096.into();
        refused(&serde_json::to_vec(&extra).unwrap(), "00112233", "not JSON");
        refused(&body("00112233", "zz".into()), "00112233", "not hex");
        let mut flipped = spki.clone();
        flipped[3] ^= 0x40;
        refused(
            &body("00112233", hex::encode(&flipped)),
            "00112233",
            "refused",
        );
        // Not an RSA key at all (an EC key's SPKI), and an RSA key below 2048 bits.
        let ec =
            veritee_crypto::sign::EcdsaSigningKey::generate(veritee_crypto::sign::EcdsaCurve::P256)
                .unwrap()
                .public_key_spki()
                .unwrap();
        refused(&body("00112233", hex::encode(ec)), "00112233", "refused");
        let small = include_bytes!("../../veritee-crypto/tests/data/rsa1024_spki.der");
        refused(
            &body("00112233", hex::encode(small)),
            "00112233",
            "1024 bits",
        );
    }
}
