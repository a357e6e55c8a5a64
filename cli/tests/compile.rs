//! `ensi compile` and `ensi report` as a user runs them: the report formats, and bad input (a checkpoint the frontend rejects, a precision target that cannot be met, a sequence longer than the ring holds) refused with a clear message and no plan file, not even a temporary one.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn ensi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ensi"))
        .args(args)
        .output()
        .expect("ensi runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `ensi compile` with `args` into an empty directory; expects a failure whose message
/// contains `expected` and no file left behind.
fn refused(model: &Path, args: &[&str], expected: &str) {
    let out = tempfile::tempdir().expect("tempdir");
    let plan = out.path().join("model.plan");
    let mut all = vec![
        "compile",
        model.to_str().unwrap(),
        "-o",
        plan.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let output = ensi(&all);
    let message = stderr(&output);
    assert!(!output.status.success(), "{args:?} compiled");
    assert!(message.contains(expected), "{args:?}: {message}");
    assert!(
        files(out.path()).is_empty(),
        "{args:?} left {:?}",
        files(out.path())
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_no_plan_file() {
    let model = fixture("dev-h32");
    refused(
        &model,
        &[
            "--tokens",
            "4",
            "--insecure-test-params",
            "--precision-bits",
            "40",
        ],
        "cannot meet the precision target of 40 bits",
    );
    refused(
        &model,
        &["--tokens", "40000"],
        "40000 tokens need column blocks of 131072 slots",
    );
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("config.json"), "{\"hidden_size\": 1}").expect("write");
    refused(
        bad.path(),
        &["--tokens", "4"],
        "missing config key `model_type`",
    );
}

#[test]
fn a_compiled_plan_reports_as_text_json_and_dot() {
    let out = tempfile::tempdir().expect("tempdir");
    let plan = out.path().join("model.plan");
    let model = fixture("dev-h32");
    let output = ensi(&[
        "compile",
        model.to_str().unwrap(),
        "--tokens",
        "4",
        "--insecure-test-params",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(files(out.path()), ["model.plan"]);
    let plan = plan.to_str().unwrap();
    let text = ensi(&["report", plan, "--format", "text"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("INSECURE") || text.contains("insecure"),
        "{text}"
    );
    assert!(text.contains("placement: rmsnorm:"), "{text}");
    let json = ensi(&["report", plan, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json report");
    assert!(json.get("summary").is_some());
    let dot = ensi(&["report", plan, "--format", "dot"]);
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
}
