//! Linear transforms of the slot vector by their diagonals: baby-step giant-step with double hoisting (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, EUROCRYPT 2021).
//!
//! `M x = sum_k diag_k (.) rot_k(x)` with `diag_k[t] = M[t][(t + k) mod n]`. Writing
//! k = j n1 + i (0 <= i < n1), `M x = sum_j rot_{j n1}( sum_i rot_{-j n1}(diag_k) (.) rot_i(x) )`.
//! The baby rotations rot_i(x) share one decomposition of x's c1 and stay over Q*P (times
//! P, no ModDown); each giant step's inner sum is accumulated over Q*P with the diagonals
//! encoded over Q*P, then ModDowned once; the giant rotations are again accumulated over
//! Q*P and ModDowned once at the end. The output is at the input's level with scale
//! `input scale * diagonal scale` (not rescaled).

use std::collections::{BTreeMap, BTreeSet};

use num_complex::Complex64;

use crate::ckks::arith::GaloisElement;
use crate::ckks::scheme::{Ciphertext, Encoder, Error, Evaluator, Plaintext};

/// A linear transform of `slots` slots given by its nonzero diagonals, encoded for one level.
#[derive(Debug, Clone)]
pub struct LinearTransform {
    slots: usize,
    level: usize,
    scale: f64,
    baby: usize,
    /// (giant j, baby i) -> rot_{-j n1}(diag_{j n1 + i}), over Q*P at `level`.
    encoded: BTreeMap<(usize, usize), Plaintext>,
}

/// The baby-step size n1 (a power of two) minimizing the number of distinct rotations.
fn best_baby_step(indices: &BTreeSet<usize>, slots: usize) -> usize {
    let mut best = (usize::MAX, 1);
    let mut n1 = 1;
    while n1 <= slots {
        let babies: BTreeSet<usize> = indices.iter().map(|k| k % n1).filter(|&i| i != 0).collect();
        let giants: BTreeSet<usize> = indices.iter().map(|k| k / n1).filter(|&j| j != 0).collect();
        let cost = babies.len() + giants.len();
        if cost < best.0 {
            best = (cost, n1);
        }
        n1 *= 2;
    }
    best.1
}

impl LinearTransform {
    /// Encodes the diagonals (index k in `0..slots` -> `slots` values) for inputs at
    /// `level`, at `scale` (use the level's prime q_level to keep the input's scale after a
    /// rescale). `baby_step` (a power of two) defaults to the one needing fewest rotations.
    pub fn new(
        encoder: &Encoder,
        diagonals: &BTreeMap<usize, Vec<Complex64>>,
        slots: usize,
        level: usize,
        scale: f64,
        baby_step: Option<usize>,
    ) -> Result<Self, Error> {
        encoder.params().embedding().check_slots(slots)?;
        for (&k, diag) in diagonals {
            if k >= slots || diag.len() != slots {
                return Err(Error::InvalidArgument(format!(
                    "diagonal {k} of a {slots}-slot transform must have index < {slots} and {slots} values (has {})",
                    diag.len()
                )));
            }
        }
        let indices: BTreeSet<usize> = diagonals.keys().copied().collect();
        let baby = match baby_step {
            Some(n1) if n1.is_power_of_two() && n1 <= slots => n1,
            Some(n1) => {
                return Err(Error::InvalidArgument(format!(
                    "baby step {n1} must be a power of two <= {slots}"
                )));
            }
            None => best_baby_step(&indices, slots),
        };
        let mut encoded = BTreeMap::new();
        for (&k, diag) in diagonals {
            let (j, i) = (k / baby, k % baby);
            let shift = j * baby;
            // rot_{-shift}: new[t] = diag[(t - shift) mod n].
            let rotated: Vec<Complex64> = (0..slots)
                .map(|t| diag[(t + slots - shift % slots) % slots])
                .collect();
            encoded.insert((j, i), encoder.encode_complex_qp(&rotated, level, scale)?);
        }
        Ok(Self {
            slots,
            level,
            scale,
            baby,
            encoded,
        })
    }

