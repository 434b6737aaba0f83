//! Replicating user keys between enclaves over the mutually attested peer channel.
//!
//! The enclave that needs a key is the initiator; it reaches peers through its host
//! ([`HostLinkExt::peer_exchange`]), which only relays. The peer releases the key only
//! if the initiator's evidence meets everything the tenant deployed the key under: the
//! appraisal policy (signer, measurement where named, minimum security version, TCB
//! status, no debug...) and the release relation relative to the holder (same signer
//! and product, or same measurement). The initiator, in turn, stores a key only with the
//! tenant's own signed import request that deployed it, so a peer cannot plant a key.
//! Both sides appraise at the enclave's trusted time and refuse collateral older than
//! [`crate::clock::MAX_COLLATERAL_AGE`].
//!
//! Imported keys (flow 3) travel the same way when their signed metadata allow it
//! (same signer, or same measurement): only from the node they were imported into,
//! never once disabled there, and taken only under the tenant's signature over their
//! metadata, their first version matching the check value it names.
//!
//! ```text
//! PeerEnvelope (CBOR)  Hello(peer hello)              -> PeerReply::Challenge(peer challenge)
//!                      Finish { finish, request }      -> PeerReply::Response(sealed answer)
//!                      Fork(pages | done)              -> PeerReply::Received | Response (flow 5,
//!                                                         see crate::fork)
//! request (sealed)     Key { tenant, name } | Tenant { tenant }
//!                      | ImportedKey { tenant, partition, key_id } | Fork(module, secret, offer)
//! answer  (sealed)     Key(key record with its provenance) | Tenant { public_key }
//!                      | ImportedKey(sealed record: signed metadata, versions) | Denied { reason }
//! ```

use crate::host::{HostLink, HostLinkExt, failure};
use crate::import::{ImportedKeyRecord, key_record, stored_metadata};
use crate::keys::{UserKey, check_provenance, decode_key, encode_key};
use crate::service::{EnclaveService, bad, internal, lock, tenant_ns};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use veritee_attest::Claims;
use veritee_channel::deploy::ReleasePolicy;
use veritee_channel::peer::{
    Initiator, PeerAppraiser, PeerRequirement, Responder, primary_measurement,
};
use veritee_crypto::SecretBytes;
use veritee_import::keys::KeyRef;
use veritee_import::metadata::{KeyRelease, SignedMetadata};
use veritee_policy::AppraisalPolicy;
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};

