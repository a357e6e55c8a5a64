//! Arithmetic-layer benches at N = 2^14..2^16 on the peers' chain (Q = 60 + 20x40 bits, P = 5x61, dnum 3), one thread.
//!
//! `cargo bench -p ensi-runtime --bench arith -- <filter>`; e.g. `-- 'ntt/16'` or `-- mod_up`.
//! The global rayon pool is one thread (the single-thread targets), `ENSI_BENCH_THREADS=2` to compare.
//! `ENSI_BENCH_CLOCK=cpu` measures process CPU time, steadier than wall time on a shared machine.

#![allow(clippy::expect_used, reason = "a bench setup failure aborts the bench")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion};
use ensi_runtime::ckks::arith::basis::{ConversionMode, SourceScale};
use ensi_runtime::ckks::arith::primes::{primes_below, scaling_primes};
use ensi_runtime::ckks::arith::{Representation, RingContext, RnsPoly};

#[path = "common/clock.rs"]
mod clock;

const LOG_NS: [u32; 3] = [14, 15, 16];
/// 21 Q primes: a 60-bit q_0 and twenty 40-bit scaling primes; dnum 3 => 7 primes per digit.
const Q_LIMBS: usize = 21;
const ALPHA: usize = 7;
const P_LIMBS: usize = 5;

fn peers_chain(log_n: u32) -> Arc<RingContext> {
    let mut q = primes_below(log_n, 60, 1, &[]).expect("q0");
    q.extend(scaling_primes(log_n, 40, Q_LIMBS - 1, &q).expect("scaling primes"));
    let p = primes_below(log_n, 61, P_LIMBS, &q).expect("special primes");
    RingContext::new(log_n, &q, &p, ALPHA).expect("ring")
}

/// Makes the global rayon pool one thread (or `ENSI_BENCH_THREADS`), once per process.
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

fn ntt<M: Measurement>(c: &mut Criterion<M>) {
    one_thread();
    let mut group = c.benchmark_group("ntt");
    for log_n in LOG_NS {
        let n = 1usize << log_n;
        // A 40-bit scaling prime (IFMA path), a 50-bit one (IFMA), a 61-bit one (64-bit path).
        let primes = [
            (
                "40bit",
                scaling_primes(log_n, 40, 1, &[]).expect("prime")[0],
            ),
            ("50bit", primes_below(log_n, 50, 1, &[]).expect("prime")[0]),
            ("61bit", primes_below(log_n, 61, 1, &[]).expect("prime")[0]),
        ];
        for (label, q) in primes {
            let ring = RingContext::new(log_n, &[q], &[], 1).expect("ring");
            let kernel = ring.limb_kernel(1, 0);
            let plan = tfhe_ntt::prime64::Plan::try_new(n, q).expect("plan");
            let mut data: Vec<u64> = (0..n as u64).map(|i| i * 7919 % q).collect();
            let id = |op: &str| BenchmarkId::new(format!("{log_n}/{label}/{op}"), "");
            {
                let other: Vec<u64> = (0..n as u64).map(|i| i * 104_729 % q).collect();
                let mut acc = vec![0u64; n];
                let mut limb =
                    RnsPoly::from_limbs(&ring, data.clone(), 1, false, Representation::Evaluation)
                        .expect("reduced");
                let other_poly =
                    RnsPoly::from_limbs(&ring, other.clone(), 1, false, Representation::Evaluation)
                        .expect("reduced");
                group.bench_function(id("ours_mul_acc"), |b| {
                    b.iter(|| limb.mul_acc(&ring, black_box(&other_poly), &other_poly))
                });
                group.bench_function(id("ours_mul"), |b| {
                    b.iter(|| limb.mul_assign(&ring, black_box(&other_poly)))
                });
                group.bench_function(id("tfhe_mul_acc"), |b| {
                    b.iter(|| plan.mul_accumulate(black_box(&mut acc), &data, &other))
                });
                group.bench_function(id("ours_forward"), |b| {
                    b.iter(|| kernel.forward(black_box(&mut data)))
                });
                group.bench_function(id("tfhe_forward"), |b| {
                    b.iter(|| plan.fwd(black_box(&mut data)))
                });
                group.bench_function(id("ours_inverse"), |b| {
                    b.iter(|| kernel.inverse(black_box(&mut data)))
                });
                group.bench_function(id("ours_inverse_unnormalized"), |b| {
                    b.iter(|| kernel.inverse_unnormalized(black_box(&mut data)))
                });
                group.bench_function(id("tfhe_inverse"), |b| {
                    b.iter(|| plan.inv(black_box(&mut data)))
                });
                group.bench_function(id("tfhe_inverse_normalize"), |b| {
                    b.iter(|| {
                        plan.inv(black_box(&mut data));
                        plan.normalize(&mut data);
                    })
                });
            }
        }
    }
    group.finish();
}

