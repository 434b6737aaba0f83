//! Durable applications (`app run --durable`): the state kept in the node's store
//! after every call, so that the application survives an enclave restart.
//!
//! A restart is a fork into the next enclave process, with the store as the channel:
//! the same snapshot ([`veritee_fork::Snapshot`]) encrypts the memory page by page,
//! and the same restorer ([`veritee_fork::Restorer`]) checks and decrypts it.
//!
//! ```text
//! sealed record  t/TENANT  app/NAME/module   the module, written once at `app run`
//! sealed record  t/TENANT  app/NAME          AppRecord: the offer (the manifest sealed
//!                                            under the app's own secret), the page
//!                                            series, the secret, forks, origin, link
//!                                            keys, fork peer
//! host object    app-pages NODE/TENANT/NAME/SERIES/INDEX
//!                                            one sealed page (ciphertext and tag)
//! ```
//!
//! - **What the host can do.** The records are sealed and rollback-protected like
//!   every record of the node's state. Each page's AEAD binds the application, the
//!   page's index and its nonce, which the sealed manifest lists, so a page from an
//!   older state, another page's or another application's does not open; a page
//!   deleted is a restore that fails, naming the page.
//! - **When it is written.** After a call returns (the snapshot point, as for a fork),
//!   before the answer goes back. The pages sealed again since the last call are
//!   stored in the same host transaction as the record that names them, over their
//!   earlier copies: both are stored or neither, so a crash leaves the previous state
//!   whole, and nothing is left to delete. Past [`IN_TRANSACTION_BYTES`] of changed
//!   pages (a first fill of a large memory), every page goes to a new series first, one
//!   object at a time, then the record names that series, then the old series is
//!   deleted. A call's answer is given only once its state is stored.
//! - **When it is read.** At a tenant's first application request after the enclave
//!   starts, each of its durable applications is started again from its record.
//! - **What it costs.** One comparison of the memory with its last copy per call, the
//!   changed pages encrypted, and one sealed state transition carrying them.

use serde::{Deserialize, Serialize};
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;
use veritee_fork::{ForkSecret, PageId, Restorer};
use veritee_wasm::ForkRole;

use super::{Link, Running, fork_failure, start_from};
use crate::host::{HostLink, HostLinkExt, failure};
use crate::service::{EnclaveService, internal, lock, tenant_ns};
use veritee_proto::ipc::{EnclaveFailure, FailureKind, ObjectWrite};

/// Where sealed pages are stored (host objects: they are ciphertext already).
const PAGES_NS: &str = "app-pages";
/// Changed pages stored in the record's own transaction, at most (past it, a new
/// series): the transaction travels to the host in one frame, which other writers'
/// records may share.
pub const IN_TRANSACTION_BYTES: usize = 8 << 20;

/// A durable application's own secret and the pages its stored state names.
pub(super) struct Durable {
    secret: Confidential<[u8; 32]>,
    /// The series the stored pages are under.
    series: u64,
    /// The stored pages' sealings, in page order (as the snapshot lists them): a page
    /// whose sealing is not among them is stored again. Cleared when the snapshot
    /// starts afresh (its sealings are a new key's).
    pub(super) stored: Vec<PageId>,
}

impl Durable {
    /// A new application's: a fresh secret, nothing stored yet.
    pub(super) fn new() -> Result<Durable, EnclaveFailure> {
        Ok(Durable {
            secret: veritee_crypto::rand::secret_array::<32>().map_err(internal)?,
            series: new_series()?,
            stored: Vec::new(),
        })
    }
}

/// A random series for a new set of page objects.
fn new_series() -> Result<u64, EnclaveFailure> {
    veritee_crypto::rand::array::<8>()
        .map(u64::from_le_bytes)
        .map_err(internal)
}

/// The stored state of a durable application. Wiped on drop: it holds the secret and
/// the link keys.
#[derive(Serialize, Deserialize)]
struct AppRecord {
    #[serde(with = "serde_bytes")]
    offer: Vec<u8>,
    /// The series of the pages the offer names.
    series: u64,
    #[serde(with = "serde_bytes")]
    secret: Vec<u8>,
    forks: u64,
    #[serde(with = "serde_bytes")]
    forked_from: Option<Vec<u8>>,
    /// Link keys and the side this application is on (0 parent, 1 child).
    links: Vec<(serde_bytes::ByteBuf, u8)>,
    fork_peer: Option<String>,
    /// The stored keys it names.
    #[serde(default)]
    keys: Vec<String>,
}

impl Drop for AppRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
        for (key, _) in &mut self.links {
            zeroize::Zeroize::zeroize(key.as_mut_slice());
        }
    }
}

fn record_key(name: &str) -> String {
    format!("app/{name}")
}

fn module_key(name: &str) -> String {
    format!("app/{name}/module")
}

