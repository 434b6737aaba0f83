//! Key derivation and delivery.
//!
//! The client's long-term task key stays on the client. Per task it derives, with
//! HKDF-SHA256 salted with the task id, its key-exchange key (CKEK, an X25519 key whose
//! public half is in the task initiation, so the tenant's signature and the enclave's
//! evidence both cover it) and one data key (DEK) per compartment. The enclave's
//! key-exchange key (SKEK) is the X25519 key its evidence binds.
//!
//! Two layers carry the DEKs, each against a different threat:
//!
//! 1. Each DEK is wrapped (AES-KWP, RFC 5649) under a KEK derived from the static
//!    X25519 exchange of CKEK and SKEK, salted with the initiation's digest. Only the
//!    holder of the task key and the attested enclave holding the SKEK compute it: a
//!    host, or another tenant, who learned the SKEK cannot deliver keys in this
//!    client's name, the keys are bound to this initiation, and the client recomputes
//!    everything (the results key included) from its long-term key and the SKEK alone,
//!    with no per-task state to lose.
//! 2. The wrapped DEKs are sealed with HPKE to the SKEK (a fresh ephemeral, `info` =
//!    the initiation's digest): only the attested enclave reads even the wrapped keys,
//!    compartment names and key count, and a delivery for one initiation opens for no
//!    other.
//!
//! Results are authenticated with a key derived from the same exchange (see
//! [`TaskKey::result_key`]) and bound to their timestamp (see `results`).

use crate::TaskError;
use veritee_crypto::hkdf::{self, HkdfHash};
use veritee_crypto::hpke::{self, HpkeKeyPair, HpkePublicKey};
use veritee_crypto::keywrap::KeyEncryptionKey;
use veritee_crypto::kx::X25519Secret;
use veritee_crypto::{Confidential, SecretBytes};

/// HPKE `info` prefix of the key delivery; the TTIS digest follows.
pub const DELIVERY_INFO: &[u8] = b"veritee task keys v2";
/// HKDF info of the DEK-wrapping key.
const KEK_INFO: &[u8] = b"veritee task kek v2";
/// HKDF info of the result-authentication key.
const RESULT_INFO: &[u8] = b"veritee task results v2";
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

