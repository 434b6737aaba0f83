//! The third part of the tour: the host, a courier and the store turn against the
//! tenant, and each attack is refused with its reason. Real nodes and the real command
//! line wherever a real attacker would reach them; in process (the tour playing the
//! host) where the attack needs the host's hands inside a running task.

use super::Tour;
use super::fleet::Cli;
use anyhow::{Context, Result, ensure};
use std::io::Write;
use std::path::Path;
use veritee_channel::client::TenantKey;
use veritee_enclave::EnclaveService;
use veritee_enclave::memory_host::MemoryHost;
use veritee_proto::api::{auth, paths};
use veritee_proto::ipc::{EnclaveCall, EnclaveReply, SignedRequest};

/// The host's forging tools (shared with the tests that prove the same refusals).
#[path = "../../../tests/common/forge.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod forge;

/// Runs the attacks against fresh nodes in `root`.
pub fn attack_tour(root: &Path, t: &mut Tour) -> Result<()> {
    let cli = Cli::new(&root.join("fleet"))?;
    forged_hardware_evidence(&cli, t)?;
    let (node, url) = cli.node("h", "127.0.0.1:0", &[])?;
    cli.run(&[
        "tenant",
        "create",
        "--node",
        &url,
        "--admin-token",
        "h/admin.token",
        "--out",
        "h-tenant.key",
    ])?;
    replayed_request(&cli, t, &url)?;
    altered_wrapped_key(&cli, t, &url)?;
    swapped_task_inputs(root, t)?;
    drop(node);
    rolled_back_store(&cli, t)
}

fn forged_hardware_evidence(cli: &Cli, t: &mut Tour) -> Result<()> {
    t.step("The host forges hardware evidence: it holds the simulated vendor's key, and mints an \"aws-nitro\" document under it");
    let root = forge::ForgingRoot::simulated_vendor(&cli.path("vendor"))
        .map_err(anyhow::Error::msg)
        .context("cannot load the simulated vendor's root")?;
    let now = time::OffsetDateTime::now_utc();
    std::fs::write(
        cli.path("forged-nitro.bin"),
        forge::nitro_document(&root, &[0x42; 32], now),
    )
    .context("cannot write forged-nitro.bin")?;
    println!(
        "    forged-nitro.bin: a Nitro attestation document, PCRs of the host's choosing, chained to vendor/root.pem"
    );
    // Given untyped (what a client of a simulated node passes), or even explicitly for
    // aws-nitro: the simulated vendor's root is bound to simulated evidence either way.
    for anchor in ["vendor/root.pem", "aws-nitro=vendor/root.pem"] {
        let out = cli.run_refused(&[
            "verify",
            "--evidence",
            "forged-nitro.bin",
            "--trust-anchor",
            anchor,
        ])?;
        ensure!(
            out.contains("vouch for simulated evidence only"),
            "the forged Nitro evidence was not refused as vouched for by a simulated-only anchor ({anchor}): {out}"
        );
    }
    println!(
        "    refused: the simulated root vouches for simulated evidence only, whatever it is handed for"
    );
    Ok(())
}

