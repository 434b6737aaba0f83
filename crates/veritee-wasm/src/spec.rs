//! What a task is: compartments, their inputs, the security context, the limits;
//! and what running it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::error::WasmError;
use crate::input::Input;

/// Longest compartment or input name accepted.
pub const MAX_NAME_LEN: usize = 64;
/// Most compartments in one task.
pub const MAX_COMPARTMENTS: usize = 64;
/// Most inputs in one compartment.
pub const MAX_INPUTS: usize = 256;
/// Default entry point exported by a task module.
pub const DEFAULT_ENTRY: &str = "run";
/// Largest linear memory a 32-bit WebAssembly module can address.
pub const MAX_WASM32_MEMORY: u64 = 1 << 32;

/// A task: the compartmentalization (which code runs over which data) and the
/// security context (who may read what, whose output may leave).
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// Compartments, run one after the other in this order.
    pub compartments: Vec<CompartmentSpec>,
    /// Access rules between compartments and which outputs are released.
    pub security: SecurityContext,
}

/// One compartment: one module instantiated in its own store, with its own inputs.
#[derive(Clone)]
pub struct CompartmentSpec {
    /// Unique name: ASCII letters, digits, `_` and `-`, at most [`MAX_NAME_LEN`].
    pub name: String,
    /// The module: a WebAssembly binary (starts with `\0asm`) or WAT text.
    pub module: Arc<[u8]>,
    /// Decrypted inputs, addressed by the guest by index in this order.
    pub inputs: Vec<Input>,
    /// Exported function of type `() -> i32` to call; its result is the exit code.
    pub entry: String,
    /// The stored keys it may use through `veritee.key_op`, held by the node.
    pub keys: Option<Arc<dyn crate::keys::KeyService>>,
}

impl std::fmt::Debug for CompartmentSpec {
    // Never prints module bytes (the client's code) nor input bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompartmentSpec")
            .field("name", &self.name)
            .field("module_len", &self.module.len())
            .field("inputs", &self.inputs)
            .field("entry", &self.entry)
            .field("keys", &self.keys.as_ref().map_or(0, |k| k.count()))
            .finish()
    }
}

/// The security context of a task: for every compartment, whose inputs it may read
/// and whether its own output is released.
///
/// Semantics, enforced by the engine:
/// - A compartment always reads its own inputs. It reads another compartment's
///   inputs only if that compartment is listed in its [`Access::may_read`]; any other
///   attempt stops the task with [`WasmError::AccessDenied`]. A denied compartment's
///   inputs are not even placed in the reader's store.
/// - Compartments never see each other's outputs, memories or code.
/// - **Aggregate-only release.** A compartment with `releases: false` (a data owner)
///   has its output and log dropped inside the engine: its result carries only its
///   exit code and fuel used. Its data can leave the enclave only through the output
///   of a compartment with `releases: true` that is allowed to read it (the
///   aggregator). What the aggregator computes is its code's business: the parties
///   agree on that code (its hash is part of the task), and the engine guarantees
///   that no other code sees their raw data and that nothing else is released.
///   The exit code, the fuel used and the task's duration still leave: small side
///   channels chosen by (or measurable on) code the parties agreed to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityContext {
    /// Access rules keyed by compartment name; every compartment must have one.
    pub compartments: BTreeMap<String, Access>,
}

/// The access rule of one compartment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Other compartments whose inputs this compartment may read.
    pub may_read: BTreeSet<String>,
    /// Whether this compartment's output and log leave the enclave. Data owners in
    /// an aggregate-only task are `false`.
    pub releases: bool,
}