impl EnclaveService {
    /// The prefix of application `name`'s page objects.
    fn pages_prefix(&self, tenant: &str, name: &str) -> Result<String, EnclaveFailure> {
        Ok(format!("{}/{tenant}/{name}/", self.node_id()?))
    }

    fn page_key(
        &self,
        tenant: &str,
        name: &str,
        series: u64,
        index: u32,
    ) -> Result<String, EnclaveFailure> {
        Ok(format!(
            "{}{series:016x}/{index}",
            self.pages_prefix(tenant, name)?
        ))
    }

    /// Deletes `name`'s page objects under the prefix `under` (best effort: what is
    /// left is only space, never read).
    fn delete_pages(&self, under: &str, link: &mut dyn HostLink) {
        let mut after = None;
        loop {
            let keys = match link.list(PAGES_NS, under, after.clone(), 1000) {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!("old pages stay stored: {}", e.message);
                    return;
                }
            };
            for key in &keys {
                let _ = link.delete(PAGES_NS, key);
            }
            match keys.last() {
                Some(last) if keys.len() == 1000 => after = Some(last.clone()),
                _ => return,
            }
        }
    }

    /// Stores a new durable application's module (once, at `app run`).
    pub(super) fn store_app_module(
        &self,
        tenant: &str,
        name: &str,
        module: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        self.record_put(link, &tenant_ns(tenant), &module_key(name), module)
    }

    /// Stores `running`'s state, if it is durable: the snapshot brought up to date,
    /// then the pages sealed since the last time with the record naming them, in one
    /// transaction (or, past [`IN_TRANSACTION_BYTES`], every page under a new series
    /// first).
    pub(super) fn persist_app(
        &self,
        tenant: &str,
        name: &str,
        running: &mut Running,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        if running.durable.is_none() {
            return Ok(());
        }
        running.bring_snapshot_up_to_date()?;
        let (Some(snapshot), Some(durable)) = (&running.snapshot, &running.durable) else {
            return Err(internal("a durable application has no snapshot"));
        };
        let ids = snapshot.page_ids();
        let changed: Vec<PageId> = ids
            .iter()
            .filter(|id| durable.stored.binary_search(id).is_err())
            .copied()
            .collect();
        let page = |id: PageId| {
            snapshot
                .sealed_page(id)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| internal("a page the snapshot names is not in it"))
        };
        let in_transaction = changed.len() * veritee_fork::SEALED_PAGE_LEN <= IN_TRANSACTION_BYTES;
        let (series, with) = if in_transaction {
            let with = changed
                .iter()
                .map(|id| {
                    Ok(ObjectWrite {
                        ns: PAGES_NS.into(),
                        key: self.page_key(tenant, name, durable.series, id.index)?,
                        value: page(*id)?,
                    })
                })
                .collect::<Result<Vec<_>, EnclaveFailure>>()?;
            (durable.series, with)
        } else {
            let series = new_series()?;
            for id in &ids {
                link.put(
                    PAGES_NS,
                    &self.page_key(tenant, name, series, id.index)?,
                    page(*id)?,
                )?;
            }
            (series, Vec::new())
        };
        let offer = snapshot
            .offer(&ForkSecret::new(durable.secret.clone()))
            .map_err(fork_failure)?;
        let record = AppRecord {
            offer: offer.as_bytes().to_vec(),
            series,
            secret: durable.secret.expose().to_vec(),
            forks: running.forks,
            forked_from: running.forked_from.map(|d| d.to_vec()),
            links: running
                .links
                .iter()
                .map(|l| {
                    (
                        serde_bytes::ByteBuf::from(l.key.expose().expose().to_vec()),
                        l.side as u8,
                    )
                })
                .collect(),
            fork_peer: running.fork_peer.clone(),
            keys: running.keys.iter().map(ToString::to_string).collect(),
        };
        // It holds the application's secret and link keys: exactly sized, so that no
        // grown-out-of copy of them is left behind.
        let bytes =
            zeroize::Zeroizing::new(veritee_proto::cbor::to_vec_exact(&record).map_err(internal)?);
        self.record_put_with(link, &tenant_ns(tenant), &record_key(name), &bytes, with)?;
        let old_series = durable.series;
        if let Some(durable) = &mut running.durable {
            durable.series = series;
            durable.stored = ids;
        }
        if series != old_series {
            let under = format!("{}{old_series:016x}/", self.pages_prefix(tenant, name)?);
            self.delete_pages(&under, link);
        }
        Ok(())
    }

    /// Deletes a stopped durable application's stored state.
    pub(super) fn forget_app(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        let ns = tenant_ns(tenant);
        self.record_delete(link, &ns, &record_key(name))?;
        self.record_delete(link, &ns, &module_key(name))?;
        let under = self.pages_prefix(tenant, name)?;
        self.delete_pages(&under, link);
        Ok(())
    }

    /// Starts `tenant`'s durable applications from their stored state, once per
    /// enclave process, at the tenant's first application request. An application
    /// whose state does not restore is left stored and named in the audit log.
    pub(super) fn restore_apps(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        if lock(&self.apps).restored.contains(tenant) {
            return Ok(());
        }
        let ns = tenant_ns(tenant);
        let names: Vec<String> = self
            .record_keys(link, &ns, "app/")?
            .into_iter()
            .filter_map(|key| key.strip_prefix("app/").map(str::to_owned))
            .filter(|name| !name.contains('/'))
            .collect();
        for name in names {
            let key = (tenant.to_owned(), name.clone());
            // A request of the same tenant running beside this one may have done it.
            if lock(&self.apps).running.contains_key(&key) {
                continue;
            }
            let restored = self.restore_app(tenant, &name, link).and_then(|running| {
                let mut apps = lock(&self.apps);
                if apps.running.contains_key(&key) {
                    return Ok(false);
                }
                Self::check_room(&apps, tenant, &name, running.app.limits().memory_bytes)?;
                apps.running.insert(key.clone(), super::Slot::new(running));
                Ok(true)
            });
            match restored {
                Ok(false) => {}
                Ok(true) => self.audit(link, "app.restore", tenant, &name, "ok")?,
                Err(e) => {
                    let outcome = format!("not restored: {}", e.message);
                    tracing::warn!(tenant, app = name.as_str(), "{outcome}");
                    self.audit(link, "app.restore", tenant, &name, &outcome)?;
                }
            }
        }
        lock(&self.apps).restored.insert(tenant.to_owned());
        Ok(())
    }

    fn restore_app(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<Running, EnclaveFailure> {
        let ns = tenant_ns(tenant);
        let missing = |what: &str| {
            failure(
                FailureKind::Internal,
                format!("application {name}: its {what} is not in the store"),
            )
        };
        let record = self
            .record_get(link, &ns, &record_key(name))?
            .ok_or_else(|| missing("state"))?;
        let module = self
            .record_get(link, &ns, &module_key(name))?
            .ok_or_else(|| missing("module"))?;
        let record: AppRecord = veritee_proto::cbor::from_slice(record.expose())
            .map_err(|e| internal(format!("application {name}: its record: {}", e.kind())))?;
        let secret: [u8; 32] = record
            .secret
            .as_slice()
            .try_into()
            .map_err(|_| internal("the application's secret is not 32 bytes"))?;
        let secret = Confidential::new(secret);
        let mut restorer = Restorer::open(&ForkSecret::new(secret.clone()), &record.offer)
            .map_err(fork_failure)?;
        let state = restorer.state().clone();
        let memory = self.reserve_app_memory(
            name,
            super::child_limits(&state.runtime.limits).memory_bytes,
        )?;
        let (mut app, module_sha256) = start_from(tenant, name, module.expose(), &state)?;
        let ids = restorer.page_ids();
        for id in &ids {
            let key = self.page_key(tenant, name, record.series, id.index)?;
            let page = link.get(PAGES_NS, &key)?.ok_or_else(|| {
                failure(
                    FailureKind::Internal,
                    format!("application {name}: page {} is not in the store", id.index),
                )
            })?;
            let mut frame = id.index.to_be_bytes().to_vec();
            frame.extend_from_slice(&page);
            restorer
                .push(&frame, app.memory_mut())
                .map_err(fork_failure)?;
        }
        restorer.finish(app.memory_mut()).map_err(fork_failure)?;
        let links = record
            .links
            .iter()
            .map(|(key, side)| {
                Ok(Link {
                    key: AeadKey::from_slice(key).map_err(internal)?,
                    side: if *side == ForkRole::Child as u8 {
                        ForkRole::Child
                    } else {
                        ForkRole::Parent
                    },
                })
            })
            .collect::<Result<Vec<_>, EnclaveFailure>>()?;
        let forked_from = match &record.forked_from {
            Some(digest) => Some(
                <[u8; 32]>::try_from(digest.as_slice())
                    .map_err(|_| internal("the stored origin is not a digest"))?,
            ),
            None => None,
        };
        app.allow_fork(record.fork_peer.is_some());
        let keys = veritee_task::messages::NamedKey::parse_list(&record.keys)
            .map_err(|e| internal(format!("application {name}: its stored keys: {e}")))?;
        let mut running = Running {
            keys,
            granted: None,
            memory,
            shadow: None,
            app,
            module,
            module_sha256,
            app_id: state.app_id,
            snapshot: None,
            forked_from,
            forks: record.forks,
            links,
            fork_peer: record.fork_peer.clone(),
            // The next snapshot starts afresh (its sealings are a new key's): every
            // page is stored again at the next call, over these.
            durable: Some(Durable {
                secret,
                series: record.series,
                stored: Vec::new(),
            }),
        };
        running.install_keys();
        Ok(running)
    }
}
