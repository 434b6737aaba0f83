//! The plaintext inside a workload's encryption: the integrity table (kind, name,
//! SHA-256 and length of every component), then the components' bytes in its order.

use crate::error::WorkloadError;
use crate::layout::{MAX_COMPONENTS, MAX_NAME_LEN, MAX_PAYLOAD_LEN, Reader};

/// What a component is to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// A WebAssembly module the target runs.
    Module,
    /// Configuration the modules read.
    Configuration,
    /// A customer secret (`CD1`..`CDn`), released to the modules only after the launch
    /// check passed.
    Secret,
}

impl ComponentKind {
    fn code(self) -> u8 {
        match self {
            ComponentKind::Module => 1,
            ComponentKind::Configuration => 2,
            ComponentKind::Secret => 3,
        }
    }

    fn from_code(code: u8) -> Result<Self, WorkloadError> {
        match code {
            1 => Ok(ComponentKind::Module),
            2 => Ok(ComponentKind::Configuration),
            3 => Ok(ComponentKind::Secret),
            other => Err(WorkloadError::Malformed(format!(
                "component kind {other} is not one of 1 (module), 2 (configuration), 3 (secret)"
            ))),
        }
    }

    /// The kind's name, as `workload inspect` and errors print it.
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Module => "module",
            ComponentKind::Configuration => "configuration",
            ComponentKind::Secret => "secret",
        }
    }
}

/// A component to build into a workload.
#[derive(Clone, Copy)]
pub struct ComponentSpec<'a> {
    /// Its kind.
    pub kind: ComponentKind,
    /// Its name: 1 to 64 of `A-Z a-z 0-9 . _ -`, unique within the workload.
    pub name: &'a str,
    /// Its bytes.
    pub data: &'a [u8],
}

impl core::fmt::Debug for ComponentSpec<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ComponentSpec")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

/// A component's entry in the integrity table, and where its bytes are.
#[derive(Clone, PartialEq, Eq)]
pub struct Component {
    /// Its kind.
    pub kind: ComponentKind,
    /// Its name.
    pub name: String,
    /// The SHA-256 of its bytes, as the owner built it.
    pub sha256: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
    /// Where its bytes start in the plaintext.
    pub(crate) offset: usize,
}

impl core::fmt::Debug for Component {
    // Not the hash: a low-entropy secret (a PIN, a passphrase) is found from its hash.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Component")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), WorkloadError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(allowed) {
        return Err(WorkloadError::Invalid(format!(
            "component name {name:?} must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// Checks a set of components the way a target will read them back.
pub(crate) fn check_specs(specs: &[ComponentSpec<'_>]) -> Result<(), WorkloadError> {
    if specs.is_empty() || specs.len() > MAX_COMPONENTS {
        return Err(WorkloadError::Invalid(format!(
            "a workload holds 1 to {MAX_COMPONENTS} components, not {}",
            specs.len()
        )));
    }
    if !specs.iter().any(|c| c.kind == ComponentKind::Module) {
        return Err(WorkloadError::Invalid(
            "a workload needs at least one module".into(),
        ));
    }
    for (i, spec) in specs.iter().enumerate() {
        check_name(spec.name)?;
        if specs[..i].iter().any(|other| other.name == spec.name) {
            return Err(WorkloadError::Invalid(format!(
                "component name {:?} is used twice",
                spec.name
            )));
        }
    }
    Ok(())
}

/// The length of the plaintext for `specs`.
pub(crate) fn plaintext_len(specs: &[ComponentSpec<'_>]) -> usize {
    2 + specs
        .iter()
        .map(|c| 1 + 1 + c.name.len() + 32 + 8 + c.data.len())
        .sum::<usize>()
}

/// Writes the plaintext for `specs` into `out` (cleared first; the caller gives it a
/// zeroizing home).
pub(crate) fn write_plaintext(specs: &[ComponentSpec<'_>], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(specs.len() as u16).to_be_bytes());
    for spec in specs {
        out.push(spec.kind.code());
        out.push(spec.name.len() as u8);
        out.extend_from_slice(spec.name.as_bytes());
        out.extend_from_slice(&veritee_crypto::digest::sha256(spec.data));
        out.extend_from_slice(&(spec.data.len() as u64).to_be_bytes());
    }
    for spec in specs {
        out.extend_from_slice(spec.data);
    }
}

/// Reads the integrity table at the front of `plaintext` and checks that the lengths
/// it names fill the rest exactly (the hashes are checked by the caller).
pub fn parse_table(plaintext: &[u8]) -> Result<Vec<Component>, WorkloadError> {
    let mut r = Reader::new(plaintext, "integrity table");
    let count = r.u16()? as usize;
    if count == 0 || count > MAX_COMPONENTS {
        return Err(WorkloadError::Malformed(format!(
            "the integrity table lists {count} components (1 to {MAX_COMPONENTS})"
        )));
    }
    let mut table = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for _ in 0..count {
        let kind = ComponentKind::from_code(r.u8()?)?;
        let name_len = r.u8()? as usize;
        let name = core::str::from_utf8(r.take(name_len)?)
            .map_err(|_| WorkloadError::Malformed("a component name is not UTF-8".into()))?
            .to_owned();
        check_name(&name).map_err(|e| WorkloadError::Malformed(e.to_string()))?;
        if table.iter().any(|c: &Component| c.name == name) {
            return Err(WorkloadError::Malformed(format!(
                "component name {name:?} is listed twice"
            )));
        }
        let sha256 = r.array::<32>()?;
        let len = r.u64()?;
        total = total.saturating_add(len);
        if total > MAX_PAYLOAD_LEN {
            return Err(WorkloadError::TooLarge {
                what: "component lengths",
                actual: total,
                maximum: MAX_PAYLOAD_LEN,
            });
        }
        table.push(Component {
            kind,
            name,
            sha256,
            len,
            offset: 0,
        });
    }
    let start = plaintext.len() - r.rest().len();
    let remaining = r.rest().len() as u64;
    if remaining != total {
        return Err(WorkloadError::Malformed(format!(
            "the integrity table lists {total} bytes of components, the payload holds {remaining}"
        )));
    }
    let mut offset = start;
    for component in &mut table {
        component.offset = offset;
        offset += component.len as usize;
    }
    if !table.iter().any(|c| c.kind == ComponentKind::Module) {
        return Err(WorkloadError::Malformed(
            "the workload has no module".into(),
        ));
    }
    Ok(table)
}
