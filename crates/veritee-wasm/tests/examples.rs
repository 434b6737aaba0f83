//! The example tasks under examples/tasks/, loaded from their manifests and run
//! through `run_task`, with their exact expected outputs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use veritee_wasm::{Input, TaskLimits, TaskManifest, TaskOutcome, TaskSpec, run_task};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tasks")
        .join(name)
}

fn load(name: &str) -> (TaskSpec, TaskLimits) {
    let loaded = TaskManifest::load(&example(name).join("task.toml")).unwrap();
    (
        loaded.to_spec().unwrap(),
        loaded.limits(&TaskLimits::default()),
    )
}

fn run_example(name: &str) -> TaskOutcome {
    let (spec, limits) = load(name);
    run_task(&spec, &limits).unwrap()
}

fn text(out: &TaskOutcome, compartment: &str) -> String {
    let c = out.get(compartment).unwrap();
    String::from_utf8(c.output.clone().expect("output is released")).unwrap()
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(example(name).join("expected.txt")).unwrap()
}

#[test]
fn word_frequency() {
    let out = run_example("word-frequency");
    let count = out.get("count").unwrap();
    assert_eq!(count.exit_code, 0);
    assert_eq!(
        text(&out, "count"),
        "the 10\nnot 3\nreads 3\ncounts 2\nenclave 2\nhost 2\nand 1\nciphertext 1\nclient 1\n\
         cloud 1\nelse 1\nnobody 1\nonly 1\noperator 1\nsees 1\ntext 1\nthem 1\nwords 1\n"
    );
    assert_eq!(text(&out, "count"), expected("word-frequency"));
}

/// The same counts, computed in Rust.
fn reference_counts(text: &[u8]) -> String {
    let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
    for word in text.split(|b| !b.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            let w: Vec<u8> = word.iter().take(256).map(u8::to_ascii_lowercase).collect();
            *counts.entry(w).or_default() += 1;
        }
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter()
        .map(|(w, n)| format!("{} {n}\n", String::from_utf8_lossy(w)))
        .collect()
}

/// Deterministic text of `len` bytes: many distinct words (the hash table grows
/// several times), mixed case, digits, punctuation, non-ASCII bytes, an overlong
/// word, and words straddling the guest's 64 KiB read boundaries.
fn generated_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let seps: [&[u8]; 6] = [b" ", b", ", b".\n", b" -- ", "\u{e9} ".as_bytes(), b"\t"];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 5000) as usize;
        let word = match x % 7 {
            0 => format!("Word{n}"),
            1 => format!("WORD{}", n % 50),
            2 => format!("w{}", n % 3),
            3 => "x".repeat(300),
            _ => format!("word{n}"),
        };
        out.extend_from_slice(word.as_bytes());
        out.extend_from_slice(seps[(x >> 20) as usize % seps.len()]);
    }
    out.truncate(len);
    out
}

#[test]
fn word_frequency_matches_a_reference_on_generated_text() {
    let (mut spec, limits) = load("word-frequency");
    let text = generated_text(600_000);
    spec.compartments[0].inputs = vec![Input::from_bytes("text", Arc::<[u8]>::from(text.clone()))];
    let out = run_task(&spec, &limits).unwrap();
    let got = out.get("count").unwrap().output.clone().unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), reference_counts(&text));
}

#[test]
fn word_frequency_of_an_empty_text_is_empty() {
    let (mut spec, limits) = load("word-frequency");
    spec.compartments[0].inputs = vec![Input::from_bytes("text", &b""[..])];
    let out = run_task(&spec, &limits).unwrap();
    assert_eq!(out.get("count").unwrap().output.as_deref(), Some(&b""[..]));
}

#[test]
fn two_owner_statistic_releases_only_the_aggregate() {
    let out = run_example("two-owner-statistic");
    assert_eq!(
        text(&out, "aggregate"),
        "count 7\nmean 56650.14\nmin 39800\nmax 72000\n"
    );
    assert_eq!(text(&out, "aggregate"), expected("two-owner-statistic"));
    for owner in ["owner_a", "owner_b"] {
        let r = out.get(owner).unwrap();
        assert_eq!(r.exit_code, 0, "{owner} validated its CSV");
        assert_eq!((r.output.as_ref(), r.log.as_ref()), (None, None), "{owner}");
    }
}

