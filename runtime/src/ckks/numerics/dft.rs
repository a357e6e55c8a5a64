//! The special FFT as a product of sparse butterfly matrices in slot space (diagonal form), and their grouping into merged levels for CoeffsToSlots/SlotsToCoeffs.

use std::collections::BTreeMap;

use num_complex::Complex64;

use super::embedding::{CanonicalEmbedding, EmbeddingError};

/// A malformed stage or grouping request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DftError {
    /// The slot count is not valid for the ring.
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    /// The group sizes do not partition the stages into non-empty groups.
    #[error("group sizes {sizes:?} do not partition {stages} stages into non-empty groups")]
    BadGrouping {
        /// The requested sizes.
        sizes: Vec<usize>,
        /// Number of stages to partition.
        stages: usize,
    },
    /// More levels than stages (or zero levels for a non-empty product).
    #[error("cannot split {stages} stages into {levels} levels")]
    BadLevelCount {
        /// Number of stages.
        stages: usize,
        /// Requested levels.
        levels: usize,
    },
    /// Matrices of different slot counts in one product.
    #[error("slot count mismatch: {left} vs {right}")]
    SlotMismatch {
        /// Slots of the first matrix.
        left: usize,
        /// Slots of the second matrix.
        right: usize,
    },
}

/// A linear map on `n` slots as its nonzero generalized diagonals, sorted by offset.
///
/// A slot-space matrix is stored by its generalized diagonals: `y = sum_r d_r .* rot_r(x)`
/// with `rot_r(x)[k] = x[(k + r) mod n]`, the left rotation the evaluator performs with the
/// Galois element `5^r` (see [`super::embedding`]). One radix-2 stage has three diagonals
/// (offsets `0, h, n - h`); merging consecutive stages trades levels for rotations, the
/// "collapsed FFT" of Chen–Chillotti–Song (eprint 2018/1043) used by Lattigo `circuits/ckks/dft`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagonalMatrix {
    slots: usize,
    /// `(offset, d)` with `offset < n` distinct and `d.len() == n`: `y[k] += d[k] * x[k + offset]`.
    diagonals: Vec<(usize, Vec<Complex64>)>,
}

impl DiagonalMatrix {
    /// The identity on `slots` slots.
    pub fn identity(slots: usize) -> Self {
        Self {
            slots,
            diagonals: vec![(0, vec![Complex64::new(1.0, 0.0); slots])],
        }
    }

    /// Builds a matrix from `(offset, diagonal)` pairs; offsets are reduced mod `slots`,
    /// repeated offsets are summed and identically zero diagonals dropped. Every diagonal
    /// must have length `slots`.
    pub fn from_diagonals(
        slots: usize,
        diagonals: impl IntoIterator<Item = (usize, Vec<Complex64>)>,
    ) -> Result<Self, EmbeddingError> {
        let mut map: BTreeMap<usize, Vec<Complex64>> = BTreeMap::new();
        for (offset, d) in diagonals {
            if d.len() != slots {
                return Err(EmbeddingError::LengthMismatch {
                    what: "diagonal",
                    expected: slots,
                    got: d.len(),
                });
            }
            match map.entry(offset % slots.max(1)) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(d);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    for (acc, v) in e.get_mut().iter_mut().zip(&d) {
                        *acc += v;
                    }
                }
            }
        }
        Ok(Self::from_map(slots, map))
    }

    fn from_map(slots: usize, map: BTreeMap<usize, Vec<Complex64>>) -> Self {
        let diagonals = map
            .into_iter()
            .filter(|(_, d)| d.iter().any(|v| v.re != 0.0 || v.im != 0.0))
            .collect();
        Self { slots, diagonals }
    }

    /// The slot count `n`.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The nonzero diagonals `(rotation offset, values)`, sorted by offset.
    pub fn diagonals(&self) -> &[(usize, Vec<Complex64>)] {
        &self.diagonals
    }

    /// The left rotations this matrix needs (offset 0 included if present).
    pub fn rotations(&self) -> Vec<usize> {
        self.diagonals.iter().map(|(r, _)| *r).collect()
    }

    /// `y[k] = sum_r d_r[k] * x[(k + r) mod n]`. `x.len()` must be the slot count.
    pub fn apply(&self, x: &[Complex64]) -> Result<Vec<Complex64>, EmbeddingError> {
        let n = self.slots;
        if x.len() != n {
            return Err(EmbeddingError::LengthMismatch {
                what: "slot vector",
                expected: n,
                got: x.len(),
            });
        }
        let mut y = vec![Complex64::new(0.0, 0.0); n];
        for (offset, d) in &self.diagonals {
            for (k, (yk, dk)) in y.iter_mut().zip(d).enumerate() {
                *yk += dk * x[(k + offset) % n];
            }
        }
        Ok(y)
    }

    /// `factor * self`, e.g. to fold a scaling constant of bootstrapping (`q0 / Delta`,
    /// the `1/2` of the real/imaginary split) into a merged level at no extra depth.
    pub fn scaled(&self, factor: Complex64) -> DiagonalMatrix {
        let diagonals = self
            .diagonals
            .iter()
            .map(|(r, d)| (*r, d.iter().map(|v| v * factor).collect()))
            .collect();
        Self::from_map(self.slots, diagonals)
    }

    /// The product `next * self` (apply `self` first): its diagonal at `a + b` collects
    /// `d^next_b .* rot_b(d^self_a)`, since `rot_b(d .* rot_a x) = rot_b(d) .* rot_{a+b} x`.
    pub fn then(&self, next: &DiagonalMatrix) -> Result<DiagonalMatrix, DftError> {
        if self.slots != next.slots {
            return Err(DftError::SlotMismatch {
                left: self.slots,
                right: next.slots,
            });
        }
        let n = self.slots;
        let mut map: BTreeMap<usize, Vec<Complex64>> = BTreeMap::new();
        for (b, db) in &next.diagonals {
            for (a, da) in &self.diagonals {
                let acc = map
                    .entry((a + b) % n)
                    .or_insert_with(|| vec![Complex64::new(0.0, 0.0); n]);
                for (k, v) in acc.iter_mut().enumerate() {
                    *v += db[k] * da[(k + b) % n];
                }
            }
        }
        Ok(Self::from_map(n, map))
    }
}

