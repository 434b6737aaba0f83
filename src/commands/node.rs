//! `veritee node`: run a provider node (host process; it starts the enclave process),
//! and `veritee enclave`, the enclave process itself (started by the node).

use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use veritee_platform::fsutil;
use veritee_platform::hw::{Backend, HardwareRoots};
use veritee_platform::sim::{SimMachine, SimVendor};

/// Arguments of `veritee node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// State directory (created): admin token, store, and by default a simulated vendor and machine.
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on (loopback by default; port 0 picks a free one). Off
    /// loopback the node serves HTTPS only: with --tls-cert/--tls-key, or a self-signed
    /// certificate it generates (DIR/tls) and whose fingerprint clients pin.
    #[arg(long, default_value = "127.0.0.1:8440")]
    listen: SocketAddr,
    /// The certificate chain to serve HTTPS with (PEM, leaf first).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with the node's self-signed certificate (DIR/tls, generated on first
    /// use) even on loopback.
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,
    /// Store: a `postgres://` URL, or a directory (default: DIR/store, embedded).
    #[arg(long)]
    store: Option<String>,
    /// The TEE to run the enclave on: auto (the one this machine has; the simulator,
    /// with a loud warning, where there is none), sim, sgx (Gramine or Occlum), tdx, snp or
    /// nitro.
    /// Asking for one this machine lacks is an error naming the missing device.
    #[arg(long, default_value = "auto", value_parser = ["auto", "sim", "sgx", "tdx", "snp", "nitro"])]
    tee: String,
    /// The TPM that keeps the enclave's monotonic counter, the rollback protection of its
    /// sealed state (TCTI: device:/dev/tpmrm0, swtpm:host=...,port=...). Hardware TEEs
    /// keep no counter, so they need one; on the simulator it replaces the machine's.
    #[arg(long)]
    counter_tpm: Option<String>,
    /// The CAs (PEM) that certify the counter TPM's endorsement key: the node refuses a
    /// TPM they do not vouch for, so a host cannot put a TPM of its own in its place.
    /// Required on hardware; measured with the code.
    #[arg(long, requires = "counter_tpm")]
    counter_tpm_ca: Option<PathBuf>,
    /// A CRL (PEM or DER) of the counter TPM's manufacturer (repeatable): a TPM whose
    /// endorsement key one revokes is refused; a CRL past its next update is an error.
    /// Signed by the CA, so not measured: a host can withhold one, not forge one.
    #[arg(long, value_name = "CRL", requires = "counter_tpm_ca")]
    counter_tpm_crl: Vec<PathBuf>,
    /// A simulated machine directory to run on (default: DIR/platform, created with a
    /// simulated vendor in DIR/vendor).
    #[arg(long)]
    platform: Option<PathBuf>,
    /// The enclave developer's signing key (PKCS#8 PEM, ECDSA P-384): the enclave is
    /// signed, and seals to its signer so upgrades keep their data.
    #[arg(long)]
    enclave_signer_key: Option<PathBuf>,
    /// Trust anchors the enclave accepts peer enclaves under (default: DIR/vendor/root.pem).
    #[arg(long)]
    peer_trust_anchors: Option<PathBuf>,
    /// Another node to replicate keys from (repeatable). That node must accept this
    /// one's peer token (DIR/peer.token): `veritee peer add`.
    #[arg(long)]
    peer: Vec<String>,
    /// On a TEE without a sealing key (tdx, nitro; on the simulator it replaces the
    /// machine's): the appraisal policy (TOML or JSON) a peer (--peer) must meet to
    /// release this node's sealing root at start; it must name the releaser's
    /// measurement or signer. Measured with the code.
    #[arg(long, value_name = "FILE")]
    sealing_root_policy: Option<PathBuf>,
    /// Release sealing roots to attested peers on TEEs without a sealing key of their
    /// own (tdx, nitro): each gets the root of its own measurement and launch
    /// configuration, kept sealed here. Measured with the code.
    #[arg(long)]
    release_sealing_roots: bool,
    /// A name for this node, measured with the code (1 to 64 letters, digits, `.`, `_`
    /// or `-`): tells apart nodes of one image and configuration, which a releaser of
    /// sealing roots would otherwise take for one (the same root, the same node id).
    #[arg(long, value_name = "NAME", value_parser = parse_instance)]
    instance: Option<String>,
    /// Serve even though the store is older than this machine's monotonic counter (it
    /// was rolled back or replaced): the newer state is lost. Audited.
    #[arg(long)]
    accept_store_rollback: bool,
    /// Who opens the provider's layer of a secret import: host (with the host's import
    /// key in DIR/provider) or enclave (with a key made and sealed in the enclave, which
    /// the provider's signing key states; the host then holds no key to either layer).
    #[arg(long, default_value = "host", value_parser = clap::value_parser!(veritee_host::provider::ProviderLayer))]
    provider_layer: veritee_host::provider::ProviderLayer,
    /// Requests per second each tenant may make (burst: two seconds' worth); past it,
    /// 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = veritee_host::limits::DEFAULT_TENANT_REQUESTS_PER_SECOND)]
    tenant_requests_per_second: u32,
    /// Bytes each tenant's task uploads may hold in this node's spool at once (default
    /// 8 GiB); past it, 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = veritee_host::limits::DEFAULT_TENANT_SPOOL_BYTES)]
    tenant_spool_bytes: u64,
    /// Sessions each tenant may hold in the enclave, offered and open; past it the
    /// tenant's own least recently used session gives way (not a 429: a returning
    /// client opens one each time, and other tenants keep their room). 0: no limit.
    #[arg(long, default_value_t = veritee_enclave::DEFAULT_SESSIONS_PER_TENANT)]
    tenant_sessions: usize,
    /// Memory, in MiB, that applications and trusted tasks may reserve in the enclave
    /// in all (an application its memory limit, and as much again once snapshotted; a
    /// task its compartments' limits); past it they are refused, naming the numbers.
    /// Default: three quarters of the memory the enclave sees. 0: no budget.
    #[arg(long)]
    memory_budget_mib: Option<u64>,
    /// Task file pieces each tenant may upload at once; past it, 429 with Retry-After.
    /// 0: no limit.
    #[arg(long, default_value_t = veritee_host::limits::DEFAULT_TENANT_UPLOADS)]
    tenant_uploads: u32,
    /// The KBS administrator's Ed25519 public key (PEM, `openssl pkey -pubout`): turns
    /// on the KBS admin API under /kbs/v0/, which accepts tokens signed by it (`veritee
    /// kbs admin-token`, or Trustee's). Measured into the enclave.
    #[arg(long)]
    kbs_admin_key: Option<PathBuf>,
    /// Accept Trustee's set-resource, whose body is the resource in the clear: this
    /// node's host sees it on its way into the enclave.
    #[arg(long)]
    kbs_plaintext_resources: bool,
    /// KBS handshakes (`/kbs/v0/auth`, which takes no credential) each client address
    /// may start per second (burst: two seconds' worth); past it, 429 with Retry-After.
    /// 0: no limit.
    #[arg(long, default_value_t = 100)]
    kbs_auth_per_second: u32,
    /// Collateral for hardware evidence guests send to the KBS (DCAP collateral JSON,
    /// CRLs); repeatable. Vendor-signed: the enclave checks it.
    #[arg(long)]
    kbs_collateral: Vec<PathBuf>,
    /// What the node is: `node`, a provider node that runs tasks, applications and
    /// TEE-bound workloads; or `sm`, the customer's security module, which holds
    /// workload seeds, enrolls targets and issues authorizations (flow 2). Measured into
    /// the enclave, so an owner's policy can tell the two apart.
    #[arg(long, default_value = "node", value_parser = ["node", "sm"])]
    role: String,
    /// A target node's TPM 2.0 (flow 2), as a TCTI: `device:/dev/tpmrm0`, or
    /// `swtpm:host=127.0.0.1,port=2321` for a software TPM. Its workloads' seeds are
    /// then sealed to a key of this TPM, bound to the PCRs of --tpm-pcrs.
    #[arg(long, value_name = "TCTI")]
    tpm: Option<String>,
    /// The SHA-256 PCRs a TPM target's storage key is bound to (its measured boot).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "0,1,2,3,4,5,6,7",
        value_delimiter = ','
    )]
    tpm_pcrs: Vec<u32>,
    /// A security module's TPM manufacturer CAs (PEM; swtpm's local CA for a software
    /// TPM): TPM targets' EK certificates must chain to one. Measured with the code.
    #[arg(long, value_name = "PEM")]
    tpm_ca: Option<PathBuf>,
    /// A CRL (PEM or DER) of a TPM manufacturer (repeatable; security module): a TPM
    /// target whose endorsement key one revokes is refused at enrollment; a CRL past
    /// its next update is an error. Signed by the CA, so not measured: a host can
    /// withhold one, not forge one.
    #[arg(long, value_name = "CRL", requires = "tpm_ca")]
    tpm_crl: Vec<PathBuf>,
    /// On SIGTERM or SIGINT, how long requests in progress may take to finish before
    /// they are cut (no new connection is taken meanwhile).
    #[arg(long, default_value_t = 30)]
    shutdown_grace_seconds: u64,
    /// Child nodes this node may start on this machine for forks (`veritee app fork
    /// --peer local:NAME`): each a new node process of the same enclave, with its own
    /// state in DIR/children/NAME, this node as its peer, stopped when this node stops;
    /// `GET /v1/children` (admin) lists their URLs. 0: none. On the simulator and SGX,
    /// where an enclave is a process (a TD or an SNP guest is a VM the host launches).
    #[arg(long, default_value_t = 0)]
    local_children: usize,
    /// Keep nothing past the enclave process: it seals under a root drawn at random
    /// when it starts, kept in its memory only, and counts in memory, so it has an
    /// identity of its own (a fresh node id and keys at every start) and reads nothing
    /// another process sealed. What local children run as; after a restart such a node
    /// starts afresh.
    #[arg(long)]
    ephemeral: bool,
    /// Stop when process PID stops (what a parent gives the child nodes it starts).
    #[arg(long, value_name = "PID", hide = true)]
    exit_with: Option<u32>,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// Arguments of `veritee enclave` (started by `veritee node`).
