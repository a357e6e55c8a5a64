//! Criterion bench of the special FFT (canonical embedding) at N = 2^14..2^16, both directions, full slots.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ensi_runtime::ckks::numerics::embedding::CanonicalEmbedding;
use num_complex::Complex64;

fn special_fft(c: &mut Criterion) {
    let mut group = c.benchmark_group("special_fft");
    for log_n in [14u32, 15, 16] {
        let Ok(embedding) = CanonicalEmbedding::new(log_n) else {
            continue;
        };
        let slots = embedding.max_slots();
        let values: Vec<Complex64> = (0..slots)
            .map(|j| Complex64::new((j as f64 * 0.37).sin(), (j as f64 * 0.11).cos()))
            .collect();
        let mut coeffs = vec![0.0; embedding.ring_degree()];
        let _ = embedding.slots_to_coeffs_into(&values, &mut coeffs);
        let mut out = vec![Complex64::new(0.0, 0.0); slots];

        group.bench_with_input(
            BenchmarkId::new("slots_to_coeffs", log_n),
            &log_n,
            |b, _| b.iter(|| embedding.slots_to_coeffs_into(black_box(&values), &mut coeffs)),
        );
        group.bench_with_input(
            BenchmarkId::new("coeffs_to_slots", log_n),
            &log_n,
            |b, _| b.iter(|| embedding.coeffs_to_slots_into(black_box(&coeffs), &mut out)),
        );
    }
    group.finish();
}

criterion_group!(benches, special_fft);
criterion_main!(benches);
