//! Fuzzes `Checkpoint::open` on arbitrary `model.safetensors` bytes (and optionally `config.json`): it must never panic.
//!
//! Input layout: byte 0 picks the config: 0 = the packed `dev-h32` fixture's, 1 = the
//! master-weight `dev-h64-online` fixture's, anything else = the input carries its own
//! (`u16` little-endian length, then that many bytes). The rest is the safetensors file.
//! A checkpoint that opens is read in full, the way the compiler and the runtime read it.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use ensi_checkpoint::{Checkpoint, Projection};
use libfuzzer_sys::fuzz_target;

const PACKED_CONFIG: &str = include_str!("../../tests/fixtures/dev-h32/config.json");
const MASTER_CONFIG: &str = include_str!("../../tests/fixtures/dev-h64-online/config.json");

fn folder() -> &'static Path {
    static FOLDER: OnceLock<tempfile::TempDir> = OnceLock::new();
    FOLDER.get_or_init(|| tempfile::tempdir().expect("temporary folder")).path()
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let (config, weights): (&[u8], &[u8]) = match selector {
        0 => (PACKED_CONFIG.as_bytes(), rest),
        1 => (MASTER_CONFIG.as_bytes(), rest),
        _ => {
            let Some((length, rest)) = rest.split_first_chunk::<2>() else { return };
            let length = usize::from(u16::from_le_bytes(*length)).min(rest.len());
            rest.split_at(length)
        }
    };
    let dir = folder();
    std::fs::write(dir.join("config.json"), config).expect("write config");
    std::fs::write(dir.join("model.safetensors"), weights).expect("write weights");

    let Ok(checkpoint) = Checkpoint::open(dir) else { return };
    for row in 0..checkpoint.embedding().rows() {
        checkpoint.embedding().row(row);
    }
    for layer in checkpoint.layers() {
        for projection in Projection::ALL {
            let matrix = layer.projection(projection);
            for row in 0..matrix.rows() {
                matrix.row(row);
            }
        }
    }
    checkpoint.final_norm().to_vec();
});
