//! Key derivation and delivery.
//!
//! The client's long-term task key stays on the client. Per task it derives the
//! key-exchange key (CKEK) and one data key (DEK) per compartment with HKDF-SHA256,
//! salted with the task id; the enclave learns the CKEK and DEKs only inside an HPKE
//! message sealed to the SKEK its evidence vouches for.

use crate::TaskError;
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::keywrap::KeyEncryptionKey;
use veritee_crypto::{Confidential, SecretBytes};

/// HPKE `info` prefix of the key delivery; the TTIS digest follows.
pub const DELIVERY_INFO: &[u8] = b"veritee task keys v1";
/// Exporter context of the result-authentication key.
pub const RESULT_MAC_CONTEXT: &[u8] = b"veritee task results v1";
/// Largest key delivery.
pub const MAX_DELIVERY_LEN: usize = 64 * 1024;

/// A 256-bit key.
pub type Key256 = Confidential<[u8; 32]>;

/// The client's long-term task key.
pub struct TaskKey(Key256);

impl core::fmt::Debug for TaskKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TaskKey(<redacted>)")
    }
}

fn derive(ikm: &[u8], task_id: &[u8], info: &[&[u8]]) -> Result<Key256, TaskError> {
    let mut out = Confidential::new([0u8; 32]);
    hkdf::derive_into(HkdfHash::Sha256, task_id, ikm, info, out.expose_mut())?;
    Ok(out)
}

impl TaskKey {
    /// A fresh random task key.
    pub fn generate() -> Result<Self, TaskError> {
        Ok(Self(veritee_crypto::rand::secret_array()?))
    }

    /// From 32 secret bytes.
    pub fn new(key: Key256) -> Self {
        Self(key)
    }

    /// The raw key, for saving it (0600).
    pub fn expose(&self) -> &Key256 {
        &self.0
    }

    /// The task's key-exchange key.
    pub fn ckek(&self, task_id: &[u8]) -> Result<Key256, TaskError> {
        derive(self.0.expose(), task_id, &[b"veritee ckek v1"])
    }

    /// The data key of one compartment.
    pub fn dek(&self, task_id: &[u8], compartment: &str) -> Result<Key256, TaskError> {
        derive(
            self.0.expose(),
            task_id,
            &[b"veritee dek v1\0", compartment.as_bytes()],
        )
    }
}

/// What the enclave recovers from a key delivery.
pub struct DeliveredKeys {
    /// DEK per compartment.
    pub deks: Vec<(String, Key256)>,
    /// The key results are authenticated with.
    pub result_mac_key: Key256,
}

impl core::fmt::Debug for DeliveredKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.deks.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("DeliveredKeys")
            .field("compartments", &names)
            .finish()
    }
}

fn info(ttis_digest: &[u8; 32]) -> Vec<u8> {
    let mut i = DELIVERY_INFO.to_vec();
    i.extend_from_slice(ttis_digest);
    i
}

/// Client side: seals the CKEK and the CKEK-wrapped DEKs to the SKEK. Returns the
/// delivery message and the result-authentication key.
///
/// ```text
/// delivery = enc (32) || HPKE ciphertext of:
///   CKEK (32) || count (u16) || count x [ name len (u8) || name || wrapped len (u16) || KWP_CKEK(DEK) ]
/// ```
pub fn seal_delivery(
    skek: &HpkePublicKey,
    ttis_digest: &[u8; 32],
    task_key: &TaskKey,
    task_id: &[u8],
    compartments: &[&str],
) -> Result<(Vec<u8>, Key256), TaskError> {
    let ckek = task_key.ckek(task_id)?;
    let kek = KeyEncryptionKey::new(ckek.clone());
    let mut plain = SecretBytes::new(Vec::new());
    plain.expose_mut().extend_from_slice(ckek.expose());
    plain
        .expose_mut()
        .extend_from_slice(&(compartments.len() as u16).to_be_bytes());
    for name in compartments {
        let wrapped = kek.wrap(task_key.dek(task_id, name)?.expose())?;
        plain.expose_mut().push(
            u8::try_from(name.len())
                .map_err(|_| TaskError::malformed("compartment name", "too long"))?,
        );
        plain.expose_mut().extend_from_slice(name.as_bytes());
        plain
            .expose_mut()
            .extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
        plain.expose_mut().extend_from_slice(&wrapped);
    }
    let (enc, mut ctx) = hpke::setup_sender(skek, &info(ttis_digest))?;
    let ct = ctx.seal(b"", plain.expose())?;
    let mut mac_key = Confidential::new([0u8; 32]);
    mac_key
        .expose_mut()
        .copy_from_slice(ctx.export(RESULT_MAC_CONTEXT, 32)?.expose());
    let mut out = enc.to_vec();
    out.extend_from_slice(&ct);
    Ok((out, mac_key))
}

