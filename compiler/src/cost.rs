//! The latency cost model: an HE operation at a level (ring, special primes, dnum, threads) -> estimated time on this machine, built from the arith benches.
//!
//! Every cost is a [`Latency`]: microseconds of this machine's time, stored as integer
//! nanoseconds so that sums are exact and associative (the placement DP and its brute-force
//! check must agree to the unit). Illegal choices (an op below its depth, a bootstrap above
//! the budget) cost [`Latency::INFINITE`]; all arithmetic saturates there.
//!
//! # Where the numbers come from
//!
//! [`Primitives`] holds per-limb costs of the arithmetic layer, one thread, measured with
//! `ENSI_BENCH_CLOCK=cpu cargo bench -p ensi-runtime --bench arith -- 'poly/16/'` (and `14`,
//! `15`) on this machine (40-bit scaling primes, a 60-bit q_0, P = 5 x 61-bit, dnum 3; see
//! `runtime/benches/arith.rs`). Each constant names the bench it comes from. Two threads
//! divide each primitive by an estimated speedup ([`Speedups`]).
//!
//! Everything above the primitives is counted, not measured:
//! - add, sub, negate, add a constant or a cached plaintext: `limbs` limb operations per
//!   polynomial;
//! - plaintext multiply: pointwise products (+ encoding when not cached: an FFT over the
//!   slots and `limbs` NTTs) and the rescale;
//! - ciphertext multiply: the tensor product, one relinearization key switch, the rescale;
//! - rotation: one key switch plus the automorphisms; hoisted rotations share one ModUp
//!   (Halevi–Shoup 2018, Lattigo `AutomorphismHoisted`);
//! - key switch (hybrid, Han–Ki 2019/688): per digit a ModUp (INTT, base conversion, NTT),
//!   the two-output inner product over Q·P, two ModDowns; scaled by the ratio of the
//!   measured `key_switch_arith_21` to this count at the bench's shape (fused kernels beat
//!   the sum of their parts);
//! - Chebyshev polynomial of degree d: the baby-step giant-step count of ciphertext
//!   products at the levels they run at, plus d+1 scalar products and additions;
//! - ternary linear layer, columns (ENSI): one ciphertext addition per nonzero weight;
//!   diagonals: hoisted baby steps, one plaintext multiply-accumulate per nonzero diagonal,
//!   one ModDown and rotation per giant step (double hoisting, Bossuat et al. 2021);
//! - bootstrapping ([`BootstrapCircuit`]): ScaleDown, ModRaise, the trace of sparse slots,
//!   CoeffsToSlots, EvalMod, SlotsToCoeffs, each counted in key switches and plaintext
//!   products at the levels it runs at, then anchored ([`BootstrapEstimate`]) to one
//!   whole-circuit figure until the runtime's bootstrapper can be measured.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// A latency on this machine: integer nanoseconds (shown in µs, ms or s), saturating at
/// [`Latency::INFINITE`], the cost of an illegal choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Latency(u64);

impl Latency {
    /// No time.
    pub const ZERO: Latency = Latency(0);
    /// The cost of an illegal choice; every sum that contains it is infinite.
    pub const INFINITE: Latency = Latency(u64::MAX);

    /// From nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Latency {
        Latency(nanos)
    }

    /// From microseconds, rounded to the nanosecond; negative or NaN is zero, and anything
    /// at or beyond `u64::MAX` nanoseconds (including +∞) is [`Latency::INFINITE`].
    pub fn from_micros(micros: f64) -> Latency {
        let nanos = (micros * 1e3).round();
        if nanos.is_nan() || nanos <= 0.0 {
            Latency::ZERO
        } else if nanos >= u64::MAX as f64 {
            Latency::INFINITE
        } else {
            Latency(nanos as u64)
        }
    }

    /// Nanoseconds (`u64::MAX` when infinite).
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds (`f64::INFINITY` when infinite).
    pub fn as_micros(self) -> f64 {
        if self.is_infinite() {
            f64::INFINITY
        } else {
            self.0 as f64 / 1e3
        }
    }

    /// Seconds (`f64::INFINITY` when infinite).
    pub fn as_secs(self) -> f64 {
        self.as_micros() / 1e6
    }

    /// Whether this is the cost of an illegal choice.
    pub const fn is_infinite(self) -> bool {
        self.0 == u64::MAX
    }

    /// `self × times`, saturating (the cost of `times` identical operations).
    pub const fn times(self, times: u64) -> Latency {
        Latency(self.0.saturating_mul(times))
    }
}

impl Add for Latency {
    type Output = Latency;
    fn add(self, other: Latency) -> Latency {
        Latency(self.0.saturating_add(other.0))
    }
}

impl AddAssign for Latency {
    fn add_assign(&mut self, other: Latency) {
        *self = *self + other;
    }
}

impl Sum for Latency {
    fn sum<I: Iterator<Item = Latency>>(iter: I) -> Latency {
        iter.fold(Latency::ZERO, Add::add)
    }
}

impl fmt::Display for Latency {
    /// `∞`, or three significant digits in the largest unit below the value (`812 µs`,
    /// `64.1 ms`, `15.0 s`, `12.5 min`, `3.20 h`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_infinite() {
            return f.write_str("∞");
        }
        let micros = self.as_micros();
        let (value, unit) = if micros >= 6e9 {
            (micros / 3.6e9, "h")
        } else if micros >= 1e9 {
            (micros / 6e7, "min")
        } else if micros >= 1e6 {
            (micros / 1e6, "s")
        } else if micros >= 1e3 {
            (micros / 1e3, "ms")
        } else {
            (micros, "µs")
        };
        let decimals = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        write!(f, "{value:.decimals$} {unit}")
    }
}

/// How many threads the executor gives one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Threads {
    /// One thread (the peers' single-thread comparison point).
    One,
    /// Two threads (this machine's cores), parallel over limbs and digits.
    Two,
}

