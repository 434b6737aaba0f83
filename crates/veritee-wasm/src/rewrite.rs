//! Preparing an application's module so that its whole state can be snapshotted.
//!
//! An application's state is its linear memory, its mutable globals and its tables.
//! Memory is read through the `memory` export. Globals a module keeps to itself (the
//! stack pointer of every LLVM-built module is one) cannot be read from outside, so the
//! module is re-encoded with one extra export per mutable global, named
//! `__veritee_global_<index>`; nothing else in the module changes. The re-encoding goes
//! through `wasm-encoder`'s `Reencode`, never by editing bytes.
//!
//! Tables and segments are not carried by a snapshot: a child instantiates the same
//! module, which fills its tables from the same element segments. So a module that
//! could make them differ from that starting point is refused here, by naming the
//! instruction: `table.set`, `table.grow`, `table.fill`, `table.copy`, `table.init`,
//! `elem.drop` and `data.drop`. So are a second memory, mutable globals of reference
//! type (a function reference means nothing in another instance) and a module that
//! exports nothing (an application is called through its exports).

use wasm_encoder::reencode::{Reencode, utils};
use wasmparser::{Operator, Parser, Payload, ValType};

use crate::error::WasmError;

/// Prefix of the exports added for mutable globals; a module may not use it itself.
pub const GLOBAL_EXPORT_PREFIX: &str = "__veritee_global_";

/// Most mutable globals an application may have (a snapshot lists each).
pub const MAX_APP_GLOBALS: usize = 4096;

/// An application module ready to compile: the re-encoded bytes and the globals they
/// export for snapshots.
#[derive(Clone)]
pub struct PreparedModule {
    /// The module with one export per mutable global added.
    pub bytes: Vec<u8>,
    /// Indices (in the module's global index space) of the mutable globals, ascending.
    pub mutable_globals: Vec<u32>,
}

impl core::fmt::Debug for PreparedModule {
    /// The module is the tenant's code: only its size is shown.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedModule")
            .field("bytes", &self.bytes.len())
            .field("mutable_globals", &self.mutable_globals.len())
            .finish()
    }
}

/// The export name of mutable global `index`.
pub fn global_export(index: u32) -> String {
    format!("{GLOBAL_EXPORT_PREFIX}{index}")
}

/// Checks that `wasm` (binary or WAT text) can run as an application and adds the
/// exports its snapshots read.
pub fn prepare(app: &str, wasm: &[u8]) -> Result<PreparedModule, WasmError> {
    let refuse = |reason: String| WasmError::NotSnapshottable {
        compartment: app.to_owned(),
        reason,
    };
    let binary = wat::parse_bytes(wasm).map_err(|e| refuse(format!("not WebAssembly: {e}")))?;
    let facts = survey(&binary).map_err(refuse)?;
    let mut adder = GlobalExports {
        globals: &facts.mutable_globals,
    };
    let mut module = wasm_encoder::Module::new();
    adder
        .parse_core_module(&mut module, Parser::new(0), &binary)
        .map_err(|e| refuse(format!("cannot re-encode it: {e}")))?;
    Ok(PreparedModule {
        bytes: module.finish(),
        mutable_globals: facts.mutable_globals,
    })
}

/// What [`survey`] learns of a module.
struct Facts {
    mutable_globals: Vec<u32>,
}

