//! Each op of the plaintext executor against a direct f64 computation on the slot vectors.

use super::*;
use crate::exec::{ExecError, PlaintextExecutor, decode, run, run_observed};
use crate::plan::PolyApprox;

/// Two columns blocks of 16 slots, 4 per ciphertext: 6 columns fill 1.5 ciphertexts.
fn dense() -> Layout {
    Layout {
        slots: 64,
        block: 16,
        tokens: 5,
        columns: 6,
        group: 1,
    }
}

/// One column replicated over the 4 blocks of one ciphertext (a per-token statistic).
fn statistic() -> Layout {
    Layout {
        columns: 1,
        group: 4,
        ..dense()
    }
}

/// Runs `plan` on activations and returns the run and every instruction's result.
fn observe_all(
    plan: &Plan,
    info: &PlanInfo,
    inputs: &[&Activation],
) -> (PlaintextRun, Vec<SlotVectors>) {
    let weights = BoundWeights::trusting_matrices(plan, None).unwrap();
    let slots: Vec<SlotVectors> = plan
        .inputs
        .iter()
        .zip(inputs)
        .map(|(signature, x)| encode(&signature.layout, x).unwrap())
        .collect();
    let mut results = Vec::new();
    let run = run_observed(plan, info, &weights, &slots, |index, value| {
        assert_eq!(index, results.len(), "instructions are shown in order");
        results.push(value.to_vec());
    })
    .unwrap();
    (run, results)
}

/// `f` applied slotwise to `x`.
fn slotwise(x: &SlotVectors, f: impl Fn(f64) -> f64) -> SlotVectors {
    x.iter()
        .map(|v| v.iter().map(|&s| f(s)).collect())
        .collect()
}

/// `f` applied slotwise to `x` and `y[i]` (or `y[0]` when `y` has one ciphertext).
fn pairwise(x: &SlotVectors, y: &SlotVectors, f: impl Fn(f64, f64) -> f64) -> SlotVectors {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let w = &y[if y.len() == 1 { 0 } else { i }];
            v.iter().zip(w).map(|(&a, &b)| f(a, b)).collect()
        })
        .collect()
}