const MAX_RESPONDERS: usize = 256;
const RESPONDER_TTL: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
pub(crate) enum PeerEnvelope {
    Hello(#[serde(with = "serde_bytes")] Vec<u8>),
    Finish {
        #[serde(with = "serde_bytes")]
        finish: Vec<u8>,
        #[serde(with = "serde_bytes")]
        request: Vec<u8>,
    },
    /// A fork's page frames or end mark, after its session's first message (flow 5).
    Fork(crate::fork::ForkEnvelope),
}

impl veritee_proto::cbor::TrailingBytes for PeerEnvelope {
    fn trailing_bytes(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::Fork(envelope) => Some(envelope.sealed_mut()),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) enum PeerReply {
    Challenge(#[serde(with = "serde_bytes")] Vec<u8>),
    Response(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A fork's page frames were taken.
    Received,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum FetchRequest {
    /// The sealing root kept for the initiator's sealing identity (see
    /// [`crate::sealing_root`]).
    SealingRoot,
    Key {
        tenant: String,
        name: String,
    },
    Tenant {
        tenant: String,
    },
    /// An imported key (flow 3) whose signed metadata allow replicas.
    ImportedKey {
        tenant: String,
        partition: String,
        key_id: String,
    },
    /// A fork of an application into this enclave (flow 5).
    Fork(crate::fork::ForkOpen),
}

/// Private: carries key bytes, encoded only into the sealed channel plaintext.
#[derive(Serialize, Deserialize)]
pub(crate) enum FetchAnswer {
    /// A released sealing root (see [`crate::sealing_root`]).
    SealingRoot(KeyBytes),
    /// The encoded key copy (key, relation, policy, check value, provenance).
    Key(KeyBytes),
    /// An imported key's sealed record, as encoded (signed metadata, versions).
    ImportedKey(KeyBytes),
    Tenant {
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
    },
    Denied {
        reason: String,
    },
}

/// An encoded key copy, wiped when dropped.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyBytes(#[serde(with = "serde_bytes")] pub(crate) Vec<u8>);

impl Drop for KeyBytes {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

pub(crate) fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, EnclaveFailure> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(internal)?;
    Ok(out)
}

/// A peer's reply, as relayed by the host.
pub(crate) fn decode_peer(b: &[u8]) -> Result<PeerReply, EnclaveFailure> {
    from_cbor(b, "peer reply")
}

fn from_cbor<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, EnclaveFailure> {
    check_peer_size(b, what)?;
    // A scratch buffer wiped after use, and nothing left over: requests carry keys,
    // a fork's module and its secret.
    veritee_proto::cbor::from_slice(b).map_err(|e| malformed(what, e))
}

/// [`from_cbor`] of a message whose trailing byte string (a fork's 8 MiB of sealed
/// pages) becomes its field where it lies instead of being copied out.
fn from_cbor_with_tail<T>(b: Vec<u8>, what: &str) -> Result<T, EnclaveFailure>
where
    T: serde::de::DeserializeOwned + veritee_proto::cbor::TrailingBytes,
{
    check_peer_size(&b, what)?;
    veritee_proto::cbor::from_vec_with_tail(b).map_err(|e| malformed(what, e))
}

fn check_peer_size(b: &[u8], what: &str) -> Result<(), EnclaveFailure> {
    if b.len() > veritee_proto::ipc::MAX_PEER_MESSAGE {
        return Err(failure(
            FailureKind::BadRequest,
            format!("{what} is too large"),
        ));
    }
    Ok(())
}

fn malformed(what: &str, e: veritee_proto::cbor::CborError) -> EnclaveFailure {
    failure(
        FailureKind::BadRequest,
        format!("malformed {what}: {}", e.kind()),
    )
}

impl EnclaveService {
    /// The base policy every peer must meet: same TEE kind, no debug, up to date,
    /// simulated only if this enclave is simulated itself.
    pub(crate) fn peer_policy(&self) -> AppraisalPolicy {
        let mut policy = AppraisalPolicy::default_hardware();
        let tee = self.platform().tee();
        policy.tee = vec![tee];
        policy.allow_simulated = tee == veritee_attest::TeeKind::Simulated;
        policy
    }

    /// How this enclave appraises a peer. As initiator it trusts what the peer tells it
    /// (keys, tenants), so the peer must be the same application: same signer, or the
    /// same code when unsigned. As responder it appraises against the base policy and
    /// applies each key's release policy to what is asked.
    pub(crate) fn peer_appraiser<'a>(
        &'a self,
        verifiers: &'a veritee_verify::Verifiers,
        policy: &'a AppraisalPolicy,
        initiator: bool,
    ) -> Result<PeerAppraiser<'a>, EnclaveFailure> {
        if self.peer_anchors.is_empty() {
            return Err(failure(
                FailureKind::Unavailable,
                "this enclave has no peer trust anchors configured, so it cannot appraise other enclaves",
            ));
        }
        Ok(PeerAppraiser {
            verifiers,
            trust_anchors: &self.peer_anchors,
            policy,
            requirement: match (initiator, self.platform().identity().signer.is_some()) {
                (false, _) => PeerRequirement::PolicyOnly,
                (true, true) => PeerRequirement::SameSigner,
                (true, false) => PeerRequirement::SameMeasurement,
            },
            own: self.platform().identity(),
            own_tee: self.platform().tee(),
            at: self.clock().now(),
        })
    }

    /// Refuses a peer that does not meet [`Self::peer_policy`] (same TEE kind...): the
    /// handshake of a releaser of sealing roots admits more than that.
    fn check_same_kind_peer(&self, claims: &Claims) -> Result<(), EnclaveFailure> {
        let appraisal = self.peer_policy().evaluate(claims, self.clock().now());
        if appraisal.failed.is_empty() {
            return Ok(());
        }
        let reasons: Vec<String> = appraisal
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.criterion, f.reason))
            .collect();
        Err(failure(
            FailureKind::Unauthorized,
            format!(
                "peer refused: only a sealing root is released to it ({})",
                reasons.join("; ")
            ),
        ))
    }

