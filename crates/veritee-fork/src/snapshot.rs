//! The parent's side: an application's snapshot, kept encrypted, brought up to date
//! page by page.

use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;
use veritee_wasm::{AppCounters, GlobalValue, TaskLimits};

use crate::error::ForkError;
use crate::layout::{
    FRAME_LEN, MAX_KEYS, MAX_MEMORY_BYTES, Manifest, PAGE_SIZE, PageId, PageSeal, SEALED_PAGE_LEN,
    page_aad, page_nonce,
};
use crate::transfer::{ForkOffer, ForkSecret};

/// The runtime's own state of an application, carried with its memory.
#[derive(Debug, Clone)]
pub struct AppRuntime {
    /// Calls served and fuel burnt so far.
    pub counters: AppCounters,
    /// The limits it runs under (the child runs under the same).
    pub limits: TaskLimits,
}

/// What one [`Snapshot::update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateStats {
    /// Pages in the memory.
    pub pages: usize,
    /// Pages that changed and were encrypted again.
    pub sealed: usize,
}

/// One epoch's key, with the next nonce counter under it and how many pages use it.
struct Epoch {
    number: u32,
    key: AeadKey,
    next_counter: u64,
    pages: usize,
}

/// An application's state, encrypted page by page (see the crate documentation).
pub struct Snapshot {
    app_id: [u8; 16],
    module_sha256: [u8; 32],
    /// The memory as of the last update, to find what changed.
    shadow: Confidential<Vec<u8>>,
    /// Each page's ciphertext and tag, in page order.
    sealed: Vec<u8>,
    pages: Vec<PageSeal>,
    /// Live epochs, oldest first; the last is the current one.
    epochs: Vec<Epoch>,
    globals: Vec<(u32, GlobalValue)>,
    runtime: AppRuntime,
    generation: u64,
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Snapshot")
            .field("app_id", &self.app_id)
            .field("pages", &self.pages.len())
            .field("epochs", &self.epochs.len())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// An empty snapshot of application `app_id` running the module whose SHA-256 is
    /// `module_sha256`, under a fresh epoch key.
    pub fn new(
        app_id: [u8; 16],
        module_sha256: [u8; 32],
        runtime: AppRuntime,
    ) -> Result<Snapshot, ForkError> {
        Ok(Snapshot {
            app_id,
            module_sha256,
            shadow: Confidential::new(Vec::new()),
            sealed: Vec::new(),
            pages: Vec::new(),
            epochs: vec![Epoch {
                number: 0,
                key: AeadKey::generate()?,
                next_counter: 0,
                pages: 0,
            }],
            globals: Vec::new(),
            runtime,
            generation: 0,
        })
    }

    /// The application this snapshot is of.
    pub fn app_id(&self) -> &[u8; 16] {
        &self.app_id
    }

    /// Updates taken so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Brings the snapshot up to `memory`, `globals` and `runtime`: compares each page
    /// with the last update's and encrypts only those that changed. Memory may grow
    /// between updates, never shrink (WebAssembly memories do not).
    pub fn update(
        &mut self,
        memory: &[u8],
        globals: Vec<(u32, GlobalValue)>,
        runtime: AppRuntime,
    ) -> Result<UpdateStats, ForkError> {
        let old_len = self.shadow.expose().len();
        if memory.len() < old_len {
            return Err(ForkError::State(format!(
                "memory shrank from {old_len} to {} bytes",
                memory.len()
            )));
        }
        if memory.len() as u64 > MAX_MEMORY_BYTES || !memory.len().is_multiple_of(PAGE_SIZE) {
            return Err(ForkError::State(format!(
                "a memory of {} bytes is not whole pages of a 32-bit memory",
                memory.len()
            )));
        }
        let page_count = memory.len() / PAGE_SIZE;
        // New pages start as zero pages: a grown memory is zero-filled, and a page
        // that is still zero is never sent.
        if memory.len() > old_len {
            // A new buffer of the full size: growing in place could leave a copy of
            // the old memory behind, unwiped; the old one is wiped as it is dropped.
            let mut grown = Vec::with_capacity(memory.len());
            grown.extend_from_slice(self.shadow.expose());
            grown.resize(memory.len(), 0);
            self.shadow = Confidential::new(grown);
        }
        self.sealed.resize(page_count * SEALED_PAGE_LEN, 0);
        self.pages.resize(page_count, PageSeal::ZERO);
        let mut sealed = 0;
        let shadow = self.shadow.expose_mut();
        for (index, page) in memory.chunks_exact(PAGE_SIZE).enumerate() {
            let range = index * PAGE_SIZE..(index + 1) * PAGE_SIZE;
            if page == &shadow[range.clone()] {
                continue;
            }
            let seal = if page.iter().all(|&b| b == 0) {
                PageSeal::ZERO
            } else {
                sealed += 1;
                let out = &mut self.sealed[index * SEALED_PAGE_LEN..(index + 1) * SEALED_PAGE_LEN];
                seal_page(&mut self.epochs, &self.app_id, index, page, out)?
            };
            // Only once sealed: a page whose sealing failed differs from the shadow
            // still, and is sealed at the next update.
            shadow[range].copy_from_slice(page);
            let old = std::mem::replace(&mut self.pages[index], seal);
            release(&mut self.epochs, old);
        }
        self.globals = globals;
        self.runtime = runtime;
        self.generation += 1;
        Ok(UpdateStats {
            pages: page_count,
            sealed,
        })
    }