#[derive(Debug, Args)]
pub struct EnclaveArgs {
    /// The TEE: sim, or a hardware backend (sgx, tdx, snp, nitro).
    #[arg(long, default_value = "sim")]
    tee: String,
    /// The simulated machine directory (with --tee sim).
    #[arg(long)]
    platform: Option<PathBuf>,
    /// The TPM keeping the monotonic counter.
    #[arg(long)]
    counter_tpm: Option<String>,
    /// The CAs certifying that TPM (PEM; measured with the code).
    #[arg(long)]
    counter_tpm_ca: Option<PathBuf>,
    /// Its manufacturer's CRLs.
    #[arg(long)]
    counter_tpm_crl: Vec<PathBuf>,
    /// The socket to listen on.
    #[arg(long)]
    socket: PathBuf,
    /// The developer's signing key.
    #[arg(long)]
    signer_key: Option<PathBuf>,
    /// Trust anchors for peer enclaves (measured with the code).
    #[arg(long)]
    peer_trust_anchors: Option<PathBuf>,
    /// Where the host spools task uploads.
    #[arg(long)]
    spool: Option<PathBuf>,
    /// Accept a store older than the machine's counter (the operator's explicit choice).
    #[arg(long)]
    accept_store_rollback: bool,
    /// The KBS administrator's Ed25519 public key (PEM; measured with the code).
    #[arg(long)]
    kbs_admin_key: Option<PathBuf>,
    /// Run as a security module (flow 2; measured with the code).
    #[arg(long)]
    security_module: bool,
    /// The target's TPM (TCTI).
    #[arg(long)]
    tpm: Option<String>,
    /// The PCRs its storage key is bound to.
    #[arg(long, value_delimiter = ',')]
    tpm_pcrs: Vec<u32>,
    /// TPM manufacturer CAs (PEM; measured with the code).
    #[arg(long)]
    tpm_ca: Option<PathBuf>,
    /// TPM manufacturers' CRLs.
    #[arg(long)]
    tpm_crl: Vec<PathBuf>,
    /// Whom the sealing root may be released by (measured with the code).
    #[arg(long)]
    sealing_root_policy: Option<PathBuf>,
    /// Release sealing roots to attested peers (measured with the code).
    #[arg(long)]
    release_sealing_roots: bool,
    /// This node's name (measured with the code).
    #[arg(long, value_parser = parse_instance)]
    instance: Option<String>,
    /// Sessions each tenant may hold (0: no limit).
    #[arg(long, default_value_t = veritee_enclave::DEFAULT_SESSIONS_PER_TENANT)]
    tenant_sessions: usize,
    /// Memory applications and tasks may reserve, in MiB (0: no budget; default: three
    /// quarters of what the enclave sees).
    #[arg(long)]
    memory_budget_mib: Option<u64>,
    /// Seal under a root drawn at start and kept in memory (see `veritee node
    /// --ephemeral`).
    #[arg(long)]
    ephemeral: bool,
}

