//! Snapshots of every fixture through the HE stages at T = 4 on an insecure test ring: the logical HE graph (after lowering), the leveled graph (after placement and the level pass: rescales, drops, bootstraps, exact scales) and the text report (reviewed in diffs, updated on purpose with `cargo insta`). The model configurations of `ir-examples/` go through the same stages in `ir_examples.rs`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_compiler::report::Format;
use ensi_compiler::{CompileOptions, stages};

#[test]
fn he_stages_and_report_of_every_fixture() {
    for fixture in ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(fixture);
        let checkpoint = Checkpoint::open(dir).expect("fixture opens");
        let stages =
            stages(&checkpoint, fixture, &CompileOptions::insecure_test(4)).expect("compiles");
        insta::assert_snapshot!(format!("{fixture}-logical"), stages.logical.to_string());
        insta::assert_snapshot!(format!("{fixture}-leveled"), stages.leveled.to_string());
        let report = &stages.compiled.report;
        // The placement explains logical values; each of the plan's bootstraps gets its reason.
        let explained = report.bootstraps.iter().all(|b| !b.reason.is_empty());
        assert!(explained, "{fixture}: a bootstrap without its reason");
        let text = report.render(&stages.compiled.plan, Format::Text);
        insta::assert_snapshot!(format!("{fixture}-report"), text);
    }
}
