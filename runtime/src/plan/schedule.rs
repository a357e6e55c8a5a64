//! Rotation schedules of the macro ops, shared by the compiler (keys, costs) and the executors.
//!
//! Whatever rotates must agree between the side that generates Galois keys and the side that
//! uses them; deriving both from these functions makes that true by construction.

use std::collections::BTreeMap;

use super::layout::{Layout, SlotPosition};

/// Baby-step giant-step split of a block-diagonal ternary linear layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagonalSchedule {
    /// Blocks per ciphertext (number of block diagonals).
    pub diagonals: u32,
    /// Baby steps per giant step.
    pub baby: u32,
    /// Giant steps.
    pub giant: u32,
    /// Slots per block (the rotation unit).
    pub block: u32,
}

impl DiagonalSchedule {
    /// The schedule for layouts with `blocks` blocks of `block` slots per ciphertext, with
    /// `baby` baby steps (clamped to a divisor-friendly value in `1..=blocks`).
    pub fn new(blocks: u32, block: u32, baby: u32) -> Self {
        let baby = baby.clamp(1, blocks.max(1));
        DiagonalSchedule {
            diagonals: blocks,
            baby,
            giant: blocks.div_ceil(baby),
            block,
        }
    }

    /// Left-rotation steps of the baby steps (applied to every input ciphertext, hoisted).
    pub fn baby_rotations(&self) -> impl Iterator<Item = i32> + '_ {
        (1..self.baby).map(move |j| (j * self.block) as i32)
    }

    /// Left-rotation steps of the giant steps (applied once per output ciphertext).
    pub fn giant_rotations(&self) -> impl Iterator<Item = i32> + '_ {
        (1..self.giant).map(move |i| (i * self.baby * self.block) as i32)
    }

    /// The diagonal index of baby step `j` in giant step `i`, if it exists.
    pub fn diagonal(&self, giant: u32, baby: u32) -> Option<u32> {
        let r = giant * self.baby + baby;
        (r < self.diagonals).then_some(r)
    }
}

/// One move of a repack: mask the slots of `from` that hold data bound for `to`, rotate them
/// left by `rotation`, and accumulate into `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepackMove {
    /// Source ciphertext.
    pub from: u32,
    /// Destination ciphertext.
    pub to: u32,
    /// Left rotation applied after masking.
    pub rotation: i32,
    /// Source slots kept by the mask (sorted).
    pub slots: Vec<u32>,
}

/// The moves that carry every valid slot of `from` to its first position in `to`, grouped by
/// (source, destination, rotation) so that each group costs one mask and one rotation.
///
/// Both layouts must describe the same `[T, d]` data (tokens, columns). When the source has
/// more slots than the destination, the destination reads the source modulo its slot count:
/// every moved value lands at `to_slot mod to.slots` after the rotation, and the executor
/// folds the source's replicas (see [`Layout`]).
pub fn repack_schedule(from: &Layout, to: &Layout) -> Vec<RepackMove> {
    let mut groups: BTreeMap<(u32, u32, i32), Vec<u32>> = BTreeMap::new();
    let width = from.slots.max(to.slots) as i64;
    for column in 0..from.columns.min(to.columns) {
        for token in 0..from.tokens.min(to.tokens) {
            let source: SlotPosition = from.position(column, token);
            for target in to.positions(column, token) {
                // Normalised into (−width/2, width/2]: the shortest rotation either way.
                let rotation = (i64::from(source.slot) - i64::from(target.slot)).rem_euclid(width);
                let rotation = if rotation > width / 2 {
                    rotation - width
                } else {
                    rotation
                };
                groups
                    .entry((source.ciphertext, target.ciphertext, rotation as i32))
                    .or_default()
                    .push(source.slot);
            }
        }
    }
    groups
        .into_iter()
        .map(|((from, to, rotation), mut slots)| {
            slots.sort_unstable();
            slots.dedup();
            RepackMove {
                from,
                to,
                rotation,
                slots,
            }
        })
        .collect()
}

/// Left-rotation steps of the fold that ends a repack into fewer slots: `to.slots · 2^i` for
/// `2^i < from.slots / to.slots` (none when the destination has at least as many slots).
///
/// After masking, rotating and accumulating in `from.slots` slots, every moved value sits in
/// the first `to.slots` slots; adding these rotations (doubling, like [`rot_sum_rotations`])
/// makes the vector `to.slots`-periodic, i.e. a ciphertext of the smaller subring that
/// decodes to the same values in `to.slots` slots.
pub fn fold_rotations(from: &Layout, to: &Layout) -> impl Iterator<Item = i32> + use<> {
    let replicas = (from.slots / to.slots.max(1)).max(1);
    rot_sum_rotations(to.slots, replicas)
}