    /// Refuses a peer whose evidence came with collateral older than the bound, by the
    /// enclave's time; a vendor-signed issue date also moves the enclave's time floor.
    pub(crate) fn check_peer_collateral(&self, claims: &Claims) -> Result<(), EnclaveFailure> {
        let Some(issued) = claims.details.get("collateral_issued") else {
            return Ok(());
        };
        let issued =
            time::OffsetDateTime::parse(issued, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad("the peer's collateral date is unreadable"))?;
        self.clock().observe(issued);
        let age = self.clock().now() - issued;
        if age > crate::clock::MAX_COLLATERAL_AGE {
            return Err(failure(
                FailureKind::Unauthorized,
                format!(
                    "peer refused: its collateral was issued {} days ago, more than the {} days this enclave accepts",
                    age.whole_days(),
                    crate::clock::MAX_COLLATERAL_AGE.whole_days()
                ),
            ));
        }
        Ok(())
    }

    /// Initiator: obtains a key from the first peer that releases it.
    pub(crate) fn fetch_replica(
        &self,
        tenant: &str,
        name: &str,
        link: &mut dyn HostLink,
    ) -> Result<UserKey, EnclaveFailure> {
        let verifiers = veritee_verify::Verifiers::default();
        let policy = self.peer_policy();
        let appraiser = self.peer_appraiser(&verifiers, &policy, true)?;
        let peers = link.peers()?;
        if peers.is_empty() {
            return Err(failure(
                FailureKind::NotFound,
                format!(
                    "key {name} is not on this node and no peer node is configured to replicate it from"
                ),
            ));
        }
        let mut reasons = Vec::new();
        for peer in peers {
            match self.fetch_from(&peer, tenant, name, &appraiser, link) {
                Ok(key) => return Ok(key),
                Err(e) => reasons.push(format!("{peer}: {}", e.message)),
            }
        }
        self.audit(link, "key.replicate", tenant, name, "refused by every peer")?;
        Err(failure(
            FailureKind::NotFound,
            format!("no peer released key {name}: {}", reasons.join("; ")),
        ))
    }

    fn fetch_from(
        &self,
        peer: &str,
        tenant: &str,
        name: &str,
        appraiser: &PeerAppraiser<'_>,
        link: &mut dyn HostLink,
    ) -> Result<UserKey, EnclaveFailure> {
        let request = FetchRequest::Key {
            tenant: tenant.into(),
            name: name.into(),
        };
        let answer = self.ask_peer(peer, &request, appraiser, link)?;
        let key = Self::decode_key_answer(answer)?;
        // The tenant's own deployment proof, checked with the tenant's key as this
        // enclave knows it: without it, a peer could plant any key under any name.
        let spki = self.tenant_key(link, tenant)?;
        check_provenance(&key.provenance, tenant, &spki, name, &key).map_err(|reason| {
            failure(
                FailureKind::Unauthorized,
                format!("replica refused: {reason}"),
            )
        })?;
        Ok(key)
    }

    /// One request to one peer over a fresh mutually attested session.
    pub(crate) fn ask_peer(
        &self,
        peer: &str,
        request: &FetchRequest,
        appraiser: &PeerAppraiser<'_>,
        link: &mut dyn HostLink,
    ) -> Result<FetchAnswer, EnclaveFailure> {
        let (initiator, hello) = Initiator::start().map_err(internal)?;
        let reply = link.peer_exchange(peer, cbor(&PeerEnvelope::Hello(hello))?)?;
        let PeerReply::Challenge(challenge) = from_cbor(&reply, "peer reply")? else {
            return Err(bad("the peer answered a hello with something else"));
        };
        let (mut session, claims, finish) = initiator
            .on_challenge(&challenge, self.platform(), appraiser)
            .map_err(bad)?;
        self.check_peer_collateral(&claims)?;
        let request = session.seal(&cbor(request)?).map_err(internal)?;
        let reply = link.peer_exchange(peer, cbor(&PeerEnvelope::Finish { finish, request })?)?;
        let PeerReply::Response(sealed) = from_cbor(&reply, "peer reply")? else {
            return Err(bad("the peer answered a finish with something else"));
        };
        let plain = session.open(&sealed).map_err(bad)?;
        from_cbor(plain.expose(), "peer answer")
    }

