//! Time of the plaintext executor's heavy pieces at 2B-4T shapes (hidden 2560, FFN 6912, T = 128, 2^15 slots).
//!
//! Ignored (it writes a 20 MB one-layer checkpoint and takes seconds); run it with
//! `cargo test -p ensi-runtime --release --test exec_2b_shapes -- --ignored --nocapture`.

use std::time::Instant;

use ensi_checkpoint::synth::SynthSpec;
use ensi_checkpoint::{Checkpoint, Projection};
use ensi_runtime::exec::{Activation, BlockDiagonals, Repacking, encode};
use ensi_runtime::plan::{Layout, SignedRow};

const TOKENS: u32 = 128;

fn dense(columns: u32) -> Layout {
    Layout {
        slots: 1 << 15,
        block: 256,
        tokens: TOKENS,
        columns,
        group: 1,
    }
}

#[test]
#[ignore = "writes a 20 MB checkpoint and takes seconds: run with --ignored --nocapture"]
fn heavy_ops_at_2b_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec {
        num_layers: 1,
        vocab_size: 16,
        ..SynthSpec::bitnet_2b_4t()
    };
    spec.write(dir.path()).unwrap();
    let checkpoint = Checkpoint::open(dir.path()).unwrap();
    let gate = checkpoint.layers()[0].projection(Projection::Gate);
    let (d_out, d_in) = (gate.rows() as u32, gate.cols() as u32);
    let rows: Vec<SignedRow> = (0..d_out)
        .map(|row| SignedRow { row, negate: false })
        .collect();
    let values = (0..TOKENS * d_in)
        .map(|i| f64::from(i % 97) / 97.0 - 0.5)
        .collect();
    let x = Activation::new(TOKENS as usize, d_in as usize, values).unwrap();
    let slots = encode(&dense(d_in), &x).unwrap();

    let start = Instant::now();
    let diagonals = BlockDiagonals::new(gate, &rows, &dense(d_in), &dense(d_out), 8);
    let built = start.elapsed();
    let start = Instant::now();
    let y = diagonals.apply(&slots);
    let applied = start.elapsed();
    println!(
        "gate {d_out}x{d_in}: {} nonzero diagonals, {} rotations; build {built:.2?}, apply {applied:.2?} ({} output cts)",
        diagonals.pattern().nonzero_diagonals(),
        diagonals.pattern().rotations(),
        y.len()
    );

    let columns = Layout::columns_packed(TOKENS, d_in, 256);
    let start = Instant::now();
    let repacking = Repacking::new(&dense(d_in), &columns);
    let built = start.elapsed();
    let start = Instant::now();
    let packed = repacking.apply(&slots);
    println!(
        "repack dense -> columns ({} cts): {} moves, {} rotations; build {built:.2?}, apply {:.2?}",
        packed.len(),
        repacking.moves().len(),
        repacking.rotations(),
        start.elapsed()
    );
}