    /// Starts a new epoch: pages encrypted from now on are under a key no earlier
    /// offer gave away. Called by the parent once a child has its offer. Epochs no page
    /// uses any more are forgotten; past [`MAX_KEYS`] live epochs, the pages of the
    /// oldest are encrypted again under the new key.
    pub fn rekey(&mut self) -> Result<(), ForkError> {
        let number = self
            .epochs
            .last()
            .map_or(0, |e| e.number)
            .checked_add(1)
            .filter(|n| *n != crate::layout::ZERO_PAGE)
            .ok_or_else(|| ForkError::State("epoch numbers are exhausted".into()))?;
        self.epochs.push(Epoch {
            number,
            key: AeadKey::generate()?,
            next_counter: 0,
            pages: 0,
        });
        self.epochs.retain(|e| e.pages > 0 || e.number == number);
        while self.epochs.len() > MAX_KEYS {
            let oldest = self.epochs[0].number;
            let shadow = self.shadow.expose();
            for index in 0..self.pages.len() {
                if self.pages[index].epoch != oldest {
                    continue;
                }
                let page = &shadow[index * PAGE_SIZE..(index + 1) * PAGE_SIZE];
                let out = &mut self.sealed[index * SEALED_PAGE_LEN..(index + 1) * SEALED_PAGE_LEN];
                let seal = seal_page(&mut self.epochs, &self.app_id, index, page, out)?;
                let old = std::mem::replace(&mut self.pages[index], seal);
                release(&mut self.epochs, old);
            }
            self.epochs.retain(|e| e.number != oldest);
        }
        Ok(())
    }

    /// The offer for a child: the manifest (state, page table, the live epoch keys),
    /// sealed under the key `secret` gives for this snapshot's digest. Call
    /// [`Snapshot::update`] first: the offer describes the snapshot as it stands.
    pub fn offer(&self, secret: &ForkSecret) -> Result<ForkOffer, ForkError> {
        let manifest = Manifest {
            app_id: self.app_id,
            module_sha256: self.module_sha256,
            generation: self.generation,
            runtime: self.runtime.clone(),
            memory_len: self.shadow.expose().len() as u64,
            globals: self.globals.clone(),
            pages: self.pages.clone(),
            keys: self
                .epochs
                .iter()
                .filter(|e| e.pages > 0)
                .map(|e| (e.number, e.key.clone()))
                .collect(),
        };
        let (bytes, covered) = manifest.encode();
        ForkOffer::seal(secret, bytes.expose(), covered)
    }

    /// Sealed pages to send: frames of pages `from..`, as many as fit `max_bytes`
    /// (at least one), and the page to continue from, `None` once all are out.
    pub fn frames(&self, from: usize, max_bytes: usize) -> (Vec<u8>, Option<usize>) {
        let mut out = Vec::new();
        let next = self.frames_into(from, max_bytes, &mut out);
        (out, next)
    }

    /// As [`Snapshot::frames`], appended to `out` (room for them reserved first, so
    /// that a message of many pages is written once, not grown and copied).
    pub fn frames_into(&self, from: usize, max_bytes: usize, out: &mut Vec<u8>) -> Option<usize> {
        let room = (max_bytes / FRAME_LEN).max(1);
        let start = out.len();
        let sealed_ahead = self.pages.len().saturating_sub(from).min(room);
        out.reserve(sealed_ahead * FRAME_LEN);
        let mut index = from;
        while index < self.pages.len() {
            if (out.len() - start) / FRAME_LEN == room {
                return Some(index);
            }
            if !self.pages[index].is_zero() {
                out.extend_from_slice(&(index as u32).to_be_bytes());
                out.extend_from_slice(
                    &self.sealed[index * SEALED_PAGE_LEN..(index + 1) * SEALED_PAGE_LEN],
                );
            }
            index += 1;
        }
        None
    }

    /// The ids of the sealed pages as the snapshot stands, in page order (zero pages
    /// have none).
    pub fn page_ids(&self) -> Vec<PageId> {
        self.pages
            .iter()
            .enumerate()
            .filter_map(|(index, seal)| seal.id(index))
            .collect()
    }

    /// Page `id`'s ciphertext and tag, if the snapshot holds that sealing of it.
    pub fn sealed_page(&self, id: PageId) -> Option<&[u8]> {
        let index = id.index as usize;
        (self.pages.get(index)?.id(index)? == id)
            .then(|| &self.sealed[index * SEALED_PAGE_LEN..(index + 1) * SEALED_PAGE_LEN])
    }

    /// Pages sealed (not all zero) in the snapshot as it stands.
    pub fn sealed_pages(&self) -> usize {
        self.pages.iter().filter(|p| !p.is_zero()).count()
    }
}

/// Seals `page` (number `index`) into `out` under the current epoch.
fn seal_page(
    epochs: &mut [Epoch],
    app_id: &[u8; 16],
    index: usize,
    page: &[u8],
    out: &mut [u8],
) -> Result<PageSeal, ForkError> {
    let Some(epoch) = epochs.last_mut() else {
        return Err(ForkError::State("no epoch key".into()));
    };
    let counter = epoch.next_counter;
    epoch.next_counter += 1;
    let index = u32::try_from(index)
        .map_err(|_| ForkError::State(format!("page {index} is past a 32-bit memory")))?;
    epoch
        .key
        .seal_to(&page_nonce(counter), &page_aad(app_id, index), page, out)?;
    epoch.pages += 1;
    Ok(PageSeal {
        epoch: epoch.number,
        counter,
    })
}

/// Notes that a page no longer uses the epoch `old` was sealed under.
fn release(epochs: &mut [Epoch], old: PageSeal) {
    if old.is_zero() {
        return;
    }
    if let Some(e) = epochs.iter_mut().find(|e| e.number == old.epoch) {
        e.pages -= 1;
    }
}