impl SecurityContext {
    /// Checks the context against the task's compartment names: one rule per
    /// compartment and none for unknown ones, `may_read` names existing other
    /// compartments, and at least one compartment releases its output.
    pub fn validate(&self, names: &[&str]) -> Result<(), WasmError> {
        let known: BTreeSet<&str> = names.iter().copied().collect();
        for name in names {
            if !self.compartments.contains_key(*name) {
                return Err(WasmError::InvalidTask(format!(
                    "the security context has no rule for compartment {name} (say whether it releases its output)"
                )));
            }
        }
        for (name, access) in &self.compartments {
            if !known.contains(name.as_str()) {
                return Err(WasmError::InvalidTask(format!(
                    "the security context names compartment {name}, which the task does not have"
                )));
            }
            for target in &access.may_read {
                if target == name {
                    return Err(WasmError::InvalidTask(format!(
                        "compartment {name} lists itself in may_read (own inputs are always readable)"
                    )));
                }
                if !known.contains(target.as_str()) {
                    return Err(WasmError::InvalidTask(format!(
                        "compartment {name} may_read names compartment {target}, which the task does not have"
                    )));
                }
            }
        }
        if !self.compartments.values().any(|a| a.releases) {
            return Err(WasmError::InvalidTask(
                "no compartment releases its output, so the task would return nothing".into(),
            ));
        }
        Ok(())
    }

    /// Whether `reader` may read `owner`'s inputs.
    pub fn may_read(&self, reader: &str, owner: &str) -> bool {
        reader == owner
            || self
                .compartments
                .get(reader)
                .is_some_and(|a| a.may_read.contains(owner))
    }

    /// Whether `compartment`'s output is released.
    pub fn releases(&self, compartment: &str) -> bool {
        self.compartments
            .get(compartment)
            .is_some_and(|a| a.releases)
    }
}

/// Checks a compartment or input name.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), WasmError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(WasmError::InvalidTask(format!(
            "{kind} name {name:?} must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(WasmError::InvalidTask(format!(
            "{kind} name {name:?} may contain only ASCII letters, digits, '_', '-' and '.'"
        )));
    }
    Ok(())
}

