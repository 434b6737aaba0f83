//! `veritee import ...` and `veritee partition ...`: secret import (flow 3) into a
//! node's enclave, by way of two validated keys, and the partitions keys live in.

use super::appraise::AppraisalArgs;
use super::tenant::load_tenant;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use veritee_client::NodeClient;
use veritee_client::import::{
    ImportKeysFile, ImportSpec, TeeLayer, ValidatedImportKeys, prepare_import_as,
};
use veritee_crypto::SecretBytes;
use veritee_import::formats::ImportFormat;
use veritee_import::keys::{KeyType, Operation};

/// The provider key a customer pins, and optionally the vendor it asks.
#[derive(Debug, Args, Clone)]
pub struct ProviderPin {
    /// The provider's public key (64 hex digits, from the provider out of band: its
    /// node prints it at start and writes it to DIR/provider/provider.pub).
    #[arg(long, value_name = "HEX")]
    provider: String,
    /// The vendor's validator (`veritee vendor serve`): asked whether the TEE's machine
    /// is certified, issued to this provider and not revoked.
    #[arg(long, requires = "vendor_root")]
    vendor: Option<String>,
    /// The vendor's root certificate (PEM), which signs the validator's answers.
    #[arg(long, requires = "vendor")]
    vendor_root: Option<PathBuf>,
}

impl ProviderPin {
    fn key(&self) -> Result<[u8; 32]> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(self.provider.trim(), &mut key)
            .with_context(|| format!("--provider {:?} is not 64 hex digits", self.provider))?;
        Ok(key)
    }
}

/// Import subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Fetch a node's TEE key and provider key, validate both, and save them.
    ///
    /// Example: veritee import keys --node http://127.0.0.1:8440 --provider HEX
    ///   --policy policy.toml --trust-anchor root.pem --out node.import-keys.json
    Keys {
        /// The node's URL.
        #[arg(long)]
        node: String,
        #[command(flatten)]
        pin: ProviderPin,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        /// Where to save them (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Also write the enclave's RSA import key (PEM), validated, for tooling that
        /// wraps keys in the CKM_RSA_AES_KEY_WRAP format (an HSM, openssl); then
        /// `import send --format rsa-aes-key-wrap --wrapped FILE`.
        #[arg(long, value_name = "PEM")]
        tee_rsa_key_out: Option<PathBuf>,
    },
    /// Encrypt a key to the TEE, then to the provider, and import it with signed
    /// metadata; checks the enclave's signed confirmation.
    ///
    /// Example: veritee import send --node http://127.0.0.1:8440 --tenant alice.pem
    ///   --provider HEX --policy policy.toml --trust-anchor root.pem
    ///   --partition payments --key-id card-key --type aes-256-gcm
    ///   --operations encrypt,decrypt --key-file card.key
    ///   --task-signer 0123456789abcdef0123456789abcdef
    ///
    /// A key your own tooling wrapped to the enclave's RSA key (`import keys
    /// --tee-rsa-key-out tee-rsa.pem`): ... --format rsa-aes-key-wrap --wrapped card.wrapped
    Send {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// The tenant key file.
        #[arg(long)]
        tenant: PathBuf,
        #[command(flatten)]
        pin: ProviderPin,
        #[command(flatten)]
        appraisal: AppraisalArgs,
        /// Keys saved by `import keys`, validated again now (the provider's statement
        /// is good for 10 minutes); default: fetch them.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// The partition (create it first: veritee partition create).
        #[arg(long)]
        partition: String,
        /// The key's id in the partition.
        #[arg(long)]
        key_id: String,
        /// aes-256-gcm (32 raw bytes), hmac-sha256 (32 to 64 raw bytes), ecdsa-p256 or
        /// rsa (2048 to 4096 bits; PKCS#8, DER or PEM).
        #[arg(long = "type")]
        key_type: KeyType,
        /// What the key may be used for, comma-separated: encrypt, decrypt, translate
        /// (AES); hmac, verify (HMAC); sign, verify (ECDSA); sign, verify, decrypt (RSA:
        /// RSASSA-PSS and RSA-OAEP, SHA-256).
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<Operation>,
        /// The file holding the key.
        #[arg(long, required_unless_present = "wrapped")]
        key_file: Option<PathBuf>,
        /// The TEE layer's format: veritee (HPKE, may carry revocation data),
        /// rsa-aes-key-wrap (CKM_RSA_AES_KEY_WRAP: RSA-OAEP-SHA256 and AES-KWP, to the
        /// enclave's RSA key, as AWS KMS, Azure Key Vault and Google Cloud KMS take it)
        /// or hpke (RFC 9180 X25519/HKDF-SHA256/AES-256-GCM, info "veritee import hpke
        /// v1", no AAD, to the enclave's X25519 key).
        #[arg(long, default_value = "veritee")]
        format: ImportFormat,
        /// The key already wrapped in --format by your own tooling, instead of
        /// --key-file: its plaintext never reaches this command.
        #[arg(long, conflicts_with_all = ["key_file", "revocation"])]
        wrapped: Option<PathBuf>,
        /// Let the node's peers hold a replica, fetched enclave to enclave when first
        /// used there: same-signer or same-measurement (relative to this node's
        /// enclave). Disabling the key on any node sharing the store disables it on
        /// all at their next use. Default: this node only.
        #[arg(long, conflicts_with = "rotate_every")]
        release: Option<veritee_import::metadata::KeyRelease>,
        /// Rotate the key (a new version made in the enclave) once its newest version
        /// is this old, at its next use: "90d", "12h", "30m" (at least 60 s).
        #[arg(long, value_name = "DURATION")]
        rotate_every: Option<veritee_policy::PolicyDuration>,
        /// A token file from `veritee revocation add`: the enclave asks that endpoint
        /// whether the key is revoked before its first use and then every
        /// --revocation-every, and a revoked key is disabled for good.
        #[arg(long)]
        revocation: Option<PathBuf>,
        /// How often the enclave asks the revocation endpoint: 60 s to 1 day.
        #[arg(
            long,
            value_name = "DURATION",
            default_value = "10m",
            requires = "revocation"
        )]
        revocation_every: veritee_policy::PolicyDuration,
        /// A tenant (its id, 32 hex digits: as `veritee tenant create` prints it)
        /// whose signed trusted tasks may name this key for a compartment, which
        /// then uses it by index without ever seeing it; repeat for each, at most
        /// 16. Without it no task may use the key (the session API still may).
        #[arg(long = "task-signer", value_name = "TENANT_ID")]
        task_signers: Vec<String>,
    },
}

