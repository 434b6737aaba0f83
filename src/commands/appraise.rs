//! The options every command that appraises evidence takes.

use crate::files;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use veritee_attest::TrustAnchors;
use veritee_policy::AppraisalPolicy;

/// How to judge a node's evidence.
#[derive(Debug, Args, Clone)]
pub struct AppraisalArgs {
    /// The appraisal policy the node's enclave must meet.
    #[arg(long)]
    pub policy: PathBuf,
    /// A trust anchor, `[KIND=]FILE`; repeatable. For the simulated TEE, its vendor's
    /// root.pem. A hardware kind uses its vendor's built-in roots unless an anchor is
    /// given for it (`aws-nitro=FILE`, which replaces the vendor's roots: for testing);
    /// an anchor without a kind vouches for the hardware kinds whose vendor root it is,
    /// and otherwise for simulated evidence only. The simulated vendor's certificates
    /// vouch for simulated evidence only, whatever kind they are given for.
    #[arg(long, value_name = "[KIND=]FILE")]
    pub trust_anchor: Vec<String>,
    /// Collateral files; repeatable.
    #[arg(long)]
    pub collateral: Vec<PathBuf>,
}

/// Loaded appraisal inputs.
pub struct Loaded {
    /// The policy.
    pub policy: AppraisalPolicy,
    /// Anchors, each bound to a TEE kind.
    pub anchors: TrustAnchors,
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
        let anchors = files::trust_anchors(&self.trust_anchor)?;
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
