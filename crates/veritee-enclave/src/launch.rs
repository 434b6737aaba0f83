//! Starting the enclave: on the simulated platform, or on a hardware TEE.
//!
//! The simulated "hardware" measures what it loads: the enclave process presents its
//! own executable together with its configuration (trust anchors it will accept peers
//! under), and the measurement covers both, as a Gramine manifest would. A host that
//! starts other code, or passes other trust anchors, gets another measurement, which
//! clients' policies then refuse.
//!
//! On hardware the measurement covers the image the TEE was launched from, not the
//! configuration the host hands the enclave process. So the configuration must be bound
//! by whoever launches the TEE, and the enclave refuses to run under any other
//! ([`check_launch_config`]): SEV-SNP's HOST_DATA must be the SHA-256 of the
//! configuration, TDX's MRCONFIGID its SHA-384; SGX and Nitro have no such field, and
//! their image must carry the SHA-256 in the measured environment variable
//! [`LAUNCH_CONFIG_ENV`] (a Gramine manifest's `loader.env`, an EIF's init).

use std::path::Path;
use veritee_platform::hw::{Backend, HardwareRoots};
use veritee_platform::sim::{EnclaveImage, SimMachine};
use veritee_platform::{EnclaveIdentity, Platform, PlatformError, SealPolicy};

/// The measured environment variable that carries the SHA-256 (hex) of the launch
/// configuration on TEEs whose evidence has no field for it (SGX, Nitro).
pub const LAUNCH_CONFIG_ENV: &str = "VERITEE_LAUNCH_CONFIG_SHA256";

/// Product id of the node enclave under its signer.
pub const NODE_PRODUCT_ID: u16 = 1;
/// Security version of this node enclave.
pub const NODE_SECURITY_VERSION: u16 = 1;

/// What the enclave is launched with; all of it is measured.
#[derive(Debug, Clone, Default)]
pub struct EnclaveConfig {
    /// PEM trust anchors for appraising peer enclaves (the simulated vendor root).
    pub peer_trust_anchors_pem: Vec<u8>,
    /// The Ed25519 key of the KBS administrator, when the node serves the KBS admin
    /// API: measured, so a host that swaps it changes the enclave's measurement.
    pub kbs_admin_key: Option<[u8; 32]>,
    /// Whether the enclave is a security module (flow 2): measured, so an owner's
    /// policy tells a security module from a target node.
    pub security_module: bool,
    /// PEM CAs of the TPM manufacturers a security module accepts TPM targets under:
    /// measured, so an owner's policy names the CAs its SM trusts.
    pub tpm_trust_anchors_pem: Vec<u8>,
    /// PEM CAs the TPM keeping the enclave's monotonic counter must be certified by
    /// (`--counter-tpm-ca`): measured, so the host cannot swap in a TPM of its own.
    pub counter_tpm_anchors_pem: Vec<u8>,
    /// The appraisal policy a peer must meet to release this enclave's sealing root
    /// (`--sealing-root-policy`, on TEEs without a sealing key): measured, so the host
    /// cannot have the root released by a releaser of its own.
    pub sealing_root_policy: Vec<u8>,
    /// Whether the enclave releases sealing roots to attested peers
    /// (`--release-sealing-roots`): measured, so its launch configuration says so.
    pub release_sealing_roots: bool,
    /// A name that tells this node from others of the same image and configuration
    /// (`--instance`): measured, so a releaser gives each its own sealing root.
    pub instance: Option<String>,
}