/// Partition subcommands.
#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Create a partition.
    ///
    /// Example: veritee partition create --node URL --tenant alice.pem --name payments
    Create {
        #[command(flatten)]
        who: Tenant,
        /// Its name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        approvals: super::officer::Approvals,
    },
    /// Delete a partition and destroy every key in it.
    ///
    /// Example: veritee partition delete --node URL --tenant alice.pem --name payments
    Delete {
        #[command(flatten)]
        who: Tenant,
        /// Its name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        approvals: super::officer::Approvals,
    },
    /// Disable an imported key for good: every later use is refused. Once the tenant
    /// has security officers, it needs their quorum (a token for key.disable on
    /// PARTITION/KEY).
    ///
    /// Example: veritee partition disable-key --node URL --tenant alice.pem --key payments/card-key
    DisableKey {
        #[command(flatten)]
        who: Tenant,
        /// The key, PARTITION/KEY-ID.
        #[arg(long, value_parser = super::crypto::key_ref)]
        key: veritee_import::keys::KeyRef,
        #[command(flatten)]
        approvals: super::officer::Approvals,
    },
    /// List the tenant's partitions and their key ids.
    ///
    /// Example: veritee partition list --node URL --tenant alice.pem
    List {
        #[command(flatten)]
        who: Tenant,
    },
}

/// A node and the tenant asking it.
#[derive(Debug, Args, Clone)]
pub struct Tenant {
    /// The node's URL.
    #[arg(long)]
    node: String,
    /// The tenant key file.
    #[arg(long)]
    tenant: PathBuf,
}

fn validated(
    file: &ImportKeysFile,
    appraisal: &AppraisalArgs,
    pin: &ProviderPin,
) -> Result<ValidatedImportKeys> {
    let loaded = appraisal.load()?;
    let mut keys = file
        .validate(
            &loaded.appraiser(),
            &pin.key()?,
            time::OffsetDateTime::now_utc(),
        )
        .context("the node's import keys failed validation; nothing was sent")?;
    if let (Some(url), Some(root)) = (&pin.vendor, &pin.vendor_root) {
        veritee_client::import::validate_with_vendor(
            &mut keys,
            url,
            &crate::files::read(root, "vendor root")?,
            &pin.key()?,
        )
        .context("the vendor's validator refused the node's TEE; nothing was sent")?;
    }
    Ok(keys)
}

/// Reads key material: raw bytes, or for an EC or RSA key PKCS#8 DER or PEM.
fn read_material(path: &std::path::Path, key_type: KeyType) -> Result<SecretBytes> {
    let raw = SecretBytes::new(crate::files::read(path, "key")?);
    let pkcs8 = matches!(key_type, KeyType::EcdsaP256 | KeyType::Rsa);
    if pkcs8 && raw.expose().starts_with(b"-----BEGIN") {
        let blocks = veritee_x509::pem::blocks(raw.expose())
            .with_context(|| format!("key file {}", path.display()))?;
        let Some((_, der)) = blocks.into_iter().find(|(l, _)| l == "PRIVATE KEY") else {
            bail!("key file {} has no PRIVATE KEY block", path.display());
        };
        return Ok(SecretBytes::new(der));
    }
    Ok(raw)
}