/// Left rotation by `steps`, by definition.
fn rotated(x: &SlotVectors, steps: i64) -> SlotVectors {
    x.iter()
        .map(|v| {
            let n = v.len() as i64;
            (0..n)
                .map(|j| v[(j + steps).rem_euclid(n) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn the_verifier_tests_tiny_plan_runs() {
    // input -> mul_plain(0.5) -> rescale -> add to itself: x again, exactly.
    let plan = crate::plan::check::tests::tiny_plan();
    let info = check(&plan).unwrap();
    let layout = plan.inputs[0].layout;
    let x = random_activation(1, layout.tokens, layout.columns);
    let run = run_plain(&plan, &info, &[&x]);
    assert_eq!(run.output("hidden").unwrap(), &x);
    // Each instruction holds its operand and result (2 + 2) before freeing the operand.
    assert_eq!(run.peak_live_ciphertexts, 4);
    let counts: Vec<_> = run.op_counts.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        counts,
        [("add", 1), ("input", 1), ("mul_plain", 1), ("rescale", 1)]
    );
    assert_eq!(run.work.plain_mults, 2);
}

#[test]
fn elementwise_ops_match_a_direct_computation() {
    let mut b = Builder::new();
    let (x, y) = (b.input(dense()), b.input(dense()));
    let ops = [
        b.push(Op::Add { a: x, b: y }),
        b.push(Op::Sub { a: x, b: y }),
        b.push(Op::Neg { a: x }),
        b.push(Op::MulCt { a: x, b: y }),
        b.push(Op::Square { a: x }),
        b.push(Op::MulConst {
            a: x,
            value: 0.3,
            scale: 1048576.0,
        }),
        b.push(Op::AddConst { a: x, value: 0.25 }),
        b.push(Op::Relabel { a: x, factor: 3.5 }),
        b.push(Op::Rescale { a: x }),
        b.push(Op::DropLevels { a: y, levels: 3 }),
    ];
    let last = *ops.last().unwrap();
    b.output("y", last);
    let (plan, info) = b.finish();
    let (xa, ya) = (random_activation(2, 5, 6), random_activation(3, 5, 6));
    let (_, results) = observe_all(&plan, &info, &[&xa, &ya]);
    let (xs, ys) = (&results[x.0 as usize], &results[y.0 as usize]);
    let encoded_const = (0.3f64 * 1048576.0).round() / 1048576.0;
    assert_ne!(
        encoded_const, 0.3,
        "the constant is rounded to its encoding"
    );
    let expected = [
        pairwise(xs, ys, |a, b| a + b),
        pairwise(xs, ys, |a, b| a - b),
        slotwise(xs, |a| -a),
        pairwise(xs, ys, |a, b| a * b),
        slotwise(xs, |a| a * a),
        slotwise(xs, |a| a * encoded_const),
        slotwise(xs, |a| a + 0.25),
        slotwise(xs, |a| a * 3.5),
        xs.clone(),
        ys.clone(),
    ];
    for (value, expected) in ops.iter().zip(expected) {
        assert_eq!(
            results[value.0 as usize],
            expected,
            "{}",
            plan.instrs[value.0 as usize].op.mnemonic()
        );
    }
    // add_const reaches the padding too.
    assert_eq!(results[ops[6].0 as usize][0][5], 0.25);
}

#[test]
fn products_broadcast_a_single_ciphertext() {
    let mut b = Builder::new();
    let x = b.input(dense());
    let s = b.input(statistic());
    let values = b.plain(PlainRecipe::ColumnValues {
        values: vec![1.0, -2.0, 0.5, 4.0, -1.5, 3.0],
        layout: dense(),
    });
    let left = b.push(Op::MulCt { a: x, b: s });
    let right = b.push(Op::MulCt { a: s, b: x });
    let masked = b.push(Op::MulPlain {
        a: x,
        plain: values,
        scale: SCALE,
    });
    let spread = b.push(Op::MulPlain {
        a: s,
        plain: values,
        scale: SCALE,
    });
    let shifted = b.push(Op::AddPlain {
        a: x,
        plain: values,
    });
    b.output("left", left);
    let (plan, info) = b.finish();
    assert_eq!(
        plan.value(spread).count,
        2,
        "a one-ciphertext operand is broadcast"
    );
    let (xa, sa) = (random_activation(4, 5, 6), random_activation(5, 5, 1));
    let (run, results) = observe_all(&plan, &info, &[&xa, &sa]);
    let (xs, ss) = (&results[x.0 as usize], &results[s.0 as usize]);
    let p = crate::exec::materialize(
        &plan.plains[0],
        &BoundWeights::trusting_matrices(&plan, None).unwrap(),
    )
    .unwrap();
    assert_eq!(results[left.0 as usize], pairwise(xs, ss, |a, b| a * b));
    assert_eq!(results[right.0 as usize], results[left.0 as usize]);
    assert_eq!(results[masked.0 as usize], pairwise(&p, xs, |p, a| a * p));
    assert_eq!(results[spread.0 as usize], pairwise(&p, ss, |p, a| a * p));
    assert_eq!(results[shifted.0 as usize], pairwise(xs, &p, |a, p| a + p));
    // x ⊙ s in [T, d]: every column scaled by the token's statistic.
    let product = run.output("left").unwrap();
    for t in 0..5 {
        for j in 0..6 {
            assert_eq!(product.get(t, j), xa.get(t, j) * sa.get(t, 0));
        }
    }
    assert_eq!(run.work.ct_mults, 4);
}

#[test]
fn products_broadcast_each_ciphertext_over_its_group() {
    // 16 columns in 4 ciphertexts against 2 values per token in 2 ciphertexts (each value
    // replicated over the 4 blocks of its ciphertext): ciphertext i meets ciphertext i / 2.
    let wide = Layout {
        columns: 16,
        ..dense()
    };
    let heads = Layout {
        columns: 2,
        group: 4,
        ..dense()
    };
    let mut b = Builder::new();
    let x = b.input(wide);
    let h = b.input(heads);
    let product = b.push(Op::MulCt { a: x, b: h });
    let swapped = b.push(Op::MulCt { a: h, b: x });
    b.output("product", product);
    let (plan, info) = b.finish();
    assert_eq!((plan.value(x).count, plan.value(h).count), (4, 2));
    assert_eq!(plan.value(product).count, 4);
    let (xa, ha) = (random_activation(8, 5, 16), random_activation(9, 5, 2));
    let (run, results) = observe_all(&plan, &info, &[&xa, &ha]);
    let (xs, hs) = (&results[x.0 as usize], &results[h.0 as usize]);
    for (i, ct) in results[product.0 as usize].iter().enumerate() {
        let expected: Vec<f64> = xs[i].iter().zip(&hs[i / 2]).map(|(a, b)| a * b).collect();
        assert_eq!(ct, &expected, "ciphertext {i} meets ciphertext {}", i / 2);
    }
    assert_eq!(results[swapped.0 as usize], results[product.0 as usize]);
    // In [T, d]: columns 0..8 scaled by value 0 of their token, columns 8..16 by value 1.
    let out = run.output("product").unwrap();
    for t in 0..5 {
        for j in 0..16 {
            assert_eq!(out.get(t, j), xa.get(t, j) * ha.get(t, j / 8));
        }
    }
}

#[test]
fn rotations_move_slots_left_and_rot_sum_adds_all_strides() {
    let mut b = Builder::new();
    let x = b.input(dense());
    let left = b.push(Op::Rotate { a: x, steps: 3 });
    let right = b.push(Op::Rotate { a: x, steps: -17 });
    let all_blocks = b.push(Op::RotSum {
        a: x,
        step: 16,
        count: 4,
    });
    b.output("sum", all_blocks);
    let (plan, info) = b.finish();
    let xa = random_activation(6, 5, 6);
    let (run, results) = observe_all(&plan, &info, &[&xa]);
    let xs = &results[x.0 as usize];
    assert_eq!(results[left.0 as usize], rotated(xs, 3));
    assert_eq!(results[right.0 as usize], rotated(xs, -17));
    let mut direct = zeros_like(xs);
    for i in 0..4 {
        let term = rotated(xs, 16 * i);
        direct = pairwise(&direct, &term, |a, b| a + b);
    }
    for (got, want) in results[all_blocks.0 as usize].iter().zip(&direct) {
        assert!(max_diff(got, want) < 1e-14);
    }
    // Every block now holds the sum of the ciphertext's columns.
    let sum = run.output("sum").unwrap();
    for t in 0..5 {
        let first: f64 = (0..4).map(|j| xa.get(t, j)).sum();
        assert!((sum.get(t, 0) - first).abs() < 1e-14);
    }
    assert_eq!(run.work.rotations, 2 * 2 + 2 * 2);
}

fn zeros_like(x: &SlotVectors) -> SlotVectors {
    x.iter().map(|v| vec![0.0; v.len()]).collect()
}

#[test]
fn a_right_rotation_of_zero_padded_keys_is_causal() {
    // Block 16 >= 2T − 1 = 9: shifting right by r < T pulls padding (zeros) into tokens t < r.
    let mut b = Builder::new();
    let keys = b.input(dense());
    let shifts: Vec<ValueId> = (0..5)
        .map(|r| b.push(Op::Rotate { a: keys, steps: -r }))
        .collect();
    let (plan, info) = b.finish();
    assert!(plan.value(shifts[0]).zero_padding);
    assert!(
        !plan.value(shifts[1]).zero_padding,
        "a misaligned rotation leaves garbage in padding"
    );
    let k = random_activation(7, 5, 6);
    let (_, results) = observe_all(&plan, &info, &[&k]);
    for (r, value) in shifts.iter().enumerate() {
        let shifted = decode(&dense(), &results[value.0 as usize]).unwrap();
        for t in 0..5 {
            for j in 0..6 {
                let expected = if t < r { 0.0 } else { k.get(t - r, j) };
                assert_eq!(shifted.get(t, j), expected, "r={r} t={t} j={j}");
            }
        }
    }
}

#[test]
fn ciphertexts_are_summed_sliced_and_concatenated() {
    let columns = Layout::columns_packed(5, 6, 8);
    let mut b = Builder::new();
    let x = b.input(columns);
    let y = b.input(columns);
    let pairs = b.push_with_layout(
        Op::SumCiphertexts { a: x, group: 2 },
        columns.with_columns(3),
    );
    let middle = b.push_with_layout(
        Op::Slice {
            a: x,
            start: 1,
            count: 3,
        },
        columns.with_columns(3),
    );
    let both = b.push_with_layout(Op::Concat { parts: vec![x, y] }, columns.with_columns(12));
    b.output("both", both);
    let (plan, info) = b.finish();
    let (xa, ya) = (random_activation(8, 5, 6), random_activation(9, 5, 6));
    let (run, results) = observe_all(&plan, &info, &[&xa, &ya]);
    let (xs, ys) = (&results[x.0 as usize], &results[y.0 as usize]);
    let sums: SlotVectors = xs
        .chunks(2)
        .map(|p| p[0].iter().zip(&p[1]).map(|(a, b)| a + b).collect())
        .collect();
    assert_eq!(results[pairs.0 as usize], sums);
    assert_eq!(results[middle.0 as usize], xs[1..4].to_vec());
    let joined: SlotVectors = xs.iter().chain(ys).cloned().collect();
    assert_eq!(results[both.0 as usize], joined);
    let decoded = run.output("both").unwrap();
    assert_eq!(decoded.get(2, 7), ya.get(2, 1));
}

#[test]
fn poly_is_clenshaw_on_every_slot_and_reports_inputs_outside_its_interval() {
    let approx = PolyApprox {
        function: "test cubic".into(),
        lo: -0.5,
        hi: 0.5,
        coefficients: vec![0.1, 0.7, -0.2, 0.05],
        depth: 2,
        max_error: 0.0,
    };
    let mut b = Builder::new();
    let x = b.input(dense());
    let id = b.approx(approx.clone());
    let y = b.push(Op::Poly { a: x, approx: id });
    b.output("y", y);
    let (plan, info) = b.finish();
    let xa = random_activation(10, 5, 6);
    let (run, results) = observe_all(&plan, &info, &[&xa]);
    assert_eq!(
        results[y.0 as usize],
        slotwise(&results[x.0 as usize], |v| approx.evaluate(v))
    );
    let valid = xa.values();
    let outside = valid.iter().filter(|v| v.abs() > 0.5).count() as u64;
    let worst = valid.iter().fold(0.0f64, |m, v| m.max(v.abs())) - 0.5;
    let min = valid.iter().copied().fold(f64::INFINITY, f64::min);
    let max = valid.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let diagnostic = &run.diagnostics.approximations[0];
    assert_eq!(diagnostic.inputs, 30);
    assert!(outside > 0);
    assert_eq!(diagnostic.out_of_interval, outside);
    assert!((diagnostic.worst_excursion - worst).abs() < 1e-15);
    assert_eq!(diagnostic.worst_instr, Some(y.0 as usize));
    assert_eq!(diagnostic.observed, Some((min, max)));
    assert!(run.diagnostics.any_out_of_interval());
    let text = run.diagnostics.to_string();
    assert!(
        text.starts_with(&format!(
            "approx#0 test cubic on [-0.500000, 0.500000]: 30 inputs in [{min:.6}, {max:.6}], {outside} outside"
        )),
        "{text}"
    );
}

#[test]
fn bootstrap_is_the_identity_and_measures_data_and_padding() {
    // Padding 10, data x: x + 10 everywhere, minus 10 on valid slots only.
    let mut b = Builder::new();
    let x = b.input(dense());
    let minus_ten = b.plain(PlainRecipe::ColumnValues {
        values: vec![-10.0; 6],
        layout: dense(),
    });
    let lifted = b.push(Op::AddConst { a: x, value: 10.0 });
    let dirty = b.push(Op::AddPlain {
        a: lifted,
        plain: minus_ten,
    });
    let refreshed = b.push(Op::Bootstrap { a: dirty, level: 9 });
    b.output("y", refreshed);
    let (plan, info) = b.finish();
    let xa = random_activation(11, 5, 6);
    let (run, results) = observe_all(&plan, &info, &[&xa]);
    assert_eq!(results[refreshed.0 as usize], results[dirty.0 as usize]);
    let measured = &run.diagnostics.bootstraps[0];
    let max_data = xa.values().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!((measured.max_abs_valid - max_data).abs() < 1e-14);
    assert_eq!(measured.max_abs_all, 10.0);
    assert_eq!(
        (measured.instr, measured.value, measured.ciphertexts),
        (3, dirty, 2)
    );
    assert_eq!(run.work.bootstrapped, 2);
    assert!(
        run.diagnostics
            .to_string()
            .contains("bootstrap at instruction 3 (v2, 2 ct)")
    );
}

#[test]
fn values_die_after_their_last_use() {
    // x feeds three ops; a, b die at the add; peak = x, a, b and the sum (2 each).
    let mut b = Builder::new();
    let x = b.input(dense());
    let a = b.push(Op::Neg { a: x });
    let c = b.push(Op::AddConst { a: x, value: 0.5 });
    let sum = b.push(Op::Add { a, b: c });
    b.output("sum", sum);
    let (plan, info) = b.finish();
    assert_eq!(plan.instrs[2].frees, vec![x]);
    let xa = random_activation(12, 5, 6);
    let run = run_plain(&plan, &info, &[&xa]);
    assert_eq!(run.peak_live_ciphertexts, 6);
    let y = run.output("sum").unwrap();
    assert_eq!(y.get(1, 1), -xa.get(1, 1) + (xa.get(1, 1) + 0.5));
}

#[test]
fn bad_inputs_and_foreign_certificates_are_refused() {
    let mut b = Builder::new();
    let x = b.input(dense());
    b.output("x", x);
    let (plan, info) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, None).unwrap();
    let good = encode(&dense(), &random_activation(13, 5, 6)).unwrap();
    let message =
        |inputs: &[SlotVectors]| run(&plan, &info, &weights, inputs).unwrap_err().to_string();
    assert_eq!(message(&[]), "the plan takes 1 inputs, 0 were given");
    assert_eq!(
        message(&[good[..1].to_vec()]),
        "input `x0`: expected 2 ciphertexts, found 1"
    );
    let mut short = good.clone();
    short[1].pop();
    assert_eq!(
        message(&[short]),
        "input `x0`: ciphertext 1 has 63 slots, the layout has 64"
    );

    let tiny = crate::plan::check::tests::tiny_plan();
    let tiny_info = check(&tiny).unwrap();
    assert_eq!(
        PlaintextExecutor::new(&plan, &tiny_info, &weights)
            .unwrap_err()
            .to_string(),
        "the plan info does not describe this plan (check the plan that is run)"
    );
    assert_eq!(
        PlaintextExecutor::new(&tiny, &tiny_info, &weights)
            .unwrap_err()
            .to_string(),
        "the weights were bound for another plan (bind them to the plan that is run)"
    );
}

#[test]
fn an_operand_freed_too_early_is_an_error_not_a_panic() {
    // A plan edited after its check: v0 is freed by the instruction that defines it.
    let mut b = Builder::new();
    let x = b.input(dense());
    let y = b.push(Op::Neg { a: x });
    b.output("y", y);
    let (mut plan, info) = b.finish();
    plan.instrs[1].frees.clear();
    plan.instrs[0].frees.push(x);
    let weights = BoundWeights::trusting_matrices(&plan, None).unwrap();
    let inputs = [encode(&dense(), &random_activation(14, 5, 6)).unwrap()];
    let error = run(&plan, &info, &weights, &inputs).unwrap_err();
    assert_eq!(error, ExecError::DeadOperand { instr: 1, value: x });
    assert_eq!(
        error.to_string(),
        "instruction 1 uses v0, which is not live"
    );
}
