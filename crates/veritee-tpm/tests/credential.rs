//! make_credential: its input checks, its layout, and that a real TPM (swtpm, driven by
//! tpm2-tools) opens it with TPM2_ActivateCredential, and only for the right name.
//!
//! The swtpm test is skipped with a message when swtpm or tpm2-tools is not installed,
//! unless VERITEE_REQUIRE_SWTPM=1, which makes it fail instead.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use veritee_tpm::TpmError;
use veritee_tpm::credential::{CredentialChallenge, make_credential};
use veritee_tpm::policy::object_name;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn ak_name() -> Vec<u8> {
    object_name(&fixture("ak.pub")).unwrap()
}

#[test]
fn challenge_has_the_tpm_layout() {
    let c = make_credential(&fixture("ek.pub"), &ak_name(), b"0123456789abcdef").unwrap();
    // TPM2B_DIGEST integrityHMAC (u16 32 + 32 bytes), then encIdentity (u16 + 16 bytes).
    assert_eq!(c.credential_blob.len(), 2 + 32 + 2 + 16);
    assert_eq!(&c.credential_blob[..2], &[0, 32]);
    assert_eq!(c.encrypted_secret.len(), 256);
    // A fresh seed every time.
    let d = make_credential(&fixture("ek.pub"), &ak_name(), b"0123456789abcdef").unwrap();
    assert_ne!(c, d);
    assert_ne!(c.encrypted_secret, d.encrypted_secret);
}

#[test]
fn unusable_inputs_are_refused() {
    let ek = fixture("ek.pub");
    let name = ak_name();
    for secret in [&b""[..], &[1u8; 33][..]] {
        let e = make_credential(&ek, &name, secret).unwrap_err();
        assert!(matches!(e, TpmError::InvalidInput(_)), "{e}");
    }
    for bad_name in [&name[..33], &[0, 4, 1, 2][..], &[0u8; 34][..]] {
        let e = make_credential(&ek, bad_name, b"secret").unwrap_err();
        assert!(matches!(e, TpmError::InvalidInput(_)), "{e}");
    }
    // Not an EK of the kind supported: the AK (no symmetric), a storage key (RSA, no
    // symmetric), garbage, truncations, oversized.
    for not_ek in [fixture("ak.pub"), fixture("storage.pub")] {
        let e = make_credential(&not_ek, &name, b"secret").unwrap_err();
        assert!(
            matches!(e, TpmError::KeyAttributes { key: "EK", .. }),
            "{e}"
        );
    }
    for cut in [0, 3, 10, ek.len() / 2, ek.len() - 1] {
        let e = make_credential(&ek[..cut], &name, b"secret").unwrap_err();
        assert!(matches!(e, TpmError::Malformed { .. }), "{e}");
    }
    let e = make_credential(&vec![0u8; 100_000], &name, b"secret").unwrap_err();
    assert!(matches!(e, TpmError::Malformed { .. }), "{e}");
}

