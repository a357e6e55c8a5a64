//! Recipe materialization: RoPE as Hugging Face's half-split rotation, gains and masks zero outside valid slots.

use super::*;
use crate::exec::{decode, materialize};
use crate::plan::{LinearMethod, SignedRow};

const GAIN: &str = "model.layers.0.input_layernorm.weight";
const Q: &str = "model.layers.0.self_attn.q_proj.weight";

fn layout(slots: u32, block: u32, columns: u32, group: u32) -> Layout {
    Layout {
        slots,
        block,
        tokens: 4,
        columns,
        group,
    }
}

/// The reference forward's RoPE (`compiler/src/forward`), verbatim: half-split pairs
/// `(i, i + head_dim/2)` rotated by `p·θ^(−2i/head_dim)` at position `p`.
fn forward_rope(x: &Activation, heads: usize, head_dim: usize, theta: f64) -> Activation {
    let half = head_dim / 2;
    let frequencies: Vec<f64> = (0..half)
        .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
        .collect();
    let mut values = x.values().to_vec();
    for position in 0..x.tokens() {
        let row = &mut values[position * x.columns()..(position + 1) * x.columns()];
        for head in 0..heads {
            let u = &mut row[head * head_dim..(head + 1) * head_dim];
            for (i, frequency) in frequencies.iter().enumerate() {
                let (sin, cos) = (position as f64 * frequency).sin_cos();
                let (a, b) = (u[i], u[i + half]);
                u[i] = a * cos - b * sin;
                u[i + half] = b * cos + a * sin;
            }
        }
    }
    Activation::new(x.tokens(), x.columns(), values).unwrap()
}

fn rope(layout: Layout, sine: bool, factor: f64, position_offset: u32) -> PlainRecipe {
    PlainRecipe::Rope {
        layout,
        head_dim: 8,
        theta: 500000.0,
        sine,
        factor,
        position_offset,
    }
}

#[test]
fn rope_coefficients_follow_the_half_split_frequencies() {
    let mut b = Builder::new();
    let recipes = [
        rope(layout(64, 8, 16, 1), false, 1.0, 0),
        rope(layout(64, 8, 16, 1), true, 0.75, 3),
        rope(layout(128, 8, 16, 2), true, 1.0, 0),
    ];
    for recipe in &recipes {
        b.plain(recipe.clone());
    }
    let (plan, _) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, None).unwrap();
    for recipe in &recipes {
        let PlainRecipe::Rope {
            layout,
            sine,
            factor,
            position_offset,
            ..
        } = *recipe
        else {
            unreachable!()
        };
        let slots = materialize(recipe, &weights).unwrap();
        let mut values = vec![];
        for t in 0..4u32 {
            for j in 0..16u32 {
                let i = (j % 8) % 4;
                let frequency = 500000f64.powf(-((2 * i) as f64) / 8.0);
                let (s, c) = (f64::from(t + position_offset) * frequency).sin_cos();
                values.push(factor * if sine { s } else { c });
            }
        }
        let expected = Activation::new(4, 16, values).unwrap();
        // Bit-identical on every valid slot (every replica), zero elsewhere.
        assert_eq!(slots, encode(&layout, &expected).unwrap(), "{layout}");
    }
}