/// Per-limb costs of the arithmetic layer at one ring degree, one thread, in microseconds
/// per limb of one polynomial (`N` coefficients).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Primitives {
    /// Forward NTT of one limb (`ntt_21` / 21: a 60-bit q_0 and twenty 40-bit primes).
    pub ntt: f64,
    /// Inverse NTT of one limb (`intt_21` / 21).
    pub intt: f64,
    /// Modular addition of one limb (`add_21` / 21).
    pub add: f64,
    /// Pointwise modular product of one limb (`mul_21` / 21).
    pub mul: f64,
    /// Pointwise multiply-accumulate of one limb (`mul_acc_21` / 21).
    pub mac: f64,
    /// NTT-domain automorphism of one limb (`automorphism_ntt_21` / 21).
    pub automorphism: f64,
    /// Base conversion, per (source limb, target limb) pair
    /// (`convert_digit0_7_to_19` / (7 · 19)).
    pub conversion: f64,
    /// Rescale, per limb that remains (`rescale_21` / 20).
    pub rescale: f64,
    /// Inner product of ModUp'ed digits with a key, per (digit, limb) and output
    /// (`inner_product_3x26` / (3 · 26)).
    pub inner_product: f64,
    /// Measured `key_switch_arith_21` (21 limbs, dnum 3, P = 5 limbs), in microseconds;
    /// the key-switch count is scaled to it.
    pub key_switch_21: f64,
}

impl Primitives {
    /// The measured table for `log_n` in 14..=16; other degrees scale the nearest measured
    /// one by `N log N` (transforms, conversions) or `N` (pointwise operations).
    pub fn measured(log_n: u32) -> Primitives {
        // One thread, criterion medians of runtime/benches/arith.rs on this machine at
        // commit 4b02127: the per-limb primitives with ENSI_BENCH_CLOCK=cpu (steady on a
        // shared machine); `key_switch_arith_21` by wall clock (its CPU time also counts the
        // page faults of the bench's per-iteration allocations: 19.7 / 42.2 / 92.5 ms).
        const N14: Primitives = Primitives {
            ntt: 823.46 / 21.0,
            intt: 921.20 / 21.0,
            add: 70.126 / 21.0,
            mul: 117.29 / 21.0,
            mac: 129.97 / 21.0,
            automorphism: 179.24 / 21.0,
            conversion: 874.87 / (7.0 * 19.0),
            rescale: 1082.6 / 20.0,
            inner_product: 628.75 / (3.0 * 26.0),
            key_switch_21: 14_857.0,
        };
        const N15: Primitives = Primitives {
            ntt: 2102.1 / 21.0,
            intt: 2384.6 / 21.0,
            add: 162.42 / 21.0,
            mul: 242.50 / 21.0,
            mac: 348.43 / 21.0,
            automorphism: 430.15 / 21.0,
            conversion: 2127.6 / (7.0 * 19.0),
            rescale: 2381.2 / 20.0,
            inner_product: 1531.4 / (3.0 * 26.0),
            key_switch_21: 40_909.5,
        };
        // N = 2^16: ModUp of a 7-limb digit 12.2 ms and ModDown 26 -> 21 11.6 ms in the same
        // run; the key switch is the arith layer's 64 ms (wall clock, 66.1 ms in its run).
        const N16: Primitives = Primitives {
            ntt: 4935.0 / 21.0,
            intt: 5460.1 / 21.0,
            add: 459.25 / 21.0,
            mul: 566.79 / 21.0,
            mac: 1000.6 / 21.0,
            automorphism: 1397.0 / 21.0,
            conversion: 4474.3 / (7.0 * 19.0),
            rescale: 5764.1 / 20.0,
            inner_product: 3380.8 / (3.0 * 26.0),
            key_switch_21: 64_000.0,
        };
        match log_n {
            14 => N14,
            15 => N15,
            16 => N16,
            _ => {
                let (base, base_log) = if log_n < 14 { (N14, 14) } else { (N16, 16) };
                let n_ratio = 2f64.powi(log_n as i32 - base_log);
                let transform = n_ratio * f64::from(log_n) / f64::from(base_log);
                Primitives {
                    ntt: base.ntt * transform,
                    intt: base.intt * transform,
                    add: base.add * n_ratio,
                    mul: base.mul * n_ratio,
                    mac: base.mac * n_ratio,
                    automorphism: base.automorphism * n_ratio,
                    conversion: base.conversion * n_ratio,
                    rescale: base.rescale * transform,
                    inner_product: base.inner_product * n_ratio,
                    key_switch_21: base.key_switch_21 * transform,
                }
            }
        }
    }
}

/// Two-thread speedups of the primitives (one-thread time / two-thread time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speedups {
    /// NTTs, conversions, rescale, key switches: compute bound, parallel over limbs.
    pub transform: f64,
    /// Additions, products, automorphisms: memory bound.
    pub pointwise: f64,
}

impl Speedups {
    /// Estimates, not measurements: the only two-thread run so far (`ENSI_BENCH_THREADS=2`,
    /// wall clock, this machine at load 5-6) gave 1.72x for `ntt_21` and noise for the rest;
    /// DESIGN.md expects 1.6-1.8x for limb-parallel key switching. Memory-bound pointwise
    /// work is assumed to gain 1.3x. Replace with a quiet-machine run.
    pub const TWO_THREADS: Speedups = Speedups {
        transform: 1.7,
        pointwise: 1.3,
    };
}

/// The CKKS bootstrapping circuit whose cost is estimated (Lattigo v6 defaults,
/// `circuits/ckks/bootstrapping/parameters_literal.go`, reference/ckks-evaluators.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootstrapCircuit {
    /// Levels of CoeffsToSlots (the homomorphic DFT's stages merged into this many matrices).
    pub coeffs_to_slots_depth: u32,
    /// Degree of the Chebyshev interpolant of the scaled cosine in EvalMod.
    pub eval_mod_degree: u32,
    /// Double-angle squarings after the cosine.
    pub double_angles: u32,
    /// Levels of SlotsToCoeffs.
    pub slots_to_coeffs_depth: u32,
    /// The lowest level a ciphertext may have when it enters the bootstrap (it is dropped
    /// to level 0 before ModRaise, so any level works; a ScaleDown would need one).
    pub min_input_level: u32,
}

