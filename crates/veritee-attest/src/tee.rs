//! TEE kinds and TCB statuses.

use serde::{Deserialize, Serialize};

/// A kind of trusted execution environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TeeKind {
    /// veritee's simulated TEE: for development and tests, never for real secrets.
    Simulated,
    /// Intel SGX enclave (DCAP quote).
    Sgx,
    /// Intel TDX trust domain (DCAP quote).
    Tdx,
    /// AMD SEV-SNP guest.
    SevSnp,
    /// AWS Nitro Enclave.
    #[serde(rename = "aws-nitro", alias = "nitro")]
    Nitro,
    /// Azure confidential VM: SEV-SNP behind a paravisor vTPM.
    AzureSnpVtpm,
    /// Azure confidential VM: TDX behind a paravisor vTPM.
    AzureTdxVtpm,
    /// NVIDIA H100 GPU in confidential-computing mode.
    NvidiaH100,
    /// A TPM 2.0 quote by a cloud vTPM whose attestation key the cloud certifies
    /// (e.g. a GCE Shielded VM).
    Tpm2,
    /// The Confidential Containers "sample" TEE: JSON its attester writes with no
    /// signature at all, for testing a key broker. It proves nothing; its claims are
    /// marked simulated, and a policy must name it and allow simulated evidence.
    CocoSample,
}

impl TeeKind {
    /// Every kind, in a stable order.
    pub const ALL: [TeeKind; 10] = [
        Self::Simulated,
        Self::Sgx,
        Self::Tdx,
        Self::SevSnp,
        Self::Nitro,
        Self::AzureSnpVtpm,
        Self::AzureTdxVtpm,
        Self::NvidiaH100,
        Self::Tpm2,
        Self::CocoSample,
    ];

    /// The name used in policies, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
            Self::Nitro => "aws-nitro",
            Self::AzureSnpVtpm => "azure-snp-vtpm",
            Self::AzureTdxVtpm => "azure-tdx-vtpm",
            Self::NvidiaH100 => "nvidia-h100",
            Self::Tpm2 => "tpm2",
            Self::CocoSample => "coco-sample",
        }
    }
}

impl TeeKind {
    /// Whether evidence of this kind is made by hardware that signs it (false for the
    /// simulated TEE and the CoCo sample TEE, whose evidence proves nothing).
    pub fn is_hardware(self) -> bool {
        !matches!(self, Self::Simulated | Self::CocoSample)
    }
}

impl core::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for TeeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "nitro" {
            return Ok(Self::Nitro);
        }
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown TEE kind '{s}' (known: {})", names.join(", "))
            })
    }
}

/// The vendor's judgement of a platform's trusted computing base, in Intel's terms
/// (which the other vendors' models map onto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TcbStatus {
    /// Patched to the latest level.
    UpToDate,
    /// Up to date, but software mitigations are needed.
    #[serde(rename = "SWHardeningNeeded")]
    SwHardeningNeeded,
    /// Up to date, but platform configuration is needed.
    ConfigurationNeeded,
    /// Both of the above.
    #[serde(rename = "ConfigurationAndSWHardeningNeeded")]
    ConfigurationAndSwHardeningNeeded,
    /// A newer TCB level exists; the platform has known vulnerabilities.
    OutOfDate,
    /// Out of date and configuration is needed.
    OutOfDateConfigurationNeeded,
    /// The platform's TCB level is revoked.
    Revoked,
    /// The TEE does not report a TCB status the vendor grades (e.g. Nitro).
    NotReported,
}

impl TcbStatus {
    /// Every status, in a stable order.
    pub const ALL: [TcbStatus; 8] = [
        Self::UpToDate,
        Self::SwHardeningNeeded,
        Self::ConfigurationNeeded,
        Self::ConfigurationAndSwHardeningNeeded,
        Self::OutOfDate,
        Self::OutOfDateConfigurationNeeded,
        Self::Revoked,
        Self::NotReported,
    ];

    /// The name used in policies and JSON (Intel's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SwHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
            Self::NotReported => "NotReported",
        }
    }
}

impl core::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for TcbStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown TCB status '{s}' (known: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in TeeKind::ALL {
            assert_eq!(k.as_str().parse::<TeeKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        for s in TcbStatus::ALL {
            assert_eq!(s.as_str().parse::<TcbStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(
            "sgx2"
                .parse::<TeeKind>()
                .unwrap_err()
                .contains("known: simulated, sgx")
        );
        assert_eq!("nitro".parse::<TeeKind>().unwrap(), TeeKind::Nitro);
        assert_eq!(
            serde_json::from_str::<TeeKind>("\"nitro\"").unwrap(),
            TeeKind::Nitro
        );
    }
}
