//! The real-hardware attesters against fake device trees that behave like the kernel,
//! Gramine and the NSM, returning real evidence (tests/data, see NOTICE).

use ciborium::value::Value;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use veritee_attest::{ReportData, TeeKind};
use veritee_platform::hw::gramine::GraminePlatform;
use veritee_platform::hw::nitro::{self, NitroPlatform, NsmTransport};
use veritee_platform::hw::occlum::{self, OcclumPlatform};
use veritee_platform::hw::sev_guest::{
    self, DERIVED_KEY_REQUEST_LEN, DerivedKeyRequest, KEY_RESPONSE_LEN, SevGuestDevice,
};
use veritee_platform::hw::snp_certs::{self, CertEntry, CertKind};
use veritee_platform::hw::tsm::{ConfigfsTsm, TsmOptions, TsmPlatform, TsmProvider};
use veritee_platform::hw::{self, HardwareRoots};
use veritee_platform::{Platform, PlatformError, SealPolicy, sealing};

const TDX_QUOTE: &[u8] = include_bytes!("data/tdx_quote");
const SNP_REPORT: &[u8] = include_bytes!("data/snp_report.bin");
const SNP_VCEK: &[u8] = include_bytes!("data/snp_vcek.der");
const SGX_QUOTE: &[u8] = include_bytes!("data/sgx_quote");
const NITRO_DOCUMENT: &[u8] = include_bytes!("data/nitro_document");

// Expected values, from shared/evidence/FILES.md and the fixtures themselves.
const TDX_MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const SNP_MEASUREMENT: &str = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c";
const SGX_MRENCLAVE: &str = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";
const SGX_MRSIGNER: &str = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";
const NITRO_PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";
const NITRO_PCR8: &str = "8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2418bdc60746ea7b7afbff03a1c6210201cb";

fn report_data(seed: u8) -> ReportData {
    let mut rd = [0u8; 64];
    for (i, b) in rd.iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8).wrapping_mul(31);
    }
    ReportData(rd)
}

