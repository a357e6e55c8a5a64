//! CoeffsToSlots and SlotsToCoeffs as encoded linear transforms: the special-FFT stages of `numerics::dft` grouped into levels, with the bootstrap's constants folded in and, for sparse slots, the real/imaginary packing into a 2n-slot view.
//!
//! A ciphertext of n < N/2 slots is also a ciphertext of 2n slots whose slot vector is
//! its n slots twice (its plaintext lives in `R[X^(N/2n)]`). CoeffsToSlots's last matrix
//! is applied in that 2n view with different rows on each half, so that adding the
//! conjugate leaves `Re(w) || Im(w)` in one ciphertext (one EvalMod instead of two);
//! SlotsToCoeffs's first matrix reads `Re || Im` back as `Re + i Im` and writes its result
//! twice, a valid n-slot ciphertext again. With N/2 slots the two halves go to two
//! ciphertexts instead.

use std::collections::BTreeMap;

use num_complex::Complex64;

use crate::ckks::circuits::LinearTransform;
use crate::ckks::numerics::dft::{
    DiagonalMatrix, decode_stages, encode_stages, even_grouping, merge_stages,
};
use crate::ckks::scheme::Encoder;

use super::BootstrapError;

type Diagonals = BTreeMap<usize, Vec<Complex64>>;

/// The matrices of a transform of `stages` grouped into at most `levels` levels.
fn grouped(
    stages: &[DiagonalMatrix],
    levels: usize,
    slots: usize,
) -> Result<Vec<DiagonalMatrix>, BootstrapError> {
    let sizes = even_grouping(stages.len(), levels.min(stages.len()).max(1))?;
    Ok(merge_stages(stages, &sizes, slots)?)
}

fn as_map(m: &DiagonalMatrix) -> Diagonals {
    m.diagonals().iter().cloned().collect()
}

/// The 2n-view matrix whose first half of rows is `top * M x` and second half
/// `bottom * M x`, for a 2n-periodic input x (M on n slots).
fn lift_split(m: &DiagonalMatrix, top: Complex64, bottom: Complex64) -> Diagonals {
    let n = m.slots();
    m.diagonals()
        .iter()
        .map(|(k, d)| {
            let lifted = d
                .iter()
                .map(|v| v * top)
                .chain(d.iter().map(|v| v * bottom))
                .collect();
            (*k, lifted)
        })
        .filter(|_| n > 0)
        .collect()
}

/// The 2n-view matrix y = (M (x_lo + i x_hi)) twice, for an input `x = x_lo || x_hi`.
fn lift_combine(m: &DiagonalMatrix) -> Diagonals {
    let n = m.slots();
    let two_n = 2 * n;
    let zero = Complex64::new(0.0, 0.0);
    let i = Complex64::new(0.0, 1.0);
    let mut out: Diagonals = BTreeMap::new();
    for (k, d) in m.diagonals() {
        for j in 0..two_n {
            let jj = j % n;
            let t = (jj + k) % n;
            let lo = (t + two_n - j) % two_n;
            let hi = (n + t + two_n - j) % two_n;
            out.entry(lo).or_insert_with(|| vec![zero; two_n])[j] += d[jj];
            out.entry(hi).or_insert_with(|| vec![zero; two_n])[j] += d[jj] * i;
        }
    }
    out
}

/// One level of a homomorphic DFT: the encoded transform, the slot view it runs in, and
/// the slot count of its output.
#[derive(Debug, Clone)]
pub(crate) struct DftLevel {
    pub(crate) transform: LinearTransform,
    /// Slot count the input is viewed with (n, or 2n for the packed sparse step).
    pub(crate) view: usize,
    /// Slot count the output is labelled with.
    pub(crate) out_slots: usize,
}

