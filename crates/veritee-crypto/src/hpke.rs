//! RFC 9180 hybrid public-key encryption, one fixed suite:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (ids 0x0020, 0x0001, 0x0002).
//!
//! One suite and no negotiation: every veritee party speaks it, so there is nothing
//! to downgrade. Single-shot [`seal`]/[`open`] carry one message as `enc || ciphertext`;
//! [`setup_sender`]/[`setup_receiver`] give contexts for sessions and the exporter.

use crate::{Confidential, CryptoError, SecretBytes};
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = AesGcm256;

/// Length of an encapsulated key (an X25519 public key).
pub const ENCAPSULATED_KEY_LEN: usize = 32;
/// Length of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a private key.
pub const PRIVATE_KEY_LEN: usize = 32;
/// Length of the AEAD tag on each message.
pub const TAG_LEN: usize = 16;
/// The RFC 9180 identifiers of the suite: (KEM, KDF, AEAD).
pub const SUITE: (u16, u16, u16) = (0x0020, 0x0001, 0x0002);

/// A recipient's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey([u8; PUBLIC_KEY_LEN]);

impl core::fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HpkePublicKey(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl HpkePublicKey {
    /// Parses a public key; rejects a wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            what: "HPKE public key",
            expected: PUBLIC_KEY_LEN,
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    fn to_kem(self) -> Result<<Kem as hpke::Kem>::PublicKey, CryptoError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0)
            .map_err(|_| CryptoError::InvalidKey("HPKE public key"))
    }
}

/// A recipient's key pair. The private half zeroizes on drop and never prints.
pub struct HpkeKeyPair {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: HpkePublicKey,
}

impl core::fmt::Debug for HpkeKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HpkeKeyPair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl HpkeKeyPair {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        let (private, public) = Kem::gen_keypair();
        Self::from_parts(private, &public)
    }

    fn from_parts(
        private: <Kem as hpke::Kem>::PrivateKey,
        public: &<Kem as hpke::Kem>::PublicKey,
    ) -> Self {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        bytes.copy_from_slice(&public.to_bytes());
        Self {
            private,
            public: HpkePublicKey(bytes),
        }
    }

    /// Rebuilds a key pair from its private key bytes (for instance after unsealing).
    pub fn from_private_bytes(
        private: &Confidential<[u8; PRIVATE_KEY_LEN]>,
    ) -> Result<Self, CryptoError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(private.expose())
            .map_err(|_| CryptoError::InvalidKey("HPKE private key"))?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self::from_parts(sk, &pk))
    }

    /// Deterministically derives a key pair (RFC 9180 DeriveKeyPair) from secret input keying material.
    pub fn derive(ikm: &[u8]) -> Self {
        let (private, public) = Kem::derive_keypair(ikm);
        Self::from_parts(private, &public)
    }

    /// The private key bytes, for sealing them.
    pub fn private_bytes(&self) -> Confidential<[u8; PRIVATE_KEY_LEN]> {
        let mut out = Confidential::new([0u8; PRIVATE_KEY_LEN]);
        out.expose_mut().copy_from_slice(&self.private.to_bytes());
        out
    }

    /// The public key.
    pub fn public_key(&self) -> HpkePublicKey {
        self.public
    }
}

/// A sender's context: encrypts a sequence of messages to one recipient.
pub struct SenderContext(hpke::aead::AeadCtxS<Aead, Kdf, Kem>);

/// A recipient's context: decrypts a sequence of messages from one sender.
pub struct ReceiverContext(hpke::aead::AeadCtxR<Aead, Kdf, Kem>);

impl core::fmt::Debug for SenderContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SenderContext(<redacted>)")
    }
}

impl core::fmt::Debug for ReceiverContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ReceiverContext(<redacted>)")
    }
}

fn hpke_err(what: &'static str) -> impl Fn(hpke::HpkeError) -> CryptoError {
    move |e| match e {
        hpke::HpkeError::OpenError => CryptoError::Decrypt,
        _ => CryptoError::Operation(what),
    }
}

impl SenderContext {
    /// Encrypts the next message.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(plaintext, aad).map_err(hpke_err("HPKE seal"))
    }

    /// Derives a secret shared with the recipient (RFC 9180 section 5.3).
    pub fn export(&self, context: &[u8], len: usize) -> Result<SecretBytes, CryptoError> {
        let mut out = SecretBytes::new(vec![0u8; len]);
        self.0
            .export(context, out.expose_mut())
            .map_err(hpke_err("HPKE export"))?;
        Ok(out)
    }
}