    /// Initiator: a tenant's public key from the first peer that knows it.
    pub(crate) fn fetch_tenant_from_peers(
        &self,
        tenant: &str,
        link: &mut dyn HostLink,
    ) -> Result<Vec<u8>, EnclaveFailure> {
        let verifiers = veritee_verify::Verifiers::default();
        let policy = self.peer_policy();
        let appraiser = self.peer_appraiser(&verifiers, &policy, true)?;
        let mut reasons = Vec::new();
        for peer in link.peers()? {
            match self.ask_peer(
                &peer,
                &FetchRequest::Tenant {
                    tenant: tenant.into(),
                },
                &appraiser,
                link,
            ) {
                Ok(FetchAnswer::Tenant { public_key }) => return Ok(public_key),
                Ok(FetchAnswer::Denied { reason }) => reasons.push(format!("{peer}: {reason}")),
                Ok(
                    FetchAnswer::Key(_) | FetchAnswer::ImportedKey(_) | FetchAnswer::SealingRoot(_),
                ) => reasons.push(format!("{peer}: answered with a key")),
                Err(e) => reasons.push(format!("{peer}: {}", e.message)),
            }
        }
        Err(failure(
            FailureKind::NotFound,
            format!("unknown tenant {tenant} (peers: {})", reasons.join("; ")),
        ))
    }

    fn decode_key_answer(answer: FetchAnswer) -> Result<UserKey, EnclaveFailure> {
        match answer {
            FetchAnswer::Key(record) => {
                decode_key(&record.0).map_err(|e| bad(format!("the peer's key: {e}")))
            }
            FetchAnswer::Denied { reason } => Err(failure(
                FailureKind::Unauthorized,
                format!("denied: {reason}"),
            )),
            FetchAnswer::Tenant { .. }
            | FetchAnswer::ImportedKey(_)
            | FetchAnswer::SealingRoot(_) => {
                Err(bad("the peer answered with something else than a data key"))
            }
        }
    }

    /// Initiator: an imported key's record from the first peer that releases it,
    /// checked against the tenant's own signature over its metadata.
    pub(crate) fn fetch_imported_replica(
        &self,
        tenant: &str,
        key: &KeyRef,
        link: &mut dyn HostLink,
    ) -> Result<ImportedKeyRecord, EnclaveFailure> {
        let verifiers = veritee_verify::Verifiers::default();
        let policy = self.peer_policy();
        let appraiser = self.peer_appraiser(&verifiers, &policy, true)?;
        let request = FetchRequest::ImportedKey {
            tenant: tenant.into(),
            partition: key.partition.clone(),
            key_id: key.key_id.clone(),
        };
        let mut reasons = Vec::new();
        for peer in link.peers()? {
            let answer = self.ask_peer(&peer, &request, &appraiser, link);
            let record = match answer {
                Ok(FetchAnswer::ImportedKey(bytes)) => ImportedKeyRecord::decode(&bytes.0)
                    .and_then(|record| self.check_imported_replica(tenant, key, record, link)),
                Ok(FetchAnswer::Denied { reason }) => Err(bad(reason)),
                Ok(_) => Err(bad("the peer answered with something else than the key")),
                Err(e) => Err(e),
            };
            match record {
                Ok(record) => return Ok(record),
                Err(e) => reasons.push(format!("{peer}: {}", e.message)),
            }
        }
        Err(failure(
            FailureKind::NotFound,
            format!(
                "key {key} is not on this node, and no peer released it ({})",
                reasons.join("; ")
            ),
        ))
    }

    /// A peer's copy of an imported key, checked against the tenant's key registered
    /// here (see [`check_replica`]).
    fn check_imported_replica(
        &self,
        tenant: &str,
        key: &KeyRef,
        record: ImportedKeyRecord,
        link: &mut dyn HostLink,
    ) -> Result<ImportedKeyRecord, EnclaveFailure> {
        let spki = self.tenant_key(link, tenant)?;
        check_replica(tenant, key, &spki, record)
    }