/// The 32-byte key of a PEM Ed25519 public key file.
fn read_kbs_admin_key(path: &Path) -> Result<[u8; 32]> {
    let pem = crate::files::read(path, "KBS admin public key")?;
    let pem = String::from_utf8(pem).context("the KBS admin public key is not PEM text")?;
    veritee_kbs::token::admin_public_key_from_pem(&pem)
        .with_context(|| format!("the KBS admin public key {}", path.display()))
}

/// A token in DIR/NAME, created (0600) on first start.
fn token_file(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    if !path.exists() {
        let token = hex::encode(veritee_crypto::rand::array::<32>()?);
        fsutil::write_new(&path, format!("{token}\n").as_bytes(), fsutil::PRIVATE_MODE)?;
    }
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(token.trim().to_string())
}

/// The SHA-256 of the admin token in DIR/admin.token.
fn admin_token(dir: &Path) -> Result<[u8; 32]> {
    Ok(veritee_crypto::digest::sha256(
        token_file(dir, "admin.token")?.as_bytes(),
    ))
}

/// The platform to run on, creating a simulated vendor and machine on first start.
fn platform(args: &NodeArgs) -> Result<PathBuf> {
    if let Some(p) = &args.platform {
        SimMachine::open(p)?;
        return Ok(p.clone());
    }
    let machine = args.dir.join("platform");
    if !machine.join("machine.json").exists() {
        let vendor_dir = args.dir.join("vendor");
        let now = OffsetDateTime::now_utc();
        let mut vendor = if vendor_dir.join("root.pem").exists() {
            SimVendor::open(&vendor_dir)?
        } else {
            SimVendor::init(&vendor_dir, now)?
        };
        SimMachine::init(&machine, &mut vendor, None, now)?;
        eprintln!(
            "created a simulated vendor and machine; clients verify against {}",
            vendor_dir.join("root.pem").display()
        );
    }
    Ok(machine)
}

