//! The CKKS operation benchmark behind `ensi bench ckks`: median wall and CPU times of each op at a named set, one or more threads, with precision and memory, as a text table or the peers' JSON keys.
//!
//! Same protocol as `shared/peers/ckks_peers.py`: fresh ciphertexts at the top level,
//! N/2 real slots uniform in [-1, 1], one warm-up then the median of `reps` runs;
//! precision is (-log2 max |err|, -log2 mean |err|) over the slots.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::params::NamedSet;
use super::{Decryptor, Encryptor, Error, EvaluationKeys, Evaluator, KeyGenerator};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The parameter set.
    pub set: NamedSet,
    /// Rayon threads (a dedicated pool of this size).
    pub threads: usize,
    /// Timed repetitions per op (after one warm-up).
    pub reps: usize,
}

/// The result of one configuration; serializes to the peers' JSON keys plus ensi's extras.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The set's name.
    pub set: String,
    /// Threads of the pool.
    pub threads: usize,
    /// Median wall-clock milliseconds per op (peers' keys: enc, mul_relin, rescale,
    /// rotate1, ptmul, add, dec; ensi extras: enc_sk, square, rotate_hoisted8 per rotation).
    pub times_ms: BTreeMap<String, f64>,
    /// Median process-CPU milliseconds per op (all threads summed).
    pub times_cpu_ms: BTreeMap<String, f64>,
    /// (-log2 max err, -log2 mean err) of a fresh symmetric encryption (the client path).
    pub prec_enc: (f64, f64),
    /// The same for a public-key encryption (the peers' `enc` path).
    pub prec_enc_pk: (f64, f64),
    /// After multiply + relinearize + rescale.
    pub prec_mul: (f64, f64),
    /// After a rotation by one slot.
    pub prec_rot: (f64, f64),
    /// Parameter description (N, logQ, logQP, nQ, nP, dnum, scale bits, secret, security).
    pub params: BTreeMap<String, serde_json::Value>,
    /// (RSS, peak RSS) in MiB at the end of the run (the process's, not this run's alone).
    pub mem_mib: (f64, f64),
    /// Key generation seconds (secret, public, relinearization and one rotation key).
    pub keygen_s: f64,
}

/// Process CPU time in nanoseconds (0 where the clock is unavailable).
pub fn cpu_time_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Process-wide glibc malloc tunables for CKKS workloads: one arena for all threads, and
/// freed blocks up to 32 MiB kept in the heap instead of unmapped. A ciphertext at
/// N = 2^16 is 2 x 10.5 MiB and a key-switch temporary 13 MiB; without this, every fresh
/// one in a rayon worker (whose per-thread arena hands such blocks back to the OS) costs
/// ~3,000 page faults: measured 105 ms instead of 72 ms per multiply + relinearize in a
/// one-thread pool. Binaries (server, `ensi bench`) should call it first thing; memory
/// freed by the evaluator then stays with the process. A no-op off glibc.
pub fn retain_freed_memory() {
    // SAFETY: mallopt only sets allocator tunables; every value is within glibc's limits.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        0.5 * (v[mid - 1] + v[mid])
    }
}

/// (-log2 max |err|, -log2 mean |err|), rounded to 0.1 bit, as the peers' script.
fn prec_bits(got: &[f64], want: &[f64]) -> (f64, f64) {
    let errors: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
    let max = errors.iter().copied().fold(0.0, f64::max);
    let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
    let bits = |e: f64| {
        if e == 0.0 {
            f64::INFINITY
        } else {
            (-e.log2() * 10.0).round() / 10.0
        }
    };
    (bits(max), bits(mean))
}

fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Timer {
    reps: usize,
    wall: BTreeMap<String, f64>,
    cpu: BTreeMap<String, f64>,
}

impl Timer {
    /// Times `f(prep())` (prep untimed): one warm-up, then the median of `reps`.
    fn time<T, R>(
        &mut self,
        name: &str,
        mut prep: impl FnMut() -> T,
        mut f: impl FnMut(T) -> Result<R, Error>,
    ) -> Result<(), Error> {
        drop(f(prep())?);
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..self.reps {
            let input = prep();
            let (w0, c0) = (Instant::now(), cpu_time_ns());
            let out = f(input)?;
            let (w1, c1) = (w0.elapsed(), cpu_time_ns());
            drop(out);
            wall.push(w1.as_secs_f64() * 1e3);
            cpu.push(c1.saturating_sub(c0) as f64 / 1e6);
        }
        self.wall.insert(name.into(), median(wall));
        self.cpu.insert(name.into(), median(cpu));
        Ok(())
    }
}