    /// Responder: a peer enclave's hello or finish, or a fork's later step.
    pub(crate) fn peer_message(
        &self,
        message: Vec<u8>,
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let verifiers = veritee_verify::Verifiers::default();
        // A releaser of sealing roots admits enclaves of other kinds to the handshake;
        // everything but a root is then asked of the same kind only (below).
        let policy = if self.releases_sealing_roots() {
            self.root_requester_policy()
        } else {
            self.peer_policy()
        };
        let appraiser = self.peer_appraiser(&verifiers, &policy, false)?;
        match from_cbor_with_tail::<PeerEnvelope>(message, "peer message")? {
            PeerEnvelope::Hello(hello) => {
                let (responder, challenge) =
                    Responder::on_hello(&hello, self.platform()).map_err(bad)?;
                let mut responders = lock(&self.responders);
                let now = Instant::now();
                responders.retain(|_, (_, t)| now.duration_since(*t) < RESPONDER_TTL);
                if responders.len() >= MAX_RESPONDERS {
                    return Err(failure(
                        FailureKind::Unavailable,
                        "too many peer handshakes in progress",
                    ));
                }
                responders.insert(responder.session_id(), (responder, now));
                Ok(EnclaveReply::Message {
                    message: cbor(&PeerReply::Challenge(challenge))?,
                })
            }
            PeerEnvelope::Finish { finish, request } => {
                let session_id = finish
                    .get(5..21)
                    .map(hex::encode)
                    .ok_or_else(|| bad("peer finish is truncated"))?;
                let Some((responder, _)) = lock(&self.responders).remove(&session_id) else {
                    return Err(failure(
                        FailureKind::NotFound,
                        "unknown or expired peer handshake",
                    ));
                };
                let (mut session, claims) =
                    responder.on_finish(&finish, &appraiser).map_err(|e| {
                        failure(FailureKind::Unauthorized, format!("peer refused: {e}"))
                    })?;
                self.check_peer_collateral(&claims)?;
                let plain: SecretBytes = session.open(&request).map_err(bad)?;
                let request: FetchRequest = from_cbor(plain.expose(), "peer request")?;
                if !matches!(request, FetchRequest::SealingRoot) {
                    self.check_same_kind_peer(&claims)?;
                }
                let answer = match request {
                    FetchRequest::SealingRoot => self.release_sealing_root(&claims, link)?,
                    FetchRequest::Fork(open) => {
                        return self.fork_accept(open, &claims, session, link);
                    }
                    FetchRequest::Key { tenant, name } => {
                        self.release_to_peer(&tenant, &name, &claims, link)?
                    }
                    FetchRequest::ImportedKey {
                        tenant,
                        partition,
                        key_id,
                    } => self.release_imported_to_peer(
                        &tenant,
                        &KeyRef::new(&partition, &key_id),
                        &claims,
                        link,
                    )?,
                    FetchRequest::Tenant { tenant } => {
                        match self.own_tenant_copy(&tenant, link)? {
                            Some(public_key) => FetchAnswer::Tenant { public_key },
                            None => FetchAnswer::Denied {
                                reason: format!("tenant {tenant} is not registered here"),
                            },
                        }
                    }
                };
                // The answer may hold a key: encoded into a buffer wiped on drop, sized
                // exactly so that no grown-out-of copy is left behind.
                let plain = zeroize::Zeroizing::new(
                    veritee_proto::cbor::to_vec_exact(&answer).map_err(internal)?,
                );
                let sealed = session.seal(&plain).map_err(internal)?;
                Ok(EnclaveReply::Message {
                    message: cbor(&PeerReply::Response(sealed))?,
                })
            }
            PeerEnvelope::Fork(envelope) => self.fork_message(envelope, link),
        }
    }

    fn release_to_peer(
        &self,
        tenant: &str,
        name: &str,
        peer: &veritee_attest::Claims,
        link: &mut dyn HostLink,
    ) -> Result<FetchAnswer, EnclaveFailure> {
        let Some(key) = self.own_key_copy(tenant, name, link)? else {
            return Ok(FetchAnswer::Denied {
                reason: format!("this node holds no copy of key {name}"),
            });
        };
        let refusal = self.release_refusal(&key, peer);
        if let Some(reason) = refusal {
            self.audit(
                link,
                "key.release.peer",
                tenant,
                name,
                &format!("refused: {reason}"),
            )?;
            return Ok(FetchAnswer::Denied { reason });
        }
        self.audit(link, "key.release.peer", tenant, name, "ok")?;
        // Moved out of its zeroizing buffer without a copy; KeyBytes wipes it on drop.
        let mut record = encode_key(&key)?;
        Ok(FetchAnswer::Key(KeyBytes(std::mem::take(&mut *record))))
    }

