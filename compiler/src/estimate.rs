//! Latency estimates of HE operations (an op, its level, its ciphertext count -> seconds on this machine), for the encoding choice and the reports, until the placement branch's cost model (`cost.rs`) is merged.
//!
//! Per-limb primitive costs are the arith benches' medians at N = 2^16, one thread
//! (`ENSI_BENCH_CLOCK=cpu cargo bench -p ensi-runtime --bench arith -- 'poly/16/'`, as
//! recorded by the placement branch): NTT 284 µs, add 23.4 µs, pointwise product 31.6 µs,
//! multiply-accumulate 72.7 µs, automorphism 117 µs, rescale 321 µs per remaining limb, and a
//! whole key switch of 21 limbs (dnum 3, 5 special primes) 66.1 ms. Other ring degrees scale
//! transforms by `N log N` and pointwise work by `N`. Everything above the primitives is
//! counted: a key switch scales with the limbs of Q·P, a rotation is a key switch and two
//! automorphisms, a ciphertext product a tensor, a key switch and a rescale, a Chebyshev
//! series its baby-step giant-step products. A bootstrap is anchored at ensi's target (15 s
//! for a full-slot ciphertext at N = 2^16), scaled by `log2(slots)` for sparse slots.

use serde::Serialize;

/// Per-limb costs at N = 2^16, µs (see the module docs).
const NTT: f64 = 5966.2 / 21.0;
const ADD: f64 = 491.9 / 21.0;
const MUL: f64 = 664.4 / 21.0;
const MAC: f64 = 1526.8 / 21.0;
const AUTOMORPHISM: f64 = 2458.1 / 21.0;
const RESCALE: f64 = 6419.5 / 20.0;
/// A key switch of 21 Q limbs with 5 special primes, µs.
const KEY_SWITCH_21: f64 = 66_104.9;
/// Limbs of Q·P of that key switch.
const KEY_SWITCH_LIMBS: f64 = 26.0;
/// Seconds of a full-slot bootstrap at N = 2^16 (DESIGN.md §5 target).
const BOOTSTRAP_FULL_SLOTS: f64 = 15.0;

/// An operation as far as its cost goes (the operand level and ciphertext count are given
/// separately). Counts are per output ciphertext unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum CostOp {
    /// No server work (inputs, relabels, slices, concatenation, level drops).
    Free,
    /// Additions per output ciphertext.
    Adds {
        /// Ciphertext additions.
        count: f64,
    },
    /// A constant added to every slot.
    AddConst,
    /// A plaintext added (encoded first).
    AddPlain,
    /// A product by a constant.
    MulConst,
    /// A plaintext product (encoded first).
    MulPlain,
    /// A ciphertext product with relinearization.
    MulCt,
    /// A rescale.
    Rescale,
    /// Rotations per output ciphertext (each with its addition when `accumulate`).
    Rotations {
        /// Key-switched rotations.
        count: f64,
    },
    /// A column-method ternary layer: additions of the whole layer.
    TernaryColumns {
        /// All additions.
        additions: u64,
    },
    /// A block-diagonal ternary layer: the whole layer.
    TernaryDiagonals {
        /// Nonzero diagonals (plaintext multiply-accumulates).
        diagonals: u64,
        /// Key-switched rotations.
        rotations: u64,
    },
    /// A layout change: per output ciphertext.
    Repack {
        /// Plaintext masks.
        masks: f64,
        /// Rotations.
        rotations: f64,
    },
    /// A Chebyshev series of this degree.
    Poly {
        /// Degree.
        degree: u32,
    },
    /// A bootstrap of ciphertexts of this many slots.
    Bootstrap {
        /// Slots per ciphertext.
        slots: u32,
    },
}

/// Latency estimates for one ring.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimator {
    /// log2 N.
    pub log_n: u32,
    /// Special primes.
    pub special_primes: u32,
}

impl Estimator {
    /// Estimates for a ring of degree `2^log_n` with `special_primes` key-switching primes.
    pub fn new(log_n: u32, special_primes: u32) -> Self {
        Self {
            log_n,
            special_primes,
        }
    }

    fn pointwise(&self) -> f64 {
        2f64.powi(self.log_n as i32 - 16)
    }

    fn transform(&self) -> f64 {
        self.pointwise() * f64::from(self.log_n) / 16.0
    }

    fn limbs(level: u32) -> f64 {
        f64::from(level + 1)
    }

    fn add(&self, level: u32) -> f64 {
        2.0 * Self::limbs(level) * ADD * self.pointwise()
    }

    fn rescale(&self, level: u32) -> f64 {
        2.0 * f64::from(level) * RESCALE * self.transform()
    }

