//! The task manifest (`task.toml`) a client writes, and its loader.
//!
//! ```toml
//! name = "two-owner-statistic"          # required: 1-64 of [A-Za-z0-9_.-]
//! description = "Mean salary of two companies"   # optional
//!
//! [limits]                              # optional; each field optional
//! fuel = 10_000_000_000                 # per compartment
//! memory_bytes = 268435456              # per compartment, at most 4 GiB
//! table_elements = 10000                # per compartment
//! output_bytes = 16777216               # per compartment
//! log_bytes = 65536                     # per compartment
//! timeout_ms = 60000                    # whole task
//!
//! [[compartment]]                       # one or more, run in this order
//! name = "owner_a"                      # required, unique
//! module = "owner.wat"                  # required: .wat text or .wasm binary
//! entry = "run"                         # optional, default "run"
//! inputs = [{ name = "salaries", file = "data/owner_a.csv" }]   # optional
//! keys = ["payments/card-key"]          # optional, at most 8: stored keys on the node
//!                                       # (PARTITION/KEY_ID, OWNER_TENANT_ID/PARTITION/KEY_ID
//!                                       # or deployed/NAME) used by index via `key_op`
//!
//! [security.owner_a]                    # one per compartment, required
//! releases = false                      # required: is its output released?
//! may_read = []                         # optional: compartments whose inputs it reads
//! ```
//!
//! Unknown keys are errors. Files are relative to the manifest's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::input::{FileInput, Input};
use crate::spec::{
    Access, CompartmentSpec, DEFAULT_ENTRY, SecurityContext, TaskLimits, TaskSpec, check_name,
};

/// Why a manifest could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file named by (or being) the manifest could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML for this schema.
    #[error("{origin}: {message}")]
    Parse {
        /// The manifest file, or `<string>`.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The manifest parses but is inconsistent.
    #[error("{origin}: {message}")]
    Invalid {
        /// The manifest file, or `<string>`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The parsed `task.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskManifest {
    /// Task name.
    pub name: String,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Limits requested by the task (the node may impose lower ones).
    #[serde(default)]
    pub limits: LimitsManifest,
    /// Compartments, in run order.
    #[serde(rename = "compartment", default)]
    pub compartments: Vec<CompartmentManifest>,
    /// Security rules by compartment name.
    #[serde(default)]
    pub security: BTreeMap<String, AccessManifest>,
}

/// `[limits]`: each field overrides the default it names.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsManifest {
    /// [`TaskLimits::fuel`].
    pub fuel: Option<u64>,
    /// [`TaskLimits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// [`TaskLimits::table_elements`].
    pub table_elements: Option<u64>,
    /// [`TaskLimits::output_bytes`].
    pub output_bytes: Option<usize>,
    /// [`TaskLimits::log_bytes`].
    pub log_bytes: Option<usize>,
    /// [`TaskLimits::timeout`], in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// `[[compartment]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CompartmentManifest {
    /// Unique compartment name.
    pub name: String,
    /// Module file (WAT or wasm), relative to the manifest.
    pub module: PathBuf,
    /// Entry point, `run` when absent.
    #[serde(default)]
    pub entry: Option<String>,
    /// Input files, addressed by the guest by index in this order.
    #[serde(default)]
    pub inputs: Vec<InputManifest>,
    /// Stored keys on the node the compartment uses through `veritee.key_op`, by
    /// index in this order (the node checks them: see `CompartmentContext::keys` of
    /// the task protocol). A task run locally has none.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// One entry of a compartment's `inputs`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputManifest {
    /// Input name, unique in its compartment.
    pub name: String,
    /// Input file, relative to the manifest.
    pub file: PathBuf,
}

/// `[security.NAME]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessManifest {
    /// Whether the compartment's output and log are released (required, so that
    /// nobody releases a data owner's output by omission).
    pub releases: bool,
    /// Compartments whose inputs this one may read.
    #[serde(default)]
    pub may_read: Vec<String>,
}

impl TaskManifest {
    /// Parses and validates manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ManifestError> {
        let m: TaskManifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        m.validate().map_err(|message| ManifestError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(m)
    }

    /// Reads, parses and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let manifest = TaskManifest::parse(&text, &path.display().to_string())?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(LoadedManifest {
            manifest,
            base_dir,
            origin: path.display().to_string(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        let plain = |e: crate::WasmError| match e {
            crate::WasmError::InvalidTask(m) => m,
            other => other.to_string(),
        };
        check_name("task", &self.name).map_err(plain)?;
        if self.compartments.is_empty() {
            return Err("the task has no [[compartment]]".into());
        }
        let mut names = BTreeSet::new();
        for c in &self.compartments {
            check_name("compartment", &c.name).map_err(plain)?;
            if !names.insert(c.name.as_str()) {
                return Err(format!("compartment name {} is used twice", c.name));
            }
            if c.module.as_os_str().is_empty() {
                return Err(format!("compartment {} has an empty module path", c.name));
            }
            if c.entry.as_deref() == Some("") {
                return Err(format!("compartment {} has an empty entry", c.name));
            }
            let mut inputs = BTreeSet::new();
            for i in &c.inputs {
                check_name("input", &i.name).map_err(plain)?;
                if !inputs.insert(i.name.as_str()) {
                    return Err(format!(
                        "compartment {} has two inputs named {}",
                        c.name, i.name
                    ));
                }
            }
        }
        let names: Vec<&str> = self.compartments.iter().map(|c| c.name.as_str()).collect();
        self.security_context().validate(&names).map_err(plain)?;
        self.limits(&TaskLimits::default())
            .validate()
            .map_err(plain)
    }

