//! Ternary linear layers on the fixtures' weights: both methods equal `W'x`, and the BSGS pieces compose.

use ensi_checkpoint::TernaryMatrix;

use super::*;
use crate::exec::slots::rotate_left;
use crate::exec::{BlockDiagonals, ColumnSums, DiagonalPattern, decode};
use crate::plan::{LinearMethod, SignedRow};

const Q: &str = "model.layers.0.self_attn.q_proj.weight";
const K: &str = "model.layers.0.self_attn.k_proj.weight";
const DOWN: &str = "model.layers.1.mlp.down_proj.weight";

/// Rows `0..n`, unsigned.
fn identity(n: u32) -> Vec<SignedRow> {
    (0..n).map(|row| SignedRow { row, negate: false }).collect()
}

/// RoPE's `rotate_half` per head: `[−x2, x1]` as rows of W.
fn rotate_half(heads: u32, head_dim: u32) -> Vec<SignedRow> {
    let half = head_dim / 2;
    (0..heads * head_dim)
        .map(|j| {
            let (head, i) = (j / head_dim, j % head_dim);
            if i < half {
                SignedRow {
                    row: head * head_dim + i + half,
                    negate: true,
                }
            } else {
                SignedRow {
                    row: head * head_dim + i - half,
                    negate: false,
                }
            }
        })
        .collect()
}

/// Grouped-query replication: query head `h` reads key head `h / (heads / kv_heads)`.
fn replicate_kv(heads: u32, kv_heads: u32, head_dim: u32) -> Vec<SignedRow> {
    (0..heads * head_dim)
        .map(|j| SignedRow {
            row: (j / head_dim) / (heads / kv_heads) * head_dim + j % head_dim,
            negate: false,
        })
        .collect()
}

/// `W'x` by definition.
fn direct(matrix: &TernaryMatrix, rows: &[SignedRow], x: &Activation) -> Activation {
    let mut values = Vec::new();
    for t in 0..x.tokens() {
        for row in rows {
            let dot: f64 = (0..x.columns())
                .map(|i| f64::from(matrix.entry(row.row as usize, i)) * x.get(t, i))
                .sum();
            values.push(if row.negate { -dot } else { dot });
        }
    }
    Activation::new(x.tokens(), rows.len(), values).unwrap()
}

/// Runs one ternary linear op from layout `input` to `output` and returns the output slots.
fn run_linear(
    checkpoint: &Checkpoint,
    weight: &str,
    rows: &[SignedRow],
    input: Layout,
    output: Layout,
    method: LinearMethod,
    x: &Activation,
) -> (SlotVectors, PlaintextRun) {
    let mut b = Builder::new();
    let xv = b.input(input);
    let weight = b.ternary(checkpoint, weight);
    let y = b.push(Op::TernaryLinear {
        x: xv,
        weight,
        rows: rows.to_vec(),
        out: output,
        method,
        plain_scale: if matches!(method, LinearMethod::Columns) {
            1.0
        } else {
            SCALE
        },
    });
    b.output("y", y);
    let (plan, info) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, Some(checkpoint)).unwrap();
    let inputs = [encode(&input, x).unwrap()];
    let mut slots = Vec::new();
    let run = crate::exec::run_observed(&plan, &info, &weights, &inputs, |index, value| {
        if index == y.0 as usize {
            slots = value.to_vec();
        }
    })
    .unwrap();
    (slots, run)
}

fn dense(slots: u32, columns: u32) -> Layout {
    Layout {
        slots,
        block: 16,
        tokens: 8,
        columns,
        group: 1,
    }
}

