//! CKKS scheme and circuit benches at N = 2^14, 2^15, 2^16 (named sets N14_QP401_PEERS, N15_QP880, N16_QP1165_PEERS), one thread.
//!
//! `cargo bench -p ensi-runtime --bench ckks_scheme -- <filter>`, e.g. `-- 'ckks/16/'` or `-- mul_relin`.
//! The global rayon pool is one thread (`ENSI_BENCH_THREADS=2` to compare);
//! `ENSI_BENCH_CLOCK=cpu` measures process CPU time, steadier than wall time on a shared machine.
//! The benchmark table with peer ratios: `cargo run -p ensi-runtime --release --example ckks_bench`.

#![allow(clippy::expect_used, reason = "a bench setup failure aborts the bench")]

#[path = "common/clock.rs"]
mod clock;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion};
use ensi_runtime::ckks::circuits::{ChebyshevEvaluation, LinearTransform, PolynomialEvaluator};
use ensi_runtime::ckks::numerics::chebyshev::ChebyshevSeries;
use ensi_runtime::ckks::scheme::params::{N14_QP401_PEERS, N15_QP880, N16_QP1165_PEERS};
use ensi_runtime::ckks::scheme::{
    Decryptor, Encoder, Encryptor, EvaluationKeys, Evaluator, KeyGenerator, NamedSet,
};
use num_complex::Complex64;