    /// The security context the manifest declares.
    pub fn security_context(&self) -> SecurityContext {
        SecurityContext {
            compartments: self
                .security
                .iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Access {
                            may_read: a.may_read.iter().cloned().collect(),
                            releases: a.releases,
                        },
                    )
                })
                .collect(),
        }
    }

    /// `defaults` with the manifest's `[limits]` applied.
    pub fn limits(&self, defaults: &TaskLimits) -> TaskLimits {
        let l = &self.limits;
        TaskLimits {
            fuel: l.fuel.unwrap_or(defaults.fuel),
            memory_bytes: l.memory_bytes.unwrap_or(defaults.memory_bytes),
            table_elements: l.table_elements.unwrap_or(defaults.table_elements),
            output_bytes: l.output_bytes.unwrap_or(defaults.output_bytes),
            log_bytes: l.log_bytes.unwrap_or(defaults.log_bytes),
            timeout: l
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.timeout),
        }
    }
}

/// A manifest read from a file, with the directory its paths are relative to.
#[derive(Clone, Debug)]
pub struct LoadedManifest {
    /// The parsed, validated manifest.
    pub manifest: TaskManifest,
    /// Directory of the manifest file.
    pub base_dir: PathBuf,
    origin: String,
}

impl LoadedManifest {
    /// `path` resolved against the manifest's directory (absolute paths unchanged).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Builds the task: reads every module into memory and opens every input as a
    /// [`FileInput`] (read on demand, never loaded whole).
    pub fn to_spec(&self) -> Result<TaskSpec, ManifestError> {
        let mut compartments = Vec::with_capacity(self.manifest.compartments.len());
        for c in &self.manifest.compartments {
            let module_path = self.resolve(&c.module);
            let module = std::fs::read(&module_path).map_err(|source| ManifestError::Io {
                path: module_path.clone(),
                source,
            })?;
            let mut inputs = Vec::with_capacity(c.inputs.len());
            for i in &c.inputs {
                let path = self.resolve(&i.file);
                let file =
                    FileInput::open(&path).map_err(|source| ManifestError::Io { path, source })?;
                inputs.push(Input::from_source(i.name.clone(), Arc::new(file)));
            }
            compartments.push(CompartmentSpec {
                name: c.name.clone(),
                module: module.into(),
                inputs,
                entry: c.entry.clone().unwrap_or_else(|| DEFAULT_ENTRY.to_owned()),
                keys: None,
            });
        }
        let spec = TaskSpec {
            compartments,
            security: self.manifest.security_context(),
        };
        spec.validate().map_err(|e| ManifestError::Invalid {
            origin: self.origin.clone(),
            message: e.to_string(),
        })?;
        Ok(spec)
    }

    /// The task's limits: `defaults` with the manifest's `[limits]` applied.
    pub fn limits(&self, defaults: &TaskLimits) -> TaskLimits {
        self.manifest.limits(defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[limits]
fuel = 1000
[[compartment]]
name = "a"
module = "a.wat"
inputs = [{ name = "x", file = "x.txt" }]
[[compartment]]
name = "agg"
module = "agg.wat"
entry = "main"
keys = ["payments/card-key", "deployed/data"]
[security.a]
releases = false
[security.agg]
releases = true
may_read = ["a"]
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = TaskManifest::parse(GOOD, "t.toml").unwrap();
        assert_eq!(m.compartments.len(), 2);
        assert_eq!(m.limits(&TaskLimits::default()).fuel, 1000);
        let ctx = m.security_context();
        assert!(ctx.may_read("agg", "a"));
        assert!(!ctx.releases("a"));
        assert!(m.compartments[0].keys.is_empty());
        assert_eq!(
            m.compartments[1].keys,
            ["payments/card-key", "deployed/data"]
        );
    }

    fn err(text: &str) -> String {
        TaskManifest::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = err(&GOOD.replace("entry = \"main\"", "entry = \"main\"\nwasi = true"));
        assert!(e.contains("unknown field `wasi`"), "{e}");
        let e = err(&GOOD.replace("releases = false", "releases = false\nreads = []"));
        assert!(e.contains("unknown field `reads`"), "{e}");
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        let e = err(&GOOD.replace("[security.a]\nreleases = false\n", ""));
        assert!(e.contains("no rule for compartment a"), "{e}");
        let e = err(&GOOD.replace("may_read = [\"a\"]", "may_read = [\"b\"]"));
        assert!(e.contains("compartment b"), "{e}");
        let e = err(&GOOD.replace("name = \"agg\"", "name = \"a\""));
        assert!(e.contains("used twice"), "{e}");
        let e = err(&GOOD.replace("[security.a]\nreleases = false", "[security.a]"));
        assert!(e.contains("missing field `releases`"), "{e}");
        let e = err(&GOOD.replace("fuel = 1000", "memory_bytes = 8589934592"));
        assert!(e.contains("4 GiB"), "{e}");
        let e = err("name = \"t\"\n");
        assert!(e.contains("no [[compartment]]"), "{e}");
    }
}