    fn key_switch(&self, level: u32) -> f64 {
        let limbs = Self::limbs(level) + f64::from(self.special_primes);
        KEY_SWITCH_21 * limbs / KEY_SWITCH_LIMBS * self.transform()
    }

    fn encode(&self, level: u32) -> f64 {
        Self::limbs(level) * NTT * self.transform()
    }

    fn mul_plain(&self, level: u32) -> f64 {
        self.encode(level) + 2.0 * Self::limbs(level) * MUL * self.pointwise() + self.rescale(level)
    }

    fn rotate(&self, level: u32) -> f64 {
        self.key_switch(level) + 2.0 * Self::limbs(level) * AUTOMORPHISM * self.pointwise()
    }

    fn mul_ct(&self, level: u32) -> f64 {
        4.0 * Self::limbs(level) * MUL * self.pointwise()
            + self.key_switch(level)
            + self.rescale(level)
    }

    fn poly(&self, level: u32, degree: u32) -> f64 {
        let depth = (degree + 1).next_power_of_two().trailing_zeros();
        if depth == 0 {
            return self.add(level);
        }
        let baby = depth.div_ceil(2);
        let products =
            (1u32 << baby) - 1 + depth.saturating_sub(baby + 1) + (degree + 1).div_ceil(1 << baby)
                - 1;
        let bottom = level.saturating_sub(depth / 2);
        f64::from(products) * self.mul_ct(bottom)
            + f64::from(degree + 1)
                * (2.0 * Self::limbs(bottom) * MUL * self.pointwise() + self.add(bottom))
    }

    /// Seconds of `op` at `level` producing `count` ciphertexts.
    pub fn seconds(&self, op: &CostOp, level: u32, count: u32) -> f64 {
        let count = f64::from(count);
        let micros = match *op {
            CostOp::Free => 0.0,
            CostOp::Adds { count: adds } => count * adds * self.add(level),
            CostOp::AddConst => count * Self::limbs(level) * ADD * self.pointwise(),
            CostOp::AddPlain => {
                count * (self.encode(level) + Self::limbs(level) * ADD * self.pointwise())
            }
            CostOp::MulConst => count * 2.0 * Self::limbs(level) * MUL * self.pointwise(),
            CostOp::MulPlain => count * (self.mul_plain(level) - self.rescale(level)),
            CostOp::MulCt => count * (self.mul_ct(level) - self.rescale(level)),
            CostOp::Rescale => count * self.rescale(level),
            CostOp::Rotations { count: rotations } => {
                count * rotations * (self.rotate(level) + self.add(level))
            }
            CostOp::TernaryColumns { additions } => additions as f64 * self.add(level),
            CostOp::TernaryDiagonals {
                diagonals,
                rotations,
            } => {
                let ext = Self::limbs(level) + f64::from(self.special_primes);
                diagonals as f64 * (2.0 * ext * MAC * self.pointwise())
                    + rotations as f64 * (self.rotate(level) + self.add(level))
            }
            CostOp::Repack { masks, rotations } => {
                count
                    * (masks * (self.mul_plain(level) - self.rescale(level))
                        + rotations * (self.rotate(level) + self.add(level)))
            }
            CostOp::Poly { degree } => count * self.poly(level, degree),
            CostOp::Bootstrap { slots } => {
                let full = 2f64.powi(self.log_n as i32 - 1);
                let share = (f64::from(slots.max(2)).log2() / full.log2()).min(1.0);
                count * BOOTSTRAP_FULL_SLOTS * 1e6 * share * self.transform()
            }
        };
        micros * 1e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_grow_with_level_and_ring() {
        let n16 = Estimator::new(16, 5);
        let n14 = Estimator::new(14, 5);
        let rotate = CostOp::Rotations { count: 1.0 };
        assert!(n16.seconds(&rotate, 10, 1) > n16.seconds(&rotate, 2, 1));
        assert!(n16.seconds(&rotate, 10, 1) > 3.0 * n14.seconds(&rotate, 10, 1));
        // A key switch at the bench's shape is the measured one (plus the automorphisms).
        let measured = KEY_SWITCH_21 * 1e-6;
        assert!((n16.seconds(&rotate, 20, 1) / measured - 1.0).abs() < 0.2);
        // A ciphertext product costs far more than an addition, a bootstrap far more again.
        assert!(
            n16.seconds(&CostOp::MulCt, 10, 1)
                > 50.0 * n16.seconds(&CostOp::Adds { count: 1.0 }, 10, 1)
        );
        assert!(
            n16.seconds(&CostOp::Bootstrap { slots: 1 << 15 }, 0, 1)
                > 100.0 * n16.seconds(&CostOp::MulCt, 10, 1)
        );
    }
}