impl EnclaveConfig {
    fn measured_bytes(&self) -> Vec<u8> {
        let mut out = b"veritee enclave config v1\0".to_vec();
        out.extend_from_slice(&(self.peer_trust_anchors_pem.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.peer_trust_anchors_pem);
        // Appended only when set, so nodes without a KBS admin keep their measurement.
        if let Some(key) = &self.kbs_admin_key {
            out.extend_from_slice(b"kbs admin key\0");
            out.extend_from_slice(key);
        }
        if self.security_module {
            out.extend_from_slice(b"role security module\0");
        }
        if !self.tpm_trust_anchors_pem.is_empty() {
            out.extend_from_slice(b"tpm trust anchors\0");
            out.extend_from_slice(&(self.tpm_trust_anchors_pem.len() as u64).to_le_bytes());
            out.extend_from_slice(&self.tpm_trust_anchors_pem);
        }
        if !self.counter_tpm_anchors_pem.is_empty() {
            out.extend_from_slice(b"counter tpm anchors\0");
            out.extend_from_slice(&(self.counter_tpm_anchors_pem.len() as u64).to_le_bytes());
            out.extend_from_slice(&self.counter_tpm_anchors_pem);
        }
        if !self.sealing_root_policy.is_empty() {
            out.extend_from_slice(b"sealing root policy\0");
            out.extend_from_slice(&(self.sealing_root_policy.len() as u64).to_le_bytes());
            out.extend_from_slice(&self.sealing_root_policy);
        }
        if self.release_sealing_roots {
            out.extend_from_slice(b"releases sealing roots\0");
        }
        if let Some(instance) = &self.instance {
            out.extend_from_slice(b"instance\0");
            out.extend_from_slice(&(instance.len() as u64).to_le_bytes());
            out.extend_from_slice(instance.as_bytes());
        }
        out
    }
}

impl EnclaveConfig {
    /// What a hardware TEE's launcher binds for this configuration: its SHA-256 (SEV-SNP
    /// HOST_DATA, [`LAUNCH_CONFIG_ENV`]) or SHA-384 (TDX MRCONFIGID), by the length of
    /// the field.
    pub fn launch_digest(&self, len: usize) -> Vec<u8> {
        let bytes = self.measured_bytes();
        if len == 48 {
            veritee_crypto::digest::sha384(&bytes).to_vec()
        } else {
            veritee_crypto::digest::sha256(&bytes).to_vec()
        }
    }
}

/// Checks that the TEE was launched for `config`: the evidence's launch-configuration
/// field, or else the measured environment value `measured_env`, must be its digest.
pub fn check_launch_config(
    identity: &EnclaveIdentity,
    config: &EnclaveConfig,
    measured_env: Option<&str>,
) -> Result<(), PlatformError> {
    match &identity.launch_config {
        Some(bound) => {
            let expected = config.launch_digest(bound.len());
            if veritee_crypto::ct_eq(bound, &expected) {
                return Ok(());
            }
            Err(PlatformError::InvalidInput(format!(
                "this TEE was launched for another configuration: its evidence binds {} but this                  configuration's digest is {}; launch the TEE with that value (SEV-SNP HOST_DATA,                  TDX MRCONFIGID) or start the node with the configuration it was launched for",
                hex::encode(bound),
                hex::encode(&expected)
            )))
        }
        None => {
            let expected = hex::encode(config.launch_digest(32));
            match measured_env {
                Some(value) if value.trim().eq_ignore_ascii_case(&expected) => Ok(()),
                Some(value) => Err(PlatformError::InvalidInput(format!(
                    "this enclave's image was built for another configuration: {LAUNCH_CONFIG_ENV} is                      {value} but this configuration's digest is {expected}"
                ))),
                None => Err(PlatformError::InvalidInput(format!(
                    "nothing binds this enclave's configuration: its evidence has no field for it, so                      the image must set {LAUNCH_CONFIG_ENV}={expected} in its measured environment (a                      Gramine manifest's loader.env)"
                ))),
            }
        }
    }
}

/// What an enclave on the hardware TEE `backend` seals to, or why it cannot run there:
/// the signer on SGX (an upgrade of the same signer keeps its data), the measurement on
/// SEV-SNP (no signer key); TDX and Nitro give no sealing key at all, so there the
/// measurement-bound root an attested peer releases (`released_root`: the
/// configuration names whom to take it from, [`crate::sealing_root`]). No hardware TEE
/// keeps a monotonic counter, so a TPM must keep it (`counter_tpm`), certified by CAs
/// the configuration names (`counter_tpm_ca`): without one the enclave could not tell
/// its current state from an older copy. The node checks this
/// before it starts anything; the enclave checks it again ([`launch_hardware`]).
pub fn hardware_seal_policy(
    backend: Backend,
    released_root: bool,
    counter_tpm: Option<&str>,
    counter_tpm_ca: bool,
) -> Result<(SealPolicy, &str), PlatformError> {
    let policy = match (backend, released_root) {
        (Backend::Sgx, false) => SealPolicy::Signer,
        (Backend::Snp, false) => SealPolicy::Measurement,
        (Backend::Tdx | Backend::Nitro, true) => SealPolicy::Measurement,
        (Backend::Sgx | Backend::Snp, true) => {
            return Err(PlatformError::InvalidInput(format!(
                "--tee {}: this TEE seals with a key of its own; --sealing-root-policy is for \
                 TEEs without one (tdx, nitro)",
                backend.name()
            )));
        }
        (Backend::Tdx | Backend::Nitro, false) => {
            return Err(PlatformError::Unsupported(format!(
                "--tee {}: this TEE gives the enclave no sealing key, so its sealing root is \
                 released at start by an attested peer node: name the peer with --peer URL (a \
                 node on SEV-SNP or SGX started with --release-sealing-roots) and what it must \
                 be with --sealing-root-policy FILE (an appraisal policy naming its measurement \
                 or signer)",
                backend.name()
            )));
        }
    };
    let Some(tcti) = counter_tpm else {
        return Err(PlatformError::Unsupported(format!(
            "--tee {}: this TEE keeps no monotonic counter, and the sealed state's rollback \
             protection needs one: name a TPM to keep it with --counter-tpm TCTI (a device TPM \
             or a vTPM inside the TEE's boundary, e.g. device:/dev/tpmrm0) and its \
             manufacturer's CAs with --counter-tpm-ca",
            backend.name()
        )));
    };
    if !counter_tpm_ca {
        return Err(PlatformError::Unsupported(format!(
            "--tee {}: --counter-tpm needs --counter-tpm-ca, the CAs that certify that TPM's \
             endorsement key: without them a host emulating the TPM could set the counter back",
            backend.name()
        )));
    }
    Ok((policy, tcti))
}

/// An enclave's platform as it is started.
pub struct Launch {
    /// The platform (on hardware, its counters kept by the TPM: [`TpmCountedPlatform`]).
    pub platform: Box<dyn Platform>,
    /// What it seals to.
    pub seal_policy: SealPolicy,
    /// With a sealing root policy, the root to be released and whom to take it from
    /// ([`crate::EnclaveService::with_released_root`]).
    pub released_root: Option<crate::sealing_root::RootRelease>,
}

/// Opens the hardware TEE `backend` for the enclave: checks that it can run there
/// ([`hardware_seal_policy`]), that the TEE was launched for `config`
/// ([`check_launch_config`]) and that it can seal (or, without a sealing key, whom
/// its root is released by); its counters are kept by the TPM at `counter_tpm`
/// ([`TpmCountedPlatform`]).
pub fn launch_hardware(
    backend: Backend,
    roots: &HardwareRoots,
    config: &EnclaveConfig,
    measured_env: Option<&str>,
    counter_tpm: Option<&str>,
    counter_tpm_crls: Vec<veritee_x509::ParsedCrl>,
) -> Result<Launch, PlatformError> {
    let anchors = counter_tpm_anchors(config)?;
    let released = !config.sealing_root_policy.is_empty();
    let (seal_policy, tcti) =
        hardware_seal_policy(backend, released, counter_tpm, !anchors.is_empty())?;
    let platform = veritee_platform::hw::open(backend, roots)?;
    check_launch_config(platform.identity(), config, measured_env)?;
    if !released {
        platform.sealing_key(seal_policy, b"veritee launch check")?;
    }
    Ok(
        with_released_root(platform, seal_policy, config)?.counted_in_tpm(
            tcti,
            anchors,
            counter_tpm_crls,
        ),
    )
}

impl Launch {
    /// The platform with its counters kept by the TPM at `tcti` ([`TpmCountedPlatform`],
    /// certified by `anchors`, none revoked by `crls`); where the sealing root is
    /// released, at indices its identity names
    /// ([`TpmCountedPlatform::counting_by_identity`]).
    pub fn counted_in_tpm(
        self,
        tcti: &str,
        anchors: Vec<veritee_attest::ParsedCertificate>,
        crls: Vec<veritee_x509::ParsedCrl>,
    ) -> Launch {
        let mut counted = TpmCountedPlatform::new(self.platform, tcti, anchors).with_crls(crls);
        if self.released_root.is_some() {
            counted = counted.counting_by_identity();
        }
        Launch {
            platform: Box::new(counted),
            ..self
        }
    }
}

/// `platform` as it seals under `config`: with a sealing root policy, under a root a
/// peer releases ([`crate::sealing_root`]), bound to the measurement; otherwise as it
/// is, with `policy`; with the root to hand the service, if any.
pub fn with_released_root(
    platform: Box<dyn Platform>,
    policy: SealPolicy,
    config: &EnclaveConfig,
) -> Result<Launch, PlatformError> {
    if config.sealing_root_policy.is_empty() {
        return Ok(Launch {
            platform,
            seal_policy: policy,
            released_root: None,
        });
    }
    let releaser_policy =
        crate::sealing_root::parse_releaser_policy(&config.sealing_root_policy, platform.tee())
            .map_err(PlatformError::InvalidInput)?;
    let root = std::sync::Arc::new(crate::sealing_root::ReleasedRoot::default());
    let platform =
        crate::sealing_root::ReleasedRootPlatform::new(platform, std::sync::Arc::clone(&root));
    Ok(Launch {
        platform: Box::new(platform),
        seal_policy: SealPolicy::Measurement,
        released_root: Some(crate::sealing_root::RootRelease {
            root,
            releaser_policy,
        }),
    })
}

/// The bytes the platform measures: the executable, then the configuration.
pub fn image_bytes(executable: &Path, config: &EnclaveConfig) -> Result<Vec<u8>, PlatformError> {
    let mut code = std::fs::read(executable).map_err(|source| PlatformError::Io {
        action: "cannot read enclave executable",
        path: executable.display().to_string(),
        source,
    })?;
    code.extend_from_slice(&config.measured_bytes());
    Ok(code)
}

/// Launches the enclave on the simulated machine in `platform_dir`. With a signer key
/// (PKCS#8 P-384, the developer's), the image is signed and state is sealed to the
/// signer (it survives upgrades); otherwise it is sealed to the measurement.
pub fn launch_simulated(
    platform_dir: &Path,
    executable: &Path,
    config: &EnclaveConfig,
    signer: Option<&veritee_crypto::sign::EcdsaSigningKey>,
) -> Result<(Box<dyn Platform>, SealPolicy), PlatformError> {
    let code = image_bytes(executable, config)?;
    let (image, policy) = match signer {
        Some(key) => (
            EnclaveImage::signed(&code, key, NODE_PRODUCT_ID, NODE_SECURITY_VERSION, false)?,
            SealPolicy::Signer,
        ),
        None => (
            EnclaveImage::unsigned(&code, NODE_PRODUCT_ID, NODE_SECURITY_VERSION, false),
            SealPolicy::Measurement,
        ),
    };
    let machine = SimMachine::open(platform_dir)?;
    Ok((Box::new(machine.launch(&image)?), policy))
}

/// The CAs the counter TPM must be certified by, from the configuration.
pub fn counter_tpm_anchors(
    config: &EnclaveConfig,
) -> Result<Vec<veritee_attest::ParsedCertificate>, PlatformError> {
    if config.counter_tpm_anchors_pem.is_empty() {
        return Ok(Vec::new());
    }
    veritee_attest::ParsedCertificate::from_pem_chain(&config.counter_tpm_anchors_pem).map_err(
        |e| PlatformError::InvalidInput(format!("the counter TPM's CAs (--counter-tpm-ca): {e}")),
    )
}

/// A platform whose monotonic counters live in a TPM ([`veritee_tpm::counter`]): for
/// hardware TEEs that keep none, or to keep the simulator's in a TPM instead.
///
/// Each counter is an NV index in the owner's range whose handle and authorization
/// value are derived from the platform's sealing key for the counter's identity
/// (policy) and name, at the enclave's own security version: no other enclave, older
/// builds included, can read or write it, and the host learns neither. A build of a
/// higher security version gets a new counter, at 0, so its state must be moved over
/// (as SGX sealing, bound to the version too, already requires).
pub struct TpmCountedPlatform {
    inner: Box<dyn Platform>,
    tcti: String,
    anchors: Vec<veritee_attest::ParsedCertificate>,
    crls: Vec<veritee_x509::ParsedCrl>,
    index_from_identity: bool,
}

impl TpmCountedPlatform {
    /// `inner`, with its counters kept by the TPM at `tcti`, which must be certified
    /// by one of `anchors` (unchecked when empty: the simulator only).
    pub fn new(
        inner: Box<dyn Platform>,
        tcti: &str,
        anchors: Vec<veritee_attest::ParsedCertificate>,
    ) -> Self {
        Self {
            inner,
            tcti: tcti.to_string(),
            anchors,
            crls: Vec::new(),
            index_from_identity: false,
        }
    }

