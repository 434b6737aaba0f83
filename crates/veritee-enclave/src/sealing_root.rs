//! A sealing root released by an attested peer, for TEEs that give an enclave no
//! sealing key (TDX, Nitro).
//!
//! Neither the TDX module nor the Nitro Secure Module derives keys for a guest, so a
//! node there cannot seal its state by itself. It gets a 256-bit root instead from a
//! *releaser*: a node on a TEE that can seal (SEV-SNP, SGX; the simulator in tests),
//! started with `--release-sealing-roots`, reached as one of the node's peers.
//!
//! ```text
//! requester (TDX, Nitro)              host(s)               releaser (SNP, SGX)
//!   peer handshake, both sides attested (veritee_channel::peer) ------------>
//!   request SealingRoot (sealed in the session) ---------------------------->
//!                                       releaser appraises the requester: genuine,
//!                                       not debug, a kind it can name; reads or
//!                                       creates the root kept for the requester's
//!                                       sealing identity (a sealed record of its own)
//!   <------------------------------------ answer SealingRoot(root) (sealed)
//! ```
//!
//! - **Who gets which root.** The releaser keeps one random root per *sealing
//!   identity*, which it reads from the requester's verified evidence, never from what
//!   the requester says: the code's measurements and the launch configuration that
//!   evidence binds ([`sealing_identity`]). Another image, another launch
//!   configuration, or a debug guest gets another root or none, as hardware sealing
//!   keys differ by measurement; so releasing to any genuine enclave is safe: each
//!   learns only its own root. Unlike a chip's key, though, a root is not bound to a
//!   machine: every node of one image and launch configuration gets the same root
//!   (and node id), so nodes meant to be distinct need distinct launch configurations
//!   (`veritee node --instance NAME`), and one compromised guest of an identity exposes
//!   that identity's root. Roots go only to TEEs without a sealing key (TDX, Nitro),
//!   whose TCB is up to date (Nitro reports none).
//! - **Whom the requester trusts.** Whoever releases the root can read everything
//!   sealed under it. The requester therefore takes a root only from a releaser its
//!   measured configuration names (`--sealing-root-policy`, an appraisal policy that
//!   must pin the releaser's code: [`check_releaser_policy`]); the host chooses which
//!   peer to ask, never whom to believe.
//! - **Which releaser held it.** Roots are random per releaser, so two releasers
//!   give two roots. The requester keeps a check value of its root with the host (it
//!   reveals nothing of the root) and, on later starts, takes the root only from a
//!   peer whose root matches it. The check value is only a guide: what holds the node
//!   to its root is its monotonic counter, kept in a TPM at an NV index its identity
//!   names, under an authorization derived from the root
//!   (`crate::launch::TpmCountedPlatform::counting_by_identity`). A host that deletes
//!   the check value and offers another releaser's root gets a node that cannot use
//!   its counter and does not start; to start it afresh the host must delete the
//!   counter too, which erases the node, as it could erase any node's store.
//! - **What the root gives.** Sealing keys are derived from it as the hardware would
//!   derive them ([`ReleasedRootPlatform`]): per label, bound to the measurement and
//!   to the security version, never newer than the enclave's own.
//!
//! The root is fetched before the enclave's first access to sealed state (the state,
//! its node id and keys, its TPM counters all derive from it) and kept in memory only.

use crate::host::{HostLink, HostLinkExt, failure};
use crate::replication::{FetchAnswer, FetchRequest, KeyBytes};
use crate::service::{EnclaveService, internal, lock};
use std::sync::{Arc, Mutex, OnceLock};
use veritee_attest::{Claims, ReportData, TcbStatus, TeeKind};
use veritee_channel::peer::{PeerAppraiser, PeerRequirement};
use veritee_crypto::Confidential;
use veritee_crypto::aead::AeadKey;
use veritee_platform::{EnclaveIdentity, MonotonicCounter, Platform, PlatformError, SealPolicy};
use veritee_policy::AppraisalPolicy;
use veritee_proto::ipc::{EnclaveFailure, FailureKind};