#[test]
fn rope_through_two_ternary_projections_is_the_forward_rotary_embedding() {
    // RoPE(Wx) = (Wx) ⊙ cos + (rotate_half(W) x) ⊙ sin, with the weight scale folded into
    // both recipes, on dev-h32's q_proj (2 heads of 16).
    let checkpoint = fixture("dev-h32");
    let matrix = checkpoint.ternary(Q).unwrap();
    let beta = matrix.effective_scale();
    let dense = Layout {
        slots: 128,
        block: 8,
        tokens: 4,
        columns: 32,
        group: 1,
    };
    let half: Vec<SignedRow> = (0..32u32)
        .map(|j| {
            let (head, i) = (j / 16, j % 16);
            if i < 8 {
                SignedRow {
                    row: head * 16 + i + 8,
                    negate: true,
                }
            } else {
                SignedRow {
                    row: head * 16 + i - 8,
                    negate: false,
                }
            }
        })
        .collect();
    let identity: Vec<SignedRow> = (0..32)
        .map(|row| SignedRow { row, negate: false })
        .collect();
    let recipe = |sine| PlainRecipe::Rope {
        layout: dense,
        head_dim: 16,
        theta: 500000.0,
        sine,
        factor: beta,
        position_offset: 0,
    };

    let mut b = Builder::new();
    let x = b.input(dense);
    let w = b.ternary(&checkpoint, Q);
    let (cos, sin) = (b.plain(recipe(false)), b.plain(recipe(true)));
    let linear = |b: &mut Builder, rows: &[SignedRow]| {
        b.push(Op::TernaryLinear {
            x,
            weight: w,
            rows: rows.to_vec(),
            out: dense,
            method: LinearMethod::Diagonals { baby_steps: 4 },
            plain_scale: SCALE,
        })
    };
    let (straight, rotated) = (linear(&mut b, &identity), linear(&mut b, &half));
    let c = b.push(Op::MulPlain {
        a: straight,
        plain: cos,
        scale: SCALE,
    });
    let s = b.push(Op::MulPlain {
        a: rotated,
        plain: sin,
        scale: SCALE,
    });
    let y = b.push(Op::Add { a: c, b: s });
    b.output("q", y);
    let (plan, info) = b.finish();

    let xa = random_activation(50, 4, 32);
    let weights = BoundWeights::trusting_matrices(&plan, Some(&checkpoint)).unwrap();
    let run = crate::exec::run(&plan, &info, &weights, &[encode(&dense, &xa).unwrap()]).unwrap();
    let projected: Vec<f64> = (0..4)
        .flat_map(|t| {
            let xa = &xa;
            (0..32).map(move |j| {
                beta * (0..32)
                    .map(|i| f64::from(matrix.entry(j, i)) * xa.get(t, i))
                    .sum::<f64>()
            })
        })
        .collect();
    let want = forward_rope(&Activation::new(4, 32, projected).unwrap(), 2, 16, 500000.0);
    let got = run.output("q").unwrap();
    let scale = want.values().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_diff(got.values(), want.values()) < 1e-12 * scale);
}

#[test]
fn column_vectors_values_and_masks_are_zero_outside_valid_slots() {
    let checkpoint = fixture("dev-h32");
    let gains: Vec<f64> = checkpoint
        .vector(GAIN)
        .unwrap()
        .to_vec()
        .into_iter()
        .map(f64::from)
        .collect();
    let mut b = Builder::new();
    let gain = b.vector(&checkpoint, GAIN);
    let values: Vec<f64> = (0..32).map(|j| f64::from(j) - 3.5).collect();
    let layouts = [
        layout(128, 8, 32, 1),
        layout(128, 8, 32, 2),
        layout(8, 8, 32, 1),
    ];
    for layout in layouts {
        b.plain(PlainRecipe::ColumnVector {
            weight: gain,
            factor: 0.5,
            layout,
        });
        b.plain(PlainRecipe::ColumnValues {
            values: values.clone(),
            layout,
        });
        b.plain(PlainRecipe::ValidMask { layout });
    }
    let (plan, _) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, Some(&checkpoint)).unwrap();
    let per_column = |f: &dyn Fn(usize) -> f64| {
        let v: Vec<f64> = (0..4).flat_map(|_| (0..32).map(f)).collect();
        Activation::new(4, 32, v).unwrap()
    };
    for (recipe, layout) in plan.plains.chunks(3).zip(layouts) {
        let expected = [
            per_column(&|j| 0.5 * gains[j]),
            per_column(&|j| values[j]),
            per_column(&|_| 1.0),
        ];
        for (recipe, expected) in recipe.iter().zip(&expected) {
            let slots = materialize(recipe, &weights).unwrap();
            assert_eq!(slots, encode(&layout, expected).unwrap(), "{layout}");
            assert_eq!(&decode(&layout, &slots).unwrap(), expected);
        }
    }
}

#[test]
fn token_ranges_keep_only_their_tokens_of_every_column() {
    let mut b = Builder::new();
    let layouts = [
        layout(128, 8, 32, 1),
        layout(64, 8, 4, 2),
        layout(8, 8, 3, 1),
    ];
    for layout in layouts {
        b.plain(PlainRecipe::TokenRange {
            layout,
            from: 1,
            to: 3,
        });
    }
    let (plan, _) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, None).unwrap();
    for (recipe, layout) in plan.plains.iter().zip(layouts) {
        let columns = layout.columns as usize;
        let kept: Vec<f64> = (0..4)
            .flat_map(|t| std::iter::repeat_n(if (1..3).contains(&t) { 1.0 } else { 0.0 }, columns))
            .collect();
        let expected = Activation::new(4, columns, kept).unwrap();
        let slots = materialize(recipe, &weights).unwrap();
        assert_eq!(slots, encode(&layout, &expected).unwrap(), "{layout}");
    }
}
