//! Shared helpers of the end-to-end tests: fixture paths and reference tensors.

use std::path::PathBuf;

/// The folder holding the BitNet fixtures copied from Hugging Face's reference run.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Names of every fixture checkpoint, smallest first.
pub const FIXTURES: [&str; 4] = ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"];
