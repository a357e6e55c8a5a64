//! Repacking between layouts: masks, rotations and accumulation from `schedule::repack_schedule`, then a fold into fewer slots.

use super::slots::{SlotVectors, zeros};
use crate::plan::Layout;
use crate::plan::schedule::{RepackMove, fold_rotations, repack_schedule};

/// A repack from one layout to another, as the executors perform it.
///
/// Let `n_from`, `n_to` be the two slot counts and `W = max(n_from, n_to)` the working width.
/// For every destination ciphertext `d`:
///
/// 1. `acc_d = Σ_{moves m with m.to = d} rot_left(mask_m ⊙ src_{m.from}, m.rotation)`, in `W`
///    slots. `mask_m` is 1 on `m.slots` and 0 elsewhere ([`Self::fill_mask`]). A source with
///    fewer slots than `W` is read as its periodic extension (a sparse ciphertext viewed in
///    the larger ring); the masks select its first replica.
/// 2. If `n_to < n_from`, fold: `acc_d ← acc_d + rot_left(acc_d, s)` for each stride `s` of
///    [`fold_rotations`] (`n_to, 2·n_to, …`), i.e. `Σ_{i < n_from/n_to} rot_left(acc_d, i·n_to)`.
///    Every moved value sits in slots `0..n_to` after step 1, so the fold makes the vector
///    `n_to`-periodic without mixing values: a ciphertext of the smaller subring.
/// 3. The result is read in `n_to` slots (the first `n_to` of the periodic vector).
///
/// Each destination slot receives exactly one source value (or stays zero), so the result is
/// the source's data in the destination layout with zero padding and empty blocks; one
/// plaintext multiplication (one level, at the op's `mask_scale`) per move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repacking {
    from: Layout,
    to: Layout,
    moves: Vec<RepackMove>,
}

impl Repacking {
    /// The repack from `from` to `to` (same tokens and columns).
    pub fn new(from: &Layout, to: &Layout) -> Self {
        Self {
            from: *from,
            to: *to,
            moves: repack_schedule(from, to),
        }
    }

    /// The moves, grouped by (source, destination, rotation).
    pub fn moves(&self) -> &[RepackMove] {
        &self.moves
    }

    /// The working width `W = max(n_from, n_to)` masks and rotations live in.
    pub fn width(&self) -> usize {
        self.from.slots.max(self.to.slots) as usize
    }

    /// The fold's rotation strides (empty unless the destination has fewer slots).
    pub fn fold_rotations(&self) -> impl Iterator<Item = i32> + use<> {
        fold_rotations(&self.from, &self.to)
    }

    /// Writes the mask of move `index` into `out` (`W` entries).
    ///
    /// # Panics
    /// If `index` is not a move or `out` is shorter than [`Self::width`].
    pub fn fill_mask(&self, index: usize, out: &mut [f64]) {
        out.fill(0.0);
        for &slot in &self.moves[index].slots {
            out[slot as usize] = 1.0;
        }
    }

    /// Key-switched rotations: moves with a nonzero rotation, plus the fold per destination.
    pub fn rotations(&self) -> usize {
        let width = self.width() as i64;
        let moving = self
            .moves
            .iter()
            .filter(|m| i64::from(m.rotation).rem_euclid(width) != 0)
            .count();
        moving + self.fold_rotations().count() * self.to.ciphertexts() as usize
    }

    /// Applies the repack to the source's slot vectors (see the type's documentation).
    ///
    /// Every moved value lands in slots `0..n_to` of the working width, so the fold only
    /// adds exact zeros to them: the result is accumulated directly in `n_to` slots, equal
    /// bit for bit to the mask-rotate-fold recipe without its `W`-slot temporaries.
    pub fn apply(&self, source: &[Vec<f64>]) -> SlotVectors {
        let width = self.width() as i64;
        let (from_slots, to_slots) = (self.from.slots as usize, self.to.slots as usize);
        let mut out = zeros(self.to.ciphertexts() as usize, to_slots);
        for m in &self.moves {
            // rot_left(mask ⊙ src, rotation) puts source slot s at s − rotation (mod W).
            let (src, dst) = (&source[m.from as usize], &mut out[m.to as usize]);
            let rotation = i64::from(m.rotation);
            for &slot in &m.slots {
                let target = (i64::from(slot) - rotation).rem_euclid(width) as usize;
                debug_assert!(target < to_slots, "repack targets lie in the destination");
                dst[target % to_slots] += src[slot as usize % from_slots];
            }
        }
        out
    }
}