impl ReceiverContext {
    /// Decrypts the next message.
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        if ciphertext.len() < TAG_LEN {
            return Err(CryptoError::CiphertextTooShort {
                minimum: TAG_LEN,
                actual: ciphertext.len(),
            });
        }
        self.0
            .open(ciphertext, aad)
            .map(SecretBytes::new)
            .map_err(hpke_err("HPKE open"))
    }

    /// Derives a secret shared with the sender (RFC 9180 section 5.3).
    pub fn export(&self, context: &[u8], len: usize) -> Result<SecretBytes, CryptoError> {
        let mut out = SecretBytes::new(vec![0u8; len]);
        self.0
            .export(context, out.expose_mut())
            .map_err(hpke_err("HPKE export"))?;
        Ok(out)
    }
}

/// Starts a base-mode session to `recipient`; returns the encapsulated key to send.
pub fn setup_sender(
    recipient: &HpkePublicKey,
    info: &[u8],
) -> Result<([u8; ENCAPSULATED_KEY_LEN], SenderContext), CryptoError> {
    let pk = recipient.to_kem()?;
    let (enc, ctx) = hpke::setup_sender::<Aead, Kdf, Kem>(&OpModeS::Base, &pk, info)
        .map_err(hpke_err("HPKE encapsulation"))?;
    let mut out = [0u8; ENCAPSULATED_KEY_LEN];
    out.copy_from_slice(&enc.to_bytes());
    Ok((out, SenderContext(ctx)))
}

/// Accepts a base-mode session whose sender sent `encapsulated_key`.
pub fn setup_receiver(
    recipient: &HpkeKeyPair,
    encapsulated_key: &[u8],
    info: &[u8],
) -> Result<ReceiverContext, CryptoError> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated_key).map_err(|_| {
        CryptoError::KeyLength {
            what: "HPKE encapsulated key",
            expected: ENCAPSULATED_KEY_LEN,
            actual: encapsulated_key.len(),
        }
    })?;
    hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &recipient.private, &enc, info)
        .map(ReceiverContext)
        .map_err(hpke_err("HPKE decapsulation"))
}