#[test]
fn two_owner_statistic_refuses_to_release_too_few_values() {
    let (mut spec, limits) = load("two-owner-statistic");
    spec.compartments[0].inputs = vec![Input::from_bytes("salaries", &b"id,salary\na,100\n"[..])];
    spec.compartments[1].inputs = vec![Input::from_bytes("salaries", &b"id,salary\nb,200\n"[..])];
    let out = run_task(&spec, &limits).unwrap();
    let agg = out.get("aggregate").unwrap();
    assert_eq!(agg.exit_code, 3);
    assert_eq!(agg.output.as_deref(), Some(&b""[..]));
    assert_eq!(
        agg.log.as_deref(),
        Some(&b"fewer than 5 values: nothing released\n"[..])
    );
}

#[test]
fn two_owner_statistic_reports_a_malformed_line() {
    let (mut spec, limits) = load("two-owner-statistic");
    spec.compartments[1].inputs = vec![Input::from_bytes(
        "salaries",
        &b"id,salary\nb,200\nc,12k\n"[..],
    )];
    let out = run_task(&spec, &limits).unwrap();
    // the owner sees it (exit code only: its log is not released) ...
    assert_eq!(out.get("owner_b").unwrap().exit_code, 2);
    assert_eq!(out.get("owner_b").unwrap().log, None);
    // ... and so does the aggregator, which releases nothing else
    let agg = out.get("aggregate").unwrap();
    assert_eq!(agg.exit_code, 2);
    assert_eq!(agg.output.as_deref(), Some(&b""[..]));
    assert_eq!(
        agg.log.as_deref(),
        Some(&b"compartment 1 line 3: the last field is not a whole number from 0 to 10^12\n"[..])
    );
}

#[test]
fn two_owner_statistic_mean_rounds_half_up() {
    let (mut spec, limits) = load("two-owner-statistic");
    // 1+2+2+2+2+2 = 11 over 6 = 1.8333 -> 1.83; with 3 instead of one 2: 2.0
    spec.compartments[0].inputs = vec![Input::from_bytes("salaries", &b"h\n1\n2\n2\n"[..])];
    spec.compartments[1].inputs = vec![Input::from_bytes("salaries", &b"h\n2\n2\n2"[..])];
    let out = run_task(&spec, &limits).unwrap();
    assert_eq!(
        text(&out, "aggregate"),
        "count 6\nmean 1.83\nmin 1\nmax 2\n"
    );
}

#[test]
fn private_set_intersection_releases_only_the_size() {
    let out = run_example("private-set-intersection");
    assert_eq!(text(&out, "intersect"), "common 3\n");
    assert_eq!(
        text(&out, "intersect"),
        expected("private-set-intersection")
    );
    for party in ["alice", "bob"] {
        let r = out.get(party).unwrap();
        assert_eq!((r.exit_code, r.output.as_ref()), (0, None), "{party}");
    }
}

#[test]
fn private_set_intersection_scales_past_one_chunk() {
    let (mut spec, limits) = load("private-set-intersection");
    let a: String = (0..20_000)
        .map(|i| format!("user{i}@example.org\n"))
        .collect();
    let b: String = (10_000..30_000)
        .map(|i| format!("  USER{i}@Example.org\r\n"))
        .collect();
    spec.compartments[0].inputs = vec![Input::from_bytes("emails", a.as_bytes())];
    spec.compartments[1].inputs = vec![Input::from_bytes("emails", b.as_bytes())];
    let out = run_task(&spec, &limits).unwrap();
    assert_eq!(text(&out, "intersect"), "common 10000\n");
}

#[test]
fn the_examples_reuse_compiled_modules() {
    // stats.wat serves three compartments: compiled once, then served from the cache
    let engine = veritee_wasm::TaskEngine::new(8).unwrap();
    let (spec, limits) = load("two-owner-statistic");
    engine.run(&spec, &limits).unwrap();
    let s = engine.cache_stats();
    assert_eq!((s.entries, s.misses, s.hits), (1, 1, 2));
}