    /// Places each counter at an NV index named by the enclave's identity (measurement
    /// and launch configuration) rather than by its sealing key; the authorization
    /// still comes from the sealing key. For a sealing root released by a peer: a
    /// second root for the same enclave (another releaser's) then finds the index
    /// defined under the first root's authorization and fails, so a host cannot start
    /// the enclave afresh under another root while the first one's counter stands.
    pub fn counting_by_identity(mut self) -> Self {
        self.index_from_identity = true;
        self
    }

    /// Refuses a TPM whose endorsement key certificate one of `crls` (the
    /// manufacturers' CRLs, `--counter-tpm-crl`) revokes. CRLs are signed by the CAs that
    /// issue them, so they need not be measured: a host can withhold one, not forge it.
    pub fn with_crls(mut self, crls: Vec<veritee_x509::ParsedCrl>) -> Self {
        self.crls = crls;
        self
    }
}

struct NvCounter(std::sync::Mutex<veritee_tpm::counter::TpmCounter>);

fn tpm_failure(e: veritee_tpm::TpmError) -> PlatformError {
    PlatformError::Device {
        device: "the TPM keeping the monotonic counter".into(),
        reason: e.to_string(),
    }
}

impl veritee_platform::MonotonicCounter for NvCounter {
    fn read(&self) -> Result<u64, PlatformError> {
        let mut counter = self.0.lock().unwrap_or_else(|p| p.into_inner());
        counter.read().map_err(tpm_failure)
    }