impl BootstrapCircuit {
    /// Lattigo's defaults: CtS 4 levels, EvalMod degree 30 + 3 double angles (8 levels),
    /// StC 3 levels.
    pub const LATTIGO_DEFAULT: BootstrapCircuit = BootstrapCircuit {
        coeffs_to_slots_depth: 4,
        eval_mod_degree: 30,
        double_angles: 3,
        slots_to_coeffs_depth: 3,
        min_input_level: 0,
    };

    /// Levels EvalMod consumes.
    pub fn eval_mod_depth(&self) -> u32 {
        poly_depth(self.eval_mod_degree) + self.double_angles
    }

    /// Levels the whole circuit consumes above the target level.
    pub fn depth(&self) -> u32 {
        self.coeffs_to_slots_depth + self.eval_mod_depth() + self.slots_to_coeffs_depth
    }
}

/// How the bootstrap estimate is scaled until the runtime's bootstrapper can be measured.
/// This is the one place to replace with a measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BootstrapEstimate {
    /// The circuit count, scaled so that a full-slot bootstrap at N = 2^16 to level 10
    /// (one thread) takes `full_slot_seconds`.
    Anchored {
        /// Seconds of the anchor bootstrap.
        full_slot_seconds: f64,
    },
    /// The circuit count as is (no memory traffic, key loading or other overheads).
    Counted,
}

impl BootstrapEstimate {
    /// ensi's target for its own bootstrapper (DESIGN.md §5: ≤ 15 s, full slots, N = 2^16,
    /// ≥ 10 levels after, one thread). The default.
    pub const ENSI_TARGET: BootstrapEstimate = BootstrapEstimate::Anchored {
        full_slot_seconds: 15.0,
    };
    /// Lattigo v6 measured on this machine (shared/peers/RESULTS.md: 24.41 s, full slots,
    /// N = 2^16, 10 levels after, one thread).
    pub const LATTIGO_MEASURED: BootstrapEstimate = BootstrapEstimate::Anchored {
        full_slot_seconds: 24.41,
    };
    /// Level after the anchor bootstrap.
    pub const ANCHOR_TARGET: u32 = 10;
    /// Ring degree of the anchor bootstrap.
    pub const ANCHOR_LOG_N: u32 = 16;
}

/// The ring and key-switching shape that costs depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RingShape {
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// Levels left to the program after bootstrapping (L_max): bootstrap targets and fresh
    /// inputs are at most this level.
    pub max_level: u32,
    /// Special (key-switching) primes P.
    pub special_primes: u32,
    /// Key-switching digits at the top of the full chain (user and bootstrapping levels).
    pub dnum: u32,
}

impl RingShape {
    /// The peers' benchmark shape with Lattigo's bootstrapping: N = 2^16, 14 user levels,
    /// P = 5 primes, dnum 3 (used by the examples and tests).
    pub const N16_L14: RingShape = RingShape {
        log_n: 16,
        max_level: 14,
        special_primes: 5,
        dnum: 3,
    };
}

/// Why a cost model cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// A shape field is out of range.
    #[error("cost model: {field} = {value} is out of range ({expected})")]
    BadShape {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is accepted.
        expected: &'static str,
    },
}

/// A homomorphic operation on a vector of ciphertexts, as far as its cost and depth go.
/// Counts are per output ciphertext unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HeOp {
    /// A fresh input (encrypted by the client): no server cost.
    Input,
    /// Ciphertext + ciphertext (or −).
    Add,
    /// Sum of `terms` ciphertext vectors (`terms − 1` additions per output ciphertext).
    Sum {
        /// Number of summands.
        terms: u32,
    },
    /// Negation.
    Neg,
    /// Adds a constant.
    AddConst,
    /// Adds a plaintext.
    AddPlain {
        /// Whether the plaintext is encoded once and cached at this level.
        cached: bool,
    },
    /// Multiplies by a constant; with `rescale`, a real constant at a scale (one level).
    MulConst {
        /// Whether the product is rescaled (one level).
        rescale: bool,
    },
    /// Multiplies by a plaintext and rescales (one level).
    MulPlain {
        /// Whether the plaintext is encoded once and cached at this level.
        cached: bool,
    },
    /// Ciphertext × ciphertext, relinearized and rescaled (one level).
    MulCt,
    /// Ciphertext squared, relinearized and rescaled (one level).
    Square,
    /// One rotation (a key switch).
    Rotate,
    /// One of several rotations of the same source sharing its ModUp (the source's ModUp
    /// is amortized away; charge it once with [`HeOp::ModUp`] if it matters).
    RotateHoisted,
    /// The ModUp of one ciphertext's hoisted rotations.
    ModUp,
    /// `Σ_{i<terms} rot(x, i·step)` by log2(terms) rotate-and-add steps.
    RotSum {
        /// Number of terms (a power of two).
        terms: u32,
    },
    /// Sums runs of `group` input ciphertexts (`group − 1` additions per output).
    SumCiphertexts {
        /// Input ciphertexts per output.
        group: u32,
    },
    /// Rescale on its own (one level).
    Rescale,
    /// ENSI's column method: `additions` ciphertext additions in total (about one per
    /// nonzero weight), no level.
    TernaryColumns {
        /// Total ciphertext additions and subtractions.
        additions: u64,
    },
    /// Block-diagonal BSGS method with ternary plaintext diagonals (one level).
    TernaryDiagonals {
        /// Input ciphertexts (each hoists its baby steps once).
        input_cts: u32,
        /// Nonzero plaintext diagonals in total (one multiply-accumulate each).
        diagonals: u64,
        /// Baby-step rotations per input ciphertext.
        baby_steps: u32,
        /// Giant-step rotations per output ciphertext.
        giant_steps: u32,
    },
    /// Chebyshev series of `degree` (baby-step giant-step), `⌈log2(degree+1)⌉` levels.
    Poly {
        /// Degree.
        degree: u32,
    },
    /// One Newton step `y ← 1.5 y − 0.5 (x y)(y²)` for 1/√x (two levels).
    NewtonInvSqrt,
    /// Layout change with masks and rotations (one level).
    Repack {
        /// Rotations per output ciphertext.
        rotations: u32,
        /// Plaintext masks per output ciphertext.
        masks: u32,
    },
}

