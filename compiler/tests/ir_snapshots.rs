//! Snapshots of the model IR the frontend builds for every fixture (reviewed in diffs, updated on purpose with `cargo insta`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir;

/// Token count of the snapshots (the IR depends on it only through the types' row counts).
const TOKENS: usize = 4;

fn checkpoint(name: &str) -> Checkpoint {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    Checkpoint::open(dir).expect("fixture opens")
}

/// Builds, verifies and prints the graph, and checks that the text parses back to it.
fn printed(checkpoint: &Checkpoint, options: &Options) -> String {
    let graph = frontend::build(checkpoint, options).expect("graph");
    ir::verify(&graph).expect("the frontend's graphs verify");
    let text = ir::print(&graph);
    assert_eq!(ir::parse(&text), Ok(graph), "the printed IR parses back");
    text
}

#[test]
fn stock_model_of_every_fixture() {
    for fixture in ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"] {
        let text = printed(&checkpoint(fixture), &Options::stock(TOKENS));
        insta::assert_snapshot!(format!("{fixture}-stock"), text);
    }
}

#[test]
fn encrypted_form_with_layer_outputs() {
    let options = Options {
        layer_outputs: true,
        ..Options::encrypted(TOKENS)
    };
    let text = printed(&checkpoint("dev-h64"), &options);
    insta::assert_snapshot!("dev-h64-encrypted", text);
}