fn load_signer(path: &Path) -> Result<veritee_crypto::sign::EcdsaSigningKey> {
    let pem = veritee_crypto::SecretBytes::new(crate::files::read(path, "signer key")?);
    let blocks = veritee_x509::pem::blocks(pem.expose())
        .with_context(|| format!("signer key {}", path.display()))?;
    let Some((_, der)) = blocks.into_iter().find(|(l, _)| l == "PRIVATE KEY") else {
        bail!(
            "signer key {} has no PKCS#8 PRIVATE KEY block",
            path.display()
        );
    };
    let der = veritee_crypto::SecretBytes::new(der);
    veritee_crypto::sign::EcdsaSigningKey::from_pkcs8(
        veritee_crypto::sign::EcdsaCurve::P384,
        der.expose(),
    )
    .with_context(|| format!("signer key {} must be ECDSA P-384", path.display()))
}

/// The node's HTTPS identity: given, or self-signed (generated once, kept in DIR/tls),
/// or none on loopback unless asked for.
fn tls_identity(args: &NodeArgs) -> Result<Option<veritee_host::tls::TlsIdentity>> {
    use veritee_host::tls::{TlsIdentity, plain_http_allowed};
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let key_pem = veritee_crypto::SecretBytes::new(crate::files::read(key, "TLS key")?);
        let identity = TlsIdentity::from_pem(
            &crate::files::read(cert, "TLS certificate")?,
            key_pem.expose(),
        )
        .with_context(|| format!("{} and {}", cert.display(), key.display()))?;
        return Ok(Some(identity));
    }
    if !args.tls_self_signed && plain_http_allowed(&args.listen) {
        return Ok(None);
    }
    let dir = args.dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() {
        let key_pem = veritee_crypto::SecretBytes::new(crate::files::read(&key, "TLS key")?);
        let identity = TlsIdentity::from_pem(
            &crate::files::read(&cert, "TLS certificate")?,
            key_pem.expose(),
        )
        .with_context(|| format!("the node's self-signed certificate in {}", dir.display()))?;
        return Ok(Some(identity));
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !args.listen.ip().is_unspecified() && !args.listen.ip().is_loopback() {
        names.push(args.listen.ip().to_string());
    }
    let generated = TlsIdentity::self_signed(&names)?;
    fsutil::create_private_dir(&dir)?;
    fsutil::write_new(
        &key,
        generated.key_pem.expose().as_bytes(),
        fsutil::PRIVATE_MODE,
    )?;
    fsutil::write_new(&cert, generated.cert_pem.as_bytes(), 0o644)?;
    fsutil::write_new(
        &dir.join("fingerprint"),
        format!("{}\n", hex::encode(generated.identity.fingerprint())).as_bytes(),
        0o644,
    )?;
    eprintln!(
        "generated a self-signed TLS certificate in {}; clients pin it with --node-fingerprint",
        dir.display()
    );
    Ok(Some(generated.identity))
}

/// The hardware backend `--tee` names or `auto` finds (`None`: the simulator), and the
/// warning to show when `auto` fell back to the simulator. An explicit backend is
/// opened here once, so a missing device stops the node before anything starts.
fn resolve_tee(tee: &str) -> Result<(Option<Backend>, Option<String>)> {
    let roots = HardwareRoots::system();
    match tee {
        "sim" => Ok((None, None)),
        "auto" => match veritee_platform::hw::probe(&roots) {
            Ok(backend) => Ok((Some(backend), None)),
            Err(e) => Ok((
                None,
                Some(format!(
                    "no TEE found ({e}): the enclave runs on the SIMULATED TEE, whose evidence \
                     proves nothing and which every default policy refuses; pass --tee sim to \
                     choose it, or --tee sgx|tdx|snp|nitro to require hardware"
                )),
            )),
        },
        name => {
            let backend = Backend::from_name(name)
                .with_context(|| format!("--tee {name}: not a TEE veritee runs on"))?;
            veritee_platform::hw::open(backend, &roots)?;
            Ok((Some(backend), None))
        }
    }
}

/// Runs this command again, in this process, with the allocator setting its enclave
/// gets too ([`veritee_host::supervisor::FIXED_MMAP_THRESHOLD`]), unless GLIBC_TUNABLES
/// is set already. Returns only then, or if the exec failed; it runs before anything
/// else has started.
fn exec_with_fixed_mmap_threshold() -> Result<()> {
    use std::os::unix::process::CommandExt;
    use veritee_host::supervisor::{FIXED_MMAP_THRESHOLD, GLIBC_TUNABLES};
    if std::env::var_os(GLIBC_TUNABLES).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the veritee executable")?;
    let error = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(GLIBC_TUNABLES, FIXED_MMAP_THRESHOLD)
        .exec();
    Err(error).with_context(|| {
        format!(
            "cannot run {} again with {GLIBC_TUNABLES} set",
            exe.display()
        )
    })
}