    /// Responder: an imported key's record, if its metadata allow `peer` a replica
    /// and it is still usable here.
    fn release_imported_to_peer(
        &self,
        tenant: &str,
        key: &KeyRef,
        peer: &Claims,
        link: &mut dyn HostLink,
    ) -> Result<FetchAnswer, EnclaveFailure> {
        if crate::import::crypto::check_ref(key).is_err() {
            return Ok(FetchAnswer::Denied {
                reason: format!("{key} is not a key name"),
            });
        }
        let ns = tenant_ns(tenant);
        let Some(bytes) = self.record_get(link, &ns, &key_record(&key.partition, &key.key_id))?
        else {
            return Ok(FetchAnswer::Denied {
                reason: format!("this node holds no key {key}"),
            });
        };
        let record = ImportedKeyRecord::decode(bytes.expose())?;
        let metadata = stored_metadata(&record)?;
        let refusal = match metadata.release {
            None => Some(format!(
                "key {key} was imported for node {} alone: its metadata allow no replicas",
                metadata.node_id
            )),
            Some(_) if record.replica_of.is_some() => Some(
                "this node holds a replica: only the node it was imported into releases it".into(),
            ),
            Some(_)
                if record.disabled_at.is_some()
                    || record
                        .revocation
                        .as_ref()
                        .is_some_and(|r| r.revoked_at.is_some()) =>
            {
                Some(format!("key {key} is disabled for good"))
            }
            Some(KeyRelease::SameSigner) => self.relation_refusal(ReleasePolicy::SameSigner, peer),
            Some(KeyRelease::SameMeasurement) => {
                self.relation_refusal(ReleasePolicy::SameMeasurement, peer)
            }
        };
        let what = key.to_string();
        if let Some(reason) = refusal {
            self.audit(
                link,
                "import.release.peer",
                tenant,
                &what,
                &format!("refused: {reason}"),
            )?;
            return Ok(FetchAnswer::Denied { reason });
        }
        self.audit(link, "import.release.peer", tenant, &what, "ok")?;
        let mut encoded = record.encode()?;
        Ok(FetchAnswer::ImportedKey(KeyBytes(std::mem::take(
            &mut *encoded,
        ))))
    }