/// Levels a Chebyshev series of `degree` consumes: `⌈log2(degree + 1)⌉`.
pub fn poly_depth(degree: u32) -> u32 {
    (degree + 1).next_power_of_two().trailing_zeros()
}

impl HeOp {
    /// Levels the operation consumes.
    pub fn depth(&self) -> u32 {
        match *self {
            HeOp::MulConst { rescale } => u32::from(rescale),
            HeOp::MulPlain { .. }
            | HeOp::MulCt
            | HeOp::Square
            | HeOp::Rescale
            | HeOp::TernaryDiagonals { .. }
            | HeOp::Repack { .. } => 1,
            HeOp::Poly { degree } => poly_depth(degree),
            HeOp::NewtonInvSqrt => 2,
            HeOp::Input
            | HeOp::Add
            | HeOp::Sum { .. }
            | HeOp::Neg
            | HeOp::AddConst
            | HeOp::AddPlain { .. }
            | HeOp::Rotate
            | HeOp::RotateHoisted
            | HeOp::ModUp
            | HeOp::RotSum { .. }
            | HeOp::SumCiphertexts { .. }
            | HeOp::TernaryColumns { .. } => 0,
        }
    }
}

/// The cost model: one ring shape, one thread count, one bootstrap estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    ring: RingShape,
    threads: Threads,
    circuit: BootstrapCircuit,
    primitives: Primitives,
    /// Limbs of one key-switching digit (α), fixed by the full chain and dnum.
    digit_limbs: u32,
    /// measured `key_switch_arith_21` / counted key switch at the bench's shape.
    key_switch_calibration: f64,
    /// anchor / counted bootstrap (1 for [`BootstrapEstimate::Counted`]).
    bootstrap_calibration: f64,
    estimate: BootstrapEstimate,
}

/// Limbs at `level`.
fn limbs(level: u32) -> f64 {
    f64::from(level + 1)
}

impl CostModel {
    /// A model for `ring` with Lattigo's bootstrapping circuit, anchored at ensi's target.
    pub fn new(ring: RingShape, threads: Threads) -> Result<CostModel, CostError> {
        CostModel::with_bootstrap(
            ring,
            threads,
            BootstrapCircuit::LATTIGO_DEFAULT,
            BootstrapEstimate::ENSI_TARGET,
        )
    }

