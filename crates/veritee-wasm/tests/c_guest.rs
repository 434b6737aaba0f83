//! The C example (examples/tasks/grep-count-c), compiled with clang for wasm32
//! without libc, then loaded from its manifest and run. Skipped, saying so, when
//! clang or wasm-ld (Debian: `apt-get install clang lld`) is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use veritee_wasm::{TaskLimits, TaskManifest, run_task};

fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn grep_count_in_c() {
    if !available("clang") || !available("wasm-ld") {
        eprintln!("skipped: clang and wasm-ld are needed to build the C example");
        return;
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks/grep-count-c");
    // Build in a scratch copy of the example, never in the source tree.
    let dir = std::env::temp_dir().join(format!("veritee-wasm-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "task.toml",
        "grepcount.c",
        "access.log",
        "term.txt",
        "expected.txt",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let out = Command::new("clang")
        .args([
            "--target=wasm32",
            "-O2",
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,--export=run",
            "-o",
        ])
        .arg(dir.join("grepcount.wasm"))
        .arg(dir.join("grepcount.c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let loaded = TaskManifest::load(&dir.join("task.toml")).unwrap();
    let spec = loaded.to_spec().unwrap();
    assert!(spec.compartments[0].module.starts_with(b"\0asm"));
    let result = run_task(&spec, &loaded.limits(&TaskLimits::default())).unwrap();
    let grep = result.get("grep").unwrap();
    assert_eq!(grep.exit_code, 0);
    let expected = std::fs::read(Path::new(&dir).join("expected.txt")).unwrap();
    assert_eq!(grep.output.as_deref(), Some(&expected[..]));
    assert_eq!(grep.output.as_deref(), Some(&b"3\n"[..]));
    std::fs::remove_dir_all(&dir).unwrap();
}