    /// The transform of a dense `slots x slots` matrix (row-major), all nonzero diagonals.
    pub fn from_matrix(
        encoder: &Encoder,
        matrix: &[Vec<Complex64>],
        level: usize,
        scale: f64,
    ) -> Result<Self, Error> {
        let n = matrix.len();
        if matrix.iter().any(|row| row.len() != n) {
            return Err(Error::InvalidArgument("the matrix must be square".into()));
        }
        let diagonals: BTreeMap<usize, Vec<Complex64>> = (0..n)
            .map(|k| {
                (
                    k,
                    (0..n).map(|t| matrix[t][(t + k) % n]).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, d)| d.iter().any(|z| z.norm() != 0.0))
            .collect();
        Self::new(encoder, &diagonals, n, level, scale, None)
    }

    /// Slot count.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The level the diagonals are encoded for (the input's level).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale of the diagonals (the output's scale is the input's times this).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The baby-step size n1.
    pub fn baby_step(&self) -> usize {
        self.baby
    }

    /// Every rotation (left, in slots) the evaluation needs a Galois key for: the baby
    /// steps i and the giant steps j*n1 (excluding 0).
    pub fn rotations(&self) -> Vec<i64> {
        let babies: BTreeSet<usize> = self.encoded.keys().map(|&(_, i)| i).collect();
        let giants: BTreeSet<usize> = self.encoded.keys().map(|&(j, _)| j * self.baby).collect();
        babies
            .union(&giants)
            .filter(|&&r| r != 0)
            .map(|&r| r as i64)
            .collect()
    }

    /// The Galois elements of `rotations()` for a ring.
    pub fn galois_elements(&self, ring: &crate::ckks::arith::RingContext) -> Vec<GaloisElement> {
        self.rotations().iter().map(|&k| ring.rotation(k)).collect()
    }

    /// M x: baby steps hoisted, giant-step sums over Q*P (double hoisting). The input must
    /// be at the transform's level with its slot count; the output has the input's level
    /// and scale times `self.scale()` (rescale it afterwards).
    pub fn evaluate(&self, eval: &Evaluator<'_>, ct: &Ciphertext) -> Result<Ciphertext, Error> {
        if ct.level() != self.level {
            return Err(Error::LevelMismatch {
                op: "linear transform",
                left: ct.level(),
                right: self.level,
            });
        }
        if ct.slots() != self.slots {
            return Err(Error::SlotsMismatch {
                op: "linear transform",
                left: ct.slots(),
                right: self.slots,
            });
        }
        let out_scale = ct.scale() * self.scale;
        let babies: BTreeSet<usize> = self.encoded.keys().map(|&(_, i)| i).collect();
        // Baby steps: one decomposition of c1, every rotation kept over Q*P.
        let decomposed = eval.decompose(ct)?;
        let lifted = eval.lift_times_p(ct);
        let mut rotated = BTreeMap::new();
        for &i in &babies {
            let r = if i == 0 {
                lifted.clone()
            } else {
                eval.rotate_hoisted_lazy(ct, lifted.c0_ref(), &decomposed, i as i64)?
            };
            rotated.insert(i, r);
        }
        eval.recycle(decomposed);
        eval.recycle_extended(lifted);

        let giants: BTreeSet<usize> = self.encoded.keys().map(|&(j, _)| j).collect();
        let mut out = eval.extended_zero(self.level, out_scale, self.slots);
        for &j in &giants {
            let mut inner = eval.extended_zero(self.level, out_scale, self.slots);
            for (&(_, i), pt) in self.encoded.range((j, 0)..(j + 1, 0)) {
                eval.mul_plain_acc_extended(&mut inner, &rotated[&i], pt)?;
            }
            // One ModDown per giant step; inner sum is now over Q, scale out_scale.
            let mut inner = eval.mod_down(inner);
            inner.set_scale(out_scale);
            if j == 0 {
                let lifted = eval.lift_times_p(&inner);
                eval.add_extended_assign(&mut out, &lifted);
                eval.recycle_extended(lifted);
            } else {
                eval.rotate_acc_extended(&mut out, &inner, (j * self.baby) as i64)?;
            }
        }
        for (_, r) in rotated {
            eval.recycle_extended(r);
        }
        let mut result = eval.mod_down(out);
        result.set_scale(out_scale);
        Ok(result)
    }

    /// The same product with plain (non-hoisted) rotations and one ModDown per rotation:
    /// the reference the hoisted evaluation is tested against.
    pub fn evaluate_naive(
        &self,
        eval: &Evaluator<'_>,
        ct: &Ciphertext,
    ) -> Result<Ciphertext, Error> {
        let encoder = eval.encoder();
        let mut acc: Option<Ciphertext> = None;
        for (&(j, i), pt) in &self.encoded {
            let k = j * self.baby + i;
            // Undo the pre-rotation: the diagonal itself over Q.
            let values = encoder.decode_complex(pt)?;
            let shift = j * self.baby;
            let diag: Vec<Complex64> = (0..self.slots)
                .map(|t| values[(t + shift) % self.slots])
                .collect();
            let plain = encoder.encode_complex(&diag, self.level, self.scale)?;
            let term = eval.mul_plain(&eval.rotate(ct, k as i64)?, &plain)?;
            match &mut acc {
                None => acc = Some(term),
                Some(a) => eval.add_assign(a, &term)?,
            }
        }
        acc.ok_or_else(|| Error::InvalidArgument("a linear transform without diagonals".into()))
    }
}