/// The Galois element of a left rotation by `steps` of a value with `slots` slots in the ring
/// of degree `2^log_n`: `5^(steps mod slots) mod 2N` (slot convention of
/// `ckks::numerics::embedding`).
///
/// A sparse value (`slots < N/2`) is `slots`-periodic in the full ring, so rotations that agree
/// modulo `slots` act alike on it; reducing the step modulo the value's own slot count makes
/// them share one key. Key generation and the executors both use this function.
///
/// # Panics
/// If `slots` is zero or `log_n` is not in `1..=30`.
pub fn rotation_galois_element(log_n: u32, slots: u32, steps: i64) -> u64 {
    assert!(
        slots > 0 && (1..=30).contains(&log_n),
        "bad ring or slot count"
    );
    let two_n = 2u64 << log_n;
    let mut exponent = steps.rem_euclid(i64::from(slots)) as u64;
    let (mut base, mut acc) = (5u64 % two_n, 1u64);
    while exponent > 0 {
        if exponent & 1 == 1 {
            acc = acc * base % two_n;
        }
        base = base * base % two_n;
        exponent >>= 1;
    }
    acc
}

/// The Galois element of complex conjugation of the slots, `2N − 1` (`X → X^−1`).
pub fn conjugation_galois_element(log_n: u32) -> u64 {
    (2u64 << log_n) - 1
}

/// Left-rotation steps of a `RotSum { step, count }`: `step · 2^i` for `2^i < count`.
pub fn rot_sum_rotations(step: u32, count: u32) -> impl Iterator<Item = i32> {
    let rounds = count.max(1).trailing_zeros();
    (0..rounds).map(move |i| (step << i) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_schedule_covers_every_diagonal_once() {
        let schedule = DiagonalSchedule::new(16, 8, 4);
        let mut seen = Vec::new();
        for giant in 0..schedule.giant {
            for baby in 0..schedule.baby {
                if let Some(r) = schedule.diagonal(giant, baby) {
                    seen.push(r);
                }
            }
        }
        assert_eq!(seen, (0..16).collect::<Vec<_>>());
        assert_eq!(
            schedule.baby_rotations().collect::<Vec<_>>(),
            vec![8, 16, 24]
        );
        assert_eq!(
            schedule.giant_rotations().collect::<Vec<_>>(),
            vec![32, 64, 96]
        );
    }

    #[test]
    fn repacking_columns_into_blocks_rotates_each_column_into_its_block() {
        let from = Layout::columns_packed(4, 4, 8);
        let to = Layout {
            slots: 32,
            block: 8,
            tokens: 4,
            columns: 4,
            group: 1,
        };
        let moves = repack_schedule(&from, &to);
        // Column j (ciphertext j, slots 0..4) lands in block j of the one output ciphertext:
        // a right rotation by 8j slots, written in (−16, 16].
        assert_eq!(moves.len(), 4);
        for (j, m) in moves.iter().enumerate() {
            assert_eq!((m.from, m.to), (j as u32, 0));
            assert_eq!(m.rotation, [0, -8, 16, 8][j]);
            assert_eq!(m.slots, vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn folding_into_fewer_slots_adds_doubling_replica_strides() {
        let dense = Layout {
            slots: 64,
            block: 8,
            tokens: 4,
            columns: 8,
            group: 1,
        };
        let column = Layout::columns_packed(4, 8, 8);
        assert_eq!(
            fold_rotations(&dense, &column).collect::<Vec<_>>(),
            vec![8, 16, 32]
        );
        assert_eq!(fold_rotations(&column, &dense).count(), 0);
        assert_eq!(fold_rotations(&dense, &dense).count(), 0);
    }

    #[test]
    fn galois_elements_reduce_steps_modulo_the_value_slots() {
        // N = 2^4: 5 has order 8 = N/2 modulo 32.
        assert_eq!(rotation_galois_element(4, 8, 0), 1);
        assert_eq!(rotation_galois_element(4, 8, 1), 5);
        assert_eq!(rotation_galois_element(4, 8, 2), 25);
        assert_eq!(
            rotation_galois_element(4, 8, -1),
            rotation_galois_element(4, 8, 7)
        );
        assert_eq!(rotation_galois_element(4, 8, 7) * 5 % 32, 1);
        // A 4-slot value: a right rotation by 1 is a left rotation by 3.
        assert_eq!(rotation_galois_element(4, 4, -1), 5 * 5 * 5 % 32);
        assert_eq!(conjugation_galois_element(4), 31);
    }

    #[test]
    fn rot_sum_uses_doubling_strides() {
        assert_eq!(
            rot_sum_rotations(16, 8).collect::<Vec<_>>(),
            vec![16, 32, 64]
        );
        assert_eq!(rot_sum_rotations(16, 1).count(), 0);
    }
}