    /// A model with an explicit bootstrapping circuit and estimate.
    pub fn with_bootstrap(
        ring: RingShape,
        threads: Threads,
        circuit: BootstrapCircuit,
        estimate: BootstrapEstimate,
    ) -> Result<CostModel, CostError> {
        let check = |field, value: u32, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(CostError::BadShape {
                    field,
                    value: u64::from(value),
                    expected,
                })
            }
        };
        check(
            "log_n",
            ring.log_n,
            (10..=17).contains(&ring.log_n),
            "10..=17",
        )?;
        check(
            "max_level",
            ring.max_level,
            (1..=60).contains(&ring.max_level),
            "1..=60",
        )?;
        check(
            "special_primes",
            ring.special_primes,
            (1..=16).contains(&ring.special_primes),
            "1..=16",
        )?;
        check("dnum", ring.dnum, ring.dnum >= 1, "at least 1")?;
        if let BootstrapEstimate::Anchored { full_slot_seconds } = estimate
            && !(full_slot_seconds.is_finite() && full_slot_seconds > 0.0)
        {
            return Err(CostError::BadShape {
                field: "full_slot_seconds",
                value: 0,
                expected: "a positive number of seconds",
            });
        }
        let top_limbs = ring.max_level + circuit.depth() + 1;
        let digit_limbs = top_limbs.div_ceil(ring.dnum);
        let primitives = Primitives::measured(ring.log_n);
        let mut model = CostModel {
            ring,
            threads,
            circuit,
            primitives,
            digit_limbs,
            key_switch_calibration: 1.0,
            bootstrap_calibration: 1.0,
            estimate,
        };
        // The bench's key switch: 21 limbs, digits of 7, 5 special primes, one thread.
        let bench = CostModel {
            ring: RingShape {
                special_primes: 5,
                ..ring
            },
            threads: Threads::One,
            digit_limbs: 7,
            ..model.clone()
        };
        model.key_switch_calibration = primitives.key_switch_21 / bench.key_switch_counted(20);
        if let BootstrapEstimate::Anchored { full_slot_seconds } = estimate {
            let anchor_ring = RingShape {
                log_n: BootstrapEstimate::ANCHOR_LOG_N,
                max_level: BootstrapEstimate::ANCHOR_TARGET,
                ..ring
            };
            let anchor = CostModel::with_bootstrap(
                anchor_ring,
                Threads::One,
                circuit,
                BootstrapEstimate::Counted,
            )?;
            let slots = 1u32 << (BootstrapEstimate::ANCHOR_LOG_N - 1);
            let counted = anchor.bootstrap_counted(slots, 0, BootstrapEstimate::ANCHOR_TARGET);
            model.bootstrap_calibration = full_slot_seconds * 1e6 / counted;
        }
        Ok(model)
    }

    /// The ring shape.
    pub fn ring(&self) -> RingShape {
        self.ring
    }

    /// The thread count.
    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// The bootstrapping circuit.
    pub fn circuit(&self) -> BootstrapCircuit {
        self.circuit
    }

    /// The bootstrap estimate in use.
    pub fn estimate(&self) -> BootstrapEstimate {
        self.estimate
    }

    /// The anchor's factor over the bare circuit count (1 when counted).
    pub fn bootstrap_calibration(&self) -> f64 {
        self.bootstrap_calibration
    }

    fn speedup(&self, transform: bool) -> f64 {
        match self.threads {
            Threads::One => 1.0,
            Threads::Two if transform => Speedups::TWO_THREADS.transform,
            Threads::Two => Speedups::TWO_THREADS.pointwise,
        }
    }

    // Primitive costs in microseconds for `n` limbs, after the thread speedup.
    fn ntt(&self, n: f64) -> f64 {
        n * self.primitives.ntt / self.speedup(true)
    }
    fn intt(&self, n: f64) -> f64 {
        n * self.primitives.intt / self.speedup(true)
    }
    fn add_limbs(&self, n: f64) -> f64 {
        n * self.primitives.add / self.speedup(false)
    }
    fn mul_limbs(&self, n: f64) -> f64 {
        n * self.primitives.mul / self.speedup(false)
    }
    fn mac_limbs(&self, n: f64) -> f64 {
        n * self.primitives.mac / self.speedup(false)
    }
    fn automorphism_limbs(&self, n: f64) -> f64 {
        n * self.primitives.automorphism / self.speedup(false)
    }
    fn conversion(&self, from: f64, to: f64) -> f64 {
        from * to * self.primitives.conversion / self.speedup(true)
    }

    /// Key-switching digits at `level`.
    fn digits(&self, level: u32) -> u32 {
        (level + 1).div_ceil(self.digit_limbs)
    }

    fn mod_up_counted(&self, level: u32) -> f64 {
        let q = level + 1;
        let k = f64::from(self.ring.special_primes);
        (0..self.digits(level))
            .map(|d| {
                let a = f64::from(self.digit_limbs.min(q - d * self.digit_limbs));
                let rest = f64::from(q) + k - a;
                self.intt(a) + self.conversion(a, rest) + self.ntt(rest)
            })
            .sum()
    }

    fn mod_down_counted(&self, level: u32) -> f64 {
        let q = limbs(level);
        let k = f64::from(self.ring.special_primes);
        self.intt(k) + self.conversion(k, q) + self.ntt(q) + self.mul_limbs(q)
    }

    /// Inner product of the digits with a two-part key: per output, digits × (Q + P) limbs.
    fn inner_product_counted(&self, level: u32) -> f64 {
        let ext = limbs(level) + f64::from(self.ring.special_primes);
        2.0 * f64::from(self.digits(level)) * ext * self.primitives.inner_product
            / self.speedup(false)
    }

    fn key_switch_counted(&self, level: u32) -> f64 {
        self.mod_up_counted(level)
            + self.inner_product_counted(level)
            + 2.0 * self.mod_down_counted(level)
    }

    /// One hybrid key switch of one polynomial at `level`, µs.
    fn key_switch_us(&self, level: u32) -> f64 {
        self.key_switch_counted(level) * self.key_switch_calibration
    }

    /// One hybrid key switch at `level` (ModUp, inner product, two ModDowns).
    pub fn key_switch(&self, level: u32) -> Latency {
        Latency::from_micros(self.key_switch_us(level))
    }

    fn add_us(&self, level: u32) -> f64 {
        self.add_limbs(2.0 * limbs(level))
    }

    fn rescale_us(&self, level: u32) -> f64 {
        // Two polynomials; per polynomial an INTT of the dropped limb and, per remaining
        // limb, its NTT and a subtract-multiply (the measured `rescale_21` per limb).
        2.0 * f64::from(level) * self.primitives.rescale / self.speedup(true)
    }

    fn encode_us(&self, level: u32, slots: u32) -> f64 {
        // FFT over the slots (estimate: 4 ns per butterfly, not measured), RNS reduction
        // (one add-like pass per limb) and the NTTs.
        let n = f64::from(slots.clamp(2, 1u32 << (self.ring.log_n - 1)));
        let fft = n * n.log2() * 4e-3 / self.speedup(true);
        fft + self.add_limbs(limbs(level)) + self.ntt(limbs(level))
    }

    fn mul_plain_us(&self, level: u32, cached: bool, slots: u32) -> f64 {
        let encode = if cached {
            0.0
        } else {
            self.encode_us(level, slots)
        };
        encode + self.mul_limbs(2.0 * limbs(level)) + self.rescale_us(level)
    }

    fn mul_ct_us(&self, level: u32, square: bool) -> f64 {
        // Tensor: d0 = a0 b0, d1 = a0 b1 + a1 b0, d2 = a1 b1 (a square saves one product),
        // relinearize d2, add the key switch's output, rescale.
        let q = limbs(level);
        let tensor = if square {
            self.mul_limbs(3.0 * q) + self.add_limbs(q)
        } else {
            self.mul_limbs(3.0 * q) + self.mac_limbs(q)
        };
        tensor + self.key_switch_us(level) + self.add_limbs(2.0 * q) + self.rescale_us(level)
    }

    fn rotate_us(&self, level: u32) -> f64 {
        self.key_switch_us(level)
            + self.automorphism_limbs(2.0 * limbs(level))
            + self.add_limbs(limbs(level))
    }

    /// A rotation sharing a ModUp: the automorphism of the extended digits, the inner
    /// product and two ModDowns.
    fn rotate_hoisted_us(&self, level: u32) -> f64 {
        let ext = limbs(level) + f64::from(self.ring.special_primes);
        let digits = f64::from(self.digits(level));
        (self.automorphism_limbs(digits * ext)
            + self.inner_product_counted(level)
            + 2.0 * self.mod_down_counted(level))
            * self.key_switch_calibration
            + self.automorphism_limbs(limbs(level))
            + self.add_limbs(limbs(level))
    }

    fn mod_up_us(&self, level: u32) -> f64 {
        self.mod_up_counted(level) * self.key_switch_calibration
    }

    /// A Chebyshev series of `degree` by baby-step giant-step on one ciphertext entering at
    /// `level`: `2^m` baby powers (m = ⌈l/2⌉ of l = ⌈log2(d+1)⌉ levels), the giant powers
    /// `T_{2^{m+i}}`, one product per giant-step block, and d+1 scalar products and adds.
    fn poly_us(&self, level: u32, degree: u32) -> f64 {
        let depth = poly_depth(degree);
        if depth == 0 {
            return self.add_us(level);
        }
        let baby_log = depth.div_ceil(2);
        let mut total = 0.0;
        // T_j for j = 2..=2^m: its product enters at level − ⌈log2 j⌉ + 1.
        for j in 2..=(1u32 << baby_log) {
            let ceil_log = j.next_power_of_two().trailing_zeros();
            total += self.mul_ct_us(level + 1 - ceil_log, j.is_power_of_two());
        }
        // Giant powers T_{2^{m+1}}, ..., T_{2^{l-1}} by squaring.
        for i in 0..depth.saturating_sub(baby_log + 1) {
            total += self.mul_ct_us(level - baby_log - i, true);
        }
        // One product per extra block, at the bottom of the series.
        let blocks = (degree + 1).div_ceil(1 << baby_log);
        let bottom = level + 1 - depth;
        total += f64::from(blocks.saturating_sub(1)) * self.mul_ct_us(bottom, false);
        // Scalar multiply-adds of the coefficients at the baby powers' level.
        let scalar_level = level.saturating_sub(baby_log);
        total += f64::from(degree + 1)
            * (self.mul_limbs(2.0 * limbs(scalar_level)) + self.add_us(scalar_level));
        total
    }

    fn newton_us(&self, level: u32) -> f64 {
        // y², x·y at `level`; (x y)(y²) at level − 1; 1.5 y and 0.5 (scalar, folded into a
        // rescale of y), one subtraction.
        self.mul_ct_us(level, true)
            + self.mul_ct_us(level, false)
            + self.mul_ct_us(level - 1, false)
            + self.mul_limbs(2.0 * limbs(level))
            + self.rescale_us(level)
            + self.add_us(level - 2)
    }

    /// A BSGS linear transform with `diagonals` plaintext diagonals on one ciphertext at
    /// `level` (double hoisting): one ModUp, hoisted baby steps, multiply-accumulate over
    /// Q·P, one ModDown pair and one rotation per giant step, rescale.
    fn linear_transform_us(&self, level: u32, diagonals: u32) -> f64 {
        let diagonals = diagonals.max(1);
        let baby = (f64::from(diagonals).sqrt().ceil() as u32)
            .next_power_of_two()
            .min(diagonals);
        let giant = diagonals.div_ceil(baby);
        let ext = limbs(level) + f64::from(self.ring.special_primes);
        let mut total = self.mod_up_us(level);
        total += f64::from(baby - 1) * self.rotate_hoisted_us(level);
        total += f64::from(diagonals) * self.mac_limbs(2.0 * ext);
        total +=
            f64::from(giant) * 2.0 * self.mod_down_counted(level) * self.key_switch_calibration;
        total += f64::from(giant - 1) * (self.rotate_us(level) + self.add_us(level));
        total + self.rescale_us(level)
    }

    /// Cost of `op` producing `count` ciphertexts when its operands are at `level`, in µs
    /// (`None` if `level` is below the op's depth).
    fn op_us(&self, op: &HeOp, level: u32, count: u32, slots: u32) -> Option<f64> {
        if level < op.depth() {
            return None;
        }
        let count = f64::from(count);
        let per_ct = match *op {
            HeOp::Input => 0.0,
            HeOp::Add | HeOp::Neg => self.add_us(level),
            HeOp::Sum { terms } => f64::from(terms.saturating_sub(1)) * self.add_us(level),
            HeOp::AddConst => self.add_limbs(limbs(level)),
            HeOp::AddPlain { cached } => {
                let encode = if cached {
                    0.0
                } else {
                    self.encode_us(level, slots)
                };
                encode + self.add_limbs(limbs(level))
            }
            HeOp::MulConst { rescale } => {
                let rescale = if rescale { self.rescale_us(level) } else { 0.0 };
                self.mul_limbs(2.0 * limbs(level)) + rescale
            }
            HeOp::MulPlain { cached } => self.mul_plain_us(level, cached, slots),
            HeOp::MulCt => self.mul_ct_us(level, false),
            HeOp::Square => self.mul_ct_us(level, true),
            HeOp::Rotate => self.rotate_us(level),
            HeOp::RotateHoisted => self.rotate_hoisted_us(level),
            HeOp::ModUp => self.mod_up_us(level),
            HeOp::RotSum { terms } => {
                let steps = f64::from(terms.max(1).next_power_of_two().trailing_zeros());
                steps * (self.rotate_us(level) + self.add_us(level))
            }
            HeOp::SumCiphertexts { group } => {
                f64::from(group.saturating_sub(1)) * self.add_us(level)
            }
            HeOp::Rescale => self.rescale_us(level),
            HeOp::TernaryColumns { additions } => {
                // Not per output ciphertext: the whole layer's additions.
                return Some(additions as f64 * self.add_us(level));
            }
            HeOp::TernaryDiagonals {
                input_cts,
                diagonals,
                baby_steps,
                giant_steps,
            } => {
                let ext = limbs(level) + f64::from(self.ring.special_primes);
                let inputs = f64::from(input_cts)
                    * (self.mod_up_us(level)
                        + f64::from(baby_steps) * self.rotate_hoisted_us(level));
                let products = diagonals as f64 * self.mac_limbs(2.0 * ext);
                let outputs = count
                    * (f64::from(giant_steps) * (self.rotate_us(level) + self.add_us(level))
                        + 2.0 * self.mod_down_counted(level) * self.key_switch_calibration
                        + self.rescale_us(level));
                return Some(inputs + products + outputs);
            }
            HeOp::Poly { degree } => self.poly_us(level, degree),
            HeOp::NewtonInvSqrt => self.newton_us(level),
            HeOp::Repack { rotations, masks } => {
                f64::from(rotations) * (self.rotate_us(level) + self.add_us(level))
                    + f64::from(masks) * self.mul_plain_us(level, true, slots)
            }
        };
        Some(count * per_ct)
    }

    /// Latency of `op` producing `count` ciphertexts of `slots` slots from operands at
    /// `level`; [`Latency::INFINITE`] below the op's depth or above the budget. (Slots only
    /// matter for encoding uncached plaintexts; ciphertext arithmetic is on all N
    /// coefficients whatever the slot count.)
    pub fn op(&self, op: &HeOp, level: u32, count: u32, slots: u32) -> Latency {
        if level > self.ring.max_level {
            return Latency::INFINITE;
        }
        self.op_us(op, level, count, slots)
            .map_or(Latency::INFINITE, Latency::from_micros)
    }

    /// [`CostModel::op`] at every level `0..=max_level` (a placement node's cost table).
    pub fn op_table(&self, op: &HeOp, count: u32, slots: u32) -> Vec<Latency> {
        (0..=self.ring.max_level)
            .map(|level| self.op(op, level, count, slots))
            .collect()
    }

    /// The bare circuit count of one bootstrap of a `slots`-slot ciphertext from
    /// `input_level` to `target`, µs.
    fn bootstrap_counted(&self, slots: u32, input_level: u32, target: u32) -> f64 {
        let c = self.circuit;
        let half_n = 1u32 << (self.ring.log_n - 1);
        let slots = slots.clamp(1, half_n).next_power_of_two();
        let log_slots = slots.trailing_zeros();
        let top = target + c.depth();
        // ScaleDown at the input level (a constant product and a rescale), drop to 0.
        let mut total =
            self.mul_limbs(2.0 * limbs(input_level)) + self.rescale_us(input_level.max(1));
        // ModRaise: both polynomials from q_0 back to the top of the chain.
        total += 2.0 * (self.intt(1.0) + self.ntt(limbs(top)));
        // Sparse slots: the trace over the unused slot positions.
        let trace = (half_n / slots).trailing_zeros();
        total += f64::from(trace) * (self.rotate_us(top) + self.add_us(top));
        // CoeffsToSlots: log2(slots) butterfly stages merged into `depth` matrices.
        let dft = |first_level: u32, depth: u32| -> f64 {
            let stages = log_slots.max(1);
            let depth = depth.clamp(1, stages);
            (0..depth)
                .map(|i| {
                    let group = stages / depth + u32::from(i < stages % depth);
                    let diagonals = ((1u32 << (group + 1)) - 1).min(2 * slots);
                    self.linear_transform_us(first_level - i, diagonals)
                })
                .sum()
        };
        total += dft(top, c.coeffs_to_slots_depth);
        // Full slots: real and imaginary parts go through EvalMod as two ciphertexts
        // (one conjugation splits them); sparse slots fit both in one.
        let after_cts = top - c.coeffs_to_slots_depth;
        let eval_cts = if slots == half_n {
            total += self.rotate_us(after_cts) + 2.0 * self.add_us(after_cts);
            2.0
        } else {
            1.0
        };
        // EvalMod: the cosine's Chebyshev series, then the double angles.
        let mut eval_mod = self.poly_us(after_cts, c.eval_mod_degree);
        let after_cos = after_cts - poly_depth(c.eval_mod_degree);
        for i in 0..c.double_angles {
            eval_mod += self.mul_ct_us(after_cos - i, true) + self.add_limbs(limbs(after_cos - i));
        }
        total += eval_cts * eval_mod;
        // SlotsToCoeffs on the recombined ciphertext.
        let before_stc = target + c.slots_to_coeffs_depth;
        total += (eval_cts - 1.0) * self.add_us(before_stc);
        total += dft(before_stc, c.slots_to_coeffs_depth);
        total
    }

    /// Latency of bootstrapping one `slots`-slot ciphertext from `input_level` to `target`;
    /// [`Latency::INFINITE`] if the input is below the circuit's minimum input level or the
    /// target above the budget.
    pub fn bootstrap(&self, slots: u32, input_level: u32, target: u32) -> Latency {
        if input_level < self.circuit.min_input_level
            || input_level > self.ring.max_level
            || target > self.ring.max_level
        {
            return Latency::INFINITE;
        }
        Latency::from_micros(
            self.bootstrap_counted(slots, input_level, target) * self.bootstrap_calibration,
        )
    }

    /// [`CostModel::bootstrap`] for every `(input, target)` in `0..=max_level`, row-major by
    /// input level (a placement graph's bootstrap table for one slot count).
    pub fn bootstrap_table(&self, slots: u32) -> Vec<Latency> {
        let levels = self.ring.max_level + 1;
        (0..levels)
            .flat_map(|input| (0..levels).map(move |target| (input, target)))
            .map(|(input, target)| self.bootstrap(slots, input, target))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> CostModel {
        CostModel::new(RingShape::N16_L14, Threads::One).unwrap()
    }

    #[test]
    fn latency_arithmetic_saturates_and_displays() {
        let a = Latency::from_micros(1.5);
        assert_eq!(a.as_nanos(), 1500);
        assert_eq!(a + Latency::INFINITE, Latency::INFINITE);
        assert_eq!(Latency::INFINITE.times(0), Latency::ZERO);
        assert_eq!(Latency::from_micros(f64::INFINITY), Latency::INFINITE);
        assert_eq!(Latency::from_micros(-3.0), Latency::ZERO);
        assert_eq!(Latency::from_micros(812.0).to_string(), "812 µs");
        assert_eq!(Latency::from_micros(64_104.0).to_string(), "64.1 ms");
        assert_eq!(Latency::from_micros(15e6).to_string(), "15.0 s");
        assert_eq!(Latency::from_micros(1200e6).to_string(), "20.0 min");
        assert_eq!(Latency::from_micros(7200e6).to_string(), "2.00 h");
        assert_eq!(Latency::INFINITE.to_string(), "∞");
    }

    #[test]
    fn key_switch_matches_its_bench_at_the_bench_shape() {
        // Same chain shape as `key_switch_arith_21`: 21 limbs in digits of 7, P = 5.
        let m = CostModel::with_bootstrap(
            RingShape {
                log_n: 16,
                max_level: 20,
                special_primes: 5,
                dnum: 3,
            },
            Threads::One,
            BootstrapCircuit {
                coeffs_to_slots_depth: 0,
                eval_mod_degree: 0,
                double_angles: 0,
                slots_to_coeffs_depth: 0,
                min_input_level: 0,
            },
            BootstrapEstimate::Counted,
        )
        .unwrap();
        let measured = Primitives::measured(16).key_switch_21;
        assert!((m.key_switch(20).as_micros() - measured).abs() < 1.0);
    }

    #[test]
    fn costs_grow_with_level_and_depth_is_enforced() {
        let m = model();
        for op in [
            HeOp::Add,
            HeOp::MulCt,
            HeOp::Rotate,
            HeOp::Poly { degree: 15 },
            HeOp::NewtonInvSqrt,
            HeOp::MulPlain { cached: false },
        ] {
            let table = m.op_table(&op, 3, 1 << 15);
            let depth = op.depth() as usize;
            assert!(table[..depth].iter().all(|c| c.is_infinite()), "{op:?}");
            assert!(
                table[depth..].windows(2).all(|w| w[0] < w[1]),
                "{op:?}: {table:?}"
            );
        }
        assert_eq!(m.op(&HeOp::Add, 15, 1, 1 << 15), Latency::INFINITE);
        let (full, sparse) = (1 << 15, 256);
        let uncached = HeOp::MulPlain { cached: false };
        assert!(m.op(&uncached, 5, 1, sparse) < m.op(&uncached, 5, 1, full));
        assert_eq!(
            m.op(&HeOp::MulCt, 5, 1, sparse),
            m.op(&HeOp::MulCt, 5, 1, full)
        );
        assert_eq!(poly_depth(7), 3);
        assert_eq!(poly_depth(8), 4);
        assert_eq!(poly_depth(30), 5);
    }

    #[test]
    fn primitives_match_their_benches_at_21_limbs() {
        // The anchors the brief quotes for N = 2^16, one thread: add of 21 limbs ≈ 0.5 ms,
        // a ciphertext multiply well under the 100 ms target, a rotation under 80 ms.
        let m = CostModel::with_bootstrap(
            RingShape {
                max_level: 20,
                ..RingShape::N16_L14
            },
            Threads::One,
            BootstrapCircuit::LATTIGO_DEFAULT,
            BootstrapEstimate::Counted,
        )
        .unwrap();
        let add = m.op(&HeOp::AddConst, 20, 1, 1 << 15).as_micros();
        assert!((add - 459.25).abs() < 1.0, "{add}");
        let mul = m.op(&HeOp::MulCt, 20, 1, 1 << 15);
        let rot = m.op(&HeOp::Rotate, 20, 1, 1 << 15);
        assert!(mul < Latency::from_micros(100e3), "{mul}");
        assert!(rot < Latency::from_micros(80e3), "{rot}");
        assert!(m.op(&HeOp::RotateHoisted, 20, 1, 1 << 15) < rot);
    }

    #[test]
    fn bootstrap_anchor_and_shape() {
        let m = model();
        let full = 1 << 15;
        // The anchor: a full-slot bootstrap to level 10 at N = 2^16 with 10 user levels is
        // ensi's 15 s target; with 14 user levels the digits are wider, a little different.
        let anchor_shape = CostModel::new(
            RingShape {
                max_level: 10,
                ..RingShape::N16_L14
            },
            Threads::One,
        )
        .unwrap();
        let anchor = anchor_shape.bootstrap(full, 0, 10).as_secs();
        assert!((anchor - 15.0).abs() < 1e-6, "{anchor}");
        assert!((m.bootstrap(full, 0, 10).as_secs() - 15.0).abs() < 1.0);
        // The bare count (about 7 s) stays within a small factor of the anchor.
        assert!(
            (1.0..4.0).contains(&m.bootstrap_calibration()),
            "{}",
            m.bootstrap_calibration()
        );
        // Lower targets and sparse slots are cheaper; illegal choices are infinite.
        assert!(m.bootstrap(full, 0, 5) < m.bootstrap(full, 0, 14));
        assert!(m.bootstrap(256, 0, 14) < m.bootstrap(full, 0, 14));
        assert!(m.bootstrap(full, 0, 15).is_infinite());
        let table = m.bootstrap_table(256);
        assert_eq!(table.len(), 15 * 15);
        assert_eq!(table[3 * 15 + 7], m.bootstrap(256, 3, 7));
    }

    #[test]
    fn two_threads_are_faster() {
        let one = model();
        let two = CostModel::new(RingShape::N16_L14, Threads::Two).unwrap();
        for op in [HeOp::MulCt, HeOp::Add, HeOp::Poly { degree: 7 }] {
            assert!(
                two.op(&op, 10, 4, 1 << 15) < one.op(&op, 10, 4, 1 << 15),
                "{op:?}"
            );
        }
        assert!(two.bootstrap(256, 0, 10) < one.bootstrap(256, 0, 10));
    }

    #[test]
    fn bad_shapes_are_named() {
        let err = CostModel::new(
            RingShape {
                log_n: 20,
                ..RingShape::N16_L14
            },
            Threads::One,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cost model: log_n = 20 is out of range (10..=17)"
        );
    }
}