// --- swtpm interoperability --------------------------------------------------------

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Kills the swtpm it started, by its process id, when dropped.
struct Swtpm {
    child: Child,
    port: u16,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port_pair() -> u16 {
    // Ports 2350-2399 (2 each), starting at a place that depends on the process.
    let start = 2350 + (std::process::id() % 25) as u16 * 2;
    (0..25)
        .map(|i| 2350 + (start - 2350 + i * 2) % 50)
        .find(|p| {
            TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && TcpListener::bind(("127.0.0.1", *p + 1)).is_ok()
        })
        .expect("no free port pair in 2350-2399")
}

fn start_swtpm(dir: &Path) -> Swtpm {
    let port = free_port_pair();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", state.display()))
        .args(["--server", &format!("type=tcp,port={port}")])
        .args(["--ctrl", &format!("type=tcp,port={}", port + 1)])
        .args(["--flags", "not-need-init,startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start swtpm");
    let swtpm = Swtpm { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "swtpm did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    swtpm
}

/// Runs a tpm2-tools command against `tpm` in `dir`; returns whether it succeeded.
fn tpm2(tpm: &Swtpm, dir: &Path, args: &[&str]) -> bool {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env(
            "TPM2TOOLS_TCTI",
            format!("swtpm:host=127.0.0.1,port={}", tpm.port),
        )
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    if !out.status.success() {
        eprintln!(
            "{:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
/// TPM2B_ENCRYPTED_SECRET.
fn tpm2_tools_credential_file(c: &CredentialChallenge) -> Vec<u8> {
    let mut out = 0xBADC_C0DEu32.to_be_bytes().to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(c.credential_blob.len() as u16).to_be_bytes());
    out.extend_from_slice(&c.credential_blob);
    out.extend_from_slice(&(c.encrypted_secret.len() as u16).to_be_bytes());
    out.extend_from_slice(&c.encrypted_secret);
    out
}

/// Activates `challenge` in the TPM with the EK and AK contexts in `dir`.
fn activate(tpm: &Swtpm, dir: &Path, challenge: &CredentialChallenge) -> Option<Vec<u8>> {
    std::fs::write(dir.join("cred.bin"), tpm2_tools_credential_file(challenge)).unwrap();
    let _ = std::fs::remove_file(dir.join("secret.out"));
    assert!(tpm2(
        tpm,
        dir,
        &[
            "tpm2_startauthsession",
            "--policy-session",
            "-S",
            "session.ctx"
        ]
    ));
    assert!(tpm2(
        tpm,
        dir,
        &["tpm2_policysecret", "-S", "session.ctx", "-c", "e"]
    ));
    let ok = tpm2(
        tpm,
        dir,
        &[
            "tpm2_activatecredential",
            "-c",
            "ak.ctx",
            "-C",
            "ek.ctx",
            "-i",
            "cred.bin",
            "-o",
            "secret.out",
            "-P",
            "session:session.ctx",
        ],
    );
    tpm2(tpm, dir, &["tpm2_flushcontext", "session.ctx"]);
    tpm2(tpm, dir, &["tpm2_flushcontext", "-t"]);
    ok.then(|| std::fs::read(dir.join("secret.out")).unwrap())
}

#[test]
fn swtpm_activates_the_credential_for_the_right_name_only() {
    let required = std::env::var("VERITEE_REQUIRE_SWTPM").as_deref() == Ok("1");
    let missing: Vec<&str> = [
        "swtpm",
        "tpm2_createek",
        "tpm2_createak",
        "tpm2_activatecredential",
    ]
    .into_iter()
    .filter(|p| !on_path(p))
    .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "VERITEE_REQUIRE_SWTPM=1 but {missing:?} not on PATH"
        );
        println!("skipped: {missing:?} not on PATH (set VERITEE_REQUIRE_SWTPM=1 to fail)");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let tpm = start_swtpm(dir);

    assert!(tpm2(
        &tpm,
        dir,
        &["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]
    ));
    tpm2(&tpm, dir, &["tpm2_flushcontext", "-t"]);
    assert!(tpm2(
        &tpm,
        dir,
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ]
    ));
    tpm2(&tpm, dir, &["tpm2_flushcontext", "-t"]);
    tpm2(&tpm, dir, &["tpm2_flushcontext", "-s"]);

    // tpm2-tools writes TPM2B_PUBLIC: drop the u16 size.
    let ek_public = std::fs::read(dir.join("ek.pub")).unwrap()[2..].to_vec();
    let ak_public = std::fs::read(dir.join("ak.pub")).unwrap()[2..].to_vec();
    let ak_name = std::fs::read(dir.join("ak.name")).unwrap();
    assert_eq!(object_name(&ak_public).unwrap(), ak_name);

    let secret = b"the workload seed's challenge!!!";
    let challenge = make_credential(&ek_public, &ak_name, secret).unwrap();
    assert_eq!(
        activate(&tpm, dir, &challenge).as_deref(),
        Some(&secret[..])
    );

    let short = make_credential(&ek_public, &ak_name, b"x").unwrap();
    assert_eq!(activate(&tpm, dir, &short).as_deref(), Some(&b"x"[..]));

    // Bound to another name (the EK's): the TPM's integrity check refuses it.
    let ek_name = object_name(&ek_public).unwrap();
    let wrong = make_credential(&ek_public, &ek_name, secret).unwrap();
    assert_eq!(activate(&tpm, dir, &wrong), None);

    // Tampered blob or seed: refused.
    let mut tampered = challenge.clone();
    tampered.credential_blob[40] ^= 1;
    assert_eq!(activate(&tpm, dir, &tampered), None);
    let mut tampered = challenge.clone();
    tampered.encrypted_secret[100] ^= 1;
    assert_eq!(activate(&tpm, dir, &tampered), None);
}