/// Reads the whole module once, refusing what a snapshot cannot carry.
fn survey(binary: &[u8]) -> Result<Facts, String> {
    let mut imported_globals = 0u32;
    let mut memories = 0u32;
    let mut exports = 0usize;
    let mut mutable_globals = Vec::new();
    for payload in Parser::new(0).parse_all(binary) {
        match payload.map_err(|e| format!("malformed: {e}"))? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(|e| format!("malformed import: {e}"))?.ty {
                        wasmparser::TypeRef::Global(_) => imported_globals += 1,
                        wasmparser::TypeRef::Memory(_) => memories += 1,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => memories += reader.count(),
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.into_iter().enumerate() {
                    let ty = global.map_err(|e| format!("malformed global: {e}"))?.ty;
                    if !ty.mutable {
                        continue;
                    }
                    let index = imported_globals + i as u32;
                    if !matches!(
                        ty.content_type,
                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128
                    ) {
                        return Err(format!(
                            "mutable global {index} holds a reference, which a snapshot cannot carry"
                        ));
                    }
                    mutable_globals.push(index);
                }
                if mutable_globals.len() > MAX_APP_GLOBALS {
                    return Err(format!(
                        "{} mutable globals, at most {MAX_APP_GLOBALS} are snapshotted",
                        mutable_globals.len()
                    ));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("malformed export: {e}"))?;
                    if export.name.starts_with(GLOBAL_EXPORT_PREFIX) {
                        return Err(format!(
                            "export `{}` uses the prefix `{GLOBAL_EXPORT_PREFIX}`, reserved for snapshots",
                            export.name
                        ));
                    }
                    exports += 1;
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body
                    .get_operators_reader()
                    .map_err(|e| format!("malformed code: {e}"))?;
                while !ops.eof() {
                    let op = ops.read().map_err(|e| format!("malformed code: {e}"))?;
                    if let Some(name) = state_changing(&op) {
                        return Err(format!(
                            "it uses `{name}`, which changes tables or segments a snapshot does not carry"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if memories > 1 {
        return Err(format!(
            "it has {memories} memories; an application has at most one"
        ));
    }
    if exports == 0 {
        return Err("it exports nothing, so nothing can be called".to_owned());
    }
    Ok(Facts { mutable_globals })
}

/// The name of `op` if it changes a table or drops a segment.
fn state_changing(op: &Operator<'_>) -> Option<&'static str> {
    Some(match op {
        Operator::TableSet { .. } => "table.set",
        Operator::TableGrow { .. } => "table.grow",
        Operator::TableFill { .. } => "table.fill",
        Operator::TableCopy { .. } => "table.copy",
        Operator::TableInit { .. } => "table.init",
        Operator::ElemDrop { .. } => "elem.drop",
        Operator::DataDrop { .. } => "data.drop",
        _ => return None,
    })
}

/// Re-encodes a module as it is, adding an export per mutable global at the end of
/// its export section.
struct GlobalExports<'a> {
    globals: &'a [u32],
}

impl Reencode for GlobalExports<'_> {
    type Error = core::convert::Infallible;

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        utils::parse_export_section(self, exports, section)?;
        for &index in self.globals {
            exports.export(
                &global_export(index),
                wasm_encoder::ExportKind::Global,
                index,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(wat: &str) -> String {
        match prepare("app", wat.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("module was accepted"),
        }
    }

    #[test]
    fn internal_mutable_globals_are_exported_and_nothing_else_changes() {
        let wat = r#"(module
            (global $sp (mut i32) (i32.const 1024))
            (global $k i64 (i64.const 7))
            (global $f (mut f64) (f64.const 1.5))
            (memory (export "memory") 1)
            (func (export "bump") (result i32)
                global.get $sp i32.const 1 i32.add global.set $sp global.get $sp))"#;
        let prepared = prepare("app", wat.as_bytes()).unwrap();
        assert_eq!(prepared.mutable_globals, vec![0, 2]);
        let names: Vec<String> = Parser::new(0)
            .parse_all(&prepared.bytes)
            .filter_map(|p| match p.unwrap() {
                Payload::ExportSection(r) => Some(
                    r.into_iter()
                        .map(|e| e.unwrap().name.to_owned())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            names,
            ["memory", "bump", "__veritee_global_0", "__veritee_global_2"]
        );
        wasmparser::Validator::new()
            .validate_all(&prepared.bytes)
            .unwrap();
    }

    #[test]
    fn modules_changing_what_a_snapshot_does_not_carry_are_refused_by_name() {
        for (body, name) in [
            ("(table.set (i32.const 0) (ref.null func))", "table.set"),
            (
                "(drop (table.grow (ref.null func) (i32.const 1)))",
                "table.grow",
            ),
            (
                "(table.fill (i32.const 0) (ref.null func) (i32.const 1))",
                "table.fill",
            ),
            (
                "(table.copy (i32.const 0) (i32.const 0) (i32.const 0))",
                "table.copy",
            ),
            ("(elem.drop 0)", "elem.drop"),
            ("(data.drop 0)", "data.drop"),
        ] {
            let wat = format!(
                r#"(module (table 2 funcref) (memory (export "memory") 1)
                   (elem func $f) (data "x")
                   (func $f (export "f") {body}))"#
            );
            let why = refused(&wat);
            assert!(why.contains(name), "{name}: {why}");
        }
    }

    #[test]
    fn other_modules_an_application_cannot_be_are_refused_with_the_reason() {
        for (wat, reason) in [
            ("(module (memory 1))", "exports nothing"),
            (
                r#"(module (global (mut funcref) (ref.null func)) (func (export "f")))"#,
                "holds a reference",
            ),
            (
                r#"(module (global (export "__veritee_global_0") i32 (i32.const 0)))"#,
                "reserved for snapshots",
            ),
            (
                r#"(module (memory 1) (memory 1) (func (export "f")))"#,
                "2 memories",
            ),
        ] {
            let why = refused(wat);
            assert!(why.contains(reason), "{wat}: {why}");
        }
    }

    #[test]
    fn truncated_or_garbage_modules_are_refused_not_panicked_on() {
        let good =
            wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "f")))"#).unwrap();
        for cut in 0..good.len() {
            assert!(prepare("app", &good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(prepare("app", &[0xff; 64]).is_err());
    }
}