fn replayed_request(cli: &Cli, t: &mut Tour, url: &str) -> Result<()> {
    t.step("The host replays a tenant's genuine signed request: the enclave checks the signature itself and remembers its nonce");
    let key = crate::commands::tenant::load_tenant(&cli.path("h-tenant.key"))?;
    let info: veritee_proto::api::NodeInfo = reqwest::blocking::get(format!("{url}/v1/node"))
        .and_then(|r| r.json())
        .context("cannot fetch the node's id")?;
    let audience = auth::Audience {
        node: info.node_id,
        epoch: info.epoch,
    };
    let body = format!(
        "{{\"nonce\":\"{}\"}}",
        hex::encode(veritee_crypto::rand::array::<32>()?)
    );
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = hex::encode(veritee_crypto::rand::array::<16>()?);
    use base64::Engine;
    let signature = key.sign(&auth::signing_string(
        &audience,
        "POST",
        &paths::sessions(),
        ts,
        &nonce,
        &auth::body_payload(body.as_bytes()),
    ))?;
    let header = auth::header_value(
        &key.tenant_id()?,
        &audience,
        ts,
        &nonce,
        &base64::engine::general_purpose::STANDARD.encode(signature),
    );
    let send = || -> Result<(u16, String)> {
        let r = reqwest::blocking::Client::new()
            .post(format!("{url}{}", paths::sessions()))
            .header("content-type", "application/json")
            .header("authorization", &header)
            .body(body.clone())
            .send()
            .context("cannot reach the node")?;
        Ok((r.status().as_u16(), r.text().unwrap_or_default()))
    };
    let (first, _) = send()?;
    println!("    the tenant's request: {first}");
    let (again, why) = send()?;
    println!("    the same bytes again: {again} {why}");
    ensure!(
        first == 200 && again == 401 && why.contains("seen before"),
        "the replayed request was not refused by the enclave"
    );
    Ok(())
}

