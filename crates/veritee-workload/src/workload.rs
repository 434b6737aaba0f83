//! Building a workload file, reading it, putting authorizations in its slot area, and
//! the launch check that opens it.

use veritee_crypto::SecretBytes;
use veritee_crypto::aead::{NONCE_LEN, TAG_LEN};
use veritee_crypto::mac::{hmac_sha256, verify_hmac_sha256};

use crate::authorization::{Authorization, StorageKeyId};
use crate::error::WorkloadError;
use crate::layout::{
    HEADER_LEN, HMAC_LEN, MAGIC, MAX_PAYLOAD_LEN, MAX_SLOTS, Reader, SLOT_AREA_HEADER_LEN,
    SLOT_MAGIC, VERSION,
};
use crate::payload::{
    Component, ComponentKind, ComponentSpec, check_specs, parse_table, plaintext_len,
    write_plaintext,
};
use crate::seed::WorkloadSeed;

/// Below this payload size the launch check runs on one thread: a thread costs more
/// than the HMAC it would take over.
const PARALLEL_CHECK_FROM: usize = 1 << 20;
/// From this size the plaintext goes to anonymous memory advised for transparent huge
/// pages: decrypting 100 MiB into fresh 4 KiB pages costs 25,600 page faults, about as
/// long as the decryption itself on a VM of this kind; 2 MiB pages cost 50.
const HUGE_PAGES_FROM: usize = 8 << 20;

/// Where a workload is decrypted: wiped on drop, kept out of core dumps when mapped.
enum Plaintext {
    Heap(SecretBytes),
    Mapped(memmap2::MmapMut),
}

impl Plaintext {
    fn zeroed(len: usize) -> Plaintext {
        if len >= HUGE_PAGES_FROM
            && let Ok(map) = memmap2::MmapOptions::new().len(len).map_anon()
        {
            // Advice only: without it the mapping works the same, with small pages.
            let _ = map.advise(memmap2::Advice::HugePage);
            let _ = map.advise(memmap2::Advice::DontDump);
            return Plaintext::Mapped(map);
        }
        Plaintext::Heap(SecretBytes::new(vec![0u8; len]))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Plaintext::Heap(b) => b.expose(),
            Plaintext::Mapped(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Plaintext::Heap(b) => b.expose_mut(),
            Plaintext::Mapped(m) => m,
        }
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // The heap buffer wipes itself.
        if let Plaintext::Mapped(m) = self {
            zeroize::Zeroize::zeroize(&mut m[..]);
        }
    }
}

/// A workload's id: random, chosen at build, the key of its seed at the SM.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkloadId([u8; 16]);

impl WorkloadId {
    /// A fresh random id.
    pub fn generate() -> Result<Self, WorkloadError> {
        Ok(Self(veritee_crypto::rand::array()?))
    }

    /// From its bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// From its 32 hex digits, as `workload inspect` prints it.
    pub fn from_hex(text: &str) -> Result<Self, WorkloadError> {
        let mut out = [0u8; 16];
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err(WorkloadError::Invalid(format!(
                "a workload id is 32 hex digits, not {:?}",
                text
            )));
        }
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
                _ => {
                    return Err(WorkloadError::Invalid(format!(
                        "a workload id is 32 hex digits, not {text:?}"
                    )));
                }
            }
        }
        Ok(Self(out))
    }
}

impl core::fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl core::fmt::Debug for WorkloadId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WorkloadId({self})")
    }
}

/// Encrypts `components` under keys derived from `seed` into a workload file with an
/// empty slot area.
pub fn build(
    seed: &WorkloadSeed,
    id: WorkloadId,
    components: &[ComponentSpec<'_>],
) -> Result<Vec<u8>, WorkloadError> {
    check_specs(components)?;
    let plain_len = plaintext_len(components);
    let payload_len = plain_len + TAG_LEN;
    if payload_len as u64 > MAX_PAYLOAD_LEN {
        return Err(WorkloadError::TooLarge {
            what: "payload",
            actual: payload_len as u64,
            maximum: MAX_PAYLOAD_LEN,
        });
    }
    let nonce: [u8; NONCE_LEN] = veritee_crypto::rand::array()?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len + HMAC_LEN + SLOT_AREA_HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    let mut plaintext = SecretBytes::new(Vec::with_capacity(plain_len));
    write_plaintext(components, plaintext.expose_mut());
    out.resize(HEADER_LEN + payload_len, 0);
    let (header, payload) = out.split_at_mut(HEADER_LEN);
    seed.encryption_key(&id)?
        .seal_to(&nonce, header, plaintext.expose(), payload)?;
    drop(plaintext);
    let tag = hmac_sha256(seed.hmac_key(&id)?.expose(), &out);
    out.extend_from_slice(&tag);
    write_slot_area(&mut out, &[]);
    Ok(out)
}

fn write_slot_area(out: &mut Vec<u8>, slots: &[Authorization]) {
    out.extend_from_slice(SLOT_MAGIC);
    out.extend_from_slice(&(slots.len() as u16).to_be_bytes());
    for slot in slots {
        out.extend_from_slice(&slot.to_bytes());
    }
}

/// A workload file as read: its public parts and its slots. Nothing in it is trusted
/// until [`WorkloadFile::open`] has checked it under the seed.
#[derive(Clone)]
pub struct WorkloadFile<'a> {
    id: WorkloadId,
    nonce: [u8; NONCE_LEN],
    /// Header and payload: what the HMAC covers.
    covered: &'a [u8],
    hmac: [u8; HMAC_LEN],
    slots: Vec<Authorization>,
}

