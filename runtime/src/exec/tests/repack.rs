//! Repacking: round trips between column and dense packings, other slot counts, and the literal mask-rotate-fold recipe.

use super::*;
use crate::exec::slots::rotate_left;
use crate::exec::{Repacking, decode_with_spread};

const T: u32 = 5;
const D: u32 = 6;

fn dense(slots: u32, block: u32) -> Layout {
    Layout {
        slots,
        block,
        tokens: T,
        columns: D,
        group: 1,
    }
}

/// Repacks `x` (in `from`) along `path` in one plan; returns every intermediate slot vector.
fn repack_along(from: Layout, path: &[Layout], x: &Activation) -> (Vec<SlotVectors>, PlaintextRun) {
    let mut b = Builder::new();
    let mut value = b.input(from);
    let mut ids = vec![value];
    for to in path {
        value = b.push(Op::Repack {
            a: value,
            to: *to,
            mask_scale: SCALE,
        });
        ids.push(value);
    }
    b.output("y", value);
    let (plan, info) = b.finish();
    let weights = BoundWeights::trusting_matrices(&plan, None).unwrap();
    let mut all = Vec::new();
    let run = crate::exec::run_observed(
        &plan,
        &info,
        &weights,
        &[encode(&from, x).unwrap()],
        |_, v| all.push(v.to_vec()),
    )
    .unwrap();
    (all, run)
}

#[test]
fn column_to_dense_to_column_round_trips_with_zero_padding() {
    let columns = Layout::columns_packed(T, D, 16);
    let x = random_activation(40, T, D);
    let (values, run) = repack_along(columns, &[dense(64, 16), columns], &x);
    assert_eq!(values[1], encode(&dense(64, 16), &x).unwrap());
    assert_eq!(values[2], encode(&columns, &x).unwrap());
    assert_eq!(run.output("y").unwrap(), &x);
    let expected = Repacking::new(&columns, &dense(64, 16)).rotations()
        + Repacking::new(&dense(64, 16), &columns).rotations();
    assert_eq!(run.work.rotations, expected as u64);
}

#[test]
fn dense_layouts_with_other_slot_counts_and_blocks_round_trip() {
    let x = random_activation(41, T, D);
    let paths = [
        (dense(256, 16), vec![dense(64, 16), dense(256, 16)]),
        (
            dense(64, 16),
            vec![dense(64, 32), dense(128, 8), dense(32, 8), dense(64, 16)],
        ),
        (
            dense(128, 16),
            vec![Layout::columns_packed(T, D, 8), dense(128, 16)],
        ),
    ];
    for (from, path) in paths {
        let (values, _) = repack_along(from, &path, &x);
        for (layout, value) in path.iter().zip(&values[1..]) {
            assert_eq!(value, &encode(layout, &x).unwrap(), "{from} -> {layout}");
        }
    }
}

#[test]
fn a_grouped_destination_gets_every_replica() {
    let grouped = Layout {
        group: 2,
        ..dense(128, 16)
    };
    let x = random_activation(42, T, D);
    let (values, _) = repack_along(dense(64, 16), &[grouped], &x);
    assert_eq!(values[1], encode(&grouped, &x).unwrap());
    let (decoded, spread) = decode_with_spread(&grouped, &values[1]).unwrap();
    assert_eq!((decoded, spread), (x, 0.0));
}

#[test]
fn the_literal_mask_rotate_fold_recipe_equals_apply() {
    // What the encrypted executor does, on slot vectors: a sparse source is its periodic
    // extension in W slots; masks and rotations live in W slots; fold into fewer slots.
    let x = random_activation(43, T, D);
    for (from, to) in [
        (dense(256, 16), dense(64, 16)),
        (Layout::columns_packed(T, D, 16), dense(64, 16)),
        (dense(64, 16), Layout::columns_packed(T, D, 8)),
    ] {
        let repacking = Repacking::new(&from, &to);
        let width = repacking.width();
        let source = encode(&from, &x).unwrap();
        let mut acc = vec![vec![0.0; width]; to.ciphertexts() as usize];
        let mut mask = vec![0.0; width];
        for (index, m) in repacking.moves().iter().enumerate() {
            repacking.fill_mask(index, &mut mask);
            let src = &source[m.from as usize];
            let mut masked: Vec<f64> = (0..width).map(|s| mask[s] * src[s % src.len()]).collect();
            rotate_left(&mut masked, i64::from(m.rotation));
            acc[m.to as usize]
                .iter_mut()
                .zip(&masked)
                .for_each(|(a, v)| *a += v);
        }
        for vector in &mut acc {
            for stride in repacking.fold_rotations() {
                let mut rotated = vector.clone();
                rotate_left(&mut rotated, i64::from(stride));
                vector.iter_mut().zip(&rotated).for_each(|(a, v)| *a += v);
            }
            // The fold leaves a to.slots-periodic vector.
            for (j, v) in vector.iter().enumerate() {
                assert_eq!(*v, vector[j % to.slots as usize]);
            }
            vector.truncate(to.slots as usize);
        }
        assert_eq!(acc, repacking.apply(&source), "{from} -> {to}");
        assert_eq!(acc, encode(&to, &x).unwrap(), "{from} -> {to}");
    }
}
