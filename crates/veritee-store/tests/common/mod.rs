//! Process plumbing of the crash-durability tests, shared by both backends' tests.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the child may take to print its next ack before the test gives up.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs test `child_test` of this very test binary in a child process with `env` set,
/// counts the `acked N` lines it prints, kills it with SIGKILL once `kill_after` have
/// arrived, and returns how many writes it acknowledged in all (acks already in the
/// pipe when it died included).
pub fn run_and_kill(child_test: &str, env: &[(&str, &str)], kill_after: u64) -> u64 {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut acked = 0u64;
    let count = |line: String, acked: &mut u64| {
        // libtest's "test NAME ... " has no newline, so the first ack shares its line.
        if let Some((_, n)) = line.split_once("acked ") {
            let n: u64 = n.trim().parse().expect("ack number");
            assert_eq!(n, *acked, "acks arrive in order");
            *acked = n + 1;
        }
    };
    while acked < kill_after {
        match lines.recv_timeout(ACK_TIMEOUT) {
            Ok(line) => count(line, &mut acked),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the writer stopped after {acked} acks ({e:?}); exit {status:?}");
            }
        }
    }
    child.kill().expect("SIGKILL the writer"); // Child::kill is SIGKILL on Unix
    let status = child.wait().expect("reap the writer");
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer died of SIGKILL: {status:?}"
    );
    // The child is gone: drain what it printed before it died.
    while let Ok(line) = lines.recv() {
        count(line, &mut acked);
    }
    reader.join().expect("reader thread");
    acked
}

/// A multi-threaded runtime for the crash tests, which are plain `#[test]`s.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