/// Length of a released root.
pub const ROOT_LEN: usize = 32;
/// Where the releaser keeps the roots it has released (sealed records).
const RELEASED_NS: &str = "sealing-roots";
/// Where the requester keeps its root's check value with the host (not secret).
const CHECK_NS: &str = "sealing-root-check";
const IDENTITY_LABEL: &[u8] = b"veritee sealing identity v1\0";
const CHECK_LABEL: &[u8] = b"veritee released sealing root check v1";
const KEY_SALT: &[u8] = b"veritee released sealing root v1";

/// The claims that make up a sealing identity, by TEE kind: measurements, then details.
/// TDX leaves RTMR3 out (the guest extends it at run time); everything that identifies
/// the boot chain and its launch configuration is in.
fn identity_fields(tee: TeeKind) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match tee {
        TeeKind::Tdx => (
            &[
                "mrtd",
                "rtmr0",
                "rtmr1",
                "rtmr2",
                "mrconfigid",
                "mrowner",
                "mrownerconfig",
            ],
            &["td_attributes", "xfam"],
        ),
        TeeKind::Nitro => (&["pcr0", "pcr1", "pcr2"], &[]),
        TeeKind::SevSnp => (&["launch_measurement"], &["host_data", "policy"]),
        TeeKind::Sgx => (&["mrenclave"], &["attributes"]),
        TeeKind::Simulated => (&["measurement"], &[]),
        _ => return None,
    })
}

/// The sealing identity verified `claims` describe: the TEE kind and each claim of
/// [`identity_fields`], length-prefixed. `Err` names what is missing, or why this
/// evidence gets no root (debug, a kind without a defined identity).
pub fn sealing_identity(claims: &Claims) -> Result<Vec<u8>, String> {
    if claims.debug {
        return Err("it runs in debug mode, where the host can read its memory".into());
    }
    let Some((measurements, details)) = identity_fields(claims.tee) else {
        return Err(format!(
            "no sealing identity is defined for {} evidence",
            claims.tee
        ));
    };
    let mut out = IDENTITY_LABEL.to_vec();
    let mut push = |name: &str, value: &[u8]| {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    };
    push("tee", claims.tee.to_string().as_bytes());
    for name in measurements {
        let value = claims
            .measurement(name)
            .ok_or_else(|| format!("its evidence has no {name}"))?;
        push(name, value);
    }
    for name in details {
        let value = claims
            .details
            .get(*name)
            .ok_or_else(|| format!("its evidence has no {name}"))?;
        push(name, value.as_bytes());
    }
    Ok(out)
}

/// The kinds a releaser on `own` gives roots to: the TEEs without a sealing key, and a
/// simulated enclave when the releaser is simulated itself (tests and the tour).
fn root_kinds(own: TeeKind) -> Vec<TeeKind> {
    let mut kinds = vec![TeeKind::Tdx, TeeKind::Nitro];
    if own == TeeKind::Simulated {
        kinds.push(TeeKind::Simulated);
    }
    kinds
}

/// The check value of a root: shows which root a node's state was sealed under
/// without revealing it.
fn check_value(root: &[u8; ROOT_LEN]) -> String {
    hex::encode(&veritee_crypto::mac::hmac_sha256(root, CHECK_LABEL)[..16])
}

/// The root once released: set at most once, kept in memory only.
#[derive(Default)]
pub struct ReleasedRoot(OnceLock<Confidential<[u8; ROOT_LEN]>>);

impl core::fmt::Debug for ReleasedRoot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "ReleasedRoot(released)"
        } else {
            "ReleasedRoot(not yet released)"
        })
    }
}

impl ReleasedRoot {
    /// Whether the root has been released.
    pub fn is_released(&self) -> bool {
        self.0.get().is_some()
    }
}

/// A platform whose sealing keys come from a [`ReleasedRoot`]: a hardware TEE that
/// gives no sealing key of its own (TDX, Nitro), for everything else as it is.
///
/// Keys are HKDF-SHA384 of the root over the seal policy, the security version and the
/// label. The root is bound to the measurement by the releaser, so only
/// [`SealPolicy::Measurement`] is offered: these TEEs have no signer to seal to.
pub struct ReleasedRootPlatform {
    inner: Box<dyn Platform>,
    root: Arc<ReleasedRoot>,
}