fn altered_wrapped_key(cli: &Cli, t: &mut Tour, url: &str) -> Result<()> {
    t.step("A courier alters an offline wrapped key file (release \"never\" -> \"same-signer\"): the tenant signed it whole");
    let appraisal = [
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "h/vendor/root.pem",
    ];
    cli.run(&["keys", "wrapping-key", "--node", url, "--out", "h-wk.json"])?;
    std::fs::write(
        cli.path("vault.key"),
        format!("{}\n", hex::encode(veritee_crypto::rand::array::<32>()?)),
    )?;
    let mut wrap = vec![
        "keys",
        "wrap",
        "--wrapping-key",
        "h-wk.json",
        "--tenant",
        "h-tenant.key",
        "--key-file",
        "vault.key",
        "--release",
        "never",
        "--out",
        "vault.wrapped",
    ];
    wrap.extend(appraisal);
    cli.run(&wrap)?;
    let genuine = std::fs::read_to_string(cli.path("vault.wrapped"))?;
    let altered = genuine.replace("\"release\": \"never\"", "\"release\": \"same-signer\"");
    ensure!(
        altered != genuine,
        "the wrapped file has no release field to alter"
    );
    std::fs::write(cli.path("vault-altered.wrapped"), altered)?;
    let import = |file: &str| {
        vec![
            "keys",
            "import",
            "--node",
            url,
            "--tenant",
            "h-tenant.key",
            "--file",
            file,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let args = import("vault-altered.wrapped");
    let out = cli.run_refused(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    ensure!(
        out.contains("refused"),
        "the altered file was not refused: {out}"
    );
    let args = import("vault.wrapped");
    cli.run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    println!(
        "    the file as the tenant signed it imports; the altered one never left the machine"
    );
    Ok(())
}

/// Copies input 0, then input 1, to the output.
const CONCAT: &str = include_str!("../../../crates/veritee-enclave/tests/data/concat.wat");

fn signed(
    service: &EnclaveService,
    host: &mut MemoryHost,
    tenant: &TenantKey,
    path: &str,
    body: &[u8],
) -> Result<SignedRequest> {
    let EnclaveReply::Status(status) = service
        .handle(EnclaveCall::Status, host)
        .map_err(|f| anyhow::anyhow!(f.message))?
    else {
        anyhow::bail!("the enclave did not answer with its status");
    };
    let audience = auth::Audience {
        node: status.node_id,
        epoch: status.epoch,
    };
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = hex::encode(veritee_crypto::rand::array::<16>()?);
    use base64::Engine;
    let sig = tenant.sign(&auth::signing_string(
        &audience,
        "POST",
        path,
        ts,
        &nonce,
        &auth::body_payload(body),
    ))?;
    Ok(SignedRequest {
        authorization: auth::header_value(
            &tenant.tenant_id()?,
            &audience,
            ts,
            &nonce,
            &base64::engine::general_purpose::STANDARD.encode(sig),
        ),
        method: "POST".into(),
        path: path.into(),
    })
}

fn swapped_task_inputs(root: &Path, t: &mut Tour) -> Result<()> {
    use veritee_task::keys::{TaskKey, seal_delivery};
    use veritee_task::messages::{
        AccessContext, CompartmentContext, INITIATION_VERSION, TaskInitiation, initiation_digest,
        slot_context,
    };
    t.step("The host swaps two inputs of a running task (the tour plays the host, in process): each upload is bound to its slot");
    let dir = root.join("in-process");
    let now = time::OffsetDateTime::now_utc();
    let mut vendor = veritee_platform::sim::SimVendor::init(&dir.join("vendor"), now)?;
    let machine =
        veritee_platform::sim::SimMachine::init(&dir.join("machine"), &mut vendor, None, now)?;
    let platform = machine.launch(&veritee_platform::sim::EnclaveImage::unsigned(
        b"the tour's enclave",
        1,
        1,
        false,
    ))?;
    let spool = dir.join("spool");
    let service = EnclaveService::new(
        Box::new(platform),
        veritee_platform::SealPolicy::Measurement,
    )
    .with_spool(spool.clone());
    let mut host = MemoryHost::default();
    let tenant = TenantKey::generate()?;
    use base64::Engine;
    let body = serde_json::to_vec(&veritee_proto::api::RegisterTenantRequest {
        public_key: base64::engine::general_purpose::STANDARD.encode(tenant.public_key_spki()?),
    })?;
    let request = signed(&service, &mut host, &tenant, &paths::tenants(), &body)?;
    service
        .handle(EnclaveCall::RegisterTenant { request, body }, &mut host)
        .map_err(|f| anyhow::anyhow!(f.message))?;

    let task_key = TaskKey::generate()?;
    let id_bytes: [u8; 16] = veritee_crypto::rand::array()?;
    let id = hex::encode(id_bytes);
    let ttis = serde_json::to_vec(&TaskInitiation {
        version: INITIATION_VERSION,
        task_id: id.clone(),
        nonce: hex::encode(veritee_crypto::rand::array::<32>()?),
        client_kx: hex::encode(task_key.ckek_public(&id_bytes)?),
        policy: "version = 1\ntee = [\"simulated\"]\nallow_simulated = true\n".into(),
        security_context: [(
            "c".to_string(),
            AccessContext {
                may_read: Vec::new(),
                releases: true,
            },
        )]
        .into(),
        compartments: vec![CompartmentContext {
            name: "c".into(),
            entry: "run".into(),
            inputs: vec!["payee".into(), "amount".into()],
            input_lengths: vec![5, 5],
            keys: Vec::new(),
        }],
        limits: Default::default(),
    })?;
    let request = signed(&service, &mut host, &tenant, &paths::tasks(), &ttis)?;
    let EnclaveReply::TaskSignal { skek, .. } = service
        .handle(
            EnclaveCall::TaskInitiate {
                request,
                initiation: ttis.clone(),
            },
            &mut host,
        )
        .map_err(|f| anyhow::anyhow!(f.message))?
    else {
        anyhow::bail!("no attestation signal");
    };
    let skek = veritee_crypto::hpke::HpkePublicKey::from_bytes(&skek)?;
    let delivery = seal_delivery(
        &skek,
        &initiation_digest(&ttis),
        &task_key,
        &id_bytes,
        &["c"],
    )?;
    let request = signed(
        &service,
        &mut host,
        &tenant,
        &paths::task_keys(&id),
        &delivery,
    )?;
    service
        .handle(
            EnclaveCall::TaskKeys {
                request,
                task_id: id.clone(),
                delivery,
            },
            &mut host,
        )
        .map_err(|f| anyhow::anyhow!(f.message))?;
    let dek = task_key.dek(&id_bytes, "c")?;
    let files = spool.join(tenant.tenant_id()?).join(&id).join("c");
    std::fs::create_dir_all(&files)?;
    for (slot, plain) in [
        ("module", CONCAT.as_bytes()),
        ("input-0", b"alice".as_slice()),
        ("input-1", b"00100".as_slice()),
    ] {
        let mut w = veritee_stream::EncryptWriter::with_context(
            &veritee_stream::StreamKey::new(&dek),
            &format!("c/{slot}"),
            &slot_context(&id, "c", slot),
            veritee_stream::MIN_CHUNK_SIZE,
            Vec::new(),
        )?;
        w.write_all(plain)?;
        std::fs::write(files.join(slot), w.finish()?)?;
    }
    println!(
        "    the client uploaded payee \"alice\" and amount \"00100\", each under the compartment's key"
    );
    // The host swaps the two files: same key, same length.
    let zero = std::fs::read(files.join("input-0"))?;
    let one = std::fs::read(files.join("input-1"))?;
    std::fs::write(files.join("input-0"), one)?;
    std::fs::write(files.join("input-1"), zero)?;
    println!("    the host swaps input-0 and input-1 in the spool: same key, same length");
    let request = signed(&service, &mut host, &tenant, &paths::task_run(&id), b"")?;
    let refused = service.handle(
        EnclaveCall::TaskRun {
            request,
            task_id: id,
        },
        &mut host,
    );
    let why = match refused {
        Ok(_) => anyhow::bail!("the task ran on swapped inputs"),
        Err(f) => f.message,
    };
    println!("    refused: {why}");
    ensure!(
        why.contains("not this slot's file"),
        "refused for another reason"
    );
    Ok(())
}

fn rolled_back_store(cli: &Cli, t: &mut Tour) -> Result<()> {
    t.step("The host rolls the store back: a copy from before the secret was replaced, put back, node restarted");
    let appraisal = [
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "h/vendor/root.pem",
    ];
    let put = |value: &str| -> Result<()> {
        std::fs::write(cli.path("db-password.txt"), value)?;
        let (node, url) = cli.node("h", "127.0.0.1:0", &[])?;
        let mut args = vec![
            "secret",
            "put",
            "--node",
            &url,
            "--tenant",
            "h-tenant.key",
            "--name",
            "db-password",
            "--file",
            "db-password.txt",
        ];
        args.extend(appraisal);
        cli.run(&args)?;
        drop(node);
        Ok(())
    };
    put("old-password")?;
    copy_dir(&cli.path("h/store"), &cli.path("h-store-copy"))?;
    println!("    $ cp -r h/store h-store-copy   (the host keeps a copy)");
    put("new-password")?;
    std::fs::remove_dir_all(cli.path("h/store"))?;
    copy_dir(&cli.path("h-store-copy"), &cli.path("h/store"))?;
    println!("    $ rm -r h/store && cp -r h-store-copy h/store   (and puts it back)");
    let why = cli.node_refuses("h", &[])?;
    ensure!(
        why.contains("rolled back"),
        "the node served a rolled-back store"
    );
    t.step("The operator may accept the rollback, only explicitly; the acceptance is audited");
    let (_node, url) = cli.node("h", "127.0.0.1:0", &["--accept-store-rollback"])?;
    let mut get = vec![
        "secret",
        "get",
        "--node",
        &url,
        "--tenant",
        "h-tenant.key",
        "--name",
        "db-password",
    ];
    get.extend(appraisal);
    let served = cli.run(&get)?;
    ensure!(
        served.contains("old-password"),
        "the accepted state is not the old one"
    );
    let audited = cli.run(&[
        "audit",
        "verify",
        "--node",
        &url,
        "--admin-token",
        "h/admin.token",
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "h/vendor/root.pem",
    ])?;
    ensure!(
        audited.contains("state.rollback-accepted"),
        "the accepted rollback is not in the audit log"
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