/// Runs `veritee node` until interrupted.
pub fn run(args: NodeArgs) -> Result<Outcome> {
    exec_with_fixed_mmap_threshold()?;
    let (backend, tee_warning) = resolve_tee(&args.tee)?;
    if let Some(backend) = backend {
        veritee_enclave::launch::hardware_seal_policy(
            backend,
            args.sealing_root_policy.is_some(),
            args.counter_tpm.as_deref(),
            args.counter_tpm_ca.is_some(),
        )?;
    }
    if args.sealing_root_policy.is_some() && args.enclave_signer_key.is_some() {
        bail!(
            "--sealing-root-policy and --enclave-signer-key: a released sealing root is bound to \
             the enclave's measurement, so there is no signer to seal to"
        );
    }
    if backend.is_some() && (args.platform.is_some() || args.enclave_signer_key.is_some()) {
        bail!(
            "--platform and --enclave-signer-key are for the simulator; on a TEE the hardware \
             measures the enclave (pass --tee sim to run on the simulator anyway)"
        );
    }
    if let Some(warning) = &tee_warning {
        eprintln!("\n!!! WARNING: {warning}\n");
        tracing::warn!("{warning}");
    }
    fsutil::create_private_dir(&args.dir)?;
    let token_sha = admin_token(&args.dir)?;
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| args.dir.join("store").display().to_string());
    let mut enclave_args: Vec<OsString> = vec!["enclave".into()];
    match backend {
        None => {
            let platform = platform(&args)?;
            enclave_args.extend(["--tee".into(), "sim".into(), "--platform".into()]);
            enclave_args.push(platform.into_os_string());
        }
        Some(backend) => {
            eprintln!("TEE: {} (hardware)", backend.name());
            enclave_args.extend(["--tee".into(), backend.name().into()]);
        }
    }
    if let Some(tcti) = &args.counter_tpm {
        eprintln!(
            "the enclave's monotonic counter (rollback protection) is kept by the TPM at {tcti}"
        );
        enclave_args.extend(["--counter-tpm".into(), tcti.into()]);
    }
    if let Some(ca) = &args.counter_tpm_ca {
        // Read here too, so a bad file stops the node before the enclave starts.
        veritee_attest::ParsedCertificate::from_pem_chain(&crate::files::read(
            ca,
            "counter TPM CA",
        )?)
        .with_context(|| format!("the counter TPM's CA {}", ca.display()))?;
        enclave_args.extend(["--counter-tpm-ca".into(), ca.clone().into_os_string()]);
    }
    for crl in &args.counter_tpm_crl {
        read_crl(crl)?;
        enclave_args.extend(["--counter-tpm-crl".into(), crl.clone().into_os_string()]);
    }
    if let Some(k) = &args.enclave_signer_key {
        load_signer(k)?;
        enclave_args.extend(["--signer-key".into(), k.clone().into_os_string()]);
    }
    let anchors = args.peer_trust_anchors.clone().or_else(|| {
        let default = args.dir.join("vendor").join("root.pem");
        default.exists().then_some(default)
    });
    if let Some(a) = anchors {
        enclave_args.extend(["--peer-trust-anchors".into(), a.into_os_string()]);
    }
    if let Some(file) = &args.sealing_root_policy {
        // Checked here too, so a bad policy stops the node before the enclave starts.
        let own = backend.map_or(veritee_attest::TeeKind::Simulated, Backend::tee);
        veritee_enclave::sealing_root::parse_releaser_policy(
            &crate::files::read(file, "sealing root policy")?,
            own,
        )
        .map_err(anyhow::Error::msg)
        .with_context(|| file.display().to_string())?;
        if args.peer.is_empty() {
            bail!(
                "--sealing-root-policy: the sealing root comes from a releaser among the peers; \
                 name it with --peer URL"
            );
        }
        eprintln!(
            "the enclave's sealing root is released by a peer that meets {}",
            file.display()
        );
        enclave_args.extend([
            "--sealing-root-policy".into(),
            file.clone().into_os_string(),
        ]);
    }
    if let Some(instance) = &args.instance {
        enclave_args.extend(["--instance".into(), instance.into()]);
    }
    if args.release_sealing_roots {
        eprintln!(
            "releasing sealing roots to attested peers on TEEs without a sealing key of their own"
        );
        enclave_args.push("--release-sealing-roots".into());
    }
    enclave_args.extend([
        "--tenant-sessions".into(),
        args.tenant_sessions.to_string().into(),
    ]);
    if let Some(mib) = args.memory_budget_mib {
        enclave_args.extend(["--memory-budget-mib".into(), mib.to_string().into()]);
    }
    if args.ephemeral {
        eprintln!("ephemeral: the enclave keeps nothing past its process");
        enclave_args.push("--ephemeral".into());
    }
    let spool = args.dir.join("run").join("spool");
    enclave_args.extend(["--spool".into(), spool.clone().into_os_string()]);
    if let Some(key) = &args.kbs_admin_key {
        // Read here too, so a bad file stops the node before the enclave starts.
        read_kbs_admin_key(key)?;
        enclave_args.extend(["--kbs-admin-key".into(), key.clone().into_os_string()]);
    }
    if args.role == "sm" {
        eprintln!(
            "role: security module (holds workload seeds, enrolls targets, issues authorizations; runs no workload)"
        );
        enclave_args.push("--security-module".into());
    }
    if let Some(ca) = &args.tpm_ca {
        if args.role != "sm" {
            anyhow::bail!("--tpm-ca is for a security module (--role sm): it checks TPM targets");
        }
        veritee_attest::ParsedCertificate::from_pem_chain(&crate::files::read(ca, "TPM CA")?)
            .with_context(|| format!("the TPM CA {}", ca.display()))?;
        enclave_args.extend(["--tpm-ca".into(), ca.clone().into_os_string()]);
    }
    for crl in &args.tpm_crl {
        read_crl(crl)?;
        enclave_args.extend(["--tpm-crl".into(), crl.clone().into_os_string()]);
    }
    if let Some(tcti) = &args.tpm {
        if args.role == "sm" {
            anyhow::bail!("--tpm is for a target node: a security module runs no workload");
        }
        if args.tpm_pcrs.is_empty() || args.tpm_pcrs.len() > veritee_tpm::device::MAX_POLICY_PCRS {
            anyhow::bail!(
                "--tpm-pcrs names 1 to {} PCRs",
                veritee_tpm::device::MAX_POLICY_PCRS
            );
        }
        eprintln!(
            "TPM target: workloads' seeds are unsealed by the TPM at {tcti}, bound to SHA-256 PCRs {:?}",
            args.tpm_pcrs
        );
        let pcrs: Vec<String> = args.tpm_pcrs.iter().map(u32::to_string).collect();
        enclave_args.extend([
            "--tpm".into(),
            tcti.into(),
            "--tpm-pcrs".into(),
            pcrs.join(",").into(),
        ]);
    }
    if args.kbs_plaintext_resources {
        eprintln!(
            "accepting Trustee's set-resource: resources pass through this host in the clear on their way into the enclave"
        );
    }
    if args.accept_store_rollback {
        eprintln!(
            "accepting a store older than this machine's counter if there is one: its newer state is lost (audited)"
        );
        enclave_args.push("--accept-store-rollback".into());
    }
    let parent_url = Arc::new(std::sync::OnceLock::new());
    let local_children = match args.local_children {
        0 => None,
        most => {
            if backend.is_some_and(|b| b.name() != "sgx") {
                bail!(
                    "--local-children: on {} an enclave is a VM the host launches, not a process this node can start; fork to a peer node instead",
                    backend.map_or("sim", Backend::name)
                );
            }
            // What follows `node` on this command line, less what is the parent's own.
            let argv: Vec<OsString> = std::env::args_os().collect();
            let after_node = argv
                .iter()
                .position(|a| a == "node")
                .map_or(&argv[..0], |at| &argv[at + 1..]);
            let mut inherited = crate::commands::children::inherited_args(after_node);
            // What the parent took by default from its own directory, the child is
            // given: the same simulated machine, the same (measured) peer anchors.
            if backend.is_none() && args.platform.is_none() {
                inherited.extend(["--platform".into(), args.dir.join("platform").into()]);
            }
            let default_anchors = args.dir.join("vendor").join("root.pem");
            if args.peer_trust_anchors.is_none() && default_anchors.exists() {
                inherited.extend(["--peer-trust-anchors".into(), default_anchors.into()]);
            }
            let launcher = crate::commands::children::ProcessLauncher::new(
                std::env::current_exe().context("cannot find the veritee executable")?,
                inherited,
                &args.dir,
                Arc::clone(&parent_url),
            );
            eprintln!(
                "this node may start {most} child nodes on this machine for forks (local:NAME)"
            );
            Some(Arc::new(veritee_host::children::LocalChildren::new(
                Arc::new(launcher),
                most,
            )))
        }
    };
    let config = veritee_host::NodeConfig {
        local_children,
        listen: args.listen,
        store,
        enclave: veritee_host::supervisor::EnclaveCommand {
            program: std::env::current_exe().context("cannot find the veritee executable")?,
            args: enclave_args,
            socket: veritee_host::socket_path(&args.dir),
            pid_file: Some(args.dir.join("run").join("enclave.pid")),
        },
        admin_token_sha256: token_sha,
        peers: args.peer.clone(),
        spool: Some(spool.clone()),
        peer_token: token_file(&args.dir, "peer.token")?,
        tls: tls_identity(&args)?.map(std::sync::Arc::new),
        tenant_requests_per_second: (args.tenant_requests_per_second > 0)
            .then_some(args.tenant_requests_per_second),
        tenant_spool_bytes: (args.tenant_spool_bytes > 0).then_some(args.tenant_spool_bytes),
        tenant_uploads: (args.tenant_uploads > 0).then_some(args.tenant_uploads),
        kbs_auth_per_second: (args.kbs_auth_per_second > 0).then_some(args.kbs_auth_per_second),
        kbs_plaintext_resources: args.kbs_plaintext_resources,
        kbs_collateral: args
            .kbs_collateral
            .iter()
            .map(|p| crate::files::read(p, "KBS collateral"))
            .collect::<Result<Vec<_>>>()?,
        tee: (
            backend.map_or("sim", Backend::name).to_string(),
            tee_warning,
        ),
        provider: Some(std::sync::Arc::new(
            veritee_host::provider::ProviderKeys::load_or_create(&args.dir.join("provider"))
                .context("the provider's import keys")?
                .with_layer(args.provider_layer),
        )),
    };
    let provider_layer = match args.provider_layer {
        veritee_host::provider::ProviderLayer::Host => "host",
        veritee_host::provider::ProviderLayer::Enclave => "enclave",
    };
    let provider_public = config
        .provider
        .as_ref()
        .map(|p| p.provider_public_hex())
        .unwrap_or_default();
    let fingerprint = config.tls.as_ref().map(|t| hex::encode(t.fingerprint()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = veritee_host::start(config).await?;
        let addr = format!("{}://{}", node.scheme, node.addr);
        // Written whole, then renamed: whoever polls for the file never reads half a URL.
        let partial = args.dir.join("node.addr.partial");
        std::fs::write(&partial, &addr).context("cannot write node.addr")?;
        std::fs::rename(&partial, args.dir.join("node.addr")).context("cannot write node.addr")?;
        let _ = parent_url.set(addr.clone());
        println!(
            "veritee node listening on {addr} (admin token in {})",
            args.dir.join("admin.token").display()
        );
        println!(
            "provider key for secret imports: {provider_public} (customers pin it: veritee import keys --provider {provider_public})"
        );
        println!("  the provider's layer of an import is opened by the {provider_layer}");
        if let Some(fingerprint) = &fingerprint {
            println!("TLS certificate SHA-256 fingerprint: {fingerprint}");
            println!(
                "  clients pin it: veritee ... --node {addr} --node-fingerprint {fingerprint}"
            );
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("SIGTERM handler")?;
        let parent_gone = async {
            match args.exit_with {
                Some(pid) => crate::commands::children::process_gone(pid).await,
                None => std::future::pending().await,
            }
        };
        let signal = tokio::select! {
            r = tokio::signal::ctrl_c() => { r.context("signal handler")?; "SIGINT" }
            _ = terminate.recv() => "SIGTERM",
            _ = parent_gone => "the parent node stopped",
        };
        let grace = std::time::Duration::from_secs(args.shutdown_grace_seconds);
        tracing::info!(
            signal,
            grace_seconds = grace.as_secs(),
            "stopping: no new connections; requests in progress finish"
        );
        if node.drain(grace).await {
            tracing::info!("stopped: every request in progress finished");
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Success)
}

/// The memory this process's system reports (`MemTotal` of /proc/meminfo): inside a
/// confidential VM, the guest's; under a LibOS, what it emulates.
fn memory_seen() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `--instance`: 1 to 64 letters, digits, `.`, `_` or `-`.
fn parse_instance(name: &str) -> std::result::Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "'{name}': an instance name is 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(name.to_string())
}

/// A TPM manufacturer's CRL from `path` (PEM or DER).
fn read_crl(path: &Path) -> Result<veritee_x509::ParsedCrl> {
    veritee_x509::ParsedCrl::from_der_or_pem(&crate::files::read(path, "TPM CRL")?)
        .with_context(|| format!("the TPM CRL {}", path.display()))
}

/// Exits when the host that started this enclave is gone (killed with -9, say), so an
/// orphaned enclave never lingers; a restarted host starts a fresh one.
fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
        }
    });
}

