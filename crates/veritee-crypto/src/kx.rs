//! Static X25519 key agreement (RFC 7748), for keys derived from a long-term secret.
//!
//! HPKE (see [`crate::hpke`]) covers encryption to a public key with a fresh ephemeral
//! key. Some exchanges need a static key on the sender's side as well: a key both ends
//! can recompute later from their long-term secrets alone. This module gives that one
//! operation, over aws-lc-rs.

use crate::{Confidential, CryptoError};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};

/// Length of an X25519 key, private or public.
pub const X25519_KEY_LEN: usize = 32;

/// A static X25519 private key.
pub struct X25519Secret(Confidential<[u8; X25519_KEY_LEN]>);

impl core::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

impl X25519Secret {
    /// The private key whose scalar is `bytes` (clamped when used, per RFC 7748).
    pub fn from_bytes(bytes: Confidential<[u8; X25519_KEY_LEN]>) -> Self {
        Self(bytes)
    }

    fn key(&self) -> Result<PrivateKey, CryptoError> {
        PrivateKey::from_private_key(&X25519, self.0.expose())
            .map_err(|_| CryptoError::InvalidKey("X25519 private key"))
    }

    /// The public key.
    pub fn public_key(&self) -> Result<[u8; X25519_KEY_LEN], CryptoError> {
        let public = self
            .key()?
            .compute_public_key()
            .map_err(|_| CryptoError::Operation("X25519 public key"))?;
        let mut out = [0u8; X25519_KEY_LEN];
        let bytes = public.as_ref();
        if bytes.len() != X25519_KEY_LEN {
            return Err(CryptoError::Operation("X25519 public key"));
        }
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The shared secret with `peer`'s public key. Refuses a peer key that gives the
    /// all-zero output (a low-order point), as RFC 7748 section 6.1 advises.
    pub fn agree(&self, peer: &[u8]) -> Result<Confidential<[u8; X25519_KEY_LEN]>, CryptoError> {
        if peer.len() != X25519_KEY_LEN {
            return Err(CryptoError::KeyLength {
                what: "X25519 public key",
                expected: X25519_KEY_LEN,
                actual: peer.len(),
            });
        }
        let key = self.key()?;
        let mut out = Confidential::new([0u8; X25519_KEY_LEN]);
        agreement::agree(
            &key,
            UnparsedPublicKey::new(&X25519, peer),
            CryptoError::Operation("X25519 key agreement"),
            |shared| {
                // aws-lc-rs already fails the agreement on an all-zero output (as its
                // `agreement::X25519` documents; `aws_lc_refuses_low_order_points`
                // checks it). The check is kept so that the refusal does not rest on
                // a dependency's promise alone, and made in constant time so that it
                // reveals nothing of the secret.
                if shared.len() != X25519_KEY_LEN || crate::ct_eq(shared, &[0u8; X25519_KEY_LEN]) {
                    return Err(CryptoError::Operation("X25519 key agreement"));
                }
                out.expose_mut().copy_from_slice(shared);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    #[test]
    fn rfc7748_section_6_1_known_answer() {
        let alice = X25519Secret::from_bytes(Confidential::new(hex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )));
        let bob = X25519Secret::from_bytes(Confidential::new(hex32(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        )));
        let alice_pub = alice.public_key().unwrap();
        let bob_pub = bob.public_key().unwrap();
        assert_eq!(
            hex::encode(alice_pub),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            hex::encode(bob_pub),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
        );
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        assert_eq!(hex::encode(alice.agree(&bob_pub).unwrap().expose()), shared);
        assert_eq!(hex::encode(bob.agree(&alice_pub).unwrap().expose()), shared);
    }

    #[test]
    fn bad_peer_keys_are_refused() {
        let k = X25519Secret::from_bytes(Confidential::new([7u8; 32]));
        assert!(k.agree(&[1u8; 31]).is_err());
        // The all-zero point has order 1: the output would be all zeros.
        assert!(k.agree(&[0u8; 32]).is_err());
        // u = 1 is another low-order point (order 4): the output is all zeros too.
        assert!(
            k.agree(&hex32(
                "0100000000000000000000000000000000000000000000000000000000000000"
            ))
            .is_err()
        );
        assert_eq!(format!("{k:?}"), "X25519Secret(<redacted>)");
        assert_eq!(format!("{k:#?}"), "X25519Secret(<redacted>)");
    }

    #[test]
    fn aws_lc_refuses_low_order_points() {
        // Without our own check: aws-lc-rs alone refuses the all-zero output.
        let k = X25519Secret::from_bytes(Confidential::new([7u8; 32]));
        for low_order in [
            [0u8; 32],
            hex32("0100000000000000000000000000000000000000000000000000000000000000"),
        ] {
            let key = k.key().unwrap();
            let agreed = agreement::agree(
                &key,
                UnparsedPublicKey::new(&X25519, &low_order),
                "refused",
                |_| Ok::<(), &str>(()),
            );
            assert_eq!(agreed, Err("refused"), "{}", hex::encode(low_order));
        }
    }
}