impl TaskSpec {
    /// Checks names (unique, well-formed), counts and the security context.
    pub fn validate(&self) -> Result<(), WasmError> {
        if self.compartments.is_empty() {
            return Err(WasmError::InvalidTask("the task has no compartment".into()));
        }
        if self.compartments.len() > MAX_COMPARTMENTS {
            return Err(WasmError::InvalidTask(format!(
                "the task has {} compartments; at most {MAX_COMPARTMENTS} are allowed",
                self.compartments.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for c in &self.compartments {
            check_name("compartment", &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(WasmError::InvalidTask(format!(
                    "compartment name {} is used twice",
                    c.name
                )));
            }
            if c.entry.is_empty() {
                return Err(WasmError::InvalidTask(format!(
                    "compartment {} has an empty entry point name",
                    c.name
                )));
            }
            if c.inputs.len() > MAX_INPUTS {
                return Err(WasmError::InvalidTask(format!(
                    "compartment {} has {} inputs; at most {MAX_INPUTS} are allowed",
                    c.name,
                    c.inputs.len()
                )));
            }
            let mut inputs = BTreeSet::new();
            for i in &c.inputs {
                check_name("input", &i.name)?;
                if !inputs.insert(i.name.as_str()) {
                    return Err(WasmError::InvalidTask(format!(
                        "compartment {} has two inputs named {}",
                        c.name, i.name
                    )));
                }
            }
        }
        let names: Vec<&str> = self.compartments.iter().map(|c| c.name.as_str()).collect();
        self.security.validate(&names)
    }
}

/// Resource limits applied to every compartment of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskLimits {
    /// Fuel per compartment (about one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Largest linear memory per compartment, in bytes (at most 4 GiB).
    pub memory_bytes: u64,
    /// Most table elements per compartment.
    pub table_elements: u64,
    /// Most output bytes per compartment (`veritee.output_write`); exceeding it stops
    /// the task.
    pub output_bytes: usize,
    /// Most log bytes kept per compartment (`veritee.log`); the rest is dropped and the
    /// result says the log was truncated.
    pub log_bytes: usize,
    /// Wall-clock time for the whole task.
    pub timeout: Duration,
}

impl Default for TaskLimits {
    /// 10 billion fuel, 256 MiB memory, 10 000 table elements, 16 MiB output,
    /// 64 KiB log, 60 s.
    fn default() -> Self {
        TaskLimits {
            fuel: 10_000_000_000,
            memory_bytes: 256 << 20,
            table_elements: 10_000,
            output_bytes: 16 << 20,
            log_bytes: 64 << 10,
            timeout: Duration::from_secs(60),
        }
    }
}

impl TaskLimits {
    /// Checks that the limits are usable.
    pub fn validate(&self) -> Result<(), WasmError> {
        if self.fuel == 0 {
            return Err(WasmError::InvalidTask("the fuel limit is zero".into()));
        }
        if self.memory_bytes > MAX_WASM32_MEMORY {
            return Err(WasmError::InvalidTask(format!(
                "the memory limit {} exceeds the 4 GiB a 32-bit module can address",
                self.memory_bytes
            )));
        }
        if self.timeout.is_zero() {
            return Err(WasmError::InvalidTask("the timeout is zero".into()));
        }
        Ok(())
    }
}

/// What one compartment returned.
#[derive(Clone, PartialEq, Eq)]
pub struct CompartmentResult {
    /// Compartment name.
    pub name: String,
    /// Value returned by the entry point.
    pub exit_code: i32,
    /// Output bytes, or `None` when the security context does not release this
    /// compartment's output (they were dropped inside the engine).
    pub output: Option<Vec<u8>>,
    /// Log text, or `None` when not released (same rule as `output`).
    pub log: Option<Vec<u8>>,
    /// Whether log bytes were dropped for exceeding [`TaskLimits::log_bytes`].
    pub log_truncated: bool,
    /// Fuel consumed, instantiation included.
    pub fuel_used: u64,
}

impl std::fmt::Debug for CompartmentResult {
    // Prints sizes, not contents: results are confidential until encrypted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompartmentResult")
            .field("name", &self.name)
            .field("exit_code", &self.exit_code)
            .field("output_len", &self.output.as_ref().map(Vec::len))
            .field("log_len", &self.log.as_ref().map(Vec::len))
            .field("log_truncated", &self.log_truncated)
            .field("fuel_used", &self.fuel_used)
            .finish()
    }
}

/// The results of a task, one per compartment in task order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Per-compartment results, in the order of [`TaskSpec::compartments`].
    pub compartments: Vec<CompartmentResult>,
    /// Wall-clock time the task took.
    pub elapsed: Duration,
}

impl TaskOutcome {
    /// The result of the compartment called `name`.
    pub fn get(&self, name: &str) -> Option<&CompartmentResult> {
        self.compartments.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(rules: &[(&str, &[&str], bool)]) -> SecurityContext {
        SecurityContext {
            compartments: rules
                .iter()
                .map(|(n, r, rel)| {
                    (
                        n.to_string(),
                        Access {
                            may_read: r.iter().map(|s| s.to_string()).collect(),
                            releases: *rel,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn security_context_validation() {
        let names = ["a", "b", "agg"];
        let good = ctx(&[
            ("a", &[], false),
            ("b", &[], false),
            ("agg", &["a", "b"], true),
        ]);
        good.validate(&names).unwrap();
        assert!(good.may_read("agg", "a"));
        assert!(good.may_read("a", "a"));
        assert!(!good.may_read("a", "b"));
        assert!(!good.releases("a"));
        assert!(good.releases("agg"));

        let missing = ctx(&[("a", &[], false), ("agg", &["a", "b"], true)]);
        let e = missing.validate(&names).unwrap_err().to_string();
        assert!(e.contains("no rule for compartment b"), "{e}");

        let unknown = ctx(&[("a", &[], false), ("b", &[], false), ("agg", &["c"], true)]);
        let e = unknown.validate(&names).unwrap_err().to_string();
        assert!(e.contains("names compartment c"), "{e}");

        let silent = ctx(&[("a", &[], false), ("b", &[], false), ("agg", &[], false)]);
        let e = silent.validate(&names).unwrap_err().to_string();
        assert!(e.contains("no compartment releases"), "{e}");

        let selfread = ctx(&[("a", &["a"], true), ("b", &[], false), ("agg", &[], false)]);
        assert!(selfread.validate(&names).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("compartment", "owner_a-1.x").is_ok());
        assert!(check_name("compartment", "").is_err());
        assert!(check_name("compartment", "a b").is_err());
        assert!(check_name("compartment", &"x".repeat(65)).is_err());
    }
}