impl ReleasedRootPlatform {
    /// `inner`, sealing under the root `root` holds once it is released.
    pub fn new(inner: Box<dyn Platform>, root: Arc<ReleasedRoot>) -> Self {
        Self { inner, root }
    }
}

impl Platform for ReleasedRootPlatform {
    fn tee(&self) -> TeeKind {
        self.inner.tee()
    }

    fn evidence(&self, report_data: &ReportData) -> Result<Vec<u8>, PlatformError> {
        self.inner.evidence(report_data)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<AeadKey, PlatformError> {
        if policy != SealPolicy::Measurement {
            return Err(PlatformError::Unsupported(format!(
                "a {} enclave has no signer to seal to: its released root is bound to its \
                 measurement",
                self.tee()
            )));
        }
        veritee_platform::check_security_version(self.identity(), security_version)?;
        let Some(root) = self.root.0.get() else {
            return Err(PlatformError::Unsupported(format!(
                "this {} enclave's sealing root has not been released yet (it comes from an \
                 attested releaser among the node's peers before the first state access)",
                self.tee()
            )));
        };
        // The security version leads the label: each version its own key, as EGETKEY's.
        let mut versioned = security_version.to_be_bytes().to_vec();
        versioned.extend_from_slice(label);
        veritee_platform::hw::sealing_key_from(KEY_SALT, root.expose(), policy, &versioned)
    }

    fn identity(&self) -> &EnclaveIdentity {
        self.inner.identity()
    }

    fn monotonic_counter(
        &self,
        policy: SealPolicy,
        name: &str,
    ) -> Result<Box<dyn MonotonicCounter>, PlatformError> {
        self.inner.monotonic_counter(policy, name)
    }
}

/// A root to be released and whom to take it from: what a launcher hands the service
/// ([`EnclaveService::with_released_root`]).
pub struct RootRelease {
    /// Where the root goes once released (shared with the [`ReleasedRootPlatform`]).
    pub root: Arc<ReleasedRoot>,
    /// The releaser must meet this (part of the measured configuration).
    pub releaser_policy: AppraisalPolicy,
}

/// The requester's side: its [`RootRelease`], fetched once.
pub(crate) struct RootSource {
    pub(crate) release: RootRelease,
    /// Held while the root is fetched, so concurrent first calls fetch it once.
    pub(crate) fetching: Mutex<()>,
    /// The check value of a root taken without one on record, to be recorded once the
    /// state has loaded under it (a root that opens nothing is not remembered).
    pub(crate) unrecorded_check: Mutex<Option<String>>,
}

/// Checks that a releaser policy pins who the releaser is, for a requester on `own`:
/// whoever releases the root can read everything sealed under it.
///
/// - Each TEE kind it accepts must have its code pinned: its primary measurement
///   (MRTD, MRENCLAVE, the SEV-SNP launch measurement, PCR0...) named, or a signer.
///   A pin on another measurement (RTMR3, MRSEAM, PCR4...) names no code.
/// - Simulated releasers only for a simulated requester: on hardware, whoever holds
///   the simulated vendor's key (the host beside a simulated node) could pose as one.
/// - Kinds whose evidence reports no TCB grading (SEV-SNP, Nitro) need `NotReported`
///   in `tcb_status`, or no releaser of that kind could ever be accepted.
pub fn check_releaser_policy(policy: &AppraisalPolicy, own: TeeKind) -> Result<(), String> {
    let simulated = policy.allow_simulated || policy.tee.contains(&TeeKind::Simulated);
    if simulated && own != TeeKind::Simulated {
        return Err(format!(
            "the sealing root policy accepts a simulated releaser, and this node runs on {own}: \
             whoever holds the simulated vendor's key could pose as the releaser"
        ));
    }
    let pinned = |name: &str| {
        policy
            .measurements
            .get(name)
            .is_some_and(|values| !values.is_empty())
    };
    for kind in &policy.tee {
        let primary = veritee_channel::peer::primary_measurement(*kind);
        if !pinned(primary) && policy.signers.is_empty() {
            return Err(format!(
                "the sealing root policy must pin the releaser's code: for {kind}, name its \
                 {primary} under [measurements] (or a signer); whoever releases the root can \
                 read everything sealed under it"
            ));
        }
        if matches!(kind, TeeKind::SevSnp | TeeKind::Nitro)
            && !policy.tcb_status.contains(&TcbStatus::NotReported)
        {
            return Err(format!(
                "the sealing root policy accepts {kind}, whose evidence reports no TCB grading: \
                 add \"NotReported\" to tcb_status (and pin the TCB you require otherwise)"
            ));
        }
    }
    Ok(())
}

impl EnclaveService {
    /// Fetches the sealing root from a releaser among the peers, if this enclave's
    /// platform needs one and does not have it yet.
    pub(crate) fn ensure_sealing_root(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        let Some(source) = &self.root_source else {
            return Ok(());
        };
        let released = &source.release.root;
        if released.is_released() {
            return Ok(());
        }
        let _fetching = lock(&source.fetching);
        if released.is_released() {
            return Ok(());
        }
        let (root, unrecorded) = self.fetch_sealing_root(&source.release.releaser_policy, link)?;
        *lock(&source.unrecorded_check) = unrecorded;
        // Set under the lock, so no other conversation has set it meanwhile.
        let _ = released.0.set(root);
        Ok(())
    }