/// The diagonals of CoeffsToSlots on `slots` slots in at most `levels` levels, with
/// `factor` folded into the last matrix; the last one is in the packed 2n view when
/// `slots < N/2`. Returns (diagonals, view slot count) per level.
pub(crate) fn coeffs_to_slots_matrices(
    encoder: &Encoder,
    slots: usize,
    levels: usize,
    factor: f64,
) -> Result<Vec<(Diagonals, usize)>, BootstrapError> {
    let emb = encoder.params().embedding();
    let full = slots == emb.max_slots();
    let stages = encode_stages(emb, slots)?;
    let merged = grouped(&stages, levels, slots)?;
    let last = merged.len() - 1;
    Ok(merged
        .iter()
        .enumerate()
        .map(|(g, m)| {
            if g < last {
                (as_map(m), slots)
            } else if full {
                // ct + conj(ct) and (conj(ct) - ct) * i then give Re and Im.
                (as_map(&m.scaled(Complex64::new(factor / 2.0, 0.0))), slots)
            } else {
                let top = Complex64::new(factor / 2.0, 0.0);
                let bottom = Complex64::new(0.0, -factor / 2.0);
                (lift_split(m, top, bottom), 2 * slots)
            }
        })
        .collect())
}

/// The diagonals of SlotsToCoeffs on `slots` slots in at most `levels` levels, with
/// `factor` folded into the first matrix (in the 2n view for sparse slots).
pub(crate) fn slots_to_coeffs_matrices(
    encoder: &Encoder,
    slots: usize,
    levels: usize,
    factor: f64,
) -> Result<Vec<(Diagonals, usize)>, BootstrapError> {
    let emb = encoder.params().embedding();
    let full = slots == emb.max_slots();
    let stages = decode_stages(emb, slots)?;
    let merged = grouped(&stages, levels, slots)?;
    Ok(merged
        .iter()
        .enumerate()
        .map(|(g, m)| {
            if g > 0 {
                (as_map(m), slots)
            } else {
                let scaled = m.scaled(Complex64::new(factor, 0.0));
                if full {
                    (as_map(&scaled), slots)
                } else {
                    (lift_combine(&scaled), 2 * slots)
                }
            }
        })
        .collect())
}

/// Encodes one level's diagonals for inputs at `level`, at diagonal scale `scale`.
pub(crate) fn encode_level(
    encoder: &Encoder,
    diagonals: &Diagonals,
    view: usize,
    out_slots: usize,
    level: usize,
    scale: f64,
) -> Result<DftLevel, BootstrapError> {
    let transform = LinearTransform::new(encoder, diagonals, view, level, scale, None)?;
    Ok(DftLevel {
        transform,
        view,
        out_slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::numerics::embedding::CanonicalEmbedding;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn apply(map: &Diagonals, x: &[Complex64]) -> Vec<Complex64> {
        let n = x.len();
        let mut y = vec![Complex64::new(0.0, 0.0); n];
        for (k, d) in map {
            for j in 0..n {
                y[j] += d[j] * x[(j + k) % n];
            }
        }
        y
    }

    /// The packed sparse path in f64: CtS (last level split in the 2n view), add the
    /// conjugate, StC (first level combining) gives back the n slots twice.
    #[test]
    fn packed_sparse_round_trip_in_f64() -> Result<(), Box<dyn std::error::Error>> {
        let emb = CanonicalEmbedding::new(8)?;
        let n = 16;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let z: Vec<Complex64> = (0..n)
            .map(|_| Complex64::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect();
        let cts = grouped(&encode_stages(&emb, n)?, 2, n)?;
        let stc = grouped(&decode_stages(&emb, n)?, 2, n)?;
        let half = Complex64::new(0.5, 0.0);
        let mut x = cts[0].apply(&z)?;
        let x2: Vec<Complex64> = x.iter().chain(x.iter()).copied().collect();
        let u = apply(&lift_split(&cts[1], half, Complex64::new(0.0, -0.5)), &x2);
        let packed: Vec<Complex64> = u.iter().map(|v| v + v.conj()).collect();
        assert!(packed.iter().all(|v| v.im.abs() < 1e-15));
        let y = apply(&lift_combine(&stc[0]), &packed);
        assert!((0..n).all(|j| (y[j] - y[j + n]).norm() < 1e-14));
        x = stc[1].apply(&y[..n])?;
        let err = x
            .iter()
            .zip(&z)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-13, "{err}");
        Ok(())
    }
}