fn detect_err(roots: &HardwareRoots) -> PlatformError {
    match hw::detect(roots) {
        Ok(found) => panic!("unexpectedly found {}", found.tee()),
        Err(e) => e,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------
// A fake configfs-tsm: a thread that answers request directories as the kernel does.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Report,
    NoOutblob,
    Truncated(usize),
}

struct Behavior {
    provider: &'static str,
    outblob: &'static [u8],
    auxblob: Option<Vec<u8>>,
    answer: Answer,
    /// How many requests (from the first) another writer disturbs.
    intruded: usize,
}

impl Behavior {
    fn new(provider: &'static str, outblob: &'static [u8]) -> Self {
        Self {
            provider,
            outblob,
            auxblob: None,
            answer: Answer::Report,
            intruded: 0,
        }
    }
}

#[derive(Default)]
struct Seen {
    entries: Vec<String>,
    inblobs: Vec<Vec<u8>>,
    privlevels: Vec<String>,
}

struct FakeTsm {
    prefix: tempfile::TempDir,
    root: PathBuf,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Makes `name` appear in `dir` at once, as a configfs attribute does.
fn put(scratch: &Path, dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = scratch.join(format!("{name}.tmp"));
    if fs::write(&tmp, bytes).is_ok() && fs::rename(&tmp, dir.join(name)).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

impl FakeTsm {
    fn start(behavior: Behavior) -> Self {
        let prefix = tempfile::tempdir().unwrap();
        let root = prefix.path().join("sys/kernel/config/tsm/report");
        let scratch = prefix.path().join("sys/kernel/config/tsm/scratch");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&scratch).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (root, seen, stop) = (root.clone(), Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut state: HashMap<String, bool> = HashMap::new();
                let mut answered = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for dirent in fs::read_dir(&root).into_iter().flatten().flatten() {
                        let name = dirent.file_name().to_string_lossy().into_owned();
                        let dir = dirent.path();
                        let done = state.entry(name.clone()).or_insert_with(|| {
                            // mkdir: the attributes exist at once; provider last.
                            put(&scratch, &dir, "generation", b"0\n");
                            put(
                                &scratch,
                                &dir,
                                "provider",
                                format!("{}\n", behavior.provider).as_bytes(),
                            );
                            seen.lock().unwrap().entries.push(name.clone());
                            false
                        });
                        if *done {
                            continue;
                        }
                        let Ok(inblob) = fs::read(dir.join("inblob")) else {
                            continue;
                        };
                        if inblob.is_empty() {
                            continue;
                        }
                        *done = true;
                        answered += 1;
                        let privlevel = fs::read_to_string(dir.join("privlevel")).ok();
                        let mut generation = 1 + u64::from(privlevel.is_some());
                        if answered <= behavior.intruded {
                            generation += 1;
                        }
                        {
                            let mut seen = seen.lock().unwrap();
                            seen.inblobs.push(inblob);
                            seen.privlevels.extend(privlevel);
                        }
                        put(
                            &scratch,
                            &dir,
                            "generation",
                            format!("{generation}\n").as_bytes(),
                        );
                        if let Some(aux) = &behavior.auxblob {
                            put(&scratch, &dir, "auxblob", aux);
                        }
                        match behavior.answer {
                            Answer::Report => put(&scratch, &dir, "outblob", behavior.outblob),
                            Answer::Truncated(n) => {
                                put(&scratch, &dir, "outblob", &behavior.outblob[..n])
                            }
                            Answer::NoOutblob => {}
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        Self {
            prefix,
            root,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn roots(&self) -> HardwareRoots {
        HardwareRoots::under(self.prefix.path())
    }

    fn options(settle_ms: u64) -> TsmOptions {
        TsmOptions {
            settle: Duration::from_millis(settle_ms),
            ..TsmOptions::default()
        }
    }
}

impl Drop for FakeTsm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn tdx_through_configfs_tsm() {
    let fake = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    let platform = TsmPlatform::open(&fake.root).unwrap();
    assert_eq!(platform.tee(), TeeKind::Tdx);
    assert_eq!(platform.provider(), TsmProvider::TdxGuest);
    let id = platform.identity();
    assert_eq!(hex::encode(&id.measurement), TDX_MRTD);
    assert_eq!(
        (
            id.signer.clone(),
            id.product_id,
            id.security_version,
            id.debug
        ),
        (None, 0, 0, false)
    );

    let rd = report_data(7);
    let evidence = platform.evidence(&rd).unwrap();
    assert_eq!(evidence, TDX_QUOTE);
    let seen = fake.seen.lock().unwrap();
    // The identity request went over zero report data, then exactly our 64 bytes.
    assert_eq!(seen.inblobs, vec![vec![0u8; 64], rd.0.to_vec()]);
    assert!(seen.privlevels.is_empty(), "TDX has no privlevel");
    // Each request had its own directory, and every one is gone.
    assert_eq!(seen.entries.len(), 2);
    assert_ne!(seen.entries[0], seen.entries[1]);
    assert!(
        entries(&fake.root).is_empty(),
        "left behind: {:?}",
        entries(&fake.root)
    );
}

#[test]
fn snp_through_configfs_tsm_with_certificate_table_and_privlevel() {
    let table = snp_certs::build(&[CertEntry {
        kind: CertKind::Vcek,
        der: SNP_VCEK.to_vec(),
    }]);
    let fake = FakeTsm::start(Behavior {
        auxblob: Some(table),
        ..Behavior::new("sev_guest", SNP_REPORT)
    });
    let options = TsmOptions {
        privlevel: Some(0),
        ..TsmOptions::default()
    };
    let platform = TsmPlatform::open_with(&fake.root, options).unwrap();
    assert_eq!(platform.tee(), TeeKind::SevSnp);
    let id = platform.identity();
    assert_eq!(hex::encode(&id.measurement), SNP_MEASUREMENT);
    assert_eq!(
        (id.security_version, id.debug, id.signer.is_none()),
        (4, false, true)
    );

    let rd = report_data(9);
    let report = platform.report(&rd).unwrap();
    assert_eq!(report.outblob, SNP_REPORT);
    let certs = snp_certs::parse(report.auxblob.as_deref().unwrap()).unwrap();
    assert_eq!(
        certs,
        vec![CertEntry {
            kind: CertKind::Vcek,
            der: SNP_VCEK.to_vec()
        }]
    );
    assert_eq!(platform.evidence(&rd).unwrap(), SNP_REPORT);
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.inblobs.last().unwrap(), &rd.0.to_vec());
    assert_eq!(seen.privlevels, vec!["0\n"; 3]);
    assert!(entries(&fake.root).is_empty());
}

#[test]
fn privlevel_is_checked() {
    let fake = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    let too_high = ConfigfsTsm::new(
        &fake.root,
        TsmOptions {
            privlevel: Some(4),
            ..FakeTsm::options(2000)
        },
    );
    assert!(
        matches!(too_high.report(&report_data(0)), Err(PlatformError::InvalidInput(m)) if m.contains("above"))
    );
    let on_tdx = ConfigfsTsm::new(
        &fake.root,
        TsmOptions {
            privlevel: Some(1),
            ..FakeTsm::options(2000)
        },
    );
    let err = on_tdx.report(&report_data(0)).unwrap_err();
    assert!(err.to_string().contains("SEV-SNP only"), "{err}");
    assert!(entries(&fake.root).is_empty());
}

#[test]
fn a_generation_change_mid_request_is_detected() {
    // Another writer disturbs every request: every attempt fails, then the request does.
    let fake = FakeTsm::start(Behavior {
        intruded: usize::MAX,
        ..Behavior::new("tdx_guest", TDX_QUOTE)
    });
    let err = TsmPlatform::open(&fake.root).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PlatformError::Device { .. }), "{err:?}");
    assert!(
        message.contains("generation moved from 0 to 2") && message.contains("another writer"),
        "{message}"
    );
    assert_eq!(fake.seen.lock().unwrap().inblobs.len(), 3, "three attempts");
    assert!(entries(&fake.root).is_empty());

    // Disturbed once: the retry in a fresh directory succeeds.
    let fake = FakeTsm::start(Behavior {
        intruded: 1,
        ..Behavior::new("tdx_guest", TDX_QUOTE)
    });
    let platform = TsmPlatform::open(&fake.root).unwrap();
    assert_eq!(hex::encode(&platform.identity().measurement), TDX_MRTD);
    assert_eq!(fake.seen.lock().unwrap().inblobs.len(), 2);
    assert!(entries(&fake.root).is_empty());
}

#[test]
fn a_missing_or_short_outblob_is_a_clear_error() {
    let fake = FakeTsm::start(Behavior {
        answer: Answer::NoOutblob,
        ..Behavior::new("tdx_guest", TDX_QUOTE)
    });
    let err = TsmPlatform::open_with(&fake.root, FakeTsm::options(300)).unwrap_err();
    assert!(
        err.to_string()
            .contains("outblob: a report did not appear within 300 ms"),
        "{err}"
    );
    assert!(entries(&fake.root).is_empty());

    for (cut, words) in [
        (0, "empty report"),
        (47, "too short"),
        (600, "TD report body"),
        (100, "too short"),
    ] {
        let fake = FakeTsm::start(Behavior {
            answer: Answer::Truncated(cut),
            ..Behavior::new("tdx_guest", TDX_QUOTE)
        });
        let err = TsmPlatform::open(&fake.root).unwrap_err();
        assert!(err.to_string().contains(words), "cut {cut}: {err}");
        assert!(entries(&fake.root).is_empty());
    }

    let fake = FakeTsm::start(Behavior {
        answer: Answer::Truncated(1000),
        ..Behavior::new("sev_guest", SNP_REPORT)
    });
    let err = TsmPlatform::open(&fake.root).unwrap_err();
    assert!(
        err.to_string().contains("malformed SEV-SNP report"),
        "{err}"
    );
}

#[test]
fn an_unknown_provider_is_refused_by_name() {
    let fake = FakeTsm::start(Behavior::new("arm_cca_guest", TDX_QUOTE));
    let err = TsmPlatform::open(&fake.root).unwrap_err();
    assert!(
        matches!(&err, PlatformError::Unsupported(m) if m.contains("arm_cca_guest")),
        "{err}"
    );
    // Detection treats it as absent and says why.
    let err = detect_err(&fake.roots());
    assert!(
        matches!(&err, PlatformError::NoHardware(m) if m.contains("provider 'arm_cca_guest'")),
        "{err}"
    );
    assert!(entries(&fake.root).is_empty());
}

// ---------------------------------------------------------------------------------
// A fake Gramine /dev/attestation.

struct FakeGramine {
    prefix: tempfile::TempDir,
    root: PathBuf,
}

impl FakeGramine {
    fn new(kind: &str) -> Self {
        let prefix = tempfile::tempdir().unwrap();
        let root = prefix.path().join("dev/attestation");
        fs::create_dir_all(root.join("keys")).unwrap();
        fs::write(root.join("attestation_type"), format!("{kind}\n")).unwrap();
        fs::write(root.join("user_report_data"), [0u8; 64]).unwrap();
        fs::write(root.join("quote"), SGX_QUOTE).unwrap();
        fs::write(root.join("keys/_sgx_mrenclave"), [0x11u8; 16]).unwrap();
        fs::write(root.join("keys/_sgx_mrsigner"), [0x22u8; 16]).unwrap();
        Self { prefix, root }
    }
}

fn key_bytes(platform: &dyn Platform, policy: SealPolicy, label: &[u8]) -> [u8; 32] {
    *platform
        .sealing_key(policy, label)
        .unwrap()
        .expose()
        .expose()
}

#[test]
fn gramine_quotes_over_the_report_data_written() {
    let fake = FakeGramine::new("dcap");
    let platform = GraminePlatform::open(&fake.root).unwrap();
    assert_eq!(platform.tee(), TeeKind::Sgx);
    let id = platform.identity();
    assert_eq!(hex::encode(&id.measurement), SGX_MRENCLAVE);
    assert_eq!(hex::encode(id.signer.as_ref().unwrap()), SGX_MRSIGNER);
    assert_eq!(
        (id.product_id, id.security_version, id.debug),
        (0, 0, false)
    );

    let rd = report_data(3);
    assert_eq!(platform.evidence(&rd).unwrap(), SGX_QUOTE);
    assert_eq!(fs::read(fake.root.join("user_report_data")).unwrap(), rd.0);

    // A damaged quote is named.
    fs::write(fake.root.join("quote"), &SGX_QUOTE[..200]).unwrap();
    let err = platform.evidence(&rd).unwrap_err();
    assert!(err.to_string().contains("malformed SGX quote"), "{err}");
    fs::write(fake.root.join("quote"), b"").unwrap();
    assert!(
        platform
            .evidence(&rd)
            .unwrap_err()
            .to_string()
            .contains("empty quote")
    );
}

#[test]
fn gramine_without_dcap_is_refused() {
    for kind in ["none", "epid"] {
        let fake = FakeGramine::new(kind);
        let err = GraminePlatform::open(&fake.root).unwrap_err();
        assert!(
            matches!(&err, PlatformError::Unsupported(m) if m.contains(kind) && m.contains("dcap")),
            "{err}"
        );
        // Detection finds Gramine and reports why it cannot be used.
        assert!(matches!(
            hw::detect(&HardwareRoots::under(fake.prefix.path())),
            Err(PlatformError::Unsupported(_))
        ));
    }
}

#[test]
fn gramine_sealing_keys_depend_on_policy_label_and_key_file() {
    let fake = FakeGramine::new("dcap");
    let platform = GraminePlatform::open(&fake.root).unwrap();
    let m_a = key_bytes(&platform, SealPolicy::Measurement, b"a");
    let m_b = key_bytes(&platform, SealPolicy::Measurement, b"b");
    let s_a = key_bytes(&platform, SealPolicy::Signer, b"a");
    assert_ne!(m_a, m_b, "labels diversify");
    assert_ne!(m_a, s_a, "policies diversify");
    // Deterministic: the same enclave gets the same key again, even reopened.
    let again = GraminePlatform::open(&fake.root).unwrap();
    assert_eq!(key_bytes(&again, SealPolicy::Measurement, b"a"), m_a);
    // Sealed blobs round-trip.
    let blob = sealing::seal(&platform, SealPolicy::Signer, b"aad", b"state").unwrap();
    assert_eq!(
        sealing::unseal(&again, b"aad", &blob).unwrap().expose(),
        b"state"
    );
    // Another enclave (another MRENCLAVE key) gets another key; the signer key is unchanged.
    fs::write(fake.root.join("keys/_sgx_mrenclave"), [0x33u8; 16]).unwrap();
    assert_ne!(key_bytes(&platform, SealPolicy::Measurement, b"a"), m_a);
    assert_eq!(key_bytes(&platform, SealPolicy::Signer, b"a"), s_a);
    assert_eq!(
        sealing::unseal(&platform, b"aad", &blob).unwrap().expose(),
        b"state"
    );
    // Another signer cannot open what was sealed to the signer.
    fs::write(fake.root.join("keys/_sgx_mrsigner"), [0x44u8; 16]).unwrap();
    assert!(matches!(
        sealing::unseal(&platform, b"aad", &blob),
        Err(PlatformError::Unseal(_))
    ));
    // Key files of the wrong size are refused.
    for len in [0, 15, 17, 32] {
        fs::write(fake.root.join("keys/_sgx_mrenclave"), vec![1u8; len]).unwrap();
        let err = platform
            .sealing_key(SealPolicy::Measurement, b"a")
            .unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{len}: {err}");
    }
    fs::remove_file(fake.root.join("keys/_sgx_mrenclave")).unwrap();
    assert!(matches!(
        platform.sealing_key(SealPolicy::Measurement, b"a"),
        Err(PlatformError::Io { .. })
    ));
}

#[test]
fn gramine_derives_the_key_of_its_own_security_version_only() {
    use veritee_platform::hw::layout::{self, QUOTE_HEADER_LEN, sgx};
    let fake = FakeGramine::new("dcap");
    let v0 = GraminePlatform::open(&fake.root).unwrap();
    assert_eq!(v0.identity().security_version, 0);
    // sealing_key is the key at the enclave's own version.
    let own = *v0
        .sealing_key_at(SealPolicy::Signer, 0, b"a")
        .unwrap()
        .expose()
        .expose();
    assert_eq!(key_bytes(&v0, SealPolicy::Signer, b"a"), own);
    // A newer version's key is refused, naming both versions.
    let err = v0.sealing_key_at(SealPolicy::Signer, 1, b"a").unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidInput(m)
            if m.contains("security version 1") && m.contains("security version 0")),
        "{err}"
    );

    // The same enclave at ISVSVN 2: the key files only give version 2's key.
    let mut quote = SGX_QUOTE.to_vec();
    let at = QUOTE_HEADER_LEN + sgx::ISVSVN_OFFSET;
    quote[at..at + 2].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(
        layout::sgx_quote(&quote).unwrap().identity.security_version,
        2
    );
    let blob_v0 = sealing::seal(&v0, SealPolicy::Signer, b"", b"old").unwrap();
    fs::write(fake.root.join("quote"), &quote).unwrap();
    let v2 = GraminePlatform::open(&fake.root).unwrap();
    assert_eq!(v2.identity().security_version, 2);
    let err = v2.sealing_key_at(SealPolicy::Signer, 1, b"a").unwrap_err();
    assert!(
        matches!(&err, PlatformError::Unsupported(m)
            if m.contains("own security version") && m.contains("ISVSVN 2") && m.contains("version 1")),
        "{err}"
    );
    assert!(matches!(
        sealing::unseal(&v2, b"", &blob_v0),
        Err(PlatformError::Unsupported(_))
    ));
    // What version 2 seals, it opens; version 0 is refused by name.
    let blob_v2 = sealing::seal(&v2, SealPolicy::Signer, b"", b"new").unwrap();
    assert_eq!(
        sealing::unseal(&v2, b"", &blob_v2).unwrap().expose(),
        b"new"
    );
    let err = sealing::unseal(&v0, b"", &blob_v2).unwrap_err();
    assert!(
        matches!(&err, PlatformError::Unseal(m) if m.contains("security version 2") && m.contains("version 0")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Occlum's /dev/sgx, answering as the LibOS does: SGXIOC_GEN_DCAP_QUOTE gives this
// enclave's quote, SGXIOC_GET_KEY passes the request to an EGETKEY that derives keys
// from a CPU secret and what the request selects of the enclave's identity, and
// refuses what EGETKEY refuses.

struct FakeOcclum {
    cpu_secret: [u8; 32],
    /// The enclave's quote (its identity, attributes and CPUSVN are read from it).
    quote: Mutex<Vec<u8>>,
    /// The CPU's current CPUSVN (a request above it is refused).
    cpu_svn: Mutex<[u8; 16]>,
    report_data: Mutex<Vec<[u8; 64]>>,
}

impl FakeOcclum {
    fn new(quote: &[u8]) -> Arc<Self> {
        let cpu_svn = veritee_platform::hw::layout::sgx_cpu_svn(quote).unwrap();
        Arc::new(Self {
            cpu_secret: [0x42; 32],
            quote: Mutex::new(quote.to_vec()),
            cpu_svn: Mutex::new(cpu_svn),
            report_data: Mutex::new(Vec::new()),
        })
    }
}

impl veritee_platform::hw::occlum::OcclumDevice for FakeOcclum {
    fn get_key(
        &self,
        request: &[u8; occlum::KEY_REQUEST_LEN],
    ) -> Result<veritee_crypto::Confidential<[u8; 16]>, PlatformError> {
        use veritee_platform::hw::layout::{QUOTE_HEADER_LEN, sgx};
        let einval = |why: &str| PlatformError::Device {
            device: "/dev/sgx".into(),
            reason: format!("SGXIOC_GET_KEY: Invalid argument (os error 22): {why}"),
        };
        // Read at the SDM's offsets, independently of the crate's own layout.
        let u16_at = |at: usize| u16::from_le_bytes([request[at], request[at + 1]]);
        let u64_at = |at: usize| u64::from_le_bytes(request[at..at + 8].try_into().unwrap());
        if request[6..8] != [0, 0] || request[78..].iter().any(|&b| b != 0) {
            return Err(einval("reserved"));
        }
        let request = occlum::KeyRequest {
            key_name: u16_at(0),
            key_policy: u16_at(2),
            isv_svn: u16_at(4),
            cpu_svn: request[8..24].try_into().unwrap(),
            attribute_flags_mask: u64_at(24),
            attribute_xfrm_mask: u64_at(32),
            key_id: request[40..72].try_into().unwrap(),
            misc_mask: u32::from_le_bytes(request[72..76].try_into().unwrap()),
            config_svn: u16_at(76),
        };
        let quote = self.quote.lock().unwrap().clone();
        let body = &quote[QUOTE_HEADER_LEN..QUOTE_HEADER_LEN + sgx::REPORT_BODY_LEN];
        let own_svn = u16::from_le_bytes([body[sgx::ISVSVN_OFFSET], body[sgx::ISVSVN_OFFSET + 1]]);
        if request.key_name != occlum::KEYSELECT_SEAL {
            return Err(einval("SGX_ERROR_INVALID_KEYNAME"));
        }
        if request.key_policy & !0x3 != 0 {
            return Err(einval("SGX_ERROR_INVALID_PARAMETER"));
        }
        if request.isv_svn > own_svn {
            return Err(einval("SGX_ERROR_INVALID_ISVSVN"));
        }
        if request.cpu_svn > *self.cpu_svn.lock().unwrap() {
            return Err(einval("SGX_ERROR_INVALID_CPUSVN"));
        }
        // What EGETKEY mixes in: the selected identity, ISVPRODID, the requested SVNs,
        // ATTRIBUTES and MISCSELECT under their masks, KEYID.
        let mut input = Vec::new();
        input.extend_from_slice(&request.key_name.to_le_bytes());
        input.extend_from_slice(&request.key_policy.to_le_bytes());
        if request.key_policy & occlum::KEYPOLICY_MRENCLAVE != 0 {
            input.extend_from_slice(&body[sgx::MRENCLAVE_OFFSET..sgx::MRENCLAVE_OFFSET + 32]);
        }
        if request.key_policy & occlum::KEYPOLICY_MRSIGNER != 0 {
            input.extend_from_slice(&body[sgx::MRSIGNER_OFFSET..sgx::MRSIGNER_OFFSET + 32]);
        }
        input.extend_from_slice(&body[sgx::ISVPRODID_OFFSET..sgx::ISVPRODID_OFFSET + 2]);
        input.extend_from_slice(&request.isv_svn.to_le_bytes());
        input.extend_from_slice(&request.cpu_svn);
        let flags = u64::from_le_bytes(
            body[sgx::ATTRIBUTES_OFFSET..sgx::ATTRIBUTES_OFFSET + 8]
                .try_into()
                .unwrap(),
        );
        input.extend_from_slice(&(flags & request.attribute_flags_mask).to_le_bytes());
        let misc = u32::from_le_bytes(
            body[sgx::MISCSELECT_OFFSET..sgx::MISCSELECT_OFFSET + 4]
                .try_into()
                .unwrap(),
        );
        input.extend_from_slice(&(misc & request.misc_mask).to_le_bytes());
        input.extend_from_slice(&request.key_id);
        let mac = veritee_crypto::mac::hmac_sha256(&self.cpu_secret, &input);
        let mut key = [0u8; 16];
        key.copy_from_slice(&mac[..16]);
        Ok(veritee_crypto::Confidential::new(key))
    }

    fn dcap_quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, PlatformError> {
        self.report_data.lock().unwrap().push(*report_data);
        Ok(self.quote.lock().unwrap().clone())
    }
}

/// SGX_QUOTE with `value` written at `offset` of its report body.
fn sgx_quote_with(offset: usize, value: &[u8]) -> Vec<u8> {
    let mut quote = SGX_QUOTE.to_vec();
    let at = veritee_platform::hw::layout::QUOTE_HEADER_LEN + offset;
    quote[at..at + value.len()].copy_from_slice(value);
    quote
}

fn occlum_platform(device: &Arc<FakeOcclum>) -> OcclumPlatform {
    OcclumPlatform::new(Arc::clone(device) as Arc<dyn occlum::OcclumDevice>).unwrap()
}

#[test]
fn occlum_quotes_over_the_report_data_asked_for() {
    let device = FakeOcclum::new(SGX_QUOTE);
    let platform = occlum_platform(&device);
    assert_eq!(platform.tee(), TeeKind::Sgx);
    let id = platform.identity();
    assert_eq!(hex::encode(&id.measurement), SGX_MRENCLAVE);
    assert_eq!(hex::encode(id.signer.as_ref().unwrap()), SGX_MRSIGNER);
    let rd = report_data(7);
    assert_eq!(platform.evidence(&rd).unwrap(), SGX_QUOTE);
    assert_eq!(device.report_data.lock().unwrap().last(), Some(&rd.0));
    // A damaged quote is named, at open and later.
    *device.quote.lock().unwrap() = SGX_QUOTE[..200].to_vec();
    let err = platform.evidence(&rd).unwrap_err();
    assert!(err.to_string().contains("malformed SGX quote"), "{err}");
    let err = OcclumPlatform::new(device as Arc<dyn occlum::OcclumDevice>).unwrap_err();
    assert!(err.to_string().contains("malformed SGX quote"), "{err}");
}

#[test]
fn occlum_sealing_keys_bind_what_egetkey_binds() {
    use veritee_platform::hw::layout::sgx;
    let device = FakeOcclum::new(SGX_QUOTE);
    let platform = occlum_platform(&device);
    let m_a = key_bytes(&platform, SealPolicy::Measurement, b"a");
    let s_a = key_bytes(&platform, SealPolicy::Signer, b"a");
    assert_ne!(m_a, key_bytes(&platform, SealPolicy::Measurement, b"b"));
    assert_ne!(m_a, s_a);
    assert_eq!(
        key_bytes(&occlum_platform(&device), SealPolicy::Measurement, b"a"),
        m_a
    );
    let blob = sealing::seal(&platform, SealPolicy::Signer, b"aad", b"state").unwrap();

    // Other code from the same signer: another measurement key, the same signer key.
    let other_code = FakeOcclum::new(&sgx_quote_with(sgx::MRENCLAVE_OFFSET, &[0x33; 32]));
    let other = occlum_platform(&other_code);
    assert_ne!(key_bytes(&other, SealPolicy::Measurement, b"a"), m_a);
    assert_eq!(key_bytes(&other, SealPolicy::Signer, b"a"), s_a);
    assert_eq!(
        sealing::unseal(&other, b"aad", &blob).unwrap().expose(),
        b"state"
    );
    // Another signer, or the same code built for debug, opens nothing.
    for quote in [
        sgx_quote_with(sgx::MRSIGNER_OFFSET, &[0x44; 32]),
        sgx_quote_with(sgx::ATTRIBUTES_OFFSET, &(0x7u64).to_le_bytes()),
    ] {
        let stranger = occlum_platform(&FakeOcclum::new(&quote));
        assert_ne!(key_bytes(&stranger, SealPolicy::Signer, b"a"), s_a);
        assert!(matches!(
            sealing::unseal(&stranger, b"aad", &blob),
            Err(PlatformError::Unseal(_))
        ));
    }
    // A microcode update raises CPUSVN: the key changes (as under Gramine).
    let updated = FakeOcclum::new(&sgx_quote_with(sgx::CPUSVN_OFFSET, &[0xff; 16]));
    *updated.cpu_svn.lock().unwrap() = [0xff; 16];
    assert_ne!(
        key_bytes(&occlum_platform(&updated), SealPolicy::Signer, b"a"),
        s_a
    );
}

#[test]
fn occlum_derives_its_own_and_older_security_versions_keys_never_newer() {
    use veritee_platform::hw::layout::sgx;
    let v0 = occlum_platform(&FakeOcclum::new(SGX_QUOTE));
    let blob_v0 = sealing::seal(&v0, SealPolicy::Signer, b"", b"old").unwrap();
    let v2 = occlum_platform(&FakeOcclum::new(&sgx_quote_with(
        sgx::ISVSVN_OFFSET,
        &2u16.to_le_bytes(),
    )));
    assert_eq!(v2.identity().security_version, 2);
    // Each version has its own key...
    let key_at = |platform: &OcclumPlatform, svn: u16| {
        *platform
            .sealing_key_at(SealPolicy::Signer, svn, b"a")
            .unwrap()
            .expose()
            .expose()
    };
    assert_ne!(key_at(&v2, 2), key_at(&v2, 0));
    assert_ne!(key_at(&v2, 2), key_at(&v2, 1));
    // ...the patched build reads what the older one sealed...
    assert_eq!(
        sealing::unseal(&v2, b"", &blob_v0).unwrap().expose(),
        b"old"
    );
    let older = *v2
        .sealing_key_at(SealPolicy::Signer, 0, b"a")
        .unwrap()
        .expose()
        .expose();
    assert_eq!(
        older,
        *v0.sealing_key_at(SealPolicy::Signer, 0, b"a")
            .unwrap()
            .expose()
            .expose()
    );
    // ...and the older build cannot read what the patched one sealed.
    let blob_v2 = sealing::seal(&v2, SealPolicy::Signer, b"", b"new").unwrap();
    let err = sealing::unseal(&v0, b"", &blob_v2).unwrap_err();
    assert!(err.to_string().contains("security version 2"), "{err}");
    // EGETKEY itself refuses a newer ISVSVN, should the check above it be bypassed.
    let device = FakeOcclum::new(SGX_QUOTE);
    let request = occlum::KeyRequest::seal(SealPolicy::Signer, 1, [0; 16]);
    use veritee_platform::hw::occlum::OcclumDevice;
    let err = device.get_key(&request.encode()).err().unwrap();
    assert!(err.to_string().contains("INVALID_ISVSVN"), "{err}");
}

#[test]
fn occlum_is_detected_by_its_device_and_a_failing_device_is_a_clear_error() {
    let prefix = tempfile::tempdir().unwrap();
    let mut roots = HardwareRoots::under(prefix.path());
    // An SGX host's driver directory at /dev/sgx is not Occlum.
    fs::create_dir_all(&roots.occlum).unwrap();
    assert!(matches!(
        hw::probe(&roots),
        Err(PlatformError::NoHardware(_))
    ));
    let err = match hw::open(hw::Backend::Sgx, &roots) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened SGX over a directory"),
    };
    assert!(
        err.contains("Gramine")
            && err.contains("Occlum")
            && err.contains(&roots.occlum.display().to_string()),
        "{err}"
    );
    fs::remove_dir(&roots.occlum).unwrap();
    // A plain file, or a character device that does not answer Occlum's ioctls (an SGX
    // host's own driver device; /dev/null here), is not Occlum's device either.
    fs::write(&roots.occlum, b"").unwrap();
    assert!(matches!(
        hw::probe(&roots),
        Err(PlatformError::NoHardware(_))
    ));
    roots.occlum = PathBuf::from("/dev/null");
    assert!(matches!(
        hw::probe(&roots),
        Err(PlatformError::NoHardware(_))
    ));
    // Opening it regardless fails on the ioctl, and says which.
    let device = occlum::OcclumSgxDevice::open(&roots.occlum).unwrap();
    let err = OcclumPlatform::new(Arc::new(device))
        .unwrap_err()
        .to_string();
    assert!(err.contains("SGXIOC_GET_DCAP_QUOTE_SIZE"), "{err}");
    // With the device answering as Occlum's does, it opens.
    roots.occlum_device = Some(FakeOcclum::new(SGX_QUOTE) as Arc<dyn occlum::OcclumDevice>);
    let platform = hw::detect(&roots).unwrap();
    assert_eq!(hex::encode(&platform.identity().measurement), SGX_MRENCLAVE);
}

// ---------------------------------------------------------------------------------
// A fake NSM transport.

enum Reply {
    Document(Vec<u8>),
    Raw(Vec<u8>),
}

struct FakeNsm {
    reply: Mutex<Reply>,
    requests: Mutex<Vec<Vec<u8>>>,
}

impl FakeNsm {
    fn new(reply: Reply) -> Arc<Self> {
        Arc::new(Self {
            reply: Mutex::new(reply),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn attestation_response(document: &[u8]) -> Vec<u8> {
    cbor(&Value::Map(vec![(
        text("Attestation"),
        Value::Map(vec![(text("document"), Value::Bytes(document.to_vec()))]),
    )]))
}

impl NsmTransport for FakeNsm {
    fn call(&self, request_cbor: &[u8]) -> Result<Vec<u8>, PlatformError> {
        self.requests.lock().unwrap().push(request_cbor.to_vec());
        Ok(match &*self.reply.lock().unwrap() {
            Reply::Document(d) => attestation_response(d),
            Reply::Raw(r) => r.clone(),
        })
    }
}

#[test]
fn nitro_requests_a_document_with_the_report_data_as_nonce() {
    let nsm = FakeNsm::new(Reply::Document(NITRO_DOCUMENT.to_vec()));
    let platform = NitroPlatform::new(nsm.clone()).unwrap();
    assert_eq!(platform.tee(), TeeKind::Nitro);
    let id = platform.identity();
    assert_eq!(hex::encode(&id.measurement), NITRO_PCR0);
    assert_eq!(hex::encode(id.signer.as_ref().unwrap()), NITRO_PCR8);
    assert!(!id.debug);

    let rd = report_data(5);
    assert_eq!(platform.evidence(&rd).unwrap(), NITRO_DOCUMENT);
    let request: Value = ciborium::from_reader(nsm.requests.lock().unwrap()[1].as_slice()).unwrap();
    let expected = Value::Map(vec![(
        text("Attestation"),
        Value::Map(vec![
            (text("user_data"), Value::Null),
            (text("nonce"), Value::Bytes(rd.0.to_vec())),
            (text("public_key"), Value::Null),
        ]),
    )]);
    assert_eq!(request, expected);

    // The document's own fields, tagged as COSE_Sign1 or not.
    let summary = nitro::read_document(NITRO_DOCUMENT).unwrap();
    assert_eq!(summary.pcrs.len(), 16);
    assert_eq!(summary.nonce.as_ref().map(Vec::len), Some(256));
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(NITRO_DOCUMENT);
    assert_eq!(nitro::read_document(&tagged).unwrap(), summary);
    let mut wrong_tag = vec![0xd1];
    wrong_tag.extend_from_slice(NITRO_DOCUMENT);
    assert!(
        nitro::read_document(&wrong_tag)
            .unwrap_err()
            .to_string()
            .contains("tag 17")
    );

    // NSM errors and malformed answers are named.
    nsm.set(Reply::Raw(cbor(&Value::Map(vec![(
        text("Error"),
        text("InvalidArgument"),
    )]))));
    let err = platform.evidence(&rd).unwrap_err();
    assert!(
        matches!(&err, PlatformError::Device { device, reason } if device == "/dev/nsm" && reason.contains("InvalidArgument")),
        "{err}"
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff, 0x00], "not CBOR"),
        (vec![], "not CBOR"),
        (
            [attestation_response(NITRO_DOCUMENT), vec![0]].concat(),
            "follow",
        ),
        (cbor(&Value::Array(vec![])), "not a map"),
        (
            cbor(&Value::Map(vec![(text("GetRandom"), Value::Map(vec![]))])),
            "unexpected response 'GetRandom'",
        ),
        (
            cbor(&Value::Map(vec![(text("Attestation"), Value::Map(vec![]))])),
            "no document",
        ),
        (
            cbor(&Value::Map(vec![(
                text("Attestation"),
                Value::Map(vec![(text("document"), text("x"))]),
            )])),
            "not a byte string",
        ),
        (attestation_response(&[]), "empty"),
        (
            attestation_response(&NITRO_DOCUMENT[..NITRO_DOCUMENT.len() / 2]),
            "document is not CBOR",
        ),
        (
            attestation_response(&cbor(&Value::Array(vec![Value::Null; 4]))),
            "not [protected",
        ),
        (vec![0x40; 70_000], "more than the 65536 accepted"),
    ];
    for (reply, words) in cases {
        nsm.set(Reply::Raw(reply));
        let err = platform.evidence(&rd).unwrap_err();
        assert!(
            err.to_string().contains(words),
            "expected '{words}' in: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Sealing where the hardware has no sealing key, and detection.

#[test]
fn sealing_is_unsupported_without_a_hardware_sealing_key() {
    let tdx = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    let snp = FakeTsm::start(Behavior::new("sev_guest", SNP_REPORT));
    let nitro = NitroPlatform::new(FakeNsm::new(Reply::Document(NITRO_DOCUMENT.to_vec()))).unwrap();
    let platforms: Vec<(Box<dyn Platform>, &str)> = vec![
        (
            Box::new(TsmPlatform::open(&tdx.root).unwrap()),
            "TDX gives a trust domain no sealing key",
        ),
        (
            Box::new(TsmPlatform::open(&snp.root).unwrap()),
            "SNP_GET_DERIVED_KEY",
        ),
        (Box::new(nitro), "no sealing key"),
    ];
    for (platform, words) in platforms {
        for policy in [SealPolicy::Measurement, SealPolicy::Signer] {
            let err = platform.sealing_key(policy, b"label").unwrap_err();
            assert!(
                matches!(&err, PlatformError::Unsupported(m) if m.contains(words)),
                "{err}"
            );
            assert!(sealing::seal(platform.as_ref(), policy, b"", b"x").is_err());
        }
    }
}

#[test]
fn no_hardware_backend_keeps_a_monotonic_counter() {
    let tdx = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    let gramine = FakeGramine::new("dcap");
    let nitro = NitroPlatform::new(FakeNsm::new(Reply::Document(NITRO_DOCUMENT.to_vec()))).unwrap();
    let platforms: Vec<Box<dyn Platform>> = vec![
        Box::new(TsmPlatform::open(&tdx.root).unwrap()),
        Box::new(GraminePlatform::open(&gramine.root).unwrap()),
        Box::new(nitro),
    ];
    for platform in platforms {
        for policy in [SealPolicy::Measurement, SealPolicy::Signer] {
            let err = platform.monotonic_counter(policy, "state").err();
            assert!(
                matches!(&err, Some(PlatformError::Unsupported(m))
                    if m.contains("TPM NV counter") && m.contains("'state'")),
                "{:?}: {err:?}",
                platform.tee()
            );
        }
    }
}

#[test]
fn detection_finds_each_backend() {
    let tdx = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    let found = hw::detect(&tdx.roots()).unwrap();
    assert_eq!(found.tee(), TeeKind::Tdx);
    assert_eq!(hex::encode(&found.identity().measurement), TDX_MRTD);
    // The probe's directory was removed like the others.
    assert!(entries(&tdx.root).is_empty());
    assert_eq!(tdx.seen.lock().unwrap().entries.len(), 2);

    let snp = FakeTsm::start(Behavior::new("sev_guest", SNP_REPORT));
    let mut roots = snp.roots();
    roots.sev_guest_device = Some(FakeSevGuest::chip(1));
    assert_eq!(hw::detect(&roots).unwrap().tee(), TeeKind::SevSnp);

    let gramine = FakeGramine::new("dcap");
    let found = hw::detect(&HardwareRoots::under(gramine.prefix.path())).unwrap();
    assert_eq!(found.tee(), TeeKind::Sgx);
    assert_eq!(hex::encode(&found.identity().measurement), SGX_MRENCLAVE);

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("dev")).unwrap();
    fs::write(dir.path().join("dev/nsm"), b"").unwrap();
    let mut roots = HardwareRoots::under(dir.path());
    roots.nsm_transport = Some(FakeNsm::new(Reply::Document(NITRO_DOCUMENT.to_vec())));
    let found = hw::detect(&roots).unwrap();
    assert_eq!(found.tee(), TeeKind::Nitro);
    assert_eq!(hex::encode(&found.identity().measurement), NITRO_PCR0);

    // Without a transport the device itself is needed.
    roots.nsm_transport = None;
    #[cfg(not(feature = "nitro-nsm"))]
    assert!(
        matches!(hw::detect(&roots), Err(PlatformError::Unsupported(m)) if m.contains("nitro-nsm"))
    );
    #[cfg(feature = "nitro-nsm")]
    assert!(hw::detect(&roots).is_err(), "a regular file is no NSM");
}

#[test]
fn detection_reports_what_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let err = detect_err(&HardwareRoots::under(dir.path()));
    let p = dir.path().display();
    assert!(matches!(err, PlatformError::NoHardware(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "no TEE hardware found: looked for {p}/sys/kernel/config/tsm/report (configfs-tsm), \
             {p}/dev/attestation (Gramine SGX), {p}/dev/sgx (Occlum SGX), {p}/dev/nsm (Nitro)"
        )
    );
    let system = HardwareRoots::system();
    assert_eq!(
        system.tsm_report,
        Path::new("/sys/kernel/config/tsm/report")
    );
    assert_eq!(system.gramine, Path::new("/dev/attestation"));
    assert_eq!(system.nsm, Path::new("/dev/nsm"));
}

#[test]
fn identity_offsets_match_the_fixtures() {
    use veritee_platform::hw::layout;
    let tdx = layout::tdx_quote(TDX_QUOTE).unwrap();
    assert_eq!(
        hex::encode(tdx.report_data),
        "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
    );
    let sgx = layout::sgx_quote(SGX_QUOTE).unwrap();
    assert_eq!(&sgx.report_data[..13], b"Hello, world!");
    assert!(sgx.report_data[13..].iter().all(|&b| b == 0));
    let snp = layout::snp_report(SNP_REPORT).unwrap();
    assert_eq!(hex::encode(&snp.report_data[..8]), "ec6c52d7533cc2c4");
    // Kinds are not confused: an SGX quote is no TDX quote and vice versa.
    assert!(
        layout::tdx_quote(SGX_QUOTE)
            .unwrap_err()
            .to_string()
            .contains("TEE type")
    );
    assert!(
        layout::sgx_quote(TDX_QUOTE)
            .unwrap_err()
            .to_string()
            .contains("TEE type")
    );
    let mut v9 = TDX_QUOTE.to_vec();
    v9[0] = 9;
    assert!(
        layout::tdx_quote(&v9)
            .unwrap_err()
            .to_string()
            .contains("version 9")
    );
    // Every truncation is an error, never a panic.
    for fixture in [TDX_QUOTE, SGX_QUOTE, SNP_REPORT] {
        for cut in 0..700.min(fixture.len()) {
            let _ = layout::tdx_quote(&fixture[..cut]);
            let _ = layout::sgx_quote(&fixture[..cut]);
            assert!(layout::snp_report(&fixture[..cut]).is_err());
        }
    }
}

// ---------------------------------------------------------------------------------
// SEV-SNP sealing through /dev/sev-guest.

/// `/dev/sev-guest` as the kernel and firmware answer SNP_GET_DERIVED_KEY: the guest's
/// launch values are those of the report the fake configfs-tsm returns; the firmware
/// refuses (STATUS 0x16, the ioctl itself succeeding) what the SEV-SNP ABI says it
/// refuses, and mixes the selected fields into a key under a per-chip secret.
struct FakeSevGuest {
    path: PathBuf,
    chip_secret: [u8; 32],
    launch: Vec<u8>,
    /// The VMPL the guest really runs at (the firmware knows it; a report says it too).
    current_vmpl: u32,
    committed_tcb: u64,
    /// An ioctl failure (errno) instead of an answer.
    broken: bool,
    seen: Mutex<Vec<DerivedKeyRequest>>,
}

impl FakeSevGuest {
    fn new(chip: u8, launch: &[u8]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes(launch[at..at + 4].try_into().unwrap());
        Self {
            path: PathBuf::from("/dev/sev-guest"),
            chip_secret: [chip; 32],
            launch: launch.to_vec(),
            current_vmpl: u32_at(0x30),
            committed_tcb: 0x1000,
            broken: false,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn chip(chip: u8) -> Arc<dyn SevGuestDevice> {
        Arc::new(Self::new(chip, SNP_REPORT))
    }
}

impl SevGuestDevice for FakeSevGuest {
    fn path(&self) -> &Path {
        &self.path
    }

    fn get_derived_key(
        &self,
        request: &[u8; DERIVED_KEY_REQUEST_LEN],
    ) -> Result<veritee_crypto::Confidential<[u8; KEY_RESPONSE_LEN]>, PlatformError> {
        if self.broken {
            return Err(PlatformError::Device {
                device: self.path.display().to_string(),
                reason: "SNP_GET_DERIVED_KEY failed: Input/output error (os error 5)".into(),
            });
        }
        let invalid = || sev_guest::key_response(sev_guest::STATUS_INVALID_PARAMS, &[0; 32]);
        let Ok(req) = DerivedKeyRequest::from_bytes(request) else {
            return Ok(invalid());
        };
        self.seen.lock().unwrap().push(req);
        let launch_svn = u32::from_le_bytes(self.launch[4..8].try_into().unwrap());
        if req.root_key_select > 1
            || req.guest_field_select & !sev_guest::field::DEFINED != 0
            || req.vmpl < self.current_vmpl
            || req.vmpl > 3
            || req.guest_svn > launch_svn
            || req.tcb_version > self.committed_tcb
        {
            return Ok(invalid());
        }
        let mut mixed = request.to_vec();
        let select = |bit: u64, bytes: &[u8], mixed: &mut Vec<u8>| {
            if req.guest_field_select & bit != 0 {
                mixed.extend_from_slice(bytes);
            }
        };
        select(
            sev_guest::field::GUEST_POLICY,
            &self.launch[0x08..0x10],
            &mut mixed,
        );
        select(
            sev_guest::field::IMAGE_ID,
            &self.launch[0x20..0x30],
            &mut mixed,
        );
        select(
            sev_guest::field::FAMILY_ID,
            &self.launch[0x10..0x20],
            &mut mixed,
        );
        select(
            sev_guest::field::MEASUREMENT,
            &self.launch[0x90..0xC0],
            &mut mixed,
        );
        let key = veritee_crypto::mac::hmac_sha256(&self.chip_secret, &mixed);
        Ok(sev_guest::key_response(0, &key))
    }
}

fn open_err(backend: hw::Backend, roots: &HardwareRoots) -> PlatformError {
    match hw::open(backend, roots) {
        Ok(platform) => panic!("{:?} opened", platform.tee()),
        Err(e) => e,
    }
}

fn snp_roots(fake: &FakeTsm, device: Arc<dyn SevGuestDevice>) -> HardwareRoots {
    let mut roots = fake.roots();
    roots.sev_guest_device = Some(device);
    roots
}

/// A report of another guest: `at` changed to `value`.
fn snp_report_with(at: usize, value: &[u8]) -> &'static [u8] {
    let mut report = SNP_REPORT.to_vec();
    report[at..at + value.len()].copy_from_slice(value);
    Box::leak(report.into_boxed_slice())
}

#[test]
fn snp_seals_with_a_key_the_firmware_derives_from_measurement_policy_and_svn() {
    let tsm = FakeTsm::start(Behavior::new("sev_guest", SNP_REPORT));
    let device = Arc::new(FakeSevGuest::new(1, SNP_REPORT));
    let roots = snp_roots(&tsm, device.clone());
    let platform = hw::open(hw::Backend::Snp, &roots).unwrap();
    assert_eq!(platform.tee(), TeeKind::SevSnp);
    assert_eq!(platform.identity().security_version, 4);
    // HOST_DATA is what the launcher bound; this fixture's is zero.
    assert_eq!(platform.identity().launch_config, Some(vec![0u8; 32]));

    let key = key_bytes(platform.as_ref(), SealPolicy::Measurement, b"state");
    assert_ne!(key, [0u8; 32]);
    assert_ne!(
        key,
        key_bytes(platform.as_ref(), SealPolicy::Measurement, b"other")
    );
    // The same guest opened again (a restart) derives the same key.
    let again = hw::open(hw::Backend::Snp, &roots).unwrap();
    assert_eq!(
        key,
        key_bytes(again.as_ref(), SealPolicy::Measurement, b"state")
    );
    let blob = sealing::seal(
        platform.as_ref(),
        SealPolicy::Measurement,
        b"aad",
        b"secret",
    )
    .unwrap();
    assert_eq!(
        sealing::unseal(again.as_ref(), b"aad", &blob)
            .unwrap()
            .expose()
            .as_slice(),
        b"secret"
    );

    // Every request asked for the chip's VCEK root, at the report's VMPL, mixing in
    // exactly policy, measurement and SVN.
    let seen = device.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for request in &seen {
        assert_eq!(request.root_key_select, 0);
        assert_eq!(
            request.guest_field_select,
            sev_guest::field::GUEST_POLICY
                | sev_guest::field::MEASUREMENT
                | sev_guest::field::GUEST_SVN
        );
        assert_eq!(request.vmpl, device.current_vmpl);
        assert_eq!(request.guest_svn, 4);
        assert_eq!(request.tcb_version, 0);
    }

    // Older security versions' keys are derivable and distinct; a newer one is not.
    let older = platform
        .sealing_key_at(SealPolicy::Measurement, 3, b"state")
        .unwrap();
    assert_ne!(older.expose().expose(), &key);
    let err = platform
        .sealing_key_at(SealPolicy::Measurement, 5, b"state")
        .unwrap_err();
    assert!(err.to_string().contains("security version 5"), "{err}");
    // No signer key on SNP.
    let err = platform
        .sealing_key(SealPolicy::Signer, b"state")
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::Unsupported(m) if m.contains("seal to the measurement")),
        "{err}"
    );

    // Another chip, another guest image, another launch policy: another key each.
    let other_chip = hw::open(hw::Backend::Snp, &snp_roots(&tsm, FakeSevGuest::chip(2))).unwrap();
    assert_ne!(
        key,
        key_bytes(other_chip.as_ref(), SealPolicy::Measurement, b"state")
    );
    for (at, value) in [
        (0x90usize, &[0x55u8; 48][..]),
        (0x08, &(1u64 << 19 | 0x30000).to_le_bytes()[..]),
    ] {
        let report = snp_report_with(at, value);
        let tsm = FakeTsm::start(Behavior::new("sev_guest", report));
        let guest = Arc::new(FakeSevGuest::new(1, report));
        let other = hw::open(hw::Backend::Snp, &snp_roots(&tsm, guest)).unwrap();
        assert_ne!(
            key,
            key_bytes(other.as_ref(), SealPolicy::Measurement, b"state"),
            "changing report bytes at {at:#x} must change the key"
        );
        assert!(sealing::unseal(other.as_ref(), b"aad", &blob).is_err());
    }
}

#[test]
fn snp_firmware_refusals_and_ioctl_failures_are_clear_errors() {
    let tsm = FakeTsm::start(Behavior::new("sev_guest", SNP_REPORT));
    // The guest really runs at a less privileged VMPL than its report claims: the
    // firmware refuses the request, and opening says why.
    let mut liar = FakeSevGuest::new(1, SNP_REPORT);
    liar.current_vmpl += 1;
    let err = open_err(hw::Backend::Snp, &snp_roots(&tsm, Arc::new(liar)));
    assert!(err.to_string().contains("status 0x16"), "{err}");
    assert!(err.to_string().contains("/dev/sev-guest"), "{err}");

    let mut broken = FakeSevGuest::new(1, SNP_REPORT);
    broken.broken = true;
    let err = open_err(hw::Backend::Snp, &snp_roots(&tsm, Arc::new(broken)));
    assert!(
        err.to_string().contains("SNP_GET_DERIVED_KEY failed"),
        "{err}"
    );

    // The layouts: a request survives its bytes; a reserved field set is refused; a
    // response's status is read, and its key only on success.
    let request = DerivedKeyRequest {
        root_key_select: 1,
        guest_field_select: 0x3f,
        vmpl: 2,
        guest_svn: 7,
        tcb_version: 0x0102_0304_0506_0708,
    };
    let bytes = request.to_bytes();
    assert_eq!(DerivedKeyRequest::from_bytes(&bytes).unwrap(), request);
    assert_eq!(&bytes[0x18..0x20], &0x0102_0304_0506_0708u64.to_le_bytes());
    let mut reserved = bytes;
    reserved[5] = 1;
    assert!(DerivedKeyRequest::from_bytes(&reserved).is_err());
    let path = Path::new("/dev/sev-guest");
    let ok = sev_guest::key_response(0, &[7; 32]);
    assert_eq!(
        sev_guest::read_key_response(path, &ok).unwrap().expose(),
        &[7; 32]
    );
    let refused = sev_guest::key_response(0x27, &[7; 32]);
    assert!(refused.expose()[0x20..].iter().all(|&b| b == 0));
    let err = sev_guest::read_key_response(path, &refused).unwrap_err();
    assert!(err.to_string().contains("status 0x27"), "{err}");
}

#[test]
fn asking_for_a_tee_that_is_not_there_names_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let roots = HardwareRoots::under(empty.path());
    let p = empty.path().display();
    for (backend, missing) in [
        (
            hw::Backend::Tdx,
            format!("{p}/sys/kernel/config/tsm/report"),
        ),
        (
            hw::Backend::Snp,
            format!("{p}/sys/kernel/config/tsm/report"),
        ),
        (hw::Backend::Sgx, format!("{p}/dev/attestation")),
        (hw::Backend::Nitro, format!("{p}/dev/nsm")),
    ] {
        let err = open_err(backend, &roots);
        assert!(matches!(err, PlatformError::NoHardware(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("--tee {}", backend.name())) && text.contains(&missing),
            "{text}"
        );
        assert_eq!(hw::Backend::from_name(backend.name()), Some(backend));
    }
    assert_eq!(hw::Backend::from_name("sim"), None);

    // SNP's configfs-tsm without its guest device: the device is named.
    let tsm = FakeTsm::start(Behavior::new("sev_guest", SNP_REPORT));
    assert_eq!(hw::probe(&tsm.roots()).unwrap(), hw::Backend::Snp);
    let err = open_err(hw::Backend::Snp, &tsm.roots());
    assert!(
        err.to_string()
            .contains(&format!("{}/dev/sev-guest", tsm.prefix.path().display())),
        "{err}"
    );
    // A TDX machine is no SNP machine.
    let tdx = FakeTsm::start(Behavior::new("tdx_guest", TDX_QUOTE));
    assert_eq!(hw::probe(&tdx.roots()).unwrap(), hw::Backend::Tdx);
    let err = open_err(hw::Backend::Snp, &snp_roots(&tdx, FakeSevGuest::chip(1)));
    assert!(err.to_string().contains("has tdx_guest"), "{err}");
    let tdx_platform = hw::open(hw::Backend::Tdx, &tdx.roots()).unwrap();
    assert_eq!(
        tdx_platform
            .identity()
            .launch_config
            .as_deref()
            .map(<[u8]>::len),
        Some(48)
    );
}