/// Runs the benchmark of one configuration in a dedicated pool of `threads` threads
/// (after [`retain_freed_memory`], which it calls: the numbers assume that policy).
pub fn run_bench(config: &BenchConfig) -> Result<BenchReport, Error> {
    retain_freed_memory();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("thread pool: {e}")))?;
    pool.install(|| run_in_pool(config))
}

fn run_in_pool(config: &BenchConfig) -> Result<BenchReport, Error> {
    let params = config.set.params()?;
    let slots = params.max_slots();
    let top = params.max_level();
    let scale = params.default_scale(top);

    // Keygen as the peers count it: secret, public, relinearization and one rotation key.
    let t0 = Instant::now();
    let mut keygen = KeyGenerator::from_seed(&params, [0x5e; 32])?;
    let public = keygen.public_key();
    let mut keys = EvaluationKeys::empty(&params);
    keys.set_relin(keygen.relin_key());
    let ring = params.ring().clone();
    keys.insert_galois(
        ring.rotation(1).value(),
        keygen.galois_key(ring.rotation(1))?,
    );
    let keygen_s = t0.elapsed().as_secs_f64();
    let hoisted: Vec<i64> = (1..=8).collect();
    for &k in &hoisted[1..] {
        keys.insert_galois(
            ring.rotation(k).value(),
            keygen.galois_key(ring.rotation(k))?,
        );
    }

    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let x: Vec<f64> = (0..slots).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f64> = (0..slots).map(|_| rng.random_range(-1.0..1.0)).collect();
    let secret = keygen.secret_key();
    let mut enc_pk = Encryptor::with_public_key(&params, &public)?;
    let mut enc_sk = Encryptor::with_secret_key(&params, secret)?;
    let dec = Decryptor::new(&params, secret)?;
    let eval = Evaluator::new(&params, &keys)?;

    let c1 = enc_sk.encrypt_real(&x, top, scale)?;
    let c2 = enc_sk.encrypt_real(&y, top, scale)?;
    let c1_pk = enc_pk.encrypt_real(&x, top, scale)?;
    let pt2 = eval.encoder().encode_real(&y, top, scale)?;
    let product = eval.mul_relin(&c1, &c2)?;

    let mut timer = Timer {
        reps: config.reps.max(1),
        wall: BTreeMap::new(),
        cpu: BTreeMap::new(),
    };
    timer.time("enc", || (), |()| enc_pk.encrypt_real(&x, top, scale))?;
    timer.time("enc_sk", || (), |()| enc_sk.encrypt_real(&x, top, scale))?;
    timer.time("mul_relin", || (), |()| eval.mul_relin(&c1, &c2))?;
    timer.time("square", || (), |()| eval.square(&c1))?;
    timer.time(
        "rescale",
        || product.clone(),
        |mut ct| eval.rescale_assign(&mut ct).map(|()| ct),
    )?;
    timer.time("rotate1", || (), |()| eval.rotate(&c1, 1))?;
    timer.time(
        "rotate_hoisted8",
        || (),
        |()| eval.rotate_hoisted(&c1, &hoisted),
    )?;
    if let Some(v) = timer.wall.get_mut("rotate_hoisted8") {
        *v /= hoisted.len() as f64;
    }
    if let Some(v) = timer.cpu.get_mut("rotate_hoisted8") {
        *v /= hoisted.len() as f64;
    }
    timer.time("ptmul", || (), |()| eval.mul_plain(&c1, &pt2))?;
    timer.time("add", || (), |()| eval.add(&c1, &c2))?;
    timer.time("dec", || (), |()| dec.decrypt_real(&c1))?;

    let xy: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let mut x_rot = x.clone();
    x_rot.rotate_left(1);
    let prec_enc = prec_bits(&dec.decrypt_real(&c1)?, &x);
    let prec_enc_pk = prec_bits(&dec.decrypt_real(&c1_pk)?, &x);
    let prec_mul = prec_bits(&dec.decrypt_real(&eval.rescale(&product)?)?, &xy);
    let prec_rot = prec_bits(&dec.decrypt_real(&eval.rotate(&c1, 1)?)?, &x_rot);

    let q = params.q();
    let p = params.p();
    let log2 = |v: &[u64]| v.iter().map(|&x| (x as f64).log2()).sum::<f64>();
    let mut described = BTreeMap::new();
    let mut put = |k: &str, v: serde_json::Value| {
        described.insert(k.to_string(), v);
    };
    put("N", params.n().into());
    put("logQ", ((log2(&q) * 10.0).round() / 10.0).into());
    put("logQP", ((params.log_qp() * 10.0).round() / 10.0).into());
    put("nQ", q.len().into());
    put("nP", p.len().into());
    put("dnum", params.dnum().into());
    put("scale_bits", params.literal().log_scale.into());
    put("q0_bits", params.literal().log_q[0].into());
    put("technique", "FLEXIBLEAUTO (exact scales)".into());
    put("secret", "uniform ternary".into());
    put("security", params.security().label().into());
    put("keyswitch", "HYBRID".into());
    put("set", config.set.name.into());
    Ok(BenchReport {
        set: config.set.name.into(),
        threads: config.threads,
        times_ms: timer.wall,
        times_cpu_ms: timer.cpu,
        prec_enc,
        prec_enc_pk,
        prec_mul,
        prec_rot,
        params: described,
        mem_mib: rss_mib(),
        keygen_s: (keygen_s * 100.0).round() / 100.0,
    })
}

