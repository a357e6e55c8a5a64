//! Slot-vector primitives of the reference semantics: left rotations and the valid slots of a layout.

use std::ops::Range;

use crate::plan::Layout;

/// Slot vectors of one value: one `Vec<f64>` of `layout.slots` entries per ciphertext.
pub type SlotVectors = Vec<Vec<f64>>;

/// Rotates `slots` left by `steps` in place: slot `j` takes slot `j + steps` (mod the length);
/// a negative `steps` rotates right.
pub fn rotate_left(slots: &mut [f64], steps: i64) {
    let n = slots.len() as i64;
    if n > 0 {
        slots.rotate_left(steps.rem_euclid(n) as usize);
    }
}

/// The blocks of ciphertext `ciphertext` that hold an existing column, as
/// `(block index, column)`: every repetition of a grouped column is listed.
pub fn occupied_blocks(layout: &Layout, ciphertext: u32) -> impl Iterator<Item = (u32, u32)> {
    let per_ct = layout.columns_per_ciphertext();
    let (group, columns) = (layout.group, layout.columns);
    (0..layout.blocks_per_ciphertext()).filter_map(move |block| {
        let column = ciphertext * per_ct + block / group;
        (column < columns).then_some((block, column))
    })
}

/// The valid slots of ciphertext `ciphertext` (tokens `0..T` of every occupied block), as
/// `(slot range, column)`.
pub fn valid_ranges(layout: &Layout, ciphertext: u32) -> impl Iterator<Item = (Range<usize>, u32)> {
    let (block, tokens) = (layout.block as usize, layout.tokens as usize);
    occupied_blocks(layout, ciphertext).map(move |(index, column)| {
        let start = index as usize * block;
        (start..start + tokens, column)
    })
}

/// A fresh all-zero value of `count` ciphertexts of `slots` slots.
pub(crate) fn zeros(count: usize, slots: usize) -> SlotVectors {
    vec![vec![0.0; slots]; count]
}

/// `acc += x`, slotwise.
pub(crate) fn add_assign(acc: &mut [f64], x: &[f64]) {
    acc.iter_mut().zip(x).for_each(|(a, b)| *a += b);
}

/// `acc -= x`, slotwise.
pub(crate) fn sub_assign(acc: &mut [f64], x: &[f64]) {
    acc.iter_mut().zip(x).for_each(|(a, b)| *a -= b);
}

/// `acc *= x`, slotwise.
pub(crate) fn mul_assign(acc: &mut [f64], x: &[f64]) {
    acc.iter_mut().zip(x).for_each(|(a, b)| *a *= b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_rotation_takes_the_slot_steps_ahead() {
        let mut v: Vec<f64> = (0..8).map(f64::from).collect();
        rotate_left(&mut v, 3);
        assert_eq!(v, [3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 1.0, 2.0]);
        rotate_left(&mut v, -3);
        assert_eq!(v, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        rotate_left(&mut v, 8 * 5 + 1);
        assert_eq!(v[0], 1.0);
    }

    #[test]
    fn valid_ranges_skip_empty_blocks_and_repeat_groups() {
        let dense = Layout {
            slots: 64,
            block: 16,
            tokens: 5,
            columns: 6,
            group: 1,
        };
        // Ciphertext 1 holds columns 4 and 5 in blocks 0 and 1; blocks 2 and 3 are empty.
        let ranges: Vec<_> = valid_ranges(&dense, 1).collect();
        assert_eq!(ranges, vec![(0..5, 4), (16..21, 5)]);
        let grouped = Layout { group: 2, ..dense };
        let ranges: Vec<_> = valid_ranges(&grouped, 0).collect();
        assert_eq!(
            ranges,
            vec![(0..5, 0), (16..21, 0), (32..37, 1), (48..53, 1)]
        );
    }
}