/// Runs an import subcommand.
pub fn run(cmd: ImportCommand) -> Result<Outcome> {
    match cmd {
        ImportCommand::Keys {
            node,
            pin,
            appraisal,
            out,
            tee_rsa_key_out,
        } => {
            let file = NodeClient::new(&node)?.fetch_import_keys()?;
            let keys = validated(&file, &appraisal, &pin)?;
            let json = serde_json::to_vec_pretty(&file)?;
            veritee_platform::fsutil::write_new(
                &out,
                &json,
                veritee_platform::fsutil::PUBLIC_MODE,
            )?;
            if let Some(path) = &tee_rsa_key_out {
                let Some(spki) = &keys.tee_rsa_key else {
                    bail!("node {node} states no RSA import key");
                };
                veritee_platform::fsutil::write_new(
                    path,
                    veritee_x509::pem::encode("PUBLIC KEY", spki).as_bytes(),
                    veritee_platform::fsutil::PUBLIC_MODE,
                )?;
                println!("the enclave's RSA import key written to {}", path.display());
            }
            for v in &keys.validations {
                println!("validated {v}");
            }
            println!("saved to {}", out.display());
        }
        ImportCommand::Send {
            node,
            tenant,
            pin,
            appraisal,
            keys,
            partition,
            key_id,
            key_type,
            operations,
            key_file,
            format,
            wrapped,
            release,
            rotate_every,
            revocation,
            revocation_every,
            task_signers,
        } => {
            if revocation.is_some() && !format.is_veritee() {
                bail!(
                    "--revocation needs --format veritee: the {format} format carries the key alone"
                );
            }
            let tenant = load_tenant(&tenant)?;
            let client = NodeClient::new(&node)?;
            let file = match &keys {
                Some(path) => serde_json::from_slice(&crate::files::read(path, "import keys")?)
                    .with_context(|| format!("import keys {}", path.display()))?,
                None => client.fetch_import_keys()?,
            };
            let validated = validated(&file, &appraisal, &pin)?;
            let spec = ImportSpec {
                partition,
                key_id,
                key_type,
                operations,
                rotate_after_secs: rotate_every.map(|d| d.0),
                release,
                // Lowercase: the form the enclave compares tenant ids in.
                task_signers: task_signers
                    .iter()
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect(),
            };
            let revocation = match &revocation {
                Some(path) => {
                    let file: super::revocation::TokenFile =
                        serde_json::from_slice(&crate::files::read(path, "revocation token")?)
                            .with_context(|| format!("revocation token file {}", path.display()))?;
                    Some(file.data(revocation_every.0)?)
                }
                None => None,
            };
            let material = match &key_file {
                Some(path) => Some(read_material(path, key_type)?),
                None => None,
            };
            let wrapped = match &wrapped {
                Some(path) => Some(crate::files::read(path, "wrapped key")?),
                None => None,
            };
            let layer = match (&material, &wrapped) {
                (_, Some(wrapped)) => TeeLayer::Wrapped { format, wrapped },
                (Some(material), None) if format.is_veritee() => TeeLayer::Veritee {
                    material,
                    revocation: revocation.as_ref(),
                },
                (Some(material), None) => TeeLayer::Wrap { format, material },
                (None, None) => bail!("give --key-file or --wrapped"),
            };
            let prepared = prepare_import_as(&validated, &tenant, &spec, layer)?;
            let imported = client.send_import(&tenant, &validated, &prepared)?;
            let c = &imported.confirmation;
            println!(
                "imported {}/{} ({}, may {}) into node {}",
                c.partition,
                c.key_id,
                c.key_type,
                c.operations.join(", "),
                c.node
            );
            println!("confirmation signed by the attested enclave at {}", c.time);
            println!("key check value {}", c.key_check);
            println!("audit log size {} covers it", c.audit_size);
        }
    }
    Ok(Outcome::Success)
}

/// Runs a partition subcommand.
pub fn run_partition(cmd: PartitionCommand) -> Result<Outcome> {
    let connect = |who: &Tenant| -> Result<_> {
        Ok((NodeClient::new(&who.node)?, load_tenant(&who.tenant)?))
    };
    match cmd {
        PartitionCommand::Create {
            who,
            name,
            approvals,
        } => {
            let (client, tenant) = connect(&who)?;
            client.create_partition(&tenant, &name, approvals.proof()?)?;
            println!("created partition {name}");
        }
        PartitionCommand::Delete {
            who,
            name,
            approvals,
        } => {
            let (client, tenant) = connect(&who)?;
            client.delete_partition(&tenant, &name, approvals.proof()?)?;
            println!("deleted partition {name} and every key in it");
        }
        PartitionCommand::DisableKey {
            who,
            key,
            approvals,
        } => {
            let (client, tenant) = connect(&who)?;
            client.disable_key(&tenant, &key, approvals.proof()?)?;
            println!("disabled {key} for good");
        }
        PartitionCommand::List { who } => {
            let (client, tenant) = connect(&who)?;
            for p in client.list_partitions(&tenant)?.partitions {
                println!("{}\t{}", p.name, p.keys.join(" "));
            }
        }
    }
    Ok(Outcome::Success)
}