    /// Why `peer` may not receive `key`, if it may not: every criterion of the policy
    /// the tenant deployed it under, and the release relation relative to this enclave.
    fn release_refusal(&self, key: &UserKey, peer: &Claims) -> Option<String> {
        let mut reasons: Vec<String> = self
            .relation_refusal(key.release, peer)
            .into_iter()
            .collect();
        match core::str::from_utf8(&key.policy)
            .map_err(|e| e.to_string())
            .and_then(|text| AppraisalPolicy::parse(text).map_err(|e| e.to_string()))
        {
            Ok(policy) => {
                let appraisal = policy.evaluate(peer, self.clock().now());
                reasons.extend(appraisal.failed.iter().map(|f| {
                    format!("the key's deployment policy: {}: {}", f.criterion, f.reason)
                }));
            }
            Err(e) => reasons.push(format!("the key's deployment policy is unreadable: {e}")),
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Why `peer` does not stand in the `release` relation to this enclave (or is an
    /// older build), if it does not.
    fn relation_refusal(&self, release: ReleasePolicy, peer: &Claims) -> Option<String> {
        let own = self.platform().identity();
        let mut reasons = Vec::new();
        match release {
            ReleasePolicy::Never => {
                return Some("the key's release policy forbids replication".to_string());
            }
            ReleasePolicy::SameSigner => {
                match (&peer.signer, &own.signer) {
                    (Some(theirs), Some(ours)) if theirs.0 == *ours => {}
                    _ => reasons.push(
                        "the requesting enclave has another signer (release: same signer)".into(),
                    ),
                }
                if peer.details.get("product_id").map(String::as_str)
                    != Some(own.product_id.to_string().as_str())
                {
                    reasons.push(format!(
                        "the requesting enclave is another product than {} (release: same signer and product)",
                        own.product_id
                    ));
                }
            }
            ReleasePolicy::SameMeasurement => {
                if peer.measurement(primary_measurement(peer.tee))
                    != Some(own.measurement.as_slice())
                {
                    reasons.push(
                        "the requesting enclave runs other code (release: same measurement)".into(),
                    );
                }
            }
        }
        // Sealing keeps an older build from reading what a newer one sealed; releasing
        // to an older build would hand it over all the same.
        match peer.security_version {
            Some(theirs) if theirs >= u64::from(own.security_version) => {}
            Some(theirs) => reasons.push(format!(
                "the requesting enclave is security version {theirs}, older than this one ({}): an older build never receives what a newer one holds",
                own.security_version
            )),
            None => reasons.push("the requesting enclave reports no security version".into()),
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// A peer's copy of an imported key is taken only as the tenant signed it: its
/// metadata under the tenant's key (`tenant_spki`, as registered here), naming this
/// tenant and key and allowing replicas, and its first version the key its check
/// value names. A peer cannot plant a key, nor pass one key off as another.
fn check_replica(
    tenant: &str,
    key: &KeyRef,
    tenant_spki: &[u8],
    mut record: ImportedKeyRecord,
) -> Result<ImportedKeyRecord, EnclaveFailure> {
    let refuse = |why: &str| failure(FailureKind::Unauthorized, format!("replica refused: {why}"));
    let signed = SignedMetadata {
        bytes: record.metadata.clone(),
        signature: record.signature.clone(),
    };
    let (metadata, check) = signed
        .open(tenant_spki)
        .map_err(|e| refuse(&e.to_string()))?;
    if metadata.tenant != tenant
        || metadata.partition != key.partition
        || metadata.key_id != key.key_id
    {
        return Err(refuse("its metadata name another tenant, partition or key"));
    }
    if metadata.release.is_none() {
        return Err(refuse("its metadata allow no replicas"));
    }
    let first = record
        .versions
        .first()
        .ok_or_else(|| refuse("it has no version"))?;
    if check.is_some_and(|c| !c.matches(&SecretBytes::copy_from(&first.material))) {
        return Err(refuse("its key is not the one its metadata name"));
    }
    if record.replica_of.is_none() {
        record.replica_of = Some(metadata.node_id.clone());
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
    use veritee_import::keys::{KeyCheck, KeyType, Operation};
    use veritee_import::metadata::{
        ImportMetadata, METADATA_SIGNATURE_LABEL, METADATA_VERSION, key_id_of,
    };

    const MATERIAL: [u8; 32] = [7; 32];

    struct Tenant {
        key: EcdsaSigningKey,
        id: String,
    }

    impl Tenant {
        fn new() -> Self {
            let key = EcdsaSigningKey::generate(EcdsaCurve::P256).unwrap();
            let id = key_id_of(&key.public_key_spki().unwrap());
            Self { key, id }
        }

        fn spki(&self) -> Vec<u8> {
            self.key.public_key_spki().unwrap()
        }
    }

    fn metadata(tenant: &Tenant, key_id: &str) -> ImportMetadata {
        ImportMetadata {
            version: METADATA_VERSION,
            tenant: tenant.id.clone(),
            node_id: "ab".repeat(16),
            partition: "p".into(),
            key_id: key_id.into(),
            key_type: KeyType::Aes256Gcm,
            operations: vec![Operation::Encrypt],
            key_check: KeyCheck::new(&SecretBytes::copy_from(&MATERIAL))
                .unwrap()
                .to_hex(),
            tee_key_id: key_id_of(b"tee"),
            provider_key_id: key_id_of(b"provider"),
            validations: Vec::new(),
            rotate_after_secs: None,
            revocation_interval_secs: None,
            task_signers: Vec::new(),
            created: "2026-12-07T08:00:00Z".into(),
            format: veritee_import::formats::ImportFormat::Veritee,
            wrapped_sha256: None,
            release: Some(KeyRelease::SameSigner),
        }
    }

    /// A record as a peer would send it: `metadata` signed by `signer`, `material`.
    fn record(signer: &Tenant, metadata: &ImportMetadata, material: &[u8]) -> ImportedKeyRecord {
        let bytes = serde_json::to_vec(metadata).unwrap();
        let mut signed = METADATA_SIGNATURE_LABEL.to_vec();
        signed.extend_from_slice(&bytes);
        ImportedKeyRecord {
            metadata: bytes,
            signature: signer.key.sign(&signed).unwrap(),
            versions: vec![crate::import::VersionRecord {
                version: 1,
                material: material.to_vec(),
                created: 0,
            }],
            minimum_version: 1,
            revocation: None,
            disabled_at: None,
            replica_of: None,
        }
    }

    fn refused(result: Result<ImportedKeyRecord, EnclaveFailure>, reason: &str) {
        match result {
            Ok(_) => panic!("a planted key was taken ({reason})"),
            Err(f) => {
                assert_eq!(f.kind, FailureKind::Unauthorized, "{}", f.message);
                assert!(f.message.contains(reason), "{reason}: {}", f.message);
            }
        }
    }

    /// What a peer enclave (or anything that got into the channel) could send instead of
    /// the tenant's key: each refused, with the reason named. The honest copy is taken
    /// and marked as a replica of the node it was imported into.
    #[test]
    fn a_peer_cannot_plant_a_key_or_pass_one_off_as_another() {
        let alice = Tenant::new();
        let mallory = Tenant::new();
        let key = KeyRef::new("p", "k");
        let honest = || record(&alice, &metadata(&alice, "k"), &MATERIAL);

        let taken = check_replica(&alice.id, &key, &alice.spki(), honest()).unwrap();
        assert_eq!(taken.replica_of.as_deref(), Some("ab".repeat(16).as_str()));

        // Metadata signed by another key than the one alice registered here: a peer's
        // own key, presented as alice's.
        let forged = metadata(&alice, "k");
        refused(
            check_replica(
                &alice.id,
                &key,
                &alice.spki(),
                record(&mallory, &forged, &MATERIAL),
            ),
            "not signed by the tenant's key",
        );
        // Alice's genuine key of another name, or another tenant's key, offered for this one.
        refused(
            check_replica(
                &alice.id,
                &key,
                &alice.spki(),
                record(&alice, &metadata(&alice, "other"), &MATERIAL),
            ),
            "name another tenant, partition or key",
        );
        let mut elsewhere = metadata(&alice, "k");
        elsewhere.partition = "q".into();
        refused(
            check_replica(
                &alice.id,
                &key,
                &alice.spki(),
                record(&alice, &elsewhere, &MATERIAL),
            ),
            "name another tenant, partition or key",
        );
        refused(
            check_replica(
                &alice.id,
                &key,
                &mallory.spki(),
                record(&mallory, &metadata(&mallory, "k"), &MATERIAL),
            ),
            "name another tenant, partition or key",
        );
        // A key imported for its node alone.
        let mut alone = metadata(&alice, "k");
        alone.release = None;
        refused(
            check_replica(
                &alice.id,
                &key,
                &alice.spki(),
                record(&alice, &alone, &MATERIAL),
            ),
            "allow no replicas",
        );
        // Alice's signed metadata with other material: the peer's key under her name.
        refused(
            check_replica(
                &alice.id,
                &key,
                &alice.spki(),
                record(&alice, &metadata(&alice, "k"), &[8u8; 32]),
            ),
            "not the one its metadata name",
        );
        let mut empty = honest();
        empty.versions.clear();
        refused(
            check_replica(&alice.id, &key, &alice.spki(), empty),
            "has no version",
        );
        // The metadata changed after signing, a byte at a time, and the signature cut.
        let genuine = honest();
        for i in (0..genuine.metadata.len()).step_by(7) {
            let mut flipped = honest();
            flipped.metadata[i] ^= 1;
            refused(
                check_replica(&alice.id, &key, &alice.spki(), flipped),
                "replica refused",
            );
        }
        let mut cut = honest();
        cut.signature.truncate(63);
        refused(
            check_replica(&alice.id, &key, &alice.spki(), cut),
            "not signed by the tenant's key",
        );
    }
}
