//! RNS arithmetic for CKKS: moduli, primes, NTT kernels, RNS polynomials, base conversion, sampling.
//!
//! Layering: `modulus` and `primes` are free-standing; `ntt` builds on `modulus`;
//! `RingContext` (`ring`) owns the primes, kernels and every precomputed constant;
//! `RnsPoly` (`poly`) stores limbs and is operated on with a `&RingContext`; `basis` holds
//! the key-switching and rescaling conversions; `sampling` produces secret and public
//! randomness. See ARCHITECTURE.md, "arith conventions".
//!
//! Speed: NTTs are tfhe-ntt's (AVX-512 IFMA for primes < 2^50, AVX-512 / AVX2 otherwise);
//! the entry-wise loops and the base-conversion rows have AVX-512 and IFMA versions chosen
//! at run time (`ENSI_SIMD=scalar|avx512|ifma` caps the level), with portable fallbacks.
//! Limbs of primes below 2^50 take the IFMA paths (NTT ~1.7x faster, pointwise ~3.5x);
//! base-conversion rows use IFMA whenever their target prime is below 2^50, whatever the
//! source widths, and Montgomery-reduced u128 sums otherwise.
//! Parallelism is rayon over limbs or coefficient blocks; it switches itself off in a
//! one-thread pool.

#![cfg_attr(
    test,
    allow(clippy::expect_used, reason = "a failed expectation fails the test")
)]

pub mod basis;
pub mod modulus;
pub mod ntt;
pub mod poly;
pub mod primes;
pub mod ring;
pub mod sampling;

mod crt;
mod kernels;
mod parallel;
mod scratch;
mod simd;
#[cfg(test)]
mod test_util;

pub use basis::{BaseConverter, ConversionMode};
pub use modulus::{Modulus, ShoupConstant};
pub use ntt::{NttBackend, NttKernel};
pub use poly::{Representation, RnsPoly};
pub use ring::{GaloisElement, RingContext};

/// Errors of the arithmetic layer's fallible constructors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A modulus outside the supported range.
    #[error("modulus {modulus} is outside [2, 2^62)")]
    ModulusOutOfRange {
        /// The rejected modulus.
        modulus: u64,
    },
    /// A modulus that is not a prime congruent to 1 mod 2N.
    #[error("{modulus} is not a prime = 1 mod 2N for log N = {log_n}")]
    NotNttFriendly {
        /// The rejected modulus.
        modulus: u64,
        /// log2 of the ring degree.
        log_n: u32,
    },
    /// The same prime appears twice in the Q and P chains.
    #[error("prime {prime} appears more than once in the Q and P chains")]
    DuplicatePrime {
        /// The repeated prime.
        prime: u64,
    },
    /// log2(N) outside the supported range.
    #[error("log N = {log_n} is outside [{min}, {max}]")]
    LogNOutOfRange {
        /// The rejected log2 of the ring degree.
        log_n: u32,
        /// Smallest supported value.
        min: u32,
        /// Largest supported value.
        max: u32,
    },
    /// The Q chain is empty.
    #[error("the Q chain needs at least one prime")]
    EmptyQChain,
    /// A key-switching digit size of zero.
    #[error("the key-switching digit size (alpha) must be at least 1")]
    ZeroDigitSize,
    /// Prime generation asked for too small a bit size for the ring degree.
    #[error("no prime of {bits} bits can be 1 mod 2N for log N = {log_n}")]
    PrimeBitsTooSmall {
        /// The requested bit size.
        bits: u32,
        /// log2 of the ring degree.
        log_n: u32,
    },
    /// Prime generation asked for too large a bit size.
    #[error("primes of {bits} bits requested; at most {max_bits} supported")]
    PrimeBitsTooLarge {
        /// The requested bit size.
        bits: u32,
        /// The largest supported bit size.
        max_bits: u32,
    },
    /// Prime generation ran out of candidates.
    #[error("fewer than {count} NTT-friendly primes of {bits} bits exist for log N = {log_n}")]
    NotEnoughPrimes {
        /// The requested bit size.
        bits: u32,
        /// log2 of the ring degree.
        log_n: u32,
        /// How many were requested.
        count: usize,
    },
    /// An NTT kernel whose evaluation points do not follow the ring's slot order.
    #[error("NTT kernel for {modulus} does not produce the bit-reversed odd-power slot order")]
    NttOrderMismatch {
        /// The prime of the kernel.
        modulus: u64,
    },
    /// A Galois element that is not odd or not below 2N.
    #[error("Galois element {element} is not an odd number below 2N = {two_n}")]
    InvalidGaloisElement {
        /// The rejected element.
        element: u64,
        /// 2N.
        two_n: u64,
    },
    /// A coefficient vector whose length is not N.
    #[error("expected {expected} coefficients, got {got}")]
    WrongCoefficientCount {
        /// N.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A residue not reduced modulo its limb's prime.
    #[error("limb {limb} holds {value}, not reduced mod {modulus}")]
    ResidueNotReduced {
        /// The limb index.
        limb: usize,
        /// The offending value.
        value: u64,
        /// The limb's prime.
        modulus: u64,
    },
    /// A fixed Hamming weight larger than N.
    #[error("Hamming weight {weight} exceeds N = {n}")]
    HammingWeightTooLarge {
        /// The requested weight.
        weight: usize,
        /// The ring degree.
        n: usize,
    },
    /// The operating system could not provide entropy.
    #[error("operating-system entropy unavailable: {message}")]
    Entropy {
        /// The OS error, rendered.
        message: String,
    },
}