/// Enclave side: opens a delivery with the SKEK, unwraps every DEK with the CKEK.
pub fn open_delivery(
    skek: &HpkeKeyPair,
    ttis_digest: &[u8; 32],
    delivery: &[u8],
) -> Result<DeliveredKeys, TaskError> {
    if delivery.len() > MAX_DELIVERY_LEN
        || delivery.len() < hpke::ENCAPSULATED_KEY_LEN + hpke::TAG_LEN
    {
        return Err(TaskError::malformed(
            "key delivery",
            format!("{} bytes", delivery.len()),
        ));
    }
    let (enc, ct) = delivery.split_at(hpke::ENCAPSULATED_KEY_LEN);
    let mut ctx = hpke::setup_receiver(skek, enc, &info(ttis_digest))?;
    let plain = ctx.open(b"", ct)?;
    let mut mac_key = Confidential::new([0u8; 32]);
    mac_key
        .expose_mut()
        .copy_from_slice(ctx.export(RESULT_MAC_CONTEXT, 32)?.expose());
    let p = plain.expose();
    let bad = |r: &str| TaskError::malformed("key delivery", r);
    if p.len() < 34 {
        return Err(bad("truncated"));
    }
    let kek = KeyEncryptionKey::from_slice(&p[..32])?;
    let count = u16::from_be_bytes([p[32], p[33]]) as usize;
    let mut at = 34;
    let mut deks = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = *p.get(at).ok_or_else(|| bad("truncated name"))? as usize;
        let name = p
            .get(at + 1..at + 1 + n)
            .ok_or_else(|| bad("truncated name"))?;
        let name = core::str::from_utf8(name)
            .map_err(|_| bad("name is not UTF-8"))?
            .to_string();
        at += 1 + n;
        let len = p.get(at..at + 2).ok_or_else(|| bad("truncated key"))?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let wrapped = p
            .get(at + 2..at + 2 + len)
            .ok_or_else(|| bad("truncated key"))?;
        at += 2 + len;
        let dek = kek.unwrap(wrapped)?;
        if dek.len() != 32 {
            return Err(bad("a data key is not 256 bits"));
        }
        let mut k = Confidential::new([0u8; 32]);
        k.expose_mut().copy_from_slice(dek.expose());
        deks.push((name, k));
    }
    if at != p.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(DeliveredKeys {
        deks,
        result_mac_key: mac_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_round_trip_and_tamper() {
        let tk = TaskKey::generate().unwrap();
        let skek = HpkeKeyPair::generate();
        let digest = [7u8; 32];
        let (msg, mac) =
            seal_delivery(&skek.public_key(), &digest, &tk, b"task-1", &["a", "bb"]).unwrap();
        let got = open_delivery(&skek, &digest, &msg).unwrap();
        assert_eq!(got.result_mac_key.expose(), mac.expose());
        assert_eq!(got.deks.len(), 2);
        assert_eq!(got.deks[1].0, "bb");
        assert_eq!(
            got.deks[1].1.expose(),
            tk.dek(b"task-1", "bb").unwrap().expose()
        );
        assert_ne!(
            tk.dek(b"task-1", "a").unwrap().expose(),
            tk.dek(b"task-2", "a").unwrap().expose()
        );
        // Another TTIS, another SKEK, a flipped byte: refused.
        assert!(open_delivery(&skek, &[8u8; 32], &msg).is_err());
        assert!(open_delivery(&HpkeKeyPair::generate(), &digest, &msg).is_err());
        for i in [0, 40, msg.len() - 1] {
            let mut bad = msg.clone();
            bad[i] ^= 1;
            assert!(open_delivery(&skek, &digest, &bad).is_err());
        }
        assert!(open_delivery(&skek, &digest, &msg[..20]).is_err());
    }
}