fn one_thread() {
    let threads = std::env::var("ENSI_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    // Err only means the pool was already built by an earlier bench function.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

fn sets() -> Vec<NamedSet> {
    [N14_QP401_PEERS, N15_QP880, N16_QP1165_PEERS].to_vec()
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| (((i as u64 + 1) * (seed * 2 + 7919)) % 2003) as f64 / 1001.5 - 1.0)
        .collect()
}

const ROTATIONS: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn scheme_ops<M: Measurement>(c: &mut Criterion<M>) {
    one_thread();
    for set in sets() {
        let params = set.params().expect("named set");
        let mut group = c.benchmark_group(format!("ckks/{}", set.log_n));
        let top = params.max_level();
        let scale = params.default_scale(top);
        let slots = params.max_slots();
        let mut keygen = KeyGenerator::from_seed(&params, [7; 32]).expect("keygen");
        let public = keygen.public_key();
        let keys = keygen.evaluation_keys(&ROTATIONS, true).expect("keys");
        let eval = Evaluator::new(&params, &keys).expect("evaluator");
        let encoder = Encoder::new(&params);
        let (x, y) = (values(slots, 1), values(slots, 2));
        let mut enc_sk = Encryptor::with_secret_key(&params, keygen.secret_key()).expect("enc");
        let mut enc_pk = Encryptor::with_public_key(&params, &public).expect("enc");
        let dec = Decryptor::new(&params, keygen.secret_key()).expect("dec");
        let cx = enc_sk.encrypt_real(&x, top, scale).expect("encrypt");
        let cy = enc_sk.encrypt_real(&y, top, scale).expect("encrypt");
        let py = encoder.encode_real(&y, top, scale).expect("encode");
        let product = eval.mul_relin(&cx, &cy).expect("mul");

        group.bench_function("encode", |b| b.iter(|| encoder.encode_real(&x, top, scale)));
        group.bench_function("encode_encrypt_sk", |b| {
            b.iter(|| enc_sk.encrypt_real(&x, top, scale))
        });
        group.bench_function("encode_encrypt_pk", |b| {
            b.iter(|| enc_pk.encrypt_real(&x, top, scale))
        });
        group.bench_function("decrypt_decode", |b| b.iter(|| dec.decrypt_real(&cx)));
        group.bench_function("add", |b| b.iter(|| eval.add(&cx, &cy)));
        group.bench_function("add_assign", |b| {
            let mut acc = cx.clone();
            b.iter(|| eval.add_assign(&mut acc, &cy))
        });
        group.bench_function("mul_plain", |b| b.iter(|| eval.mul_plain(&cx, &py)));
        group.bench_function("mul_const", |b| b.iter(|| eval.mul_const(&cx, 0.75, scale)));
        group.bench_function("tensor", |b| b.iter(|| eval.tensor(&cx, &cy)));
        group.bench_function("mul_relin", |b| b.iter(|| eval.mul_relin(&cx, &cy)));
        group.bench_function("square", |b| b.iter(|| eval.square(&cx)));
        group.bench_function("rescale", |b| {
            b.iter_batched(
                || product.clone(),
                |mut ct| eval.rescale_assign(&mut ct).map(|()| ct),
                BatchSize::LargeInput,
            )
        });
        group.bench_function("rotate_1", |b| b.iter(|| eval.rotate(&cx, 1)));
        group.bench_function("conjugate", |b| b.iter(|| eval.conjugate(&cx)));
        group.bench_function("rotate_hoisted_8", |b| {
            b.iter(|| eval.rotate_hoisted(&cx, &ROTATIONS))
        });
        group.bench_function("decompose", |b| {
            b.iter(|| {
                let d = eval.decompose(&cx).expect("decompose");
                eval.recycle(black_box(d));
            })
        });
        group.finish();
    }
}

fn keygen_ops<M: Measurement>(c: &mut Criterion<M>) {
    one_thread();
    for set in sets() {
        let params = set.params().expect("named set");
        let mut group = c.benchmark_group(format!("ckks/{}", set.log_n));
        group.sample_size(10);
        let mut keygen = KeyGenerator::from_seed(&params, [7; 32]).expect("keygen");
        group.bench_function("keygen_relin", |b| b.iter(|| keygen.relin_key()));
        group.finish();
    }
}

fn circuits<M: Measurement>(c: &mut Criterion<M>) {
    one_thread();
    for set in sets() {
        let params = set.params().expect("named set");
        let mut group = c.benchmark_group(format!("ckks/{}", set.log_n));
        group.sample_size(10);
        let top = params.max_level();
        let slots = params.max_slots();
        let encoder = Encoder::new(&params);
        // 16 consecutive diagonals (a banded matrix): baby step 4, 3 + 3 rotations.
        let diagonals: BTreeMap<usize, Vec<Complex64>> = (0..16)
            .map(|k| {
                (
                    k,
                    values(slots, k as u64)
                        .iter()
                        .map(|&v| Complex64::new(v, 0.0))
                        .collect(),
                )
            })
            .collect();
        let lt = LinearTransform::new(
            &encoder,
            &diagonals,
            slots,
            top,
            params.q()[top] as f64,
            None,
        )
        .expect("transform");
        let series = ChebyshevSeries::interpolate(|x| 1.0 / (1.0 + (-x).exp()), -8.0, 8.0, 15)
            .expect("series");
        let plan = ChebyshevEvaluation::new(series, None);
        let mut keygen = KeyGenerator::from_seed(&params, [7; 32]).expect("keygen");
        let mut keys: EvaluationKeys = keygen
            .evaluation_keys(&lt.rotations(), false)
            .expect("keys");
        keys.set_relin(keygen.relin_key());
        let eval = Evaluator::new(&params, &keys).expect("evaluator");
        let mut enc = Encryptor::with_secret_key(&params, keygen.secret_key()).expect("enc");
        let cx = enc
            .encrypt_real(&values(slots, 3), top, params.default_scale(top))
            .expect("encrypt");
        group.bench_function("lintrans_16_diagonals", |b| {
            b.iter(|| lt.evaluate(&eval, &cx))
        });
        let poly = PolynomialEvaluator::new(&eval);
        group.bench_function("chebyshev_15", |b| {
            b.iter(|| poly.evaluate(&cx, &plan, None))
        });
        group.finish();
    }
}

fn configure<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Wall time by default; `ENSI_BENCH_CLOCK=cpu` measures process CPU time instead.
fn main() {
    // The allocator policy the runtime's binaries use (see `retain_freed_memory`).
    ensi_runtime::ckks::scheme::bench::retain_freed_memory();
    if std::env::var("ENSI_BENCH_CLOCK").as_deref() == Ok("cpu") {
        let mut c = configure(Criterion::default().with_measurement(clock::CpuTime));
        scheme_ops(&mut c);
        keygen_ops(&mut c);
        circuits(&mut c);
        c.final_summary();
    } else {
        let mut c = configure(Criterion::default());
        scheme_ops(&mut c);
        keygen_ops(&mut c);
        circuits(&mut c);
        c.final_summary();
    }
}