#[test]
fn both_methods_compute_w_x_for_several_layouts_and_row_maps() {
    let checkpoint = fixture("dev-h64");
    let cases: [(&str, Vec<SignedRow>); 4] = [
        (Q, identity(64)),
        (Q, rotate_half(4, 16)),
        (K, replicate_kv(4, 2, 16)),
        (DOWN, identity(64)),
    ];
    for (seed, (weight, rows)) in (20..).zip(&cases) {
        let matrix = checkpoint.ternary(weight).unwrap();
        let (d_in, d_out) = (matrix.cols() as u32, rows.len() as u32);
        let x = random_activation(seed, 8, d_in);
        let want = direct(matrix, rows, &x);
        let scale = want.values().iter().fold(1.0f64, |m, v| m.max(v.abs()));

        let (columns, _) = run_linear(
            &checkpoint,
            weight,
            rows,
            Layout::columns_packed(8, d_in, 16),
            Layout::columns_packed(8, d_out, 16),
            LinearMethod::Columns,
            &x,
        );
        let by_columns = decode(&Layout::columns_packed(8, d_out, 16), &columns).unwrap();
        assert!(
            max_diff(by_columns.values(), want.values()) < 1e-12 * scale,
            "{weight}"
        );

        // 8 and 16 blocks per ciphertext; d_in = 176 leaves a partial last ciphertext.
        for (slots, baby_steps) in [(128, 1), (128, 3), (256, 4), (256, 16), (256, 5)] {
            let (input, output) = (dense(slots, d_in), dense(slots, d_out));
            let (diagonals, run) = run_linear(
                &checkpoint,
                weight,
                rows,
                input,
                output,
                LinearMethod::Diagonals { baby_steps },
                &x,
            );
            let by_diagonals = decode(&output, &diagonals).unwrap();
            let error = max_diff(by_diagonals.values(), want.values());
            assert!(
                error < 1e-12 * scale,
                "{weight} slots={slots} baby={baby_steps}: {error}"
            );
            assert!(max_diff(by_diagonals.values(), by_columns.values()) < 1e-12 * scale);
            // Padding and empty blocks are exactly zero.
            let zero = encode(&output, &by_diagonals).unwrap();
            assert_eq!(diagonals, zero, "{weight} slots={slots} baby={baby_steps}");
            let pattern = DiagonalPattern::new(matrix, rows, &input, &output, baby_steps);
            assert_eq!(
                &pattern,
                BlockDiagonals::new(matrix, rows, &input, &output, baby_steps).pattern()
            );
            assert_eq!(
                run.work.nonzero_diagonals,
                pattern.nonzero_diagonals() as u64
            );
            assert_eq!(run.work.rotations, pattern.rotations() as u64);
        }
    }
}

#[test]
fn column_sums_list_the_signed_inputs_of_each_output() {
    let checkpoint = fixture("dev-h64");
    let matrix = checkpoint.ternary(Q).unwrap();
    let rows = rotate_half(4, 16);
    let sums = ColumnSums::new(matrix, &rows);
    assert_eq!(sums.outputs(), 64);
    let mut terms = 0;
    for (j, row) in rows.iter().enumerate() {
        let expected: Vec<_> = (0..64)
            .filter_map(|i| {
                let w = matrix.entry(row.row as usize, i);
                (w != 0).then_some(crate::exec::SignedColumn {
                    column: i as u32,
                    negate: (w < 0) != row.negate,
                })
            })
            .collect();
        terms += expected.len();
        assert_eq!(sums.terms(j), expected.as_slice());
    }
    assert_eq!(sums.additions(), terms - 64);
}

#[test]
fn the_column_method_sums_whole_slot_vectors_padding_included() {
    let checkpoint = fixture("dev-h64");
    let matrix = checkpoint.ternary(Q).unwrap();
    let rows = identity(64);
    let sums = ColumnSums::new(matrix, &rows);
    let x: SlotVectors = (0..64).map(|i| random_values(100 + i, 16)).collect();
    let y = sums.apply(&x, 16);
    for (j, out) in y.iter().enumerate() {
        let mut want = vec![0.0; 16];
        for term in sums.terms(j) {
            let sign = if term.negate { -1.0 } else { 1.0 };
            for (w, v) in want.iter_mut().zip(&x[term.column as usize]) {
                *w += sign * v;
            }
        }
        assert_eq!(out, &want);
    }
}

