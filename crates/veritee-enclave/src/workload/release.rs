//! Verify-before-secrets (as SEV launches): the target loads the encrypted workload
//! first and measures it, reports its launch measurement (the workload digest it computed
//! itself) in evidence that also binds a one-time key, and the security module seals
//! the seed to that key only once the evidence meets the workload's sealing policy and
//! the measurement is the build whose seed it holds. No slot and no storage key are
//! involved; every release is fresh.
//!
//! ```text
//! orchestrator            target enclave                    security module
//!   workload ------------> pending: digest, key K (not the bytes)
//!   <--------------------- pending id, measurement
//!   ------------------------------------------------------> challenge (id, nonce)
//!   challenge -----------> evidence(K | digest, nonce), sealed to the SM
//!   ------------------------------------------------------> check evidence, policy,
//!   <------------------------------------------------------ digest; seed sealed to K
//!   sealed seed, workload> open with K, workload's digest = the one measured,
//!                          launch check, run
//! ```

use super::target::Challenge;
use super::{refused, reply};
use crate::host::{HostLink, failure};
use crate::service::{EnclaveService, bad, internal, lock};
use std::collections::HashMap;
use veritee_attest::ReportData;
use veritee_crypto::hpke::{self, HpkeKeyPair};
use veritee_proto::ipc::{EnclaveFailure, EnclaveReply, FailureKind};
use veritee_proto::workload::{
    MEASUREMENT_BINDING_LABEL, MEASUREMENT_HPKE_INFO, MeasurementEvidence, PendingResponse,
    RELEASE_HPKE_INFO, release_aad,
};
use veritee_workload::{WorkloadFile, WorkloadSeed, storage_key_id};

/// How long a loaded workload waits for its seed, by the enclave's trusted time.
const PENDING_LIFETIME: time::Duration = time::Duration::minutes(10);
/// Most workloads waiting at once. Each holds a digest and a key, not the workload: the
/// orchestrator sends it again with the seed, so no one can fill the enclave's memory
/// with workloads that never launch.
const MAX_PENDING: usize = 256;

/// A workload measured and waiting for its seed.
struct PendingWorkload {
    workload_id: String,
    measurement: [u8; 32],
    key: HpkeKeyPair,
    /// The release challenge it last answered.
    challenge_id: Option<String>,
    at: time::OffsetDateTime,
}

/// Workloads waiting for their seed, by pending id.
#[derive(Default)]
pub(crate) struct PendingWorkloads {
    by_id: HashMap<String, PendingWorkload>,
}

impl PendingWorkloads {
    fn insert(&mut self, id: String, pending: PendingWorkload) -> Result<(), EnclaveFailure> {
        let now = pending.at;
        self.by_id.retain(|_, p| now - p.at < PENDING_LIFETIME);
        if self.by_id.len() >= MAX_PENDING {
            return Err(failure(
                FailureKind::TooMany,
                format!("{MAX_PENDING} workloads are waiting for their seeds; try again later"),
            ));
        }
        self.by_id.insert(id, pending);
        Ok(())
    }

    fn get_mut(
        &mut self,
        id: &str,
        now: time::OffsetDateTime,
    ) -> Result<&mut PendingWorkload, EnclaveFailure> {
        self.by_id
            .get_mut(id)
            .filter(|p| now - p.at < PENDING_LIFETIME)
            .ok_or_else(|| {
                failure(
                    FailureKind::NotFound,
                    format!(
                        "no workload {id:?} is waiting for its seed here (unknown, launched, or older than {} minutes)",
                        PENDING_LIFETIME.whole_minutes()
                    ),
                )
            })
    }
}

impl EnclaveService {
    pub(super) fn load_pending(&self, workload: &[u8]) -> Result<EnclaveReply, EnclaveFailure> {
        let file =
            WorkloadFile::parse(workload).map_err(|e| refused(FailureKind::BadRequest, e))?;
        let measurement = file.digest();
        let workload_id = file.id().to_string();
        let id = hex::encode(veritee_crypto::rand::array::<16>().map_err(internal)?);
        lock(&self.pending_workloads).insert(
            id.clone(),
            PendingWorkload {
                workload_id: workload_id.clone(),
                measurement,
                key: HpkeKeyPair::generate(),
                challenge_id: None,
                at: self.clock().now(),
            },
        )?;
        reply(&PendingResponse {
            pending_id: id,
            workload_id,
            measurement: hex::encode(measurement),
        })
    }

    pub(super) fn measure(
        &self,
        pending_id: &str,
        body: &[u8],
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let challenge = Challenge::parse(body)?;
        let (public, measurement) = {
            let mut pending = lock(&self.pending_workloads);
            let entry = pending.get_mut(pending_id, self.clock().now())?;
            entry.challenge_id = Some(challenge.id().to_string());
            (entry.key.public_key(), entry.measurement)
        };
        let mut bound = public.as_bytes().to_vec();
        bound.extend_from_slice(&measurement);
        let evidence = self
            .platform()
            .evidence(&ReportData::binding(
                MEASUREMENT_BINDING_LABEL,
                &bound,
                &challenge.nonce,
            ))
            .map_err(internal)?;
        challenge.answer(
            MEASUREMENT_HPKE_INFO,
            &MeasurementEvidence {
                release_public_key: public.as_bytes().to_vec(),
                measurement: measurement.to_vec(),
                evidence,
            },
        )
    }

    pub(super) fn launch_released(
        &self,
        pending_id: &str,
        nonce: &str,
        challenge_id: &str,
        sealed_seed: &str,
        workload: &[u8],
        link: &mut dyn HostLink,
    ) -> Result<EnclaveReply, EnclaveFailure> {
        let sealed = hex::decode(sealed_seed)
            .map_err(|e| bad(format!("the released seed is not hex: {e}")))?;
        let file =
            WorkloadFile::parse(workload).map_err(|e| refused(FailureKind::BadRequest, e))?;
        // Hashed before the table is locked: a 100 MiB workload takes tens of ms.
        let digest = file.digest();
        // Taken out only once the seed opens and the workload is the one measured: a
        // forged release must not cost the owner its place.
        let (pending, seed) = {
            let mut table = lock(&self.pending_workloads);
            let entry = table.get_mut(pending_id, self.clock().now())?;
            if entry.challenge_id.as_deref() != Some(challenge_id) {
                return Err(failure(
                    FailureKind::Unauthorized,
                    format!(
                        "the seed was released for challenge {challenge_id:?}, which this workload did not answer last"
                    ),
                ));
            }
            if entry.workload_id != file.id().to_string()
                || !veritee_crypto::ct_eq(&digest, &entry.measurement)
            {
                return Err(failure(
                    FailureKind::Unauthorized,
                    "the workload sent with the seed is not the one this target measured",
                ));
            }
            let aad = release_aad(
                &entry.workload_id,
                &hex::encode(entry.measurement),
                challenge_id,
            );
            let seed = hpke::open(&entry.key, RELEASE_HPKE_INFO, &aad, &sealed).map_err(|_| {
                failure(
                    FailureKind::Unauthorized,
                    "the released seed does not open under this launch's one-time key: it was released for another target, workload or challenge",
                )
            })?;
            let pending = table
                .by_id
                .remove(pending_id)
                .ok_or_else(|| internal("the pending workload vanished"))?;
            (pending, seed)
        };
        let seed = WorkloadSeed::from_bytes(seed.expose()).map_err(|e| bad(e.to_string()))?;
        let key_id = storage_key_id(&pending.key.public_key());
        self.run_launch(&file, &seed, key_id, nonce, link)
    }
}
