//! A software TPM (`swtpm`, Debian packages `swtpm` and `swtpm-tools`) for tests and
//! the demo: a local CA that stands in for the TPM manufacturer, a TPM manufactured
//! under it (EK certificate in NV, as a device TPM ships), and the `swtpm` process
//! serving it on loopback.
//!
//! Each [`LocalCa`] lives in its own directory, with its own configuration files, so
//! tests make as many unrelated manufacturers as they need and never touch the
//! machine-wide CA in /var/lib/swtpm-localca.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `swtpm` may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// For test suites: whether swtpm is installed. When it is not, says so on stderr and
/// returns false (the suite skips), unless VERITEE_REQUIRE_SWTPM is set (as CI sets
/// it): then it panics, so that a suite that needs a software TPM fails, not skips.
pub fn available_or_required() -> bool {
    if installed() {
        return true;
    }
    assert!(
        std::env::var_os("VERITEE_REQUIRE_SWTPM").is_none(),
        "VERITEE_REQUIRE_SWTPM is set but swtpm is not installed (apt-get install swtpm swtpm-tools)"
    );
    eprintln!("skipped: swtpm is not installed (apt-get install swtpm swtpm-tools)");
    false
}

/// Whether `swtpm` and `swtpm_setup` are on the PATH.
pub fn installed() -> bool {
    ["swtpm", "swtpm_setup", "swtpm_localca"]
        .iter()
        .all(|tool| {
            Command::new(tool)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
}

fn failed(what: &str, detail: impl core::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {detail}"))
}

fn run(command: &mut Command, what: &str) -> io::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(what, e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(failed(
        what,
        format!(
            "{}; {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    ))
}

/// A TPM manufacturer's CA, as swtpm's `swtpm_localca` keeps it: a root, an
/// intermediate that signs EK and platform certificates, created on first use.
pub struct LocalCa {
    dir: PathBuf,
}

impl LocalCa {
    /// A CA kept in `dir` (created if missing). Its keys appear when the first TPM is
    /// manufactured under it.
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let d = dir.display();
        std::fs::write(
            dir.join("swtpm-localca.conf"),
            format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\ncertserial = {d}/certserial\n"
            ),
        )?;
        std::fs::write(
            dir.join("swtpm-localca.options"),
            "--platform-manufacturer veritee\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        std::fs::write(
            dir.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = {d}/swtpm-localca.conf\ncreate_certs_tool_options = {d}/swtpm-localca.options\nactive_pcr_banks = sha256\n"
            ),
        )?;
        Ok(Self { dir })
    }

    /// As [`LocalCa::new`], with the CA made here rather than by `swtpm_localca`, as a
    /// manufacturer that publishes CRLs makes it: swtpm's own intermediate may sign
    /// certificates only, not CRLs (no cRLSign in its key usage), so a CRL it signed
    /// would rightly be refused. A root and an intermediate (RSA-3072), both allowed
    /// to sign certificates and CRLs; `swtpm_localca` then issues EK certificates with
    /// the intermediate.
    pub fn issuing_crls(dir: &Path) -> io::Result<Self> {
        let ca = Self::new(dir)?;
        let d = &ca.dir;
        let template = |name: &str, cn: &str| -> io::Result<PathBuf> {
            let path = d.join(name);
            std::fs::write(
                &path,
                format!(
                    "cn = \"{cn}\"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 3650\n"
                ),
            )?;
            Ok(path)
        };
        for key in ["swtpm-localca-rootca-privkey.pem", "signkey.pem"] {
            run(
                Command::new("certtool")
                    .args(["--generate-privkey", "--key-type", "rsa", "--bits", "3072"])
                    .arg("--outfile")
                    .arg(d.join(key)),
                "certtool --generate-privkey (a TPM manufacturer's CA key)",
            )?;
        }
        run(
            Command::new("certtool")
                .arg("--generate-self-signed")
                .arg("--load-privkey")
                .arg(d.join("swtpm-localca-rootca-privkey.pem"))
                .arg("--template")
                .arg(template(
                    "root.cfg",
                    "veritee test TPM manufacturer root CA",
                )?)
                .arg("--outfile")
                .arg(d.join("swtpm-localca-rootca-cert.pem")),
            "certtool --generate-self-signed (a TPM manufacturer's root CA)",
        )?;
        run(
            Command::new("certtool")
                .arg("--generate-certificate")
                .arg("--load-privkey")
                .arg(d.join("signkey.pem"))
                .arg("--load-ca-certificate")
                .arg(d.join("swtpm-localca-rootca-cert.pem"))
                .arg("--load-ca-privkey")
                .arg(d.join("swtpm-localca-rootca-privkey.pem"))
                .arg("--template")
                .arg(template(
                    "issuer.cfg",
                    "veritee test TPM manufacturer EK CA",
                )?)
                .arg("--outfile")
                .arg(d.join("issuercert.pem")),
            "certtool --generate-certificate (a TPM manufacturer's EK CA)",
        )?;
        Ok(ca)
    }

    /// The root certificate (PEM): the trust anchor a security module is given for
    /// this manufacturer's TPMs.
    pub fn root_pem(&self) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join("swtpm-localca-rootca-cert.pem"))
    }

    /// The intermediate that signs EK certificates (PEM).
    pub fn intermediate_pem(&self) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join("issuercert.pem"))
    }

    /// A CRL (PEM) of the intermediate that signs EK certificates, issued at
    /// `this_update`, next due at `next_update`, revoking `revoked` (DER certificates
    /// it issued), made with GnuTLS's `certtool` as a manufacturer would publish one.
    pub fn crl(
        &self,
        revoked: &[Vec<u8>],
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> io::Result<Vec<u8>> {
        self.crl_by(
            ("signkey.pem", "issuercert.pem"),
            revoked,
            this_update,
            next_update,
        )
    }

    /// As [`LocalCa::crl`], issued by the root: it may revoke the intermediate.
    pub fn root_crl(
        &self,
        revoked: &[Vec<u8>],
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> io::Result<Vec<u8>> {
        self.crl_by(
            (
                "swtpm-localca-rootca-privkey.pem",
                "swtpm-localca-rootca-cert.pem",
            ),
            revoked,
            this_update,
            next_update,
        )
    }

    fn crl_by(
        &self,
        (key, certificate): (&str, &str),
        revoked: &[Vec<u8>],
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> io::Result<Vec<u8>> {
        let stamp = |t: time::OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        let number = std::fs::read_dir(&self.dir)?.count();
        let template = self.dir.join("crl.cfg");
        std::fs::write(
            &template,
            format!(
                "crl_number = {number}\ncrl_this_update_date = \"{}\"\ncrl_next_update_date = \"{}\"\n",
                stamp(this_update),
                stamp(next_update)
            ),
        )?;
        let out = self.dir.join(format!("crl-{number}.pem"));
        let mut command = Command::new("certtool");
        command
            .arg("--generate-crl")
            .arg("--load-ca-privkey")
            .arg(self.dir.join(key))
            .arg("--load-ca-certificate")
            .arg(self.dir.join(certificate))
            .arg("--template")
            .arg(&template)
            .arg("--outfile")
            .arg(&out);
        if !revoked.is_empty() {
            let pem: String = revoked
                .iter()
                .map(|der| veritee_x509::pem::encode("CERTIFICATE", der))
                .collect();
            let list = self.dir.join(format!("revoked-{number}.pem"));
            std::fs::write(&list, pem)?;
            command.arg("--load-certificate").arg(list);
        }
        run(
            &mut command,
            "certtool --generate-crl (a TPM manufacturer's CRL)",
        )?;
        std::fs::read(out)
    }

    /// Manufactures a TPM in `state` (created if missing): endorsement key and its
    /// certificate, platform certificate, NV locked, as a device TPM ships.
    pub fn manufacture(&self, state: &Path) -> io::Result<()> {
        std::fs::create_dir_all(state)?;
        run(
            Command::new("swtpm_setup")
                .arg("--tpm2")
                .arg("--tpmstate")
                .arg(state)
                .arg("--config")
                .arg(self.dir.join("swtpm_setup.conf"))
                .args([
                    "--create-ek-cert",
                    "--create-platform-cert",
                    "--lock-nvram",
                    "--overwrite",
                ]),
            "swtpm_setup (manufacturing a software TPM)",
        )
    }
}

/// A running `swtpm` serving one TPM state on loopback; stopped on drop.
pub struct SoftwareTpm {
    child: Child,
    port: u16,
}

/// Two free consecutive loopback ports (server, control).
fn free_ports() -> io::Result<u16> {
    for _ in 0..64 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(failed("swtpm", "no two consecutive free loopback ports"))
}

impl SoftwareTpm {
    /// Serves the TPM manufactured in `state`, with PCRs cleared as at boot.
    pub fn start(state: &Path) -> io::Result<Self> {
        let port = free_ports()?;
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--tpm2")
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed("starting swtpm", e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Self { child, port });
            }
            if let Some(status) = child.try_wait()? {
                return Err(failed("swtpm exited at start", status));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed("swtpm", "did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCTI that reaches it (for `veritee node --tpm` and tpm2-tools).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for SoftwareTpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
