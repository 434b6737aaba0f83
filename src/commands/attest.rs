//! `veritee attest`: evidence for an enclave over report data.

use crate::{Outcome, files};
use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use veritee_attest::ReportData;
use veritee_crypto::sign::{EcdsaCurve, EcdsaSigningKey};
use veritee_platform::Platform;
use veritee_platform::sim::{EnclaveImage, SimMachine};

/// How to write evidence.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EvidenceFormat {
    /// Raw bytes.
    Raw,
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Arguments of `veritee attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// A simulated machine directory (from `veritee platform init`), or `auto` for the
    /// TEE hardware this machine has (configfs-tsm TDX/SEV-SNP, Gramine SGX, Nitro).
    #[arg(long)]
    platform: PathBuf,
    /// The enclave image (simulated platform only): its bytes are measured.
    #[arg(long)]
    enclave: Option<PathBuf>,
    /// Report data to bind, hex, at most 64 bytes (zero-padded).
    #[arg(long)]
    report_data: String,
    /// Where to write the evidence.
    #[arg(long)]
    out: PathBuf,
    /// The enclave developer's signing key (PKCS#8 PEM, ECDSA P-384), e.g. from
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384`.
    #[arg(long)]
    signer_key: Option<PathBuf>,
    /// Product id of the enclave under its signer.
    #[arg(long, default_value_t = 0)]
    product_id: u16,
    /// Security version of the enclave.
    #[arg(long, default_value_t = 0)]
    security_version: u16,
    /// Launch the enclave in debug mode.
    #[arg(long)]
    debug: bool,
    /// Output encoding.
    #[arg(long, value_enum, default_value_t = EvidenceFormat::Raw)]
    format: EvidenceFormat,
}

fn load_signer(path: &std::path::Path) -> Result<EcdsaSigningKey> {
    let pem = veritee_crypto::SecretBytes::new(files::read(path, "signer key")?);
    let blocks = veritee_x509::pem::blocks(pem.expose())
        .with_context(|| format!("signer key {}", path.display()))?;
    let Some((_, der)) = blocks.into_iter().find(|(label, _)| label == "PRIVATE KEY") else {
        bail!(
            "signer key {} has no PKCS#8 \"PRIVATE KEY\" block",
            path.display()
        );
    };
    let der = veritee_crypto::SecretBytes::new(der);
    EcdsaSigningKey::from_pkcs8(EcdsaCurve::P384, der.expose()).with_context(|| {
        format!(
            "signer key {} must be an ECDSA P-384 PKCS#8 key",
            path.display()
        )
    })
}

fn write_evidence(args: &AttestArgs, evidence: &[u8]) -> Result<()> {
    let encoded = match args.format {
        EvidenceFormat::Raw => evidence.to_vec(),
        EvidenceFormat::Hex => hex::encode(evidence).into_bytes(),
        EvidenceFormat::Base64 => base64::engine::general_purpose::STANDARD
            .encode(evidence)
            .into_bytes(),
    };
    std::fs::write(&args.out, encoded)
        .with_context(|| format!("cannot write evidence to {}", args.out.display()))
}

/// Runs `veritee attest`.
pub fn run(args: AttestArgs) -> Result<Outcome> {
    let report_data = ReportData::from_slice_padded(&files::report_data(&args.report_data)?)?;
    if args.platform.as_os_str() == "auto" {
        let platform =
            veritee_platform::hw::detect(&veritee_platform::hw::HardwareRoots::system())?;
        let evidence = platform.evidence(&report_data)?;
        write_evidence(&args, &evidence)?;
        println!(
            "wrote {} bytes of {} evidence to {}",
            evidence.len(),
            platform.tee(),
            args.out.display()
        );
        return Ok(Outcome::Success);
    }
    let Some(enclave) = &args.enclave else {
        bail!("--enclave FILE is required on a simulated platform");
    };
    let code = files::read(enclave, "enclave image")?;
    let image = match &args.signer_key {
        Some(path) => EnclaveImage::signed(
            &code,
            &load_signer(path)?,
            args.product_id,
            args.security_version,
            args.debug,
        )?,
        None => EnclaveImage::unsigned(&code, args.product_id, args.security_version, args.debug),
    };
    let machine = SimMachine::open(&args.platform)?;
    let enclave = machine.launch(&image)?;
    let evidence = enclave.evidence(&report_data)?;
    let encoded = match args.format {
        EvidenceFormat::Raw => evidence.clone(),
        EvidenceFormat::Hex => hex::encode(&evidence).into_bytes(),
        EvidenceFormat::Base64 => base64::engine::general_purpose::STANDARD
            .encode(&evidence)
            .into_bytes(),
    };
    std::fs::write(&args.out, encoded)
        .with_context(|| format!("cannot write evidence to {}", args.out.display()))?;
    println!(
        "wrote {} bytes of simulated evidence to {} (measurement {})",
        evidence.len(),
        args.out.display(),
        hex::encode(image.measurement)
    );
    Ok(Outcome::Success)
}
