//! Leveled circuits against f64: BSGS linear transforms with double hoisting, and Chebyshev series landing on an exact target scale.

#![allow(clippy::expect_used, reason = "a failed expectation fails the test")]

mod common;

use std::collections::BTreeMap;

use common::Fixture;
use ensi_runtime::ckks::circuits::{ChebyshevEvaluation, LinearTransform, PolynomialEvaluator};
use ensi_runtime::ckks::numerics::chebyshev::ChebyshevSeries;
use ensi_runtime::ckks::scheme::params::{TEST_INSECURE_N11, TEST_INSECURE_N12};
use ensi_runtime::ckks::scheme::{Evaluator, KeyGenerator};
use num_complex::Complex64;

fn mat_vec(diagonals: &BTreeMap<usize, Vec<Complex64>>, x: &[Complex64]) -> Vec<Complex64> {
    let n = x.len();
    (0..n)
        .map(|t| diagonals.iter().map(|(&k, d)| d[t] * x[(t + k) % n]).sum())
        .collect()
}

#[test]
fn linear_transform_matches_the_matrix_product() {
    let f = Fixture::new(TEST_INSECURE_N11, &[]);
    for (slots, indices) in [
        (64usize, vec![0usize, 1, 2, 3, 5, 8, 13, 21, 34, 55, 63]),
        (f.params.max_slots(), vec![0, 1, 7, 64, 65, 300, 1023]),
        (16, (0..16).collect()),
    ] {
        let diagonals: BTreeMap<usize, Vec<Complex64>> =
            indices.iter().map(|&k| (k, f.complex(slots))).collect();
        let level = f.params.max_level();
        let scale = f.params.q()[level] as f64;
        let encoder = ensi_runtime::ckks::scheme::Encoder::new(&f.params);
        let lt = LinearTransform::new(&encoder, &diagonals, slots, level, scale, None)
            .expect("transform");
        // Keys for exactly the rotations the transform reports.
        let mut keygen = KeyGenerator::from_seed(&f.params, [42; 32]).expect("keygen");
        let keys = keygen
            .evaluation_keys(&lt.rotations(), false)
            .expect("keys");
        let eval = Evaluator::new(&f.params, &keys).expect("evaluator");
        let x = f.complex(slots);
        let ct = f.encrypt(&x);
        let out = lt.evaluate(&eval, &ct).expect("evaluate");
        assert_eq!(out.scale(), ct.scale() * scale);
        let out = eval.rescale(&out).expect("rescale");
        assert_eq!(out.level(), level - 1);
        let want = mat_vec(&diagonals, &x);
        // |y| ~ sqrt(#diagonals): compare relative to that.
        let norm = (indices.len() as f64).sqrt();
        let got = f.decrypt(&out);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).norm() / norm)
            .fold(0.0, f64::max);
        eprintln!(
            "lintrans {slots} slots, {} diagonals, n1 = {}, rotations {:?}: worst relative error 2^{:.1}",
            indices.len(),
            lt.baby_step(),
            lt.rotations().len(),
            worst.log2()
        );
        assert!(worst < 2f64.powi(-22), "worst relative error {worst:e}");
        // The naive evaluation (a rotation and ModDown per diagonal) agrees.
        let mut all_keys = keygen
            .evaluation_keys(
                &indices.iter().map(|&k| k as i64).collect::<Vec<_>>(),
                false,
            )
            .expect("keys");
        for g in keys.galois_elements() {
            if let Some(k) = keys.galois(g) {
                all_keys.insert_galois(g, k.clone());
            }
        }
        let naive_eval = Evaluator::new(&f.params, &all_keys).expect("evaluator");
        let naive = eval
            .rescale(&lt.evaluate_naive(&naive_eval, &ct).expect("naive"))
            .expect("rescale");
        let naive = f.decrypt(&naive);
        for (a, b) in naive.iter().zip(&got) {
            assert!((a - b).norm() / norm < 2f64.powi(-22));
        }
    }
}

#[test]
fn linear_transform_reports_missing_keys_and_levels() {
    let f = Fixture::new(TEST_INSECURE_N11, &[1]);
    let encoder = ensi_runtime::ckks::scheme::Encoder::new(&f.params);
    let diagonals: BTreeMap<usize, Vec<Complex64>> = [(0usize, f.complex(32)), (3, f.complex(32))]
        .into_iter()
        .collect();
    let level = f.params.max_level();
    let lt = LinearTransform::new(&encoder, &diagonals, 32, level, 1e12, Some(2)).expect("lt");
    assert_eq!(lt.rotations(), vec![1, 2]);
    let eval = Evaluator::new(&f.params, &f.keys).expect("evaluator");
    let ct = f.encrypt(&f.complex(32));
    let g = f.params.ring().rotation(2).value();
    assert_eq!(
        lt.evaluate(&eval, &ct)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(format!(
            "no Galois key for rotation by 2 (Galois element {g})"
        ))
    );
    let low = eval.drop_levels(&ct, 1).expect("drop");
    assert_eq!(
        lt.evaluate(&eval, &low)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(format!(
            "linear transform: level mismatch ({} vs {level}); drop the higher operand first",
            level - 1
        ))
    );
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn chebyshev_series_land_on_the_exact_target_scale() {
    let f = Fixture::new(TEST_INSECURE_N12, &[]);
    let eval = Evaluator::new(&f.params, &f.keys).expect("evaluator");
    let poly_eval = PolynomialEvaluator::new(&eval);
    let slots = f.params.max_slots();
    for (degree, log_baby, interval) in [
        (7usize, Some(1u32), (-8.0, 8.0)),
        (15, None, (-8.0, 8.0)),
        (31, None, (-8.0, 8.0)),
        (24, Some(3), (-1.0, 1.0)),
        (1, None, (-2.0, 3.0)),
    ] {
        let (a, b) = interval;
        let series = ChebyshevSeries::interpolate(sigmoid, a, b, degree).expect("series");
        let plan = ChebyshevEvaluation::new(series.clone(), log_baby);
        let x: Vec<Complex64> = f
            .real(slots)
            .iter()
            .map(|v| Complex64::new(a + (b - a) * (v + 1.0) / 2.0, 0.0))
            .collect();
        let ct = f.encrypt(&x);
        let out = poly_eval.evaluate(&ct, &plan, None).expect("evaluate");
        let mapping = usize::from(!(a == -1.0 && b == 1.0));
        assert_eq!(
            out.level(),
            ct.level() - mapping - plan.depth(),
            "degree {degree}: depth {}",
            plan.depth()
        );
        assert_eq!(
            out.scale(),
            f.params.default_scale(out.level()),
            "exact target scale"
        );
        let want: Vec<Complex64> = x
            .iter()
            .map(|z| Complex64::new(series.evaluate(z.re), 0.0))
            .collect();
        f.check(
            &format!("chebyshev d={degree} lb={}", plan.log_baby()),
            &out,
            &want,
            22.0,
        );
        // An explicit target scale is honoured exactly too.
        let target = f.params.default_scale(out.level()) * 1.5;
        let out = poly_eval
            .evaluate(&ct, &plan, Some(target))
            .expect("evaluate");
        assert_eq!(out.scale(), target);
    }
}
