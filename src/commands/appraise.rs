//! The options every command that appraises evidence takes.

use crate::files;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use veritee_attest::ParsedCertificate;
use veritee_policy::AppraisalPolicy;

/// How to judge a node's evidence.
#[derive(Debug, Args, Clone)]
pub struct AppraisalArgs {
    /// The appraisal policy the node's enclave must meet.
    #[arg(long)]
    pub policy: PathBuf,
    /// Trust anchors (for the simulated TEE: its vendor's root.pem); repeatable.
    #[arg(long)]
    pub trust_anchor: Vec<PathBuf>,
    /// Collateral files; repeatable.
    #[arg(long)]
    pub collateral: Vec<PathBuf>,
}

/// Loaded appraisal inputs.
pub struct Loaded {
    /// The policy.
    pub policy: AppraisalPolicy,
    /// Anchors.
    pub anchors: Vec<ParsedCertificate>,
    /// Collateral.
    pub collateral: Vec<Vec<u8>>,
    /// Verifiers.
    pub verifiers: veritee_verify::Verifiers,
}

impl AppraisalArgs {
    /// Reads the files.
    pub fn load(&self) -> Result<Loaded> {
        let policy = AppraisalPolicy::parse(&files::read_text(&self.policy, "policy")?)
            .with_context(|| format!("policy {}", self.policy.display()))?;
        let mut anchors = Vec::new();
        for path in &self.trust_anchor {
            let bytes = files::read(path, "trust anchor")?;
            anchors.extend(if veritee_x509::pem::looks_like_pem(&bytes) {
                ParsedCertificate::from_pem_chain(&bytes)
                    .with_context(|| format!("trust anchor {}", path.display()))?
            } else {
                vec![
                    ParsedCertificate::from_der(&bytes)
                        .with_context(|| format!("trust anchor {}", path.display()))?,
                ]
            });
        }
        let collateral = self
            .collateral
            .iter()
            .map(|p| files::read(p, "collateral"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Loaded {
            policy,
            anchors,
            collateral,
            verifiers: veritee_verify::Verifiers::default(),
        })
    }
}

impl Loaded {
    /// An appraiser at the current time.
    pub fn appraiser(&self) -> veritee_channel::client::Appraiser<'_> {
        veritee_channel::client::Appraiser {
            verifiers: &self.verifiers,
            policy: &self.policy,
            trust_anchors: &self.anchors,
            collateral: &self.collateral,
            at: time::OffsetDateTime::now_utc(),
        }
    }
}