fn poly_ops<M: Measurement>(c: &mut Criterion<M>) {
    one_thread();
    let mut group = c.benchmark_group("poly");
    for log_n in LOG_NS {
        let ring = peers_chain(log_n);
        let seed = |s: u8| [s; 32];
        let a =
            RnsPoly::uniform_from_seed(&ring, &seed(1), Q_LIMBS, false, Representation::Evaluation);
        let b =
            RnsPoly::uniform_from_seed(&ring, &seed(2), Q_LIMBS, false, Representation::Evaluation);
        let ext =
            RnsPoly::uniform_from_seed(&ring, &seed(3), Q_LIMBS, true, Representation::Evaluation);
        let key =
            RnsPoly::uniform_from_seed(&ring, &seed(4), Q_LIMBS, true, Representation::Evaluation);
        let g = ring.rotation(1);
        let id = |op: &str| BenchmarkId::new(format!("{log_n}/{op}"), "");
        {
            let mut x = a.clone();
            group.bench_function(id("add_21"), |bch| {
                bch.iter(|| x.add_assign(&ring, black_box(&b)))
            });
            group.bench_function(id("mul_21"), |bch| {
                bch.iter(|| x.mul_assign(&ring, black_box(&b)))
            });
            group.bench_function(id("mul_acc_21"), |bch| {
                bch.iter(|| x.mul_acc(&ring, black_box(&a), &b))
            });
            let mut out = a.clone();
            group.bench_function(id("automorphism_ntt_21"), |bch| {
                ring.ntt_permutation(g);
                bch.iter(|| a.automorphism_into(&ring, g, black_box(&mut out)))
            });
            group.bench_function(id("ntt_21"), |bch| {
                bch.iter(|| {
                    x.set_representation(Representation::Coefficient);
                    x.ntt(&ring)
                })
            });
            group.bench_function(id("intt_21"), |bch| {
                bch.iter(|| {
                    x.set_representation(Representation::Evaluation);
                    x.intt(&ring)
                })
            });
            group.bench_function(id("rescale_21"), |bch| {
                bch.iter_batched_ref(
                    || a.clone(),
                    |p| ring.rescale(p),
                    criterion::BatchSize::LargeInput,
                )
            });
            let mut up = ext.clone();
            group.bench_function(id("mod_up_digit0_21"), |bch| {
                bch.iter(|| ring.mod_up_into(black_box(&a), 0, &mut up))
            });
            group.bench_function(id("mod_up_digit2_21"), |bch| {
                bch.iter(|| ring.mod_up_into(black_box(&a), 2, &mut up))
            });
            group.bench_function(id("mod_down_26_to_21"), |bch| {
                bch.iter_batched_ref(
                    || ext.clone(),
                    |p| ring.mod_down(p),
                    criterion::BatchSize::LargeInput,
                )
            });
            let n = ring.n();
            for (label, converter, source, mode) in [
                (
                    "convert_digit0_7_to_19",
                    ring.mod_up_converter(Q_LIMBS - 1, 0),
                    &a.as_slice()[..ALPHA * n],
                    ConversionMode::Approximate,
                ),
                (
                    "convert_digit2_7_to_19",
                    ring.mod_up_converter(Q_LIMBS - 1, 2),
                    &a.as_slice()[2 * ALPHA * n..],
                    ConversionMode::Approximate,
                ),
                (
                    "convert_p_5_to_21",
                    ring.mod_down_converter(),
                    &ext.as_slice()[Q_LIMBS * n..],
                    ConversionMode::Centered,
                ),
            ] {
                let converter = converter.expect("special primes");
                let mut out = vec![0u64; converter.target_count() * n];
                group.bench_function(id(label), |bch| {
                    bch.iter(|| {
                        let outputs = out
                            .chunks_mut(n)
                            .take(Q_LIMBS - ALPHA + P_LIMBS)
                            .enumerate()
                            .collect();
                        converter.convert(black_box(source), SourceScale::One, mode, outputs)
                    })
                });
            }
            // The same Q with six 50-bit special primes: ModDown's conversion then runs on IFMA.
            let ring50 = {
                let q: Vec<u64> = ring.q().iter().map(|m| m.value()).collect();
                let p = primes_below(log_n, 50, 6, &q).expect("special primes");
                RingContext::new(log_n, &q, &p, ALPHA).expect("ring")
            };
            let ext50 = RnsPoly::uniform_from_seed(
                &ring50,
                &seed(3),
                Q_LIMBS,
                true,
                Representation::Evaluation,
            );
            let a50 = RnsPoly::uniform_from_seed(
                &ring50,
                &seed(1),
                Q_LIMBS,
                false,
                Representation::Evaluation,
            );
            let mut up50 = ext50.clone();
            group.bench_function(id("mod_up_digit2_21_p6x50"), |bch| {
                bch.iter(|| ring50.mod_up_into(black_box(&a50), 2, &mut up50))
            });
            group.bench_function(id("mod_down_27_to_21_p6x50"), |bch| {
                bch.iter_batched_ref(
                    || ext50.clone(),
                    |p| ring50.mod_down(p),
                    criterion::BatchSize::LargeInput,
                )
            });
            let mut acc = ext.clone();
            group.bench_function(id("inner_product_3x26"), |bch| {
                bch.iter(|| {
                    acc.inner_product_assign(&ring, &[&ext, &key, &ext], &[&key, &ext, &key])
                })
            });
            // The arithmetic of one hybrid key switch at the top level (no automorphism):
            // 3 ModUps of c1 (each INTT 7 + convert + NTT 19), the two inner products with
            // a 3-digit key over Q*P, and two ModDowns.
            let keys: Vec<RnsPoly> = (0..6)
                .map(|k| {
                    RnsPoly::uniform_from_seed(
                        &ring,
                        &seed(10 + k),
                        Q_LIMBS,
                        true,
                        Representation::Evaluation,
                    )
                })
                .collect();
            let digits = ring.digits_at_level(Q_LIMBS - 1);
            let mut ups: Vec<RnsPoly> = (0..digits).map(|_| ext.clone()).collect();
            group.bench_function(id("key_switch_arith_21"), |bch| {
                bch.iter(|| {
                    for (d, up) in ups.iter_mut().enumerate() {
                        ring.mod_up_into(black_box(&a), d, up);
                    }
                    let up_refs: Vec<&RnsPoly> = ups.iter().collect();
                    let key_b: Vec<&RnsPoly> = keys[..digits].iter().collect();
                    let key_a: Vec<&RnsPoly> = keys[digits..].iter().collect();
                    let mut acc0 = RnsPoly::zero(&ring, Q_LIMBS, true, Representation::Evaluation);
                    let mut acc1 = acc0.clone();
                    RnsPoly::inner_product_pair(
                        &ring, &mut acc0, &mut acc1, &up_refs, &key_b, &key_a,
                    );
                    ring.mod_down(&mut acc0);
                    ring.mod_down(&mut acc1);
                    (acc0, acc1)
                })
            });
            let mut two = a.clone();
            two.drop_last_q_limbs(Q_LIMBS - 2);
            two.set_representation(Representation::Coefficient);
            group.bench_function(id("to_centered_f64_2"), |bch| {
                bch.iter(|| two.to_centered_f64(&ring))
            });
            let mut all = a.clone();
            all.set_representation(Representation::Coefficient);
            group.bench_function(id("to_centered_f64_21"), |bch| {
                bch.iter(|| all.to_centered_f64(&ring))
            });
        }
    }
    group.finish();
}

fn configure<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Wall time by default; `ENSI_BENCH_CLOCK=cpu` measures process CPU time instead.
fn main() {
    if std::env::var("ENSI_BENCH_CLOCK").as_deref() == Ok("cpu") {
        let mut c = configure(Criterion::default().with_measurement(clock::CpuTime));
        ntt(&mut c);
        poly_ops(&mut c);
        c.final_summary();
    } else {
        let mut c = configure(Criterion::default());
        ntt(&mut c);
        poly_ops(&mut c);
        c.final_summary();
    }
}