    /// Records the check value of a root taken without one on record, once the state
    /// has loaded under it.
    pub(crate) fn record_sealing_root_check(
        &self,
        link: &mut dyn HostLink,
    ) -> Result<(), EnclaveFailure> {
        let Some(source) = &self.root_source else {
            return Ok(());
        };
        let mut unrecorded = lock(&source.unrecorded_check);
        if let Some(check) = unrecorded.as_ref() {
            link.put(CHECK_NS, &self.root_check_key(), check.clone().into_bytes())?;
            *unrecorded = None;
        }
        Ok(())
    }

    /// The root from the first peer that releases the one on record (any, with none on
    /// record), and its check value when none was on record.
    fn fetch_sealing_root(
        &self,
        releaser_policy: &AppraisalPolicy,
        link: &mut dyn HostLink,
    ) -> Result<(Confidential<[u8; ROOT_LEN]>, Option<String>), EnclaveFailure> {
        let unavailable = |message: String| failure(FailureKind::Unavailable, message);
        if self.peer_anchors.is_empty() {
            return Err(unavailable(
                "this enclave's sealing root comes from an attested releaser, but it has no \
                 peer trust anchors to appraise one under (--peer-trust-anchors)"
                    .into(),
            ));
        }
        let verifiers = veritee_verify::Verifiers::default();
        let appraiser = PeerAppraiser {
            verifiers: &verifiers,
            trust_anchors: &self.peer_anchors,
            policy: releaser_policy,
            requirement: PeerRequirement::PolicyOnly,
            own: self.platform().identity(),
            own_tee: self.platform().tee(),
            at: self.clock().now(),
        };
        let check_key = self.root_check_key();
        let expected = link
            .get(CHECK_NS, &check_key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let peers = link.peers()?;
        if peers.is_empty() {
            return Err(unavailable(
                "this enclave's sealing root comes from an attested releaser among the node's \
                 peers, and no peer is configured (--peer URL of a node started with \
                 --release-sealing-roots)"
                    .into(),
            ));
        }
        let mut reasons = Vec::new();
        for peer in peers {
            let answer = self.ask_peer(&peer, &FetchRequest::SealingRoot, &appraiser, link);
            let root = match answer {
                Ok(FetchAnswer::SealingRoot(bytes)) if bytes.0.len() == ROOT_LEN => {
                    // Straight into memory wiped on drop: no copy left on the stack.
                    let mut root = Confidential::new([0u8; ROOT_LEN]);
                    root.expose_mut().copy_from_slice(&bytes.0);
                    root
                }
                Ok(FetchAnswer::SealingRoot(_)) => {
                    reasons.push(format!("{peer}: released a root of the wrong length"));
                    continue;
                }
                Ok(FetchAnswer::Denied { reason }) => {
                    reasons.push(format!("{peer}: denied: {reason}"));
                    continue;
                }
                Ok(_) => {
                    reasons.push(format!("{peer}: answered with something else than a root"));
                    continue;
                }
                Err(e) => {
                    reasons.push(format!("{peer}: {}", e.message));
                    continue;
                }
            };
            let check = check_value(root.expose());
            if let Some(expected) = &expected
                && !veritee_crypto::ct_eq(expected.as_bytes(), check.as_bytes())
            {
                reasons.push(format!(
                    "{peer}: released another root (check value {check}) than the one this \
                     node's state is sealed under ({expected})"
                ));
                continue;
            }
            tracing::info!(peer, check_value = check, "sealing root released");
            return Ok((root, expected.is_none().then_some(check)));
        }
        Err(unavailable(format!(
            "no peer released this enclave's sealing root: {}",
            reasons.join("; ")
        )))
    }

    /// Names this enclave's root check value in the host's store: by its own
    /// identity, since the node id derives from the root.
    fn root_check_key(&self) -> String {
        let identity = self.platform().identity();
        let mut bytes = identity.measurement.clone();
        bytes.extend_from_slice(identity.launch_config.as_deref().unwrap_or_default());
        hex::encode(&veritee_crypto::digest::sha256(&bytes)[..16])
    }

    /// Releaser: the root kept for the requester `peer`'s sealing identity, created on
    /// its first request. Audited.
    pub(crate) fn release_sealing_root(
        &self,
        peer: &Claims,
        link: &mut dyn HostLink,
    ) -> Result<FetchAnswer, EnclaveFailure> {
        if !self.releases_sealing_roots {
            return Ok(FetchAnswer::Denied {
                reason: "this node does not release sealing roots (it was not started with \
                         --release-sealing-roots)"
                    .into(),
            });
        }
        let own = self.platform().tee();
        let refusal = if !root_kinds(own).contains(&peer.tee) {
            Some(format!(
                "sealing roots go to enclaves on TEEs without a sealing key (tdx, aws-nitro), \
                 not to {} ones",
                peer.tee
            ))
        } else if peer.tcb_status != TcbStatus::UpToDate
            && !(peer.tee == TeeKind::Nitro && peer.tcb_status == TcbStatus::NotReported)
        {
            Some(format!(
                "its platform's TCB is {}, not up to date",
                peer.tcb_status
            ))
        } else {
            None
        };
        let identity = match refusal.map_or_else(|| sealing_identity(peer), Err) {
            Ok(identity) => identity,
            Err(reason) => {
                let reason = format!("no sealing root for this enclave: {reason}");
                self.audit(
                    link,
                    "sealing-root.release",
                    "",
                    &peer.tee.to_string(),
                    &reason,
                )?;
                return Ok(FetchAnswer::Denied { reason });
            }
        };
        let name = hex::encode(veritee_crypto::digest::sha256(&identity));
        let root = self.load_or_create(link, RELEASED_NS, &name, || {
            let mut root = veritee_crypto::SecretBytes::new(vec![0u8; ROOT_LEN]);
            veritee_crypto::rand::fill(root.expose_mut()).map_err(internal)?;
            Ok(root)
        })?;
        if root.len() != ROOT_LEN {
            return Err(internal("a stored sealing root has the wrong length"));
        }
        self.audit(
            link,
            "sealing-root.release",
            "",
            &format!("{}/{name}", peer.tee),
            "released",
        )?;
        Ok(FetchAnswer::SealingRoot(KeyBytes(root.expose().to_vec())))
    }

    /// The policy a releaser appraises a peer under before it reads the request:
    /// genuine evidence, no debug, of its own kind or of one it releases roots to.
    /// Nitro reports no TCB grading, so "not reported" passes the handshake too;
    /// [`Self::release_sealing_root`] then admits it for Nitro only.
    pub(crate) fn root_requester_policy(&self) -> AppraisalPolicy {
        let mut policy = self.peer_policy();
        for kind in root_kinds(self.platform().tee()) {
            if !policy.tee.contains(&kind) {
                policy.tee.push(kind);
            }
        }
        if !policy.tcb_status.contains(&TcbStatus::NotReported) {
            policy.tcb_status.push(TcbStatus::NotReported);
        }
        policy
    }
}

/// A releaser policy from the measured configuration's bytes, checked for a requester
/// on `own` ([`check_releaser_policy`]).
pub fn parse_releaser_policy(bytes: &[u8], own: TeeKind) -> Result<AppraisalPolicy, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the sealing root policy is not UTF-8")?;
    let policy =
        AppraisalPolicy::parse(text).map_err(|e| format!("the sealing root policy: {e}"))?;
    check_releaser_policy(&policy, own)?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veritee_attest::HexBytes;