#[test]
fn nonzero_diagonals_are_counted_and_zero_diagonals_skipped() {
    let checkpoint = fixture("dev-h64");
    let matrix = checkpoint.ternary(DOWN).unwrap();
    let (input, output) = (dense(128, 176), dense(128, 64));
    let mut buffer = vec![0.0; 128];
    for rows in [
        identity(64),
        vec![
            SignedRow {
                row: 5,
                negate: true
            };
            3
        ],
    ] {
        let output = output.with_columns(rows.len() as u32);
        let d = BlockDiagonals::new(matrix, &rows, &input, &output, 3);
        let pattern = d.pattern();
        assert_eq!(
            pattern,
            &DiagonalPattern::new(matrix, &rows, &input, &output, 3)
        );
        let mut brute = 0;
        for o in 0..pattern.output_ciphertexts() {
            for i in 0..pattern.input_ciphertexts() {
                for r in 0..8 {
                    d.fill_diagonal(o, i, r, &mut buffer);
                    let nonzero = buffer.iter().any(|&v| v != 0.0);
                    assert_eq!(pattern.is_nonzero(o, i, r), nonzero);
                    brute += usize::from(nonzero);
                }
            }
        }
        assert_eq!(pattern.nonzero_diagonals(), brute);
    }
    // Three rows (one output ciphertext, blocks 0..3): diagonals r with k + r landing on a
    // nonzero entry of row 5 for k < 3; at most 3 · 8 per input ciphertext of 22.
    let few = DiagonalPattern::new(
        matrix,
        &[SignedRow {
            row: 5,
            negate: true,
        }; 3],
        &input,
        &output.with_columns(3),
        3,
    );
    assert!(few.nonzero_diagonals() <= 22 * 8);
    assert!(
        few.nonzero_diagonals()
            < DiagonalPattern::new(matrix, &identity(64), &input, &output, 3).nonzero_diagonals()
    );
}

#[test]
fn prerotated_baby_step_giant_step_equals_the_diagonal_sum() {
    // The encrypted executor's recipe, on slot vectors: hoisted baby rotations, pre-rotated
    // diagonals, one giant rotation per (output, giant step).
    let checkpoint = fixture("dev-h64");
    let matrix = checkpoint.ternary(DOWN).unwrap();
    let (input, output) = (dense(128, 176), dense(128, 64));
    let rows = rotate_half(4, 16);
    let x = encode(&input, &random_activation(30, 8, 176)).unwrap();
    for baby_steps in [1, 3, 8] {
        let d = BlockDiagonals::new(matrix, &rows, &input, &output, baby_steps);
        let s = d.pattern().schedule().clone();
        let outputs = d.pattern().output_ciphertexts();
        let mut diagonal = vec![0.0; 128];

        // Σ_i Σ_r diag(o, i, r) ⊙ rot_left(x_i, r·block).
        let mut naive = vec![vec![0.0; 128]; outputs as usize];
        for (o, y) in (0..outputs).zip(&mut naive) {
            for (i, x_i) in (0..).zip(&x) {
                for r in 0..8 {
                    d.fill_diagonal(o, i, r, &mut diagonal);
                    let mut rotated = x_i.clone();
                    rotate_left(&mut rotated, i64::from(r * 16));
                    for ((y, w), v) in y.iter_mut().zip(&diagonal).zip(&rotated) {
                        *y += w * v;
                    }
                }
            }
        }

        let babies: Vec<Vec<Vec<f64>>> = x
            .iter()
            .map(|x_i| {
                (0..s.baby)
                    .map(|j| {
                        let mut rotated = x_i.clone();
                        rotate_left(&mut rotated, i64::from(j * 16));
                        rotated
                    })
                    .collect()
            })
            .collect();
        let mut bsgs = vec![vec![0.0; 128]; outputs as usize];
        for (o, y) in (0..outputs).zip(&mut bsgs) {
            for g in 0..s.giant {
                let mut sum = vec![0.0; 128];
                for (i, j) in d.pattern().giant_step_terms(o, g) {
                    d.fill_prerotated(o, i, g, j, &mut diagonal);
                    for ((acc, w), v) in sum
                        .iter_mut()
                        .zip(&diagonal)
                        .zip(&babies[i as usize][j as usize])
                    {
                        *acc += w * v;
                    }
                }
                rotate_left(&mut sum, i64::from(g * s.baby * 16));
                y.iter_mut().zip(&sum).for_each(|(y, v)| *y += v);
            }
        }
        let applied = d.apply(&x);
        assert_eq!(applied.len(), naive.len());
        for ((naive, bsgs), applied) in naive.iter().zip(&bsgs).zip(&applied) {
            assert!(max_diff(naive, bsgs) < 1e-12, "baby={baby_steps}");
            assert!(max_diff(naive, applied) < 1e-12, "baby={baby_steps}");
        }
    }
}