/// SlotsToCoeffs factors: `special_fft(w) = S_{L-1} ... S_1 S_0 bitrev(w)` with `L = log2 n`,
/// returned in application order `[S_0, .., S_{L-1}]`; stage `s` has half-length `2^s`.
/// Each `S_s` maps block positions `p < h` to `x_p + t_p x_{p+h}` and `p >= h` to
/// `x_{p-h} - t_{p-h} x_p` (Cooley–Tukey butterflies, twiddles `t` of the 5-orbit).
pub fn decode_stages(
    embedding: &CanonicalEmbedding,
    slots: usize,
) -> Result<Vec<DiagonalMatrix>, DftError> {
    embedding.check_slots(slots)?;
    let mut stages = Vec::new();
    let mut half = 1;
    while half < slots {
        let twiddles = embedding.stage_twiddles(half);
        let one = Complex64::new(1.0, 0.0);
        let stage = butterfly_stage(slots, half, |j| (one, twiddles[j], one, -twiddles[j]));
        stages.push(stage);
        half *= 2;
    }
    Ok(stages)
}

/// CoeffsToSlots factors: `bitrev(special_ifft(z)) = E_{L-1} ... E_0 z`, returned in
/// application order `[E_0, .., E_{L-1}]`; `E_0` has half-length `n/2`, each stage carries a
/// factor `1/2` so the product is exactly the inverse (no separate `1/n`). The output stays
/// bit-reversed, as bootstrapping wants: EvalMod is slot-wise and [`decode_stages`] takes
/// bit-reversed input.
pub fn encode_stages(
    embedding: &CanonicalEmbedding,
    slots: usize,
) -> Result<Vec<DiagonalMatrix>, DftError> {
    embedding.check_slots(slots)?;
    let mut stages = Vec::new();
    let mut half = slots / 2;
    while half >= 1 {
        let twiddles = embedding.stage_twiddles(half);
        let h = Complex64::new(0.5, 0.0);
        let stage = butterfly_stage(slots, half, |j| {
            let t = twiddles[j].conj() * 0.5;
            (h, h, t, -t)
        });
        stages.push(stage);
        half /= 2;
    }
    Ok(stages)
}