fn derive(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Result<Key256, TaskError> {
    let mut out = Confidential::new([0u8; 32]);
    hkdf::derive_into(HkdfHash::Sha256, salt, ikm, info, out.expose_mut())?;
    Ok(out)
}

/// The KEK and the results key of one task, from the CKEK-SKEK exchange.
fn exchange_keys(
    shared: &Key256,
    ttis_digest: &[u8; 32],
    skek: &[u8; 32],
    ckek: &[u8; 32],
) -> Result<(Key256, Key256), TaskError> {
    let kek = derive(shared.expose(), ttis_digest, &[KEK_INFO, skek, ckek])?;
    let results = derive(shared.expose(), ttis_digest, &[RESULT_INFO, skek, ckek])?;
    Ok((kek, results))
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

    /// The task's key-exchange key (CKEK).
    pub fn ckek(&self, task_id: &[u8]) -> Result<X25519Secret, TaskError> {
        Ok(X25519Secret::from_bytes(derive(
            self.0.expose(),
            task_id,
            &[b"veritee ckek v2"],
        )?))
    }

    /// The CKEK's public key, which the task initiation carries.
    pub fn ckek_public(&self, task_id: &[u8]) -> Result<[u8; 32], TaskError> {
        Ok(self.ckek(task_id)?.public_key()?)
    }

    /// The data key of one compartment.
    pub fn dek(&self, task_id: &[u8], compartment: &str) -> Result<Key256, TaskError> {
        derive(
            self.0.expose(),
            task_id,
            &[b"veritee dek v1\0", compartment.as_bytes()],
        )
    }

    /// The key the task's results are authenticated with, from the task key, the
    /// enclave's SKEK and the initiation's digest alone.
    pub fn result_key(
        &self,
        task_id: &[u8],
        skek: &HpkePublicKey,
        ttis_digest: &[u8; 32],
    ) -> Result<Key256, TaskError> {
        let ckek = self.ckek(task_id)?;
        let shared = ckek.agree(skek.as_bytes())?;
        let (_, results) =
            exchange_keys(&shared, ttis_digest, skek.as_bytes(), &ckek.public_key()?)?;
        Ok(results)
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

pub(crate) fn info(ttis_digest: &[u8; 32]) -> Vec<u8> {
    let mut i = DELIVERY_INFO.to_vec();
    i.extend_from_slice(ttis_digest);
    i
}

/// Client side: wraps each compartment's DEK under the CKEK-SKEK KEK and seals the lot
/// to the SKEK.
///
/// ```text
/// delivery = enc (32) || HPKE ciphertext of:
///   count (u16) || count x [ name len (u8) || name || wrapped len (u16) || KWP_KEK(DEK) ]
/// ```
pub fn seal_delivery(
    skek: &HpkePublicKey,
    ttis_digest: &[u8; 32],
    task_key: &TaskKey,
    task_id: &[u8],
    compartments: &[&str],
) -> Result<Vec<u8>, TaskError> {
    let ckek = task_key.ckek(task_id)?;
    let shared = ckek.agree(skek.as_bytes())?;
    let (kek, _) = exchange_keys(&shared, ttis_digest, skek.as_bytes(), &ckek.public_key()?)?;
    let kek = KeyEncryptionKey::new(kek);
    let mut plain = SecretBytes::new(Vec::new());
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
    let mut out = enc.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Enclave side: opens a delivery with the SKEK and unwraps every DEK under the KEK of
/// the exchange with the client's CKEK (from the signed initiation).
pub fn open_delivery(
    skek: &HpkeKeyPair,
    ttis_digest: &[u8; 32],
    ckek_public: &[u8; 32],
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
    let shared = X25519Secret::from_bytes(skek.private_bytes()).agree(ckek_public)?;
    let (kek, result_mac_key) = exchange_keys(
        &shared,
        ttis_digest,
        skek.public_key().as_bytes(),
        ckek_public,
    )?;
    let kek = KeyEncryptionKey::new(kek);
    let p = plain.expose();
    let bad = |r: &str| TaskError::malformed("key delivery", r);
    if p.len() < 2 {
        return Err(bad("truncated"));
    }
    let count = u16::from_be_bytes([p[0], p[1]]) as usize;
    let mut at = 2;
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
        let dek = kek.unwrap(wrapped).map_err(|_| {
            TaskError::DeliveryRefused(format!(
                "the data key of {name} is not wrapped under this client's key-exchange key"
            ))
        })?;
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
        result_mac_key,
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
        let ckek = tk.ckek_public(b"task-1").unwrap();
        let msg = seal_delivery(&skek.public_key(), &digest, &tk, b"task-1", &["a", "bb"]).unwrap();
        let got = open_delivery(&skek, &digest, &ckek, &msg).unwrap();
        // The client recovers the results key from its long-term key alone.
        assert_eq!(
            got.result_mac_key.expose(),
            tk.result_key(b"task-1", &skek.public_key(), &digest)
                .unwrap()
                .expose()
        );
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
        assert!(open_delivery(&skek, &[8u8; 32], &ckek, &msg).is_err());
        assert!(open_delivery(&HpkeKeyPair::generate(), &digest, &ckek, &msg).is_err());
        for i in [0, 40, msg.len() - 1] {
            let mut bad = msg.clone();
            bad[i] ^= 1;
            assert!(open_delivery(&skek, &digest, &ckek, &bad).is_err());
        }
        assert!(open_delivery(&skek, &digest, &ckek, &msg[..20]).is_err());
    }

    #[test]
    fn keys_delivered_in_another_clients_name_do_not_unwrap() {
        // The host learned the SKEK (it is public) and delivers keys of its own, but
        // the initiation names the genuine client's CKEK.
        let genuine = TaskKey::generate().unwrap();
        let host = TaskKey::generate().unwrap();
        let skek = HpkeKeyPair::generate();
        let digest = [7u8; 32];
        let forged = seal_delivery(&skek.public_key(), &digest, &host, b"t", &["a"]).unwrap();
        let err = open_delivery(&skek, &digest, &genuine.ckek_public(b"t").unwrap(), &forged)
            .unwrap_err();
        assert!(err.to_string().contains("key-exchange key"), "{err}");
    }
}