/// Encrypts one message to `recipient`: the output is `enc (32 bytes) || ciphertext || tag`.
pub fn seal(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (enc, mut ctx) = setup_sender(recipient, info)?;
    let ct = ctx.seal(aad, plaintext)?;
    let mut out = Vec::with_capacity(ENCAPSULATED_KEY_LEN + ct.len());
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts the output of [`seal`].
pub fn open(
    recipient: &HpkeKeyPair,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if sealed.len() < ENCAPSULATED_KEY_LEN + TAG_LEN {
        return Err(CryptoError::CiphertextTooShort {
            minimum: ENCAPSULATED_KEY_LEN + TAG_LEN,
            actual: sealed.len(),
        });
    }
    let (enc, ct) = sealed.split_at(ENCAPSULATED_KEY_LEN);
    setup_receiver(recipient, enc, info)?.open(aad, ct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let kp = HpkeKeyPair::generate();
        let sealed = seal(&kp.public_key(), b"info", b"aad", b"secret").unwrap();
        assert_eq!(
            open(&kp, b"info", b"aad", &sealed).unwrap().expose(),
            b"secret"
        );
        assert_eq!(
            open(&kp, b"infx", b"aad", &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        assert_eq!(
            open(&kp, b"info", b"aax", &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                open(&kp, b"info", b"aad", &bad).is_err(),
                "flip at {i} accepted"
            );
        }
        assert!(matches!(
            open(&kp, b"info", b"aad", &sealed[..40]),
            Err(CryptoError::CiphertextTooShort { .. })
        ));
        let other = HpkeKeyPair::generate();
        assert_eq!(
            open(&other, b"info", b"aad", &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
    }

    #[test]
    fn private_key_round_trip() {
        let kp = HpkeKeyPair::generate();
        let again = HpkeKeyPair::from_private_bytes(&kp.private_bytes()).unwrap();
        assert_eq!(again.public_key(), kp.public_key());
        let sealed = seal(&kp.public_key(), b"", b"", b"x").unwrap();
        assert_eq!(open(&again, b"", b"", &sealed).unwrap().expose(), b"x");
    }

    #[test]
    fn sessions_and_exporter_agree() {
        let kp = HpkeKeyPair::generate();
        let (enc, mut tx) = setup_sender(&kp.public_key(), b"session").unwrap();
        let mut rx = setup_receiver(&kp, &enc, b"session").unwrap();
        for i in 0..3u8 {
            let ct = tx.seal(&[i], &[i; 5]).unwrap();
            assert_eq!(rx.open(&[i], &ct).unwrap().expose(), &[i; 5]);
        }
        assert_eq!(
            tx.export(b"ctx", 32).unwrap(),
            rx.export(b"ctx", 32).unwrap()
        );
        // A replayed first message is rejected: the sequence number moved on.
        let (enc2, mut tx2) = setup_sender(&kp.public_key(), b"session").unwrap();
        let mut rx2 = setup_receiver(&kp, &enc2, b"session").unwrap();
        let first = tx2.seal(b"", b"one").unwrap();
        rx2.open(b"", &first).unwrap();
        assert_eq!(rx2.open(b"", &first).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn bad_key_lengths_are_named() {
        assert!(
            HpkePublicKey::from_bytes(&[0; 31])
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        let kp = HpkeKeyPair::generate();
        assert!(setup_receiver(&kp, &[0; 31], b"").is_err());
    }

    /// RFC 9180 known answers for the suite, base mode: key derivation, encapsulation
    /// with the vector's ephemeral key, the key schedule (through ciphertexts and
    /// nonces), and the exporter.
    #[test]
    fn rfc9180_known_answers() {
        #[derive(serde::Deserialize)]
        struct Vector {
            mode: u8,
            kem_id: u16,
            kdf_id: u16,
            aead_id: u16,
            info: String,
            #[serde(rename = "ikmE")]
            ikm_e: String,
            #[serde(rename = "ikmR")]
            ikm_r: String,
            #[serde(rename = "skRm")]
            sk_rm: String,
            #[serde(rename = "pkRm")]
            pk_rm: String,
            enc: String,
            encryptions: Vec<Encryption>,
            exports: Vec<Export>,
        }
        #[derive(serde::Deserialize)]
        struct Encryption {
            aad: String,
            ct: String,
            pt: String,
        }
        #[derive(serde::Deserialize)]
        struct Export {
            exporter_context: String,
            #[serde(rename = "L")]
            len: usize,
            exported_value: String,
        }

        /// Hands out the vector's ephemeral input keying material as "randomness".
        struct FixedIkm(Vec<u8>);
        impl hpke::rand_core::TryRng for FixedIkm {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                unreachable!("DHKEM only asks for bytes")
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                unreachable!("DHKEM only asks for bytes")
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                assert_eq!(dst.len(), self.0.len(), "ephemeral IKM length");
                dst.copy_from_slice(&self.0);
                Ok(())
            }
        }
        impl hpke::rand_core::TryCryptoRng for FixedIkm {}

        let h = |s: &str| hex::decode(s).unwrap();
        let vectors: Vec<Vector> = serde_json::from_str(include_str!(
            "../tests/data/hpke_x25519_sha256_aes256gcm.json"
        ))
        .unwrap();
        let base: Vec<&Vector> = vectors.iter().filter(|v| v.mode == 0).collect();
        assert!(!base.is_empty());
        for v in base {
            assert_eq!((v.kem_id, v.kdf_id, v.aead_id), SUITE);
            let recipient = HpkeKeyPair::derive(&h(&v.ikm_r));
            // x25519-dalek keeps private scalars clamped (RFC 7748 section 5); the
            // vector's skRm is the unclamped scalar, which behaves identically.
            let mut sk_rm = h(&v.sk_rm);
            sk_rm[0] &= 248;
            sk_rm[31] &= 127;
            sk_rm[31] |= 64;
            assert_eq!(recipient.private_bytes().expose().to_vec(), sk_rm);
            assert_eq!(recipient.public_key().as_bytes().to_vec(), h(&v.pk_rm));

            let pk = recipient.public_key().to_kem().unwrap();
            let (enc, ctx) = hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(
                &OpModeS::Base,
                &pk,
                &h(&v.info),
                &mut FixedIkm(h(&v.ikm_e)),
            )
            .unwrap();
            assert_eq!(enc.to_bytes().to_vec(), h(&v.enc));
            let mut sender = SenderContext(ctx);
            let mut receiver = setup_receiver(&recipient, &h(&v.enc), &h(&v.info)).unwrap();
            for e in &v.encryptions {
                let ct = sender.seal(&h(&e.aad), &h(&e.pt)).unwrap();
                assert_eq!(ct, h(&e.ct));
                assert_eq!(receiver.open(&h(&e.aad), &ct).unwrap().expose(), &h(&e.pt));
            }
            for x in &v.exports {
                let got = receiver.export(&h(&x.exporter_context), x.len).unwrap();
                assert_eq!(got.expose(), &h(&x.exported_value));
                assert_eq!(sender.export(&h(&x.exporter_context), x.len).unwrap(), got);
            }
        }
    }
}