    fn advance_to(&self, value: u64) -> Result<u64, PlatformError> {
        let mut counter = self.0.lock().unwrap_or_else(|p| p.into_inner());
        counter.advance_to(value).map_err(tpm_failure)
    }
}

impl Platform for TpmCountedPlatform {
    fn tee(&self) -> veritee_attest::TeeKind {
        self.inner.tee()
    }

    fn evidence(&self, report_data: &veritee_attest::ReportData) -> Result<Vec<u8>, PlatformError> {
        self.inner.evidence(report_data)
    }

    fn sealing_key_at(
        &self,
        policy: SealPolicy,
        security_version: u16,
        label: &[u8],
    ) -> Result<veritee_crypto::aead::AeadKey, PlatformError> {
        self.inner.sealing_key_at(policy, security_version, label)
    }

    fn identity(&self) -> &EnclaveIdentity {
        self.inner.identity()
    }

    fn monotonic_counter(
        &self,
        policy: SealPolicy,
        name: &str,
    ) -> Result<Box<dyn veritee_platform::MonotonicCounter>, PlatformError> {
        use veritee_tpm::counter::{OWNER_NV_FIRST, OWNER_NV_LAST};
        let root = self.inner.sealing_key(policy, b"veritee tpm counter v1")?;
        let mut auth = veritee_crypto::Confidential::new([0u8; 32]);
        let mut index = [0u8; 4];
        let hash = veritee_crypto::hkdf::HkdfHash::Sha256;
        let ikm = root.expose().expose();
        veritee_crypto::hkdf::derive_into(
            hash,
            b"",
            ikm,
            &[b"auth\0", name.as_bytes()],
            auth.expose_mut(),
        )?;
        if self.index_from_identity {
            let identity = self.inner.identity();
            let launch = identity.launch_config.as_deref().unwrap_or_default();
            veritee_crypto::hkdf::derive_into(
                hash,
                b"veritee tpm counter index by identity v1",
                &identity.measurement,
                &[
                    &[policy.code()],
                    &(launch.len() as u64).to_le_bytes(),
                    launch,
                    name.as_bytes(),
                ],
                &mut index,
            )?;
        } else {
            veritee_crypto::hkdf::derive_into(
                hash,
                b"",
                ikm,
                &[b"index\0", name.as_bytes()],
                &mut index,
            )?;
        }
        let span = OWNER_NV_LAST - OWNER_NV_FIRST + 1;
        let index = OWNER_NV_FIRST + u32::from_le_bytes(index) % span;
        // The endorsement key's certificate is judged at this machine's time, never
        // before this release: the enclave's own clock floor is in the very state this
        // counter protects, which is not loaded yet. EK certificates usually run to 9999.
        let genuine = (!self.anchors.is_empty()).then(|| veritee_tpm::counter::GenuineTpm {
            anchors: self.anchors.clone(),
            crls: self.crls.clone(),
            at: time::OffsetDateTime::now_utc().max(crate::clock::RELEASE_FLOOR),
        });
        let counter = veritee_tpm::counter::TpmCounter::open(
            &self.tcti,
            index,
            auth.expose(),
            genuine.as_ref(),
        )
        .map_err(tpm_failure)?;
        Ok(Box::new(NvCounter(std::sync::Mutex::new(counter))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(launch_config: Option<Vec<u8>>) -> EnclaveIdentity {
        EnclaveIdentity {
            measurement: vec![1; 48],
            signer: None,
            product_id: 0,
            security_version: 0,
            debug: false,
            launch_config,
        }
    }

    fn config(security_module: bool) -> EnclaveConfig {
        EnclaveConfig {
            peer_trust_anchors_pem: b"anchors".to_vec(),
            security_module,
            ..EnclaveConfig::default()
        }
    }

    #[test]
    fn hardware_needs_a_sealing_key_and_a_counter_tpm() {
        let tpm = Some("device:/dev/tpmrm0");
        assert_eq!(
            hardware_seal_policy(Backend::Snp, false, tpm, true).unwrap(),
            (SealPolicy::Measurement, "device:/dev/tpmrm0")
        );
        assert_eq!(
            hardware_seal_policy(Backend::Sgx, false, tpm, true)
                .unwrap()
                .0,
            SealPolicy::Signer
        );
        for backend in [Backend::Tdx, Backend::Nitro] {
            let err = hardware_seal_policy(backend, false, tpm, true)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("released at start by an attested peer")
                    && err.contains("--sealing-root-policy"),
                "{err}"
            );
            assert_eq!(
                hardware_seal_policy(backend, true, tpm, true).unwrap().0,
                SealPolicy::Measurement
            );
            // A released root does not spare the counter.
            assert!(hardware_seal_policy(backend, true, None, true).is_err());
        }
        for backend in [Backend::Snp, Backend::Sgx] {
            let err = hardware_seal_policy(backend, true, tpm, true)
                .unwrap_err()
                .to_string();
            assert!(err.contains("seals with a key of its own"), "{err}");
        }
        let err = hardware_seal_policy(Backend::Snp, false, None, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--counter-tpm"), "{err}");
        let err = hardware_seal_policy(Backend::Snp, false, tpm, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--counter-tpm-ca"), "{err}");
    }

    #[test]
    fn a_sealing_root_policy_and_the_release_role_are_measured() {
        let base = config(false);
        let mut with_policy = config(false);
        with_policy.sealing_root_policy = b"version = 1".to_vec();
        let mut other_policy = config(false);
        other_policy.sealing_root_policy = b"version = 1\n".to_vec();
        let mut releasing = config(false);
        releasing.release_sealing_roots = true;
        let named = |name: &str| EnclaveConfig {
            instance: Some(name.into()),
            ..config(false)
        };
        let digests: std::collections::BTreeSet<Vec<u8>> = [
            &base,
            &with_policy,
            &other_policy,
            &releasing,
            &named("a"),
            &named("b"),
        ]
        .iter()
        .map(|c| c.launch_digest(48))
        .collect();
        assert_eq!(digests.len(), 6);
    }

    #[test]
    fn the_launch_configuration_must_be_the_one_the_tee_was_launched_for() {
        let ours = config(false);
        // SEV-SNP HOST_DATA: SHA-256; TDX MRCONFIGID: SHA-384.
        for len in [32, 48] {
            let bound = identity(Some(ours.launch_digest(len)));
            check_launch_config(&bound, &ours, None).unwrap();
            let err = check_launch_config(&bound, &config(true), None).unwrap_err();
            assert!(
                err.to_string()
                    .contains("launched for another configuration"),
                "{err}"
            );
            // A measured environment value does not stand in for a field that is there.
            let env = hex::encode(config(true).launch_digest(32));
            assert!(check_launch_config(&bound, &config(true), Some(&env)).is_err());
        }
        assert_eq!(ours.launch_digest(32).len(), 32);
        assert_eq!(ours.launch_digest(48).len(), 48);

        // SGX, Nitro: the image's measured environment carries it.
        let unbound = identity(None);
        let env = hex::encode(ours.launch_digest(32));
        check_launch_config(&unbound, &ours, Some(&env)).unwrap();
        check_launch_config(&unbound, &ours, Some(&env.to_uppercase())).unwrap();
        let err = check_launch_config(&unbound, &config(true), Some(&env)).unwrap_err();
        assert!(
            err.to_string().contains("built for another configuration"),
            "{err}"
        );
        let err = check_launch_config(&unbound, &ours, None).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{LAUNCH_CONFIG_ENV}={env}")),
            "{err}"
        );
        // A zero HOST_DATA (a guest launched without one) binds nothing.
        let zero = identity(Some(vec![0; 32]));
        assert!(check_launch_config(&zero, &ours, None).is_err());
    }
}
