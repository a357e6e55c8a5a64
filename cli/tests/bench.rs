//! `ensi bench ckks` as a user runs it, on the smallest insecure test set with one repetition:
//! the table, the JSON keys the peers' script reads, and the usage errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::process::{Command, Output};

/// The peers' ops (shared/peers/ckks_peers.py `OPS`), all of which ensi reports.
const PEER_OPS: [&str; 7] = [
    "enc",
    "mul_relin",
    "rescale",
    "rotate1",
    "ptmul",
    "add",
    "dec",
];

fn ensi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ensi"))
        .args(args)
        .output()
        .expect("ensi runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn prints_the_table_and_marks_the_insecure_set() {
    let result = ensi(&["bench", "ckks", "--set", "TEST_INSECURE_N10", "--reps", "1"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let out = stdout(&result);
    assert!(
        out.starts_with("ensi bench ckks: TEST_INSECURE_N10, medians of 1 repetitions"),
        "{out}"
    );
    for title in ["ct*ct mul+relin", "rotate 1", "decrypt+decode", "mul prec"] {
        assert!(out.contains(title), "no column {title}:\n{out}");
    }
    // One wall and one CPU row for the one thread count.
    assert!(out.contains("| TEST_INSECURE_N10 | 1 | wall |"), "{out}");
    assert!(out.contains("| TEST_INSECURE_N10 | 1 | cpu |"), "{out}");
    assert!(out.contains("security=INSECURE — FOR TESTING ONLY"), "{out}");
    // The peers were measured at N = 2^16 only: no ratios for another ring.
    assert!(!out.contains("peer / ensi"), "{out}");
    assert!(
        stderr(&result).contains("warning: TEST_INSECURE_N10 is an INSECURE set for testing only"),
        "{}",
        stderr(&result)
    );
}

#[test]
fn json_has_the_peers_keys_for_each_thread_count() {
    let result = ensi(&[
        "bench",
        "ckks",
        "--set",
        "TEST_INSECURE_N10",
        "--threads",
        "1,2",
        "--reps",
        "1",
        "--json",
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    let reports: serde_json::Value = serde_json::from_str(&stdout(&result)).expect("JSON");
    let reports = reports.as_array().expect("a list of reports");
    assert_eq!(reports.len(), 2);
    for (report, threads) in reports.iter().zip([1, 2]) {
        assert_eq!(report["threads"], threads);
        assert_eq!(report["set"], "TEST_INSECURE_N10");
        for op in PEER_OPS {
            let ms = report["times_ms"][op].as_f64().expect(op);
            assert!(ms > 0.0 && ms.is_finite(), "{op}: {ms}");
        }
        // (max, mean) bits; a fresh encryption at a 40-bit scale is far above 20 bits.
        let enc = report["prec_enc"].as_array().expect("prec_enc pair");
        assert!(enc[1].as_f64().expect("mean bits") > 20.0, "{report}");
        assert_eq!(report["prec_mul"].as_array().expect("prec_mul pair").len(), 2);
        assert_eq!(report["mem_mib"].as_array().expect("mem_mib pair").len(), 2);
        assert_eq!(report["params"]["N"], 1024);
        assert_eq!(report["params"]["security"], "INSECURE — FOR TESTING ONLY");
        assert!(report["keygen_s"].as_f64().is_some());
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let cases: [(&[&str], &str); 5] = [
        (&["bench"], "Usage: ensi bench <COMMAND>"),
        (
            &["bench", "ckks", "--set", "N16"],
            "invalid value 'N16' for '--set <SET>'",
        ),
        (
            &["bench", "ckks", "--threads", "0"],
            "invalid value '0' for '--threads <THREADS>': 0 is not in 1..=256",
        ),
        (
            &["bench", "ckks", "--threads", "1,x"],
            "invalid value 'x' for '--threads <THREADS>'",
        ),
        (
            &["bench", "ckks", "--reps", "0"],
            "invalid value '0' for '--reps <REPS>': 0 is not in 1..=10000",
        ),
    ];
    for (args, message) in cases {
        let result = ensi(args);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {}", stderr(&result));
        assert!(
            stderr(&result).contains(message),
            "{args:?}: wanted {message:?} in\n{}",
            stderr(&result)
        );
    }
    // The set names are listed for the user.
    let result = ensi(&["bench", "ckks", "--set", "N16"]);
    assert!(
        stderr(&result).contains("N16_QP1165_PEERS") && stderr(&result).contains("TEST_INSECURE_N10"),
        "{}",
        stderr(&result)
    );
}