impl core::fmt::Debug for WorkloadFile<'_> {
    // Sizes, not the payload's bytes (up to 1 GiB).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkloadFile")
            .field("id", &self.id)
            .field("payload_len", &self.payload_len())
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl<'a> WorkloadFile<'a> {
    /// Reads a workload file, refusing anything that does not fit version 1.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WorkloadError> {
        let mut r = Reader::new(bytes, "header");
        let magic = r.array::<4>()?;
        if &magic != MAGIC {
            return Err(WorkloadError::Magic(magic));
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(WorkloadError::Version(version));
        }
        if r.u16()? != 0 {
            return Err(WorkloadError::Malformed(
                "the header's reserved field is not zero".into(),
            ));
        }
        let id = WorkloadId(r.array()?);
        let nonce = r.array::<NONCE_LEN>()?;
        let payload_len = r.u64()?;
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(WorkloadError::TooLarge {
                what: "payload",
                actual: payload_len,
                maximum: MAX_PAYLOAD_LEN,
            });
        }
        // Tag plus at least a one-entry table: count, kind, name length, a one-byte
        // name, SHA-256 and length.
        if payload_len < (TAG_LEN + 2 + 1 + 1 + 1 + 32 + 8) as u64 {
            return Err(WorkloadError::Malformed(format!(
                "a payload of {payload_len} bytes cannot hold a component"
            )));
        }
        let mut r = Reader::new(r.rest(), "payload");
        r.take(payload_len as usize)?;
        let covered = &bytes[..HEADER_LEN + payload_len as usize];
        let mut r = Reader::new(r.rest(), "HMAC");
        let hmac = r.array::<HMAC_LEN>()?;
        let mut r = Reader::new(r.rest(), "slot area");
        let slot_magic = r.array::<4>()?;
        if &slot_magic != SLOT_MAGIC {
            return Err(WorkloadError::Malformed(format!(
                "the slot area starts with {slot_magic:?}, not \"VTSL\""
            )));
        }
        let count = r.u16()? as usize;
        if count > MAX_SLOTS {
            return Err(WorkloadError::TooLarge {
                what: "slot count",
                actual: count as u64,
                maximum: MAX_SLOTS as u64,
            });
        }
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            let slot = Authorization::read(&mut r)?;
            if slot.workload != id {
                return Err(WorkloadError::WrongWorkload {
                    expected: id.to_string(),
                    found: slot.workload.to_string(),
                });
            }
            if slots
                .iter()
                .any(|s: &Authorization| s.storage_key == slot.storage_key)
            {
                return Err(WorkloadError::Malformed(format!(
                    "two slots are for storage key {}",
                    slot.storage_key
                )));
            }
            slots.push(slot);
        }
        r.finish()?;
        Ok(Self {
            id,
            nonce,
            covered,
            hmac,
            slots,
        })
    }

    /// The workload's id.
    pub fn id(&self) -> WorkloadId {
        self.id
    }

    /// The payload's length (ciphertext and tag).
    pub fn payload_len(&self) -> u64 {
        (self.covered.len() - HEADER_LEN) as u64
    }

    /// SHA-256 of header, payload and HMAC: names this build of the workload whatever
    /// its slots hold.
    pub fn digest(&self) -> [u8; 32] {
        let mut hash = veritee_crypto::digest::Sha256::default();
        hash.update(self.covered);
        hash.update(&self.hmac);
        hash.finish()
    }

    /// The authorizations in the slot area.
    pub fn slots(&self) -> &[Authorization] {
        &self.slots
    }

    /// The slot for `storage_key`.
    pub fn slot_for(&self, storage_key: &StorageKeyId) -> Result<&Authorization, WorkloadError> {
        self.slots
            .iter()
            .find(|s| &s.storage_key == storage_key)
            .ok_or_else(|| WorkloadError::NoSlot(storage_key.to_string()))
    }

    /// The file with `slot` in its slot area, in place of any earlier slot for the same
    /// target key. The covered bytes are unchanged, so the HMAC still holds.
    pub fn with_slot(&self, slot: Authorization) -> Result<Vec<u8>, WorkloadError> {
        if slot.workload != self.id {
            return Err(WorkloadError::WrongWorkload {
                expected: self.id.to_string(),
                found: slot.workload.to_string(),
            });
        }
        let mut slots = self.slots.clone();
        match slots.iter_mut().find(|s| s.storage_key == slot.storage_key) {
            Some(existing) => *existing = slot,
            None => slots.push(slot),
        }
        if slots.len() > MAX_SLOTS {
            return Err(WorkloadError::TooLarge {
                what: "slot count",
                actual: slots.len() as u64,
                maximum: MAX_SLOTS as u64,
            });
        }
        let mut out = Vec::with_capacity(
            self.covered.len()
                + HMAC_LEN
                + SLOT_AREA_HEADER_LEN
                + slots.iter().map(Authorization::encoded_len).sum::<usize>(),
        );
        out.extend_from_slice(self.covered);
        out.extend_from_slice(&self.hmac);
        write_slot_area(&mut out, &slots);
        Ok(out)
    }

    /// The launch check: the HMAC under the seed's key, decryption, and every
    /// component's hash. Only when all pass are the components returned; on any failure
    /// what was decrypted is wiped. The HMAC runs on a second thread while the payload
    /// is decrypted and hashed, for payloads of 1 MiB and more.
    pub fn open(&self, seed: &WorkloadSeed) -> Result<OpenedWorkload, WorkloadError> {
        let hmac_key = seed.hmac_key(&self.id)?;
        let key = seed.encryption_key(&self.id)?;
        let (header, payload) = self.covered.split_at(HEADER_LEN);
        let check_hmac = || verify_hmac_sha256(hmac_key.expose(), self.covered, &self.hmac);
        let decrypt_and_hash = || -> Result<(Plaintext, Vec<Component>), WorkloadError> {
            let mut plaintext = Plaintext::zeroed(payload.len() - TAG_LEN);
            key.open_to(&self.nonce, header, payload, plaintext.bytes_mut())
                .map_err(|_| WorkloadError::Decrypt)?;
            let table = parse_table(plaintext.bytes())?;
            for component in &table {
                let bytes =
                    &plaintext.bytes()[component.offset..component.offset + component.len as usize];
                let digest = veritee_crypto::digest::sha256(bytes);
                if !veritee_crypto::ct_eq(&digest, &component.sha256) {
                    return Err(WorkloadError::ComponentHash {
                        kind: component.kind.name(),
                        name: component.name.clone(),
                    });
                }
            }
            Ok((plaintext, table))
        };
        let (hmac_ok, opened) = if payload.len() >= PARALLEL_CHECK_FROM {
            std::thread::scope(|s| {
                match std::thread::Builder::new().spawn_scoped(s, check_hmac) {
                    Ok(hmac) => {
                        let opened = decrypt_and_hash();
                        // A panic in the HMAC thread counts as a failed check.
                        (hmac.join().unwrap_or(false), opened)
                    }
                    // No thread to be had: the same checks, one after the other.
                    Err(_) => {
                        let hmac_ok = check_hmac();
                        (hmac_ok, decrypt_and_hash())
                    }
                }
            })
        } else {
            let hmac_ok = check_hmac();
            (
                hmac_ok,
                if hmac_ok {
                    decrypt_and_hash()
                } else {
                    Err(WorkloadError::Hmac)
                },
            )
        };
        if !hmac_ok {
            return Err(WorkloadError::Hmac);
        }
        let (plaintext, components) = opened?;
        Ok(OpenedWorkload {
            id: self.id,
            plaintext,
            components,
        })
    }
}

/// A workload that passed the launch check. Its bytes stay in a zeroizing buffer.
pub struct OpenedWorkload {
    id: WorkloadId,
    plaintext: Plaintext,
    components: Vec<Component>,
}

impl core::fmt::Debug for OpenedWorkload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedWorkload")
            .field("id", &self.id)
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl OpenedWorkload {
    /// The workload's id.
    pub fn id(&self) -> WorkloadId {
        self.id
    }

    /// The integrity table, in the owner's order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// A component's bytes (empty for a component that is not one of this workload's).
    pub fn data(&self, component: &Component) -> &[u8] {
        let end = usize::try_from(component.len)
            .ok()
            .and_then(|len| component.offset.checked_add(len));
        end.and_then(|end| self.plaintext.bytes().get(component.offset..end))
            .unwrap_or(&[])
    }

    /// The components of `kind`, in order, with their bytes.
    pub fn of_kind(&self, kind: ComponentKind) -> impl Iterator<Item = (&Component, &[u8])> {
        self.components
            .iter()
            .filter(move |c| c.kind == kind)
            .map(|c| (c, self.data(c)))
    }
}
