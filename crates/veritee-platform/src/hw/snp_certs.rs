//! The SEV-SNP certificate table that configfs-tsm returns in `auxblob`.
//!
//! The host (untrusted) supplies it, so it is parsed as hostile input; the
//! certificates themselves are checked by the verifier's chain validation. Layout, from
//! the GHCB specification (AMD 56421) section 4.1.8.1, MSG_REPORT_REQ:
//!
//! ```text
//! entries, each 24 bytes, until one that is all zero:
//! offset  size  field
//! 0x00      16  GUID naming the certificate (RFC 4122 byte order, as the string reads)
//! 0x10       4  offset of the certificate from the start of the table (u32 LE)
//! 0x14       4  length of the certificate (u32 LE)
//! ```

use crate::PlatformError;

/// Length of one table entry.
pub const ENTRY_LEN: usize = 24;
/// Largest table accepted (configfs-tsm's auxblob limit).
pub const TABLE_MAX: usize = super::tsm::OUTBLOB_MAX;

const _: () = assert!(ENTRY_LEN == 16 + 4 + 4);

/// Which certificate an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Versioned Chip Endorsement Key certificate (63da758d-e664-4564-adc5-f4b93be8accd).
    Vcek,
    /// Versioned Loaded Endorsement Key certificate (a8074bc2-a25a-483e-aae6-39c045a0b8a1).
    Vlek,
    /// AMD SEV Key (4ab7b379-bbac-4fe4-a02f-05aef327c782).
    Ask,
    /// AMD Root Key (c0b406a4-a803-4952-9743-3fb6014cd0ae).
    Ark,
    /// Another GUID.
    Other([u8; 16]),
}

const VCEK: [u8; 16] = guid(
    0x63da758d,
    0xe664,
    0x4564,
    [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd],
);
const VLEK: [u8; 16] = guid(
    0xa8074bc2,
    0xa25a,
    0x483e,
    [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1],
);
const ASK: [u8; 16] = guid(
    0x4ab7b379,
    0xbbac,
    0x4fe4,
    [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82],
);
const ARK: [u8; 16] = guid(
    0xc0b406a4,
    0xa803,
    0x4952,
    [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae],
);

/// A GUID's 16 bytes in the order its string form reads.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

impl CertKind {
    /// The kind a GUID names.
    pub fn from_guid(bytes: [u8; 16]) -> Self {
        match bytes {
            VCEK => Self::Vcek,
            VLEK => Self::Vlek,
            ASK => Self::Ask,
            ARK => Self::Ark,
            other => Self::Other(other),
        }
    }

    /// The GUID's 16 bytes as they appear in the table.
    pub fn guid(self) -> [u8; 16] {
        match self {
            Self::Vcek => VCEK,
            Self::Vlek => VLEK,
            Self::Ask => ASK,
            Self::Ark => ARK,
            Self::Other(bytes) => bytes,
        }
    }
}

/// One certificate from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    /// What it is.
    pub kind: CertKind,
    /// Its bytes (DER for the AMD certificates).
    pub der: Vec<u8>,
}

fn bad(reason: impl core::fmt::Display) -> PlatformError {
    PlatformError::Format(veritee_attest::VerifyError::malformed(
        "SEV-SNP certificate table",
        reason,
    ))
}

/// Splits a certificate table into its certificates.
pub fn parse(table: &[u8]) -> Result<Vec<CertEntry>, PlatformError> {
    if table.len() > TABLE_MAX {
        return Err(PlatformError::Format(
            veritee_attest::VerifyError::TooLarge {
                what: "SEV-SNP certificate table".into(),
                size: table.len(),
                limit: TABLE_MAX,
            },
        ));
    }
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let raw = table.get(at..at + ENTRY_LEN).ok_or_else(|| {
            bad(format!(
                "entry at {at:#x} is cut off before the all-zero terminator"
            ))
        })?;
        if raw.iter().all(|&b| b == 0) {
            return Ok(entries);
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&raw[..16]);
        let offset = u32::from_le_bytes([raw[16], raw[17], raw[18], raw[19]]) as usize;
        let length = u32::from_le_bytes([raw[20], raw[21], raw[22], raw[23]]) as usize;
        let kind = CertKind::from_guid(guid);
        let der = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| {
                bad(format!(
                    "{kind:?} certificate at {offset:#x}, {length} bytes, lies outside the {}-byte table",
                    table.len()
                ))
            })?;
        if entries.iter().any(|e: &CertEntry| e.kind == kind) {
            return Err(bad(format!("{kind:?} appears twice")));
        }
        entries.push(CertEntry {
            kind,
            der: der.to_vec(),
        });
        at += ENTRY_LEN;
    }
}

/// Builds a table from certificates (the inverse of [`parse`]; for tests and tools).
pub fn build(entries: &[CertEntry]) -> Vec<u8> {
    let header = (entries.len() + 1) * ENTRY_LEN;
    let mut table = Vec::with_capacity(header + entries.iter().map(|e| e.der.len()).sum::<usize>());
    let mut offset = header;
    for entry in entries {
        table.extend_from_slice(&entry.kind.guid());
        table.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
        table.extend_from_slice(
            &u32::try_from(entry.der.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        offset += entry.der.len();
    }
    table.extend_from_slice(&[0u8; ENTRY_LEN]);
    for entry in entries {
        table.extend_from_slice(&entry.der);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_read_as_their_strings() {
        assert_eq!(hex::encode(VCEK), "63da758de6644564adc5f4b93be8accd");
        assert_eq!(hex::encode(ARK), "c0b406a4a803495297433fb6014cd0ae");
    }

    #[test]
    fn round_trip_and_hostile_tables() {
        let certs = vec![
            CertEntry {
                kind: CertKind::Vcek,
                der: vec![1, 2, 3],
            },
            CertEntry {
                kind: CertKind::Ask,
                der: vec![4; 10],
            },
            CertEntry {
                kind: CertKind::Other([7; 16]),
                der: vec![],
            },
        ];
        let table = build(&certs);
        assert_eq!(parse(&table).unwrap(), certs);
        // Cut anywhere: an error, never a panic.
        for cut in 0..table.len() {
            assert!(parse(&table[..cut]).is_err(), "cut {cut}");
        }
        // No terminator (the one entry points at itself).
        let mut unterminated = VCEK.to_vec();
        unterminated.extend_from_slice(&0u32.to_le_bytes());
        unterminated.extend_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        let err = parse(&unterminated).unwrap_err().to_string();
        assert!(err.contains("terminator"), "{err}");
        // Length beyond the table.
        let mut long = table.clone();
        long[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&long).unwrap_err().to_string().contains("outside"));
        // Duplicate kinds.
        let dup = build(&[certs[0].clone(), certs[0].clone()]);
        assert!(parse(&dup).unwrap_err().to_string().contains("twice"));
        assert!(parse(&[]).is_err());
        assert_eq!(parse(&[0; ENTRY_LEN]).unwrap(), vec![]);
    }
}