    fn claims(tee: TeeKind, measurements: &[(&str, u8)], details: &[(&str, &str)]) -> Claims {
        let mut c = Claims {
            tee,
            simulated: false,
            measurements: Default::default(),
            signer: None,
            security_version: None,
            tcb_status: TcbStatus::UpToDate,
            advisory_ids: Vec::new(),
            debug: false,
            report_data: HexBytes(Vec::new()),
            platform_id: None,
            evidence_time: None,
            details: Default::default(),
            trust_anchor: None,
        };
        for (name, byte) in measurements {
            c.measurements
                .insert((*name).into(), HexBytes(vec![*byte; 48]));
        }
        for (name, value) in details {
            c.details.insert((*name).into(), (*value).into());
        }
        c
    }

    fn tdx(rtmr3: u8) -> Claims {
        claims(
            TeeKind::Tdx,
            &[
                ("mrtd", 1),
                ("rtmr0", 2),
                ("rtmr1", 3),
                ("rtmr2", 4),
                ("rtmr3", rtmr3),
                ("mrconfigid", 5),
                ("mrowner", 6),
                ("mrownerconfig", 7),
            ],
            &[
                ("td_attributes", "0000000010000000"),
                ("xfam", "e718060000000000"),
            ],
        )
    }

    #[test]
    fn every_claim_of_the_identity_changes_it_and_nothing_else_does() {
        let base = sealing_identity(&tdx(9)).unwrap();
        // RTMR3 is the guest's to extend at run time: not part of the identity.
        assert_eq!(sealing_identity(&tdx(10)).unwrap(), base);
        let (measurements, details) = identity_fields(TeeKind::Tdx).unwrap();
        for name in measurements.iter() {
            let mut changed = tdx(9);
            changed.measurements.get_mut(*name).unwrap().0[0] ^= 1;
            assert_ne!(sealing_identity(&changed).unwrap(), base, "{name}");
            changed.measurements.remove(*name);
            let err = sealing_identity(&changed).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
        for name in details.iter() {
            let mut changed = tdx(9);
            changed.details.insert((*name).into(), "ff".into());
            assert_ne!(sealing_identity(&changed).unwrap(), base, "{name}");
        }
        // The same values under another kind are another identity.
        let mut other = tdx(9);
        other.tee = TeeKind::Sgx;
        other
            .measurements
            .insert("mrenclave".into(), HexBytes(vec![1; 48]));
        other.details.insert("attributes".into(), "00".into());
        assert_ne!(sealing_identity(&other).unwrap(), base);
    }

    #[test]
    fn debug_guests_and_unnamed_kinds_get_no_identity() {
        let mut debug = tdx(0);
        debug.debug = true;
        assert!(sealing_identity(&debug).unwrap_err().contains("debug"));
        let vtpm = claims(TeeKind::AzureSnpVtpm, &[("launch_measurement", 1)], &[]);
        assert!(
            sealing_identity(&vtpm)
                .unwrap_err()
                .contains("no sealing identity")
        );
    }

    #[test]
    fn a_releaser_policy_must_pin_the_releaser() {
        let tdx = TeeKind::Tdx;
        let snp = "version = 1\ntee = [\"sev-snp\"]\ntcb_status = [\"NotReported\"]\n";
        let err = parse_releaser_policy(snp.as_bytes(), tdx).unwrap_err();
        assert!(err.contains("launch_measurement"), "{err}");
        let m = "ab".repeat(48);
        let pinned = format!("{snp}[measurements]\nlaunch_measurement = [\"{m}\"]\n");
        parse_releaser_policy(pinned.as_bytes(), tdx).unwrap();
        // A pin on a measurement that names no code does not count.
        let elsewhere = format!("{snp}[measurements]\nmrseam = [\"{m}\"]\n");
        assert!(parse_releaser_policy(elsewhere.as_bytes(), tdx).is_err());
        let empty = format!("{snp}[measurements]\nlaunch_measurement = []\n");
        assert!(parse_releaser_policy(empty.as_bytes(), tdx).is_err());
        // SEV-SNP reports no TCB grading: a policy asking for UpToDate only could never pass.
        let graded = format!(
            "version = 1\ntee = [\"sev-snp\"]\n[measurements]\nlaunch_measurement = [\"{m}\"]\n"
        );
        let err = parse_releaser_policy(graded.as_bytes(), tdx).unwrap_err();
        assert!(err.contains("NotReported"), "{err}");
        // A simulated releaser for a simulated requester only.
        let sim = format!(
            "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n[measurements]\nmeasurement = [\"{m}\"]\n"
        );
        parse_releaser_policy(sim.as_bytes(), TeeKind::Simulated).unwrap();
        for own in [TeeKind::Tdx, TeeKind::Nitro] {
            let err = parse_releaser_policy(sim.as_bytes(), own).unwrap_err();
            assert!(err.contains("simulated"), "{err}");
        }
        assert!(
            parse_releaser_policy(b"\xff", tdx)
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(parse_releaser_policy(b"version = 2", tdx).is_err());
    }

    struct Keyless(EnclaveIdentity);

    impl Platform for Keyless {
        fn tee(&self) -> TeeKind {
            TeeKind::Nitro
        }
        fn evidence(&self, _: &ReportData) -> Result<Vec<u8>, PlatformError> {
            Ok(Vec::new())
        }
        fn sealing_key_at(
            &self,
            _: SealPolicy,
            _: u16,
            _: &[u8],
        ) -> Result<AeadKey, PlatformError> {
            Err(PlatformError::Unsupported("no key".into()))
        }
        fn identity(&self) -> &EnclaveIdentity {
            &self.0
        }
    }

    fn keyless(svn: u16) -> Box<dyn Platform> {
        Box::new(Keyless(EnclaveIdentity {
            measurement: vec![7; 48],
            signer: None,
            product_id: 0,
            security_version: svn,
            debug: false,
            launch_config: None,
        }))
    }

    fn key(platform: &dyn Platform, svn: u16, label: &[u8]) -> Result<[u8; 32], PlatformError> {
        platform
            .sealing_key_at(SealPolicy::Measurement, svn, label)
            .map(|k| *k.expose().expose())
    }

    #[test]
    fn keys_come_from_the_root_once_released_and_follow_the_platform_rules() {
        let root = Arc::new(ReleasedRoot::default());
        let platform = ReleasedRootPlatform::new(keyless(2), Arc::clone(&root));
        let err = key(&platform, 2, b"a").unwrap_err().to_string();
        assert!(err.contains("not been released yet"), "{err}");
        root.0.set(Confidential::new([3; ROOT_LEN])).ok().unwrap();
        let a = key(&platform, 2, b"a").unwrap();
        assert_eq!(a, key(&platform, 2, b"a").unwrap());
        assert_ne!(a, key(&platform, 2, b"b").unwrap());
        assert_ne!(a, key(&platform, 1, b"a").unwrap());
        let err = key(&platform, 3, b"a").unwrap_err().to_string();
        assert!(err.contains("newer build"), "{err}");
        assert!(
            platform
                .sealing_key_at(SealPolicy::Signer, 2, b"a")
                .is_err()
        );
        // Another root, other keys.
        let other = Arc::new(ReleasedRoot::default());
        other.0.set(Confidential::new([4; ROOT_LEN])).ok().unwrap();
        let elsewhere = ReleasedRootPlatform::new(keyless(2), other);
        assert_ne!(a, key(&elsewhere, 2, b"a").unwrap());
        assert!(format!("{root:?}").ends_with("(released)"));
    }

    #[test]
    fn check_values_tell_roots_apart() {
        let a = check_value(&[1; ROOT_LEN]);
        assert_eq!(a, check_value(&[1; ROOT_LEN]));
        assert_ne!(a, check_value(&[2; ROOT_LEN]));
        assert_eq!(a.len(), 32);
    }
}
