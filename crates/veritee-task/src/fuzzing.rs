//! Outer layers for fuzzing (feature `fuzzing`): a key delivery and a result envelope
//! whose authentication passes around bytes the fuzzer chose, so the parsers behind
//! those checks are fuzzed too. Nothing here is used outside fuzz targets.

use crate::TaskError;
use crate::keys::info;
use crate::results::MAC_LABEL;
use veritee_crypto::hpke::{self, HpkePublicKey};

/// A delivery to `skek` whose HPKE plaintext is `plain` (a delivery's inner layout,
/// or anything else).
pub fn seal_delivery_plaintext(
    skek: &HpkePublicKey,
    ttis_digest: &[u8; 32],
    plain: &[u8],
) -> Result<Vec<u8>, TaskError> {
    let (enc, mut ctx) = hpke::setup_sender(skek, &info(ttis_digest))?;
    let ct = ctx.seal(b"", plain)?;
    let mut out = enc.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// A result envelope whose MAC under `mac_key` covers `body` (meant to be JSON, but
/// any text), so `open_envelope` gets past the MAC to the body.
pub fn envelope_around(mac_key: &[u8; 32], body: &str) -> Vec<u8> {
    let mut signed = MAC_LABEL.to_vec();
    signed.extend_from_slice(body.as_bytes());
    let mac = veritee_crypto::mac::hmac_sha256(mac_key, &signed);
    format!("{{\"body\":{body},\"mac\":\"{}\"}}", hex::encode(mac)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::open_delivery;
    use crate::results::open_envelope;
    use veritee_crypto::Confidential;
    use veritee_crypto::hpke::HpkeKeyPair;

    #[test]
    fn the_outer_layers_pass_and_the_inner_parsers_are_reached() {
        let skek = HpkeKeyPair::generate();
        let delivery =
            seal_delivery_plaintext(&skek.public_key(), &[7u8; 32], &[0, 1, 200]).unwrap();
        let Err(err) = open_delivery(&skek, &[7u8; 32], &[9u8; 32], &delivery) else {
            panic!("a truncated inner layout opened");
        };
        assert!(err.to_string().contains("truncated"), "{err}");
        let envelope = envelope_around(&[1u8; 32], r#"{"task_id":"x"}"#);
        let Err(err) = open_envelope(
            &envelope,
            &Confidential::new([1u8; 32]),
            &[3u8; 16],
            time::Duration::minutes(10),
            time::OffsetDateTime::now_utc(),
            |_| None,
        ) else {
            panic!("a body missing its fields opened");
        };
        assert!(err.to_string().contains("malformed result"), "{err}");
    }
}