/// The ops of the table, in the peers' order, with their column titles.
pub const TABLE_OPS: [(&str, &str); 10] = [
    ("enc", "encode+encrypt (pk)"),
    ("enc_sk", "encode+encrypt (sk)"),
    ("mul_relin", "ct*ct mul+relin"),
    ("square", "square+relin"),
    ("rescale", "rescale"),
    ("rotate1", "rotate 1"),
    ("rotate_hoisted8", "hoisted rot (each of 8)"),
    ("ptmul", "pt*ct mul"),
    ("add", "ct+ct add"),
    ("dec", "decrypt+decode"),
];

/// A Markdown table of reports: one row per report and clock.
pub fn text_table(reports: &[BenchReport]) -> String {
    let mut out = String::from("| set | threads | clock |");
    for (_, title) in TABLE_OPS {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str(" enc prec sk (max/mean) | enc prec pk | mul prec | rot prec | keygen s | peak RSS MiB |\n|---|---|---|");
    for _ in TABLE_OPS {
        out.push_str("---|");
    }
    out.push_str("---|---|---|---|---|---|\n");
    for r in reports {
        for (clock, times) in [("wall", &r.times_ms), ("cpu", &r.times_cpu_ms)] {
            out.push_str(&format!("| {} | {} | {clock} |", r.set, r.threads));
            for (key, _) in TABLE_OPS {
                let v = times.get(key).copied().unwrap_or(f64::NAN);
                out.push_str(&format!(" {} |", format_ms(v)));
            }
            let p = |(a, b): (f64, f64)| format!("{a:.1}/{b:.1}");
            out.push_str(&format!(
                " {} | {} | {} | {} | {} | {:.0} |\n",
                p(r.prec_enc),
                p(r.prec_enc_pk),
                p(r.prec_mul),
                p(r.prec_rot),
                r.keygen_s,
                r.mem_mib.1
            ));
        }
    }
    out
}

fn format_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The peers' per-op medians on this machine (shared/peers/RESULTS.md, 1 thread, N = 2^16)
/// and ensi's ratio to each: `peer / ensi` (> 1 means ensi is faster).
pub fn peer_ratios(report: &BenchReport) -> Vec<(String, String, f64, f64)> {
    const PEERS_16: [(&str, &str, f64); 14] = [
        ("openfhe", "enc", 165.0),
        ("desilo", "enc", 94.2),
        ("seal", "enc", 174.0),
        ("lattigo", "enc", 287.0),
        ("openfhe", "mul_relin", 333.0),
        ("lattigo", "mul_relin", 298.0),
        ("seal", "rescale", 40.3),
        ("lattigo", "rescale", 40.7),
        ("lattigo", "rotate1", 226.0),
        ("openfhe", "ptmul", 9.19),
        ("seal", "ptmul", 9.27),
        ("desilo", "add", 1.76),
        ("openfhe", "dec", 151.0),
        ("lattigo-client", "dec", 145.0),
    ];
    PEERS_16
        .iter()
        .filter_map(|&(peer, op, ms)| {
            report
                .times_ms
                .get(op)
                .map(|&ours| (peer.to_string(), op.to_string(), ms, ms / ours))
        })
        .collect()
}
