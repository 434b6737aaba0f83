//! The tour's secure-fork part (flow 5): an application keeps its state between calls
//! on node B, then forks into node A's enclave; both run on from the same state, apart.

use super::Tour;
use super::fleet::Cli;
use anyhow::{Context, Result, ensure};

/// The example application, embedded so the demo runs from any directory.
const COUNTER: &str = include_str!("../../../examples/apps/counter.wat");
const NOTE: &str = "meet at the north gate at six";

/// `veritee app SUBCOMMAND --node NODE ...` with the tour's tenant and policy.
fn app(cli: &Cli, sub: &str, node: &str, rest: &[&str]) -> Result<String> {
    let mut args = vec![
        "app",
        sub,
        "--node",
        node,
        "--tenant",
        "tenant.key",
        "--policy",
        "policy.toml",
        "--trust-anchor",
        "vendor/root.pem",
    ];
    args.extend(rest);
    cli.run(&args)
}

/// Calls `count` on `name` at `node`; the counter it answers.
fn count(cli: &Cli, node: &str, name: &str, out: &str) -> Result<u64> {
    app(
        cli,
        "call",
        node,
        &["--name", name, "--export", "count", "--out", out],
    )?;
    let bytes = std::fs::read(cli.path(out)).context("the count was not written")?;
    let counter: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .context("the count is not 8 bytes")?;
    Ok(u64::from_le_bytes(counter))
}

pub(super) fn fork_tour(cli: &Cli, t: &mut Tour, a: &str, b: &str) -> Result<()> {
    t.step("Secure fork: an application on B keeps its state between calls");
    std::fs::write(cli.path("counter.wat"), COUNTER)?;
    std::fs::write(cli.path("note.txt"), NOTE)?;
    app(
        cli,
        "run",
        b,
        &[
            "--name",
            "counter",
            "--module",
            "counter.wat",
            "--memory-mib",
            "16",
        ],
    )?;
    for i in 1..=3 {
        let n = count(cli, b, "counter", &format!("b-count-{i}"))?;
        ensure!(n == i, "the counter said {n}, not {i}");
    }
    app(
        cli,
        "call",
        b,
        &[
            "--name", "counter", "--export", "remember", "--in", "note.txt",
        ],
    )?;
    println!("    the counter is at 3 and remembers a note, both in B's enclave memory");

    t.step("Fork it into A's enclave: the two attest to each other (same code), the state moves encrypted");
    app(
        cli,
        "fork",
        b,
        &["--name", "counter", "--peer", a, "--child", "counter-a"],
    )?;
    app(cli, "list", a, &[])?;
    app(
        cli,
        "call",
        a,
        &[
            "--name",
            "counter-a",
            "--export",
            "recall",
            "--out",
            "a-note.txt",
        ],
    )?;
    ensure!(
        std::fs::read_to_string(cli.path("a-note.txt"))? == NOTE,
        "the child does not remember the parent's note"
    );
    let on_a = count(cli, a, "counter-a", "a-count-4")?;
    let on_b = count(cli, b, "counter", "b-count-4")?;
    let again_b = count(cli, b, "counter", "b-count-5")?;
    ensure!(
        (on_a, on_b, again_b) == (4, 4, 5),
        "after the fork A said {on_a}, B {on_b} then {again_b}"
    );
    println!(
        "    A remembers the note and counts on from 3 to {on_a}; B goes to {again_b}: two instances, one past"
    );
    let stored = [
        super::files_under(&cli.path("a")),
        super::files_under(&cli.path("b")),
    ]
    .concat();
    ensure!(
        !super::contains(&stored, NOTE.as_bytes()),
        "the note reached a host's store"
    );
    println!("    neither host's store holds the note: the pages crossed the hosts encrypted");
    Ok(())
}