/// One radix-2 stage on `n` slots with half-length `h`. For block position `j < h`,
/// `coefficients(j) = (lo_self, lo_partner, hi_partner, hi_self)`:
/// `y_lo = lo_self x_lo + lo_partner x_hi`, `y_hi = hi_partner x_lo + hi_self x_hi`.
fn butterfly_stage(
    n: usize,
    h: usize,
    coefficients: impl Fn(usize) -> (Complex64, Complex64, Complex64, Complex64),
) -> DiagonalMatrix {
    let zero = Complex64::new(0.0, 0.0);
    let mut main = vec![zero; n];
    let mut forward = vec![zero; n]; // offset h: x[k + h]
    let mut backward = vec![zero; n]; // offset n - h: x[k - h]
    for block in (0..n).step_by(2 * h) {
        for j in 0..h {
            let (lo_self, lo_partner, hi_partner, hi_self) = coefficients(j);
            main[block + j] = lo_self;
            forward[block + j] = lo_partner;
            backward[block + j + h] = hi_partner;
            main[block + j + h] = hi_self;
        }
    }
    let mut map = BTreeMap::new();
    map.insert(0, main);
    // With h = n/2 both neighbours are the same rotation: sum them.
    let back_offset = (n - h) % n;
    map.insert(h % n, forward);
    if let Some(existing) = map.get_mut(&back_offset) {
        for (a, b) in existing.iter_mut().zip(&backward) {
            *a += b;
        }
    } else {
        map.insert(back_offset, backward);
    }
    DiagonalMatrix::from_map(n, map)
}

/// Sizes of `levels` consecutive groups of `stages` stages, as even as possible, the larger
/// groups first (e.g. 15 stages in 4 levels: `[4, 4, 4, 3]`).
pub fn even_grouping(stages: usize, levels: usize) -> Result<Vec<usize>, DftError> {
    if levels == 0 || levels > stages.max(1) {
        return Err(DftError::BadLevelCount { stages, levels });
    }
    if stages == 0 {
        return Ok(vec![0]);
    }
    let base = stages / levels;
    let extra = stages % levels;
    Ok((0..levels).map(|i| base + usize::from(i < extra)).collect())
}

