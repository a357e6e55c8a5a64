//! The bootstrapping benchmark behind `ensi bench bootstrap`: for one set, slot counts and thread counts, the time of key generation and of one bootstrap, the precision on uniform values, levels after, key count and memory, peak RSS; as a text table or JSON.
//!
//! Protocol: secret key from a fixed seed, values with real and imaginary parts uniform in
//! [-1, 1] (Lattigo's precision protocol), encrypted at level 0 at its default scale (where
//! a circuit bootstraps); the bootstrap is timed `reps` times (median), each on a fresh
//! input. Precision: mean over slots and worst slot of -log2 |error| of the real and the
//! imaginary parts.

use std::time::Instant;

use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::ckks::numerics::precision::PrecisionStats;
use crate::ckks::scheme::bench::{cpu_time_ns, retain_freed_memory};
use crate::ckks::scheme::{Decryptor, Encryptor, EvaluationKeys, Evaluator, KeyGenerator};

use super::{BootstrapError, BootstrapSet, Bootstrapper, generate_bootstrap_keys};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BootstrapBenchConfig {
    /// The bootstrapping set.
    pub set: BootstrapSet,
    /// Slot counts (powers of two <= N/2).
    pub slots: Vec<usize>,
    /// Rayon thread counts (one dedicated pool each).
    pub threads: Vec<usize>,
    /// Timed bootstraps per configuration (median).
    pub reps: usize,
}

/// One measured configuration.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapBenchRow {
    /// Set name.
    pub set: String,
    /// log2 N.
    pub log_n: u32,
    /// Slots.
    pub slots: usize,
    /// Threads.
    pub threads: usize,
    /// Seconds to plan and encode the circuit (DFT diagonals, polynomial).
    pub setup_s: f64,
    /// Seconds of key generation (bootstrapping keys only).
    pub keygen_s: f64,
    /// Median wall seconds of one bootstrap.
    pub bootstrap_s: f64,
    /// Median process-CPU seconds of one bootstrap.
    pub bootstrap_cpu_s: f64,
    /// Mean over slots of -log2 |error| (real and imaginary parts, averaged).
    pub prec_mean_bits: f64,
    /// Worst slot's -log2 |error| (over real and imaginary parts).
    pub prec_worst_bits: f64,
    /// Levels left after the bootstrap (the output level).
    pub levels_after: usize,
    /// Depth of the circuit.
    pub depth: usize,
    /// Number of switching keys (relinearization, Galois, 2 encapsulation).
    pub key_count: usize,
    /// Bytes of the keys in memory (a expanded; files hold seeds instead of a).
    pub key_bytes: usize,
    /// Bytes of the keys in files (b parts and seeds: half the memory).
    pub key_file_bytes: usize,
    /// Peak resident memory of the process so far, MiB.
    pub peak_rss_mib: f64,
    /// Security marker of the set.
    pub security: String,
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every (slots, threads) configuration; rows in that order.
pub fn run_bootstrap_bench(
    config: &BootstrapBenchConfig,
) -> Result<Vec<BootstrapBenchRow>, BootstrapError> {
    retain_freed_memory();
    let params = config
        .set
        .params
        .params()
        .map_err(crate::ckks::scheme::Error::from)?;
    let mut rows = Vec::new();
    for &slots in &config.slots {
        for &threads in &config.threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .build()
                .map_err(|e| BootstrapError::Config(format!("thread pool: {e}")))?;
            let row = pool.install(|| -> Result<BootstrapBenchRow, BootstrapError> {
                let t = Instant::now();
                let boot = Bootstrapper::new(&params, config.set.config(slots))?;
                let setup_s = t.elapsed().as_secs_f64();
                let mut keygen = KeyGenerator::from_seed(&params, [7; 32])?;
                let t = Instant::now();
                let mut keys = EvaluationKeys::empty(&params);
                generate_bootstrap_keys(&mut keygen, &boot, &mut keys)?;
                let keygen_s = t.elapsed().as_secs_f64();
                let eval = Evaluator::new(&params, &keys)?;
                let decryptor = Decryptor::new(&params, keygen.secret_key())?;
                let mut encryptor = Encryptor::with_secret_key(&params, keygen.secret_key())?;
                let mut rng = ChaCha20Rng::seed_from_u64(slots as u64);
                let (mut wall, mut cpu) = (Vec::new(), Vec::new());
                let (mut mean, mut worst) = (0.0, f64::INFINITY);
                for _ in 0..config.reps.max(1) {
                    let values: Vec<Complex64> = (0..slots)
                        .map(|_| {
                            Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0))
                        })
                        .collect();
                    let level = 0;
                    let ct =
                        encryptor.encrypt_complex(&values, level, params.default_scale(level))?;
                    let (w0, c0) = (Instant::now(), cpu_time_ns());
                    let out = boot.bootstrap(&eval, &ct)?;
                    wall.push(w0.elapsed().as_secs_f64());
                    cpu.push(cpu_time_ns().saturating_sub(c0) as f64 / 1e9);
                    let got = decryptor.decrypt_complex(&out)?;
                    let stats = PrecisionStats::complex(&values, &got)
                        .map_err(|e| BootstrapError::Config(e.to_string()))?;
                    mean = 0.5 * (stats.real.mean + stats.imag.mean);
                    worst = f64::min(worst, stats.real.min.min(stats.imag.min));
                }
                // Files hold the b parts and a 32-byte seed per key.
                let key_file_bytes = keys.size_bytes() / 2 + 32 * keys.key_count();
                Ok(BootstrapBenchRow {
                    set: config.set.params.name.to_string(),
                    log_n: params.log_n(),
                    slots,
                    threads,
                    setup_s,
                    keygen_s,
                    bootstrap_s: median(wall),
                    bootstrap_cpu_s: median(cpu),
                    prec_mean_bits: mean,
                    prec_worst_bits: worst,
                    levels_after: boot.output_level(),
                    depth: boot.depth(),
                    key_count: keys.key_count(),
                    key_bytes: keys.size_bytes(),
                    key_file_bytes,
                    peak_rss_mib: peak_rss_mib(),
                    security: params.security().label().to_string(),
                })
            })?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The rows as a text table.
pub fn bootstrap_table(rows: &[BootstrapBenchRow]) -> String {
    let mut out = String::from(
        "set                     slots  thr  boot s  cpu s  keygen s  bits mean  bits worst  levels after  keys  key GiB (mem/file)  peak RSS GiB\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{:<22} {:>6} {:>4} {:>7.2} {:>6.2} {:>9.1} {:>10.2} {:>11.2} {:>13} {:>5} {:>9.2} / {:<7.2} {:>12.2}\n",
            r.set,
            r.slots,
            r.threads,
            r.bootstrap_s,
            r.bootstrap_cpu_s,
            r.keygen_s,
            r.prec_mean_bits,
            r.prec_worst_bits,
            r.levels_after,
            r.key_count,
            r.key_bytes as f64 / (1u64 << 30) as f64,
            r.key_file_bytes as f64 / (1u64 << 30) as f64,
            r.peak_rss_mib / 1024.0,
        ));
    }
    out
}