/// Runs the enclave process.
pub fn run_enclave(args: EnclaveArgs) -> Result<Outcome> {
    exit_with_parent();
    let config = veritee_enclave::launch::EnclaveConfig {
        peer_trust_anchors_pem: match &args.peer_trust_anchors {
            Some(p) => crate::files::read(p, "peer trust anchors")?,
            None => Vec::new(),
        },
        kbs_admin_key: args
            .kbs_admin_key
            .as_deref()
            .map(read_kbs_admin_key)
            .transpose()?,
        security_module: args.security_module,
        tpm_trust_anchors_pem: match &args.tpm_ca {
            Some(p) => crate::files::read(p, "TPM CA")?,
            None => Vec::new(),
        },
        counter_tpm_anchors_pem: match &args.counter_tpm_ca {
            Some(p) => crate::files::read(p, "counter TPM CA")?,
            None => Vec::new(),
        },
        sealing_root_policy: match &args.sealing_root_policy {
            Some(p) => crate::files::read(p, "sealing root policy")?,
            None => Vec::new(),
        },
        release_sealing_roots: args.release_sealing_roots,
        instance: args.instance.clone(),
    };
    let counter_tpm_crls = args
        .counter_tpm_crl
        .iter()
        .map(|p| read_crl(p))
        .collect::<Result<Vec<_>>>()?;
    let (platform, seal_policy, released_root) = if args.tee == "sim" {
        let Some(machine) = &args.platform else {
            bail!("--tee sim needs --platform (the simulated machine's directory)");
        };
        let signer = args.signer_key.as_deref().map(load_signer).transpose()?;
        let exe = std::env::current_exe().context("cannot find the veritee executable")?;
        let (platform, policy) =
            veritee_enclave::launch::launch_simulated(machine, &exe, &config, signer.as_ref())?;
        // As on TDX and Nitro, the machine's sealing key gives way to a released root.
        let mut launch = veritee_enclave::launch::with_released_root(platform, policy, &config)?;
        if let Some(tcti) = &args.counter_tpm {
            let anchors = veritee_enclave::launch::counter_tpm_anchors(&config)?;
            launch = launch.counted_in_tpm(tcti, anchors, counter_tpm_crls);
        }
        (launch.platform, launch.seal_policy, launch.released_root)
    } else {
        let backend = Backend::from_name(&args.tee)
            .with_context(|| format!("--tee {}: not a TEE veritee runs on", args.tee))?;
        let measured_env = std::env::var(veritee_enclave::launch::LAUNCH_CONFIG_ENV).ok();
        let launch = veritee_enclave::launch::launch_hardware(
            backend,
            &HardwareRoots::system(),
            &config,
            measured_env.as_deref(),
            args.counter_tpm.as_deref(),
            counter_tpm_crls,
        )?;
        (launch.platform, launch.seal_policy, launch.released_root)
    };
    let platform: Box<dyn veritee_platform::Platform> = if args.ephemeral {
        Box::new(veritee_enclave::ephemeral::EphemeralPlatform::new(
            platform,
        )?)
    } else {
        platform
    };
    // Untyped: the simulated vendor's root vouches for simulated peers only.
    let anchors = if config.peer_trust_anchors_pem.is_empty() {
        veritee_attest::TrustAnchors::none()
    } else {
        veritee_attest::TrustAnchors::untyped(
            veritee_attest::ParsedCertificate::from_pem_chain(&config.peer_trust_anchors_pem)
                .context("peer trust anchors")?,
        )
    };
    let mut service =
        veritee_enclave::EnclaveService::new(platform, seal_policy).with_peer_anchors(anchors);
    if let Some(spool) = &args.spool {
        service = service.with_spool(spool.clone());
    }
    if let Some(release) = released_root {
        service = service.with_released_root(release);
    }
    service = service
        .with_tenant_session_limit((args.tenant_sessions > 0).then_some(args.tenant_sessions));
    let budget = match args.memory_budget_mib {
        Some(0) => None,
        Some(mib) => Some(mib.saturating_mul(1 << 20)),
        None => memory_seen().map(|bytes| bytes / 4 * 3),
    };
    if let Some(bytes) = budget {
        tracing::info!(
            mib = bytes >> 20,
            "applications and tasks may reserve this much memory in all"
        );
        service = service.with_memory_budget(bytes);
    }
    if config.release_sealing_roots {
        service = service.releasing_sealing_roots();
    }
    if let Some(key) = config.kbs_admin_key {
        service = service.with_kbs_admin_key(key);
    }
    if config.security_module {
        service = service.as_security_module();
    }
    if !config.tpm_trust_anchors_pem.is_empty() {
        service = service.with_tpm_anchors(
            veritee_attest::ParsedCertificate::from_pem_chain(&config.tpm_trust_anchors_pem)
                .context("TPM CA")?,
        );
    }
    if !args.tpm_crl.is_empty() {
        service = service.with_tpm_crls(
            args.tpm_crl
                .iter()
                .map(|p| read_crl(p))
                .collect::<Result<_>>()?,
        );
    }
    if let Some(tcti) = &args.tpm {
        service = service.with_tpm_target(tcti.clone(), args.tpm_pcrs.clone());
    }
    if args.accept_store_rollback {
        service = service.accepting_store_rollback();
    }
    let service = std::sync::Arc::new(service);
    let _ = std::fs::remove_file(&args.socket);
    let listener = std::os::unix::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", args.socket.display()))?;
    }
    veritee_enclave::server::serve(listener, service).context("enclave server failed")?;
    Ok(Outcome::Success)
}
