//! Bootstrapping on small insecure rings: a refreshed ciphertext decrypts to its input within a stated precision (full and sparse slots, real and complex), keys and errors.

#![allow(clippy::expect_used, reason = "a failed fixture fails the test")]

mod common;

use common::Fixture;
use ensi_runtime::ckks::circuits::bootstrap::{
    BOOT_TEST_N10, BOOT_TEST_N12, BootstrapSet, Bootstrapper, generate_bootstrap_keys,
};
use ensi_runtime::ckks::numerics::precision::PrecisionStats;
use ensi_runtime::ckks::scheme::{EvaluationKeys, Evaluator};
use num_complex::Complex64;

struct Boot {
    f: Fixture,
    boot: Bootstrapper,
    keys: EvaluationKeys,
}

fn setup(set: BootstrapSet, slots: usize) -> Boot {
    let mut f = Fixture::new(set.params, &[]);
    let boot = Bootstrapper::new(&f.params, set.config(slots)).expect("bootstrapper");
    let mut keys = EvaluationKeys::empty(&f.params);
    generate_bootstrap_keys(&mut f.keygen, &boot, &mut keys).expect("keys");
    Boot { f, boot, keys }
}

/// Bootstraps `values` encrypted at `level`; returns the precision of the output.
fn run(b: &Boot, values: &[Complex64], level: usize) -> PrecisionStats {
    let eval = Evaluator::new(&b.f.params, &b.keys).expect("evaluator");
    let ct = b.f.encrypt_at(values, level);
    let out = b.boot.bootstrap(&eval, &ct).expect("bootstrap");
    assert_eq!(out.level(), b.boot.output_level());
    assert_eq!(out.scale(), b.f.params.default_scale(out.level()));
    let got = b.f.decrypt(&out);
    PrecisionStats::complex(values, &got).expect("stats")
}

#[test]
fn full_slots_complex_n10() {
    let b = setup(BOOT_TEST_N10, 512);
    let values = b.f.complex(512);
    let stats = run(&b, &values, 1);
    eprintln!("{}", stats.summary());
    assert!(stats.l2.mean > 15.0, "{}", stats.summary());
}

fn real(values: &[f64]) -> Vec<Complex64> {
    values.iter().map(|&x| Complex64::new(x, 0.0)).collect()
}

#[test]
fn full_slots_real_n12() {
    let b = setup(BOOT_TEST_N12, 2048);
    let values = real(&b.f.real(2048));
    let stats = run(&b, &values, 2);
    eprintln!("{}", stats.summary());
    assert!(stats.l2.mean > 15.0, "{}", stats.summary());
}

#[test]
fn sparse_slots_complex_n12() {
    for slots in [128, 1024] {
        let b = setup(BOOT_TEST_N12, slots);
        let values = b.f.complex(slots);
        let stats = run(&b, &values, 1);
        eprintln!("{slots}: {}", stats.summary());
        assert!(stats.l2.mean > 15.0, "{}", stats.summary());
    }
}

#[test]
fn sparse_slots_real_n10() {
    let b = setup(BOOT_TEST_N10, 64);
    let values = real(&b.f.real(64));
    let stats = run(&b, &values, 0);
    eprintln!("{}", stats.summary());
    assert!(stats.l2.mean > 15.0, "{}", stats.summary());
}