/// Merges consecutive stages (application order) into one matrix per group:
/// group `g` is the product of its `sizes[g]` stages. A single group of size 0 over no stages
/// (one slot) gives the identity.
pub fn merge_stages(
    stages: &[DiagonalMatrix],
    sizes: &[usize],
    slots: usize,
) -> Result<Vec<DiagonalMatrix>, DftError> {
    let valid = sizes.iter().sum::<usize>() == stages.len()
        && (sizes.iter().all(|&s| s > 0) || (stages.is_empty() && sizes == [0]));
    if !valid {
        return Err(DftError::BadGrouping {
            sizes: sizes.to_vec(),
            stages: stages.len(),
        });
    }
    let mut merged = Vec::with_capacity(sizes.len());
    let mut rest = stages;
    for &size in sizes {
        let (group, tail) = rest.split_at(size);
        rest = tail;
        let mut product = DiagonalMatrix::identity(slots);
        for stage in group {
            product = product.then(stage)?;
        }
        merged.push(product);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::numerics::embedding::bit_reverse_permute;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn random_slots(rng: &mut ChaCha20Rng, n: usize) -> Vec<Complex64> {
        (0..n)
            .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect()
    }

    fn max_dist(a: &[Complex64], b: &[Complex64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max)
    }

    fn apply_all(
        matrices: &[DiagonalMatrix],
        x: &[Complex64],
    ) -> Result<Vec<Complex64>, EmbeddingError> {
        matrices.iter().try_fold(x.to_vec(), |v, m| m.apply(&v))
    }

    /// Every grouping to consider for `stages` stages: the even split at every depth, plus
    /// uneven ones (smaller groups first, and all-but-one stage in the first group).
    fn groupings(stages: usize) -> Result<Vec<Vec<usize>>, DftError> {
        let mut all = Vec::new();
        for levels in 1..=stages.max(1) {
            let even = even_grouping(stages, levels)?;
            let mut reversed = even.clone();
            reversed.reverse();
            all.push(even);
            all.push(reversed);
        }
        if stages >= 2 {
            all.push(vec![stages - 1, 1]);
        }
        Ok(all)
    }

    /// The stage products equal the special FFT (on bit-reversed input, within
    /// 2e-15 sqrt(2n), the size of its outputs) and the special inverse FFT (bit-reversed
    /// output, within 2e-15), for every slot count of N = 2^9 and
    /// every grouping depth; rotations are the cyclic shifts of `DiagonalMatrix::apply`.
    #[test]
    fn stage_products_are_the_special_fft() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let emb = CanonicalEmbedding::new(9)?;
        for log_slots in 0..=8 {
            let n = 1usize << log_slots;
            let decode = decode_stages(&emb, n)?;
            let encode = encode_stages(&emb, n)?;
            assert_eq!((decode.len(), encode.len()), (log_slots, log_slots));
            let w = random_slots(&mut rng, n);
            let mut fft = w.clone();
            emb.special_fft(&mut fft)?;
            let mut ifft = w.clone();
            emb.special_ifft(&mut ifft)?;
            bit_reverse_permute(&mut ifft);
            let mut w_rev = w.clone();
            bit_reverse_permute(&mut w_rev);
            for sizes in groupings(log_slots)? {
                let merged = merge_stages(&decode, &sizes, n)?;
                let err = max_dist(&apply_all(&merged, &w_rev)?, &fft) / ((2 * n) as f64).sqrt();
                assert!(err < 2e-15, "decode n={n} sizes={sizes:?}: {err:e}");
                let merged = merge_stages(&encode, &sizes, n)?;
                let err = max_dist(&apply_all(&merged, &w)?, &ifft);
                assert!(err < 2e-15, "encode n={n} sizes={sizes:?}: {err:e}");
            }
        }
        Ok(())
    }

    /// CoeffsToSlots then SlotsToCoeffs through merged matrices is the identity (the shape
    /// bootstrapping uses: bit-reversed in the middle), here for full slots of N = 2^11 at
    /// Lattigo-like depths.
    #[test]
    fn merged_encode_then_decode_is_identity() -> TestResult {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let emb = CanonicalEmbedding::new(11)?;
        let n = emb.max_slots();
        let z = random_slots(&mut rng, n);
        for (cts_levels, stc_levels) in [(4, 3), (3, 2), (2, 2)] {
            let cts = merge_stages(&encode_stages(&emb, n)?, &even_grouping(10, cts_levels)?, n)?;
            let stc = merge_stages(&decode_stages(&emb, n)?, &even_grouping(10, stc_levels)?, n)?;
            let back = apply_all(&stc, &apply_all(&cts, &z)?)?;
            assert!(max_dist(&back, &z) < 1e-14);
        }
        Ok(())
    }

    /// One stage has 3 diagonals {0, h, n-h} (2 when h = n/2); a group of k consecutive
    /// stages has at most 2^(k+1) - 1.
    #[test]
    fn diagonal_counts_match_the_collapsed_fft() -> TestResult {
        let emb = CanonicalEmbedding::new(10)?;
        let n = 256;
        for (s, stage) in decode_stages(&emb, n)?.iter().enumerate() {
            let h = 1usize << s;
            let expected = if 2 * h == n {
                vec![0, h]
            } else {
                vec![0, h, n - h]
            };
            assert_eq!(stage.rotations(), expected);
        }
        let stages = encode_stages(&emb, n)?;
        for levels in 1..=8 {
            let sizes = even_grouping(8, levels)?;
            for (group, size) in merge_stages(&stages, &sizes, n)?.iter().zip(&sizes) {
                assert!(group.diagonals().len() < 1 << (size + 1), "sizes {sizes:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn groupings_and_errors() -> TestResult {
        assert_eq!(even_grouping(15, 4)?, vec![4, 4, 4, 3]);
        assert_eq!(even_grouping(3, 3)?, vec![1, 1, 1]);
        assert_eq!(even_grouping(0, 1)?, vec![0]);
        assert_eq!(
            even_grouping(3, 4).map_err(|e| e.to_string()),
            Err("cannot split 3 stages into 4 levels".to_string())
        );
        let emb = CanonicalEmbedding::new(5)?;
        let stages = decode_stages(&emb, 8)?;
        assert_eq!(
            merge_stages(&stages, &[2, 2], 8).map_err(|e| e.to_string()),
            Err("group sizes [2, 2] do not partition 3 stages into non-empty groups".to_string())
        );
        assert!(merge_stages(&stages, &[3, 0], 8).is_err());
        let one = merge_stages(&decode_stages(&emb, 1)?, &[0], 1)?;
        assert_eq!(one, vec![DiagonalMatrix::identity(1)]);
        assert!(
            DiagonalMatrix::identity(4)
                .then(&DiagonalMatrix::identity(8))
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn from_diagonals_sums_repeated_offsets_and_drops_zeros() -> TestResult {
        let one = Complex64::new(1.0, 0.0);
        let zero = Complex64::new(0.0, 0.0);
        let m = DiagonalMatrix::from_diagonals(
            2,
            [
                (1, vec![one, one]),
                (3, vec![one, zero]),
                (0, vec![zero, zero]),
            ],
        )?;
        assert_eq!(m.diagonals(), &[(1, vec![Complex64::new(2.0, 0.0), one])]);
        assert_eq!(m.apply(&[one, zero])?, vec![zero, one]);
        let half = m.scaled(Complex64::new(0.0, 0.5));
        assert_eq!(
            half.apply(&[one, zero])?,
            vec![zero, Complex64::new(0.0, 0.5)]
        );
        assert!(m.scaled(zero).diagonals().is_empty());
        Ok(())
    }
}
