//! Peak resident memory of opening a checkpoint with the tensor shapes of bitnet-b1.58-2B-4T and building its IR.
//!
//! Ignored by default: it writes a 1.18 GB synthetic checkpoint (random weights, the real
//! names, shapes and packing). Run it with
//! `cargo test -p ensi-tests --release --test memory_2b -- --ignored --nocapture`.
//! It is alone in its test binary, so the process's peak RSS (`VmHWM`) is its own.

use anyhow::{Context, ensure};
use ensi_checkpoint::Checkpoint;
use ensi_checkpoint::synth::SynthSpec;
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir;

/// A field of `/proc/self/status`, in bytes (the file reports kB).
fn status_bytes(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kilobytes: u64 = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("malformed {field} line"))?
        .parse()?;
    Ok(kilobytes * 1024)
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[test]
#[ignore = "writes a 1.18 GB checkpoint; run with --release -- --ignored --nocapture"]
fn a_2b_checkpoint_opens_in_less_than_one_and_a_half_times_its_size() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = SynthSpec::bitnet_2b_4t();
    let file_size = spec.write(dir.path())?;
    let after_writing = status_bytes("VmHWM:")?;

    let started = std::time::Instant::now();
    let checkpoint = Checkpoint::open(dir.path())?;
    let opened = started.elapsed();
    // What the compiler's frontend does: build and verify the graph (names, shapes, scales).
    let tokens: Vec<u32> = (0..16).map(|i| i * 8009 % 128_256).collect();
    let graph = frontend::build(&checkpoint, &Options::stock(tokens.len()))?;
    let info = ir::verify(&graph)?;
    ensure!(info.tokens() == tokens.len());
    // What a client does: embed its tokens (one row each, decoded on demand).
    let embedded: usize = tokens
        .iter()
        .map(|&t| checkpoint.embedding().row(t as usize).len())
        .sum();
    ensure!(embedded == tokens.len() * 2560);

    let peak = status_bytes("VmHWM:")?;
    let ratio = peak as f64 / file_size as f64;
    eprintln!(
        "2B-4T shapes: model.safetensors {:.1} MB; {} nodes; open {:.2?}\n\
         peak RSS (VmHWM) {:.1} MB = {:.3} x the file (after writing it: {:.1} MB); \
         now RssAnon {:.1} MB, RssFile {:.1} MB",
        megabytes(file_size),
        graph.nodes().len(),
        opened,
        megabytes(peak),
        ratio,
        megabytes(after_writing),
        megabytes(status_bytes("RssAnon:")?),
        megabytes(status_bytes("RssFile:")?),
    );
    ensure!(
        ratio <= 1.5,
        "peak RSS is {ratio:.3} x the checkpoint's size"
    );
    Ok(())
}
