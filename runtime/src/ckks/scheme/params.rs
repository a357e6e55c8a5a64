//! CKKS parameters: the unchecked literal (bit sizes), the checked `Params` (actual primes, ring, exact scales, hash, security), named sets.
//!
//! A [`ParamsLiteral`] is the unchecked, serializable description that plans and files
//! carry; the checked parameter set [`Params`] (actual primes, ring, hash) is built from it
//! once, by [`Params::new`] (128-bit bound enforced), [`Params::with_sparse_estimate`] (a
//! fixed-Hamming-weight secret with its own stated estimate) or
//! [`Params::insecure_for_testing`] (no bound, marked insecure everywhere).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ckks::arith::primes::{primes_below, scaling_primes};
use crate::ckks::arith::{self, RingContext};
use crate::ckks::numerics::embedding::CanonicalEmbedding;

/// Distribution of the secret key's coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SecretDistribution {
    /// Uniform over {-1, 0, 1}: the distribution the HE standard's table covers.
    UniformTernary,
    /// Exactly `h` nonzero coefficients in {-1, 1}. Not covered by the HE standard's
    /// table; a set using it must carry its own security estimate.
    FixedHammingWeight {
        /// Number of nonzero coefficients.
        h: u32,
    },
}

/// Whether a parameter set meets the 128-bit bound, or was built on purpose without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Security {
    /// log2(QP) is within the HE-standard 128-bit classical bound for the ring degree
    /// (uniform ternary secret).
    Bits128,
    /// Built through the explicit insecure-for-testing path. Never use for real data.
    InsecureForTesting,
    /// A sparse (fixed-Hamming-weight) secret, outside the HE-standard table, accepted on
    /// the strength of an estimate stated with the parameter set ([`SparseEstimate`]).
    StatedEstimate {
        /// The claimed classical security level in bits.
        bits: u32,
    },
}

impl Security {
    /// A loud marker for reports and file headers.
    pub fn label(self) -> &'static str {
        match self {
            Security::Bits128 => "128-bit (HE standard, uniform ternary secret)",
            Security::InsecureForTesting => "INSECURE — FOR TESTING ONLY",
            Security::StatedEstimate { .. } => {
                "stated estimate (sparse secret, outside the HE-standard table)"
            }
        }
    }
}

/// The unchecked description of a CKKS parameter set: ring degree and the bit size of every
/// prime. Primes are derived from it deterministically when the set is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParamsLiteral {
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// Bit sizes of the ciphertext primes q_0, q_1, ..., q_L (q_0 first).
    pub log_q: Vec<u32>,
    /// Bit sizes of the special (key-switching) primes p_0, ..., p_{k-1}.
    pub log_p: Vec<u32>,
    /// log2 of the default scale at the top level.
    pub log_scale: u32,
    /// Ciphertext primes per hybrid key-switching digit (alpha); dnum = ceil((L+1)/alpha).
    pub digit_primes: u32,
    /// Secret-key distribution.
    pub secret: SecretDistribution,
}

impl ParamsLiteral {
    /// log2 of Q·P, rounded up per prime the way the security table counts bits.
    pub fn log_qp(&self) -> u32 {
        self.log_q.iter().chain(&self.log_p).sum()
    }

    /// The top level L (number of ciphertext primes minus one).
    pub fn max_level(&self) -> usize {
        self.log_q.len().saturating_sub(1)
    }

    /// Number of key-switching digits at the top level.
    pub fn dnum(&self) -> usize {
        let alpha = self.digit_primes.max(1) as usize;
        self.log_q.len().div_ceil(alpha)
    }
}

/// The HE-standard maximum log2(QP) for 128-bit classical security with a uniform ternary
/// secret (HomomorphicEncryption.org standard; N = 2^16 and 2^17 from OpenFHE's extension of
/// the table). `None` for ring degrees outside the table.
pub fn max_log_qp_128(log_n: u32) -> Option<u32> {
    match log_n {
        10 => Some(27),
        11 => Some(54),
        12 => Some(109),
        13 => Some(218),
        14 => Some(438),
        15 => Some(881),
        16 => Some(1747),
        17 => Some(3523),
        _ => None,
    }
}

/// Why a parameter literal was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The ring, a prime or a digit size was rejected by the arithmetic layer.
    #[error("invalid parameters: {0}")]
    Arith(#[from] arith::Error),
    /// No special primes: hybrid key switching (relinearization, rotations) needs P.
    #[error("at least one special prime P is needed for key switching")]
    NoSpecialPrimes,
    /// The default scale does not fit below the ciphertext primes.
    #[error(
        "log2 scale {log_scale} must be in 1..={max} (at most the smallest scaling prime, below q_0)"
    )]
    ScaleOutOfRange {
        /// The requested log2 of the scale.
        log_scale: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// log2(QP) exceeds the HE-standard 128-bit bound for the ring degree.
    #[error(
        "log2(QP) = {log_qp:.2} exceeds the 128-bit bound {max} for N = 2^{log_n} \
         (uniform ternary secret); use a smaller chain or Params::insecure_for_testing"
    )]
    ExceedsSecurityBound {
        /// log2 of the ring degree.
        log_n: u32,
        /// log2 of the product of the actual primes.
        log_qp: f64,
        /// The bound.
        max: u32,
    },
    /// The HE-standard table has no entry for this ring degree.
    #[error("no 128-bit bound is tabulated for N = 2^{log_n}; use Params::insecure_for_testing")]
    NoSecurityTable {
        /// log2 of the ring degree.
        log_n: u32,
    },
    /// A fixed-Hamming-weight secret without its own security estimate.
    #[error(
        "a fixed-Hamming-weight secret (h = {h}) is outside the HE-standard table: \
         build it with Params::with_sparse_estimate and a stated estimate"
    )]
    SparseSecretNeedsEstimate {
        /// The Hamming weight.
        h: u32,
    },
    /// Explicit primes that do not match their literal (count, size, uniqueness).
    #[error("the explicit primes do not match the literal: {reason}")]
    PrimesDoNotMatchLiteral {
        /// What differs.
        reason: String,
    },
    /// A sparse estimate given for a uniform secret, or one whose bound the chain exceeds.
    #[error("the sparse-secret estimate does not cover this set: {reason}")]
    EstimateDoesNotApply {
        /// Why.
        reason: String,
    },
}

/// A security estimate stated for a sparse (fixed-Hamming-weight) secret, e.g. from the
/// lattice estimator; [`Params::with_sparse_estimate`] accepts the set only if its h and
/// log2(QP) are within the estimate's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseEstimate {
    /// The Hamming weight the estimate was made for.
    pub h: u32,
    /// The largest log2(QP) the estimate covers at this ring degree.
    pub max_log_qp: u32,
    /// The claimed classical security in bits.
    pub bits: u32,
    /// Where the estimate comes from (tool, version, paper).
    pub source: String,
}

/// Checked CKKS parameters: the ring with its actual primes, the exact default scale of
/// every level, the security marker and a hash that keys and ciphertexts carry.
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct Params {
    inner: Arc<ParamsInner>,
}

struct ParamsInner {
    literal: ParamsLiteral,
    ring: Arc<RingContext>,
    embedding: CanonicalEmbedding,
    /// `scales[l]`: the default scale of a fresh ciphertext at level l.
    scales: Vec<f64>,
    security: Security,
    log_qp: f64,
    hash: [u8; 32],
}

impl Params {
    /// Checks the literal and generates its primes; refuses sets above the HE-standard
    /// 128-bit bound (uniform ternary secret) and sparse secrets (see
    /// [`Params::with_sparse_estimate`]).
    pub fn new(literal: &ParamsLiteral) -> Result<Self, ParamsError> {
        Self::secure(literal, build_ring(literal)?)
    }

    /// A sparse-secret set, accepted on the strength of `estimate` (which must name the
    /// same Hamming weight and cover the chain's log2(QP)).
    pub fn with_sparse_estimate(
        literal: &ParamsLiteral,
        estimate: &SparseEstimate,
    ) -> Result<Self, ParamsError> {
        let SecretDistribution::FixedHammingWeight { h } = literal.secret else {
            return Err(ParamsError::EstimateDoesNotApply {
                reason: "the secret is uniform ternary; use Params::new".into(),
            });
        };
        if h != estimate.h {
            return Err(ParamsError::EstimateDoesNotApply {
                reason: format!("estimate for h = {}, set has h = {h}", estimate.h),
            });
        }
        let (ring, log_qp) = build_ring(literal)?;
        if log_qp > f64::from(estimate.max_log_qp) {
            return Err(ParamsError::EstimateDoesNotApply {
                reason: format!(
                    "log2(QP) = {log_qp:.2} exceeds the estimate's {} ({})",
                    estimate.max_log_qp, estimate.source
                ),
            });
        }
        Self::finish(
            literal,
            ring,
            log_qp,
            Security::StatedEstimate {
                bits: estimate.bits,
            },
        )
    }

    /// The explicit path for test sets: no security bound, `Security::InsecureForTesting`
    /// on the parameters and everything made with them.
    pub fn insecure_for_testing(literal: &ParamsLiteral) -> Result<Self, ParamsError> {
        let (ring, log_qp) = build_ring(literal)?;
        Self::finish(literal, ring, log_qp, Security::InsecureForTesting)
    }

    /// A 128-bit set on explicit primes (a compiler that chose them itself, e.g. for
    /// scale-stable chains, and the plans that carry them): the same checks as
    /// [`Params::new`] plus [`check_explicit_primes`].
    pub fn with_primes(literal: &ParamsLiteral, q: &[u64], p: &[u64]) -> Result<Self, ParamsError> {
        Self::secure(literal, build_ring_on(literal, q, p)?)
    }

    /// The 128-bit path shared by [`Params::new`] and [`Params::with_primes`]: a uniform
    /// ternary secret and log2(QP) of the actual primes within the HE-standard bound.
    fn secure(
        literal: &ParamsLiteral,
        (ring, log_qp): (Arc<RingContext>, f64),
    ) -> Result<Self, ParamsError> {
        if let SecretDistribution::FixedHammingWeight { h } = literal.secret {
            return Err(ParamsError::SparseSecretNeedsEstimate { h });
        }
        let max = max_log_qp_128(literal.log_n).ok_or(ParamsError::NoSecurityTable {
            log_n: literal.log_n,
        })?;
        if log_qp > f64::from(max) {
            return Err(ParamsError::ExceedsSecurityBound {
                log_n: literal.log_n,
                log_qp,
                max,
            });
        }
        Self::finish(literal, ring, log_qp, Security::Bits128)
    }

    /// [`Params::with_primes`] without the security bound, marked insecure.
    pub fn insecure_with_primes(
        literal: &ParamsLiteral,
        q: &[u64],
        p: &[u64],
    ) -> Result<Self, ParamsError> {
        let (ring, log_qp) = build_ring_on(literal, q, p)?;
        Self::finish(literal, ring, log_qp, Security::InsecureForTesting)
    }

    fn finish(
        literal: &ParamsLiteral,
        ring: Arc<RingContext>,
        log_qp: f64,
        security: Security,
    ) -> Result<Self, ParamsError> {
        let embedding = CanonicalEmbedding::new(literal.log_n).map_err(|_| {
            ParamsError::Arith(arith::Error::LogNOutOfRange {
                log_n: literal.log_n,
                min: 2,
                max: 17,
            })
        })?;
        // FLEXIBLEAUTO (Kim, Papadimitriou, Polyakov, eprint 2020/1118): the scale follows
        // the actual primes, Delta_{l-1} = Delta_l^2 / q_l, so that a product rescaled by
        // q_l lands exactly on the default scale of the level below.
        let top = ring.max_level();
        let mut scales = vec![0.0; top + 1];
        scales[top] = 2f64.powi(literal.log_scale as i32);
        for l in (1..=top).rev() {
            scales[l - 1] = scales[l] * scales[l] / ring.q()[l].value() as f64;
        }
        let hash = params_hash(literal, &ring, security);
        Ok(Self {
            inner: Arc::new(ParamsInner {
                literal: literal.clone(),
                ring,
                embedding,
                scales,
                security,
                log_qp,
                hash,
            }),
        })
    }

    /// The literal this set was built from.
    pub fn literal(&self) -> &ParamsLiteral {
        &self.inner.literal
    }

    /// The ring (primes, NTT kernels, conversion tables).
    pub fn ring(&self) -> &Arc<RingContext> {
        &self.inner.ring
    }

    /// The canonical embedding of the ring (slot convention of `numerics::embedding`).
    pub fn embedding(&self) -> &CanonicalEmbedding {
        &self.inner.embedding
    }

    /// log2(N).
    pub fn log_n(&self) -> u32 {
        self.inner.literal.log_n
    }

    /// The ring degree N.
    pub fn n(&self) -> usize {
        1 << self.log_n()
    }

    /// N/2, the largest slot count.
    pub fn max_slots(&self) -> usize {
        self.n() / 2
    }

    /// The top level L.
    pub fn max_level(&self) -> usize {
        self.inner.ring.max_level()
    }

    /// The Q primes q_0..q_L.
    pub fn q(&self) -> Vec<u64> {
        self.inner.ring.q().iter().map(|m| m.value()).collect()
    }

    /// The special primes p_0..p_{k-1}.
    pub fn p(&self) -> Vec<u64> {
        self.inner.ring.p().iter().map(|m| m.value()).collect()
    }

    /// Key-switching digits at the top level (dnum).
    pub fn dnum(&self) -> usize {
        self.inner.ring.digits_at_level(self.max_level())
    }

    /// The default (exact) scale at `level`: 2^log_scale at L, then Delta_l^2 / q_l.
    ///
    /// # Panics
    /// If `level > L`.
    pub fn default_scale(&self, level: usize) -> f64 {
        self.inner.scales[level]
    }

    /// Security marker (also carried by keys and files).
    pub fn security(&self) -> Security {
        self.inner.security
    }

    /// log2 of Q*P computed from the actual primes.
    pub fn log_qp(&self) -> f64 {
        self.inner.log_qp
    }

    /// BLAKE3 of a canonical encoding of N, the actual primes, alpha, the secret
    /// distribution, the scale and the security marker.
    pub fn hash(&self) -> [u8; 32] {
        self.inner.hash
    }

    /// The hash in hex (first 8 bytes), for messages.
    pub fn short_hash(&self) -> String {
        hex_prefix(&self.inner.hash)
    }

    /// The key-switching digit size alpha (Q primes per digit).
    pub fn alpha(&self) -> usize {
        self.inner.ring.alpha()
    }

    /// The secret distribution.
    pub fn secret_distribution(&self) -> SecretDistribution {
        self.inner.literal.secret
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.inner.hash == other.inner.hash
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Params({self})")
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "N=2^{} L={} logQP={:.1} dnum={} scale=2^{} [{}] hash={}",
            self.log_n(),
            self.max_level(),
            self.log_qp(),
            self.dnum(),
            self.inner.literal.log_scale,
            self.security().label(),
            self.short_hash()
        )
    }
}

pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Generates the primes of a literal (deterministically) and builds the ring; returns it
/// with log2(QP) of the actual primes.
fn build_ring(literal: &ParamsLiteral) -> Result<(Arc<RingContext>, f64), ParamsError> {
    check_literal_shape(literal)?;
    let log_n = literal.log_n;
    let mut q = primes_below(log_n, literal.log_q[0], 1, &[])?;
    // Runs of equal bit sizes share one alternating sequence around 2^bits.
    let mut i = 1;
    while i < literal.log_q.len() {
        let bits = literal.log_q[i];
        let run = literal.log_q[i..]
            .iter()
            .take_while(|&&b| b == bits)
            .count();
        let primes = scaling_primes(log_n, bits, run, &q)?;
        q.extend(primes);
        i += run;
    }
    let mut p: Vec<u64> = Vec::with_capacity(literal.log_p.len());
    let mut i = 0;
    while i < literal.log_p.len() {
        let bits = literal.log_p[i];
        let run = literal.log_p[i..]
            .iter()
            .take_while(|&&b| b == bits)
            .count();
        let exclude: Vec<u64> = q.iter().chain(&p).copied().collect();
        p.extend(primes_below(log_n, bits, run, &exclude)?);
        i += run;
    }
    ring_of(literal, &q, &p)
}

/// The literal's own checks: non-empty chains, digits, a scale below the primes.
fn check_literal_shape(literal: &ParamsLiteral) -> Result<(), ParamsError> {
    if literal.log_q.is_empty() {
        return Err(arith::Error::EmptyQChain.into());
    }
    if literal.log_p.is_empty() {
        return Err(ParamsError::NoSpecialPrimes);
    }
    if literal.digit_primes == 0 {
        return Err(arith::Error::ZeroDigitSize.into());
    }
    let min_scaling = literal.log_q[1..]
        .iter()
        .copied()
        .min()
        .unwrap_or(literal.log_q[0]);
    // Scaling primes sit around 2^bits, so the scale may equal their size; q_0 must exceed
    // the scale to hold a level-0 message.
    let max_scale = min_scaling.min(literal.log_q[0].saturating_sub(1));
    if literal.log_scale == 0 || literal.log_scale > max_scale.max(1) {
        return Err(ParamsError::ScaleOutOfRange {
            log_scale: literal.log_scale,
            max: max_scale,
        });
    }
    Ok(())
}

/// Explicit primes must match their literal: as many as it lists, each within one bit of
/// its stated size (`2^(bits−1) < prime < 2^(bits+1)`), all distinct. Primality and
/// `p ≡ 1 mod 2N` are checked by the ring.
pub fn check_explicit_primes(
    literal: &ParamsLiteral,
    q: &[u64],
    p: &[u64],
) -> Result<(), ParamsError> {
    let mismatch = |reason: String| Err(ParamsError::PrimesDoNotMatchLiteral { reason });
    for (name, primes, sizes) in [("q", q, &literal.log_q), ("p", p, &literal.log_p)] {
        if primes.len() != sizes.len() {
            return mismatch(format!(
                "{} {name} primes for {} sizes",
                primes.len(),
                sizes.len()
            ));
        }
        for (i, (&prime, &bits)) in primes.iter().zip(sizes.iter()).enumerate() {
            let size = (prime as f64).log2();
            if bits == 0 || bits >= 63 || size <= f64::from(bits - 1) || size >= f64::from(bits + 1)
            {
                return mismatch(format!("{name}_{i} = {prime} is not a {bits}-bit prime"));
            }
        }
    }
    let mut all: Vec<u64> = q.iter().chain(p).copied().collect();
    all.sort_unstable();
    if let Some(w) = all.windows(2).find(|w| w[0] == w[1]) {
        return mismatch(format!("{} appears twice", w[0]));
    }
    Ok(())
}

fn build_ring_on(
    literal: &ParamsLiteral,
    q: &[u64],
    p: &[u64],
) -> Result<(Arc<RingContext>, f64), ParamsError> {
    check_literal_shape(literal)?;
    check_explicit_primes(literal, q, p)?;
    ring_of(literal, q, p)
}

fn ring_of(
    literal: &ParamsLiteral,
    q: &[u64],
    p: &[u64],
) -> Result<(Arc<RingContext>, f64), ParamsError> {
    let ring = RingContext::new(literal.log_n, q, p, literal.digit_primes as usize)?;
    let log_qp = q.iter().chain(p).map(|&v| (v as f64).log2()).sum();
    Ok((ring, log_qp))
}

fn params_hash(literal: &ParamsLiteral, ring: &RingContext, security: Security) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"ensi-ckks-params-v1");
    h.update(&literal.log_n.to_le_bytes());
    for chain in [ring.q(), ring.p()] {
        h.update(&(chain.len() as u64).to_le_bytes());
        for m in chain {
            h.update(&m.value().to_le_bytes());
        }
    }
    h.update(&(ring.alpha() as u64).to_le_bytes());
    match literal.secret {
        SecretDistribution::UniformTernary => h.update(&[0, 0, 0, 0, 0]),
        SecretDistribution::FixedHammingWeight { h: weight } => {
            h.update(&[1]).update(&weight.to_le_bytes())
        }
    };
    h.update(&literal.log_scale.to_le_bytes());
    match security {
        Security::Bits128 => h.update(&[0, 0, 0, 0, 0]),
        Security::InsecureForTesting => h.update(&[1, 0, 0, 0, 0]),
        Security::StatedEstimate { bits } => h.update(&[2]).update(&bits.to_le_bytes()),
    };
    *h.finalize().as_bytes()
}

/// A named parameter set: a literal with a name that says what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedSet {
    /// The name (`N16_QP1165_PEERS`, ...).
    pub name: &'static str,
    /// log2 N.
    pub log_n: u32,
    /// Bit sizes of q_0..q_L.
    pub log_q: &'static [u32],
    /// Bit sizes of the special primes.
    pub log_p: &'static [u32],
    /// log2 of the top-level scale.
    pub log_scale: u32,
    /// Q primes per key-switching digit.
    pub digit_primes: u32,
    /// Built through `Params::insecure_for_testing`.
    pub insecure: bool,
}

const fn chain<const K: usize>(first: u32, rest: u32) -> [u32; K] {
    let mut a = [rest; K];
    a[0] = first;
    a
}

const Q_PEERS_16: [u32; 21] = chain(60, 40);
const Q_15: [u32; 17] = chain(60, 40);
const Q_14: [u32; 8] = chain(60, 40);
const Q_T10: [u32; 7] = chain(60, 40);
const Q_T11: [u32; 9] = chain(60, 40);
const Q_T12: [u32; 11] = chain(60, 40);
const Q_T13: [u32; 13] = chain(60, 40);

/// N = 2^16, Q = 60 + 20x40 bits, P = 5x61, dnum 3: the peers' chain (shared/peers/RESULTS.md);
/// log2(QP) ~ 1165 <= 1747.
pub const N16_QP1165_PEERS: NamedSet = NamedSet {
    name: "N16_QP1165_PEERS",
    log_n: 16,
    log_q: &Q_PEERS_16,
    log_p: &[61; 5],
    log_scale: 40,
    digit_primes: 7,
    insecure: false,
};

/// N = 2^15, Q = 60 + 16x40 bits, P = 3x60, dnum 5; log2(QP) ~ 880 <= 881.
pub const N15_QP880: NamedSet = NamedSet {
    name: "N15_QP880",
    log_n: 15,
    log_q: &Q_15,
    log_p: &[60; 3],
    log_scale: 40,
    digit_primes: 4,
    insecure: false,
};

/// N = 2^14, Q = 60 + 7x40 bits, P = 1x61, dnum 8 (as the peers at 2^14); log2(QP) ~ 401 <= 438.
pub const N14_QP401_PEERS: NamedSet = NamedSet {
    name: "N14_QP401_PEERS",
    log_n: 14,
    log_q: &Q_14,
    log_p: &[61],
    log_scale: 40,
    digit_primes: 1,
    insecure: false,
};

/// Insecure test set: N = 2^10, Q = 60 + 6x40, P = 2x61, dnum 4.
pub const TEST_INSECURE_N10: NamedSet = test_set("TEST_INSECURE_N10", 10, &Q_T10);
/// Insecure test set: N = 2^11, Q = 60 + 8x40, P = 2x61, dnum 5.
pub const TEST_INSECURE_N11: NamedSet = test_set("TEST_INSECURE_N11", 11, &Q_T11);
/// Insecure test set: N = 2^12, Q = 60 + 10x40, P = 2x61, dnum 6.
pub const TEST_INSECURE_N12: NamedSet = test_set("TEST_INSECURE_N12", 12, &Q_T12);
/// Insecure test set: N = 2^13, Q = 60 + 12x40, P = 2x61, dnum 7.
pub const TEST_INSECURE_N13: NamedSet = test_set("TEST_INSECURE_N13", 13, &Q_T13);

const fn test_set(name: &'static str, log_n: u32, log_q: &'static [u32]) -> NamedSet {
    NamedSet {
        name,
        log_n,
        log_q,
        log_p: &[61, 61],
        log_scale: 40,
        digit_primes: 2,
        insecure: true,
    }
}

/// Every named set.
pub const NAMED_SETS: [NamedSet; 7] = [
    N16_QP1165_PEERS,
    N15_QP880,
    N14_QP401_PEERS,
    TEST_INSECURE_N10,
    TEST_INSECURE_N11,
    TEST_INSECURE_N12,
    TEST_INSECURE_N13,
];

impl NamedSet {
    /// The set of this name, if any.
    pub fn by_name(name: &str) -> Option<Self> {
        NAMED_SETS.iter().copied().find(|s| s.name == name)
    }

    /// The literal (uniform ternary secret).
    pub fn literal(&self) -> ParamsLiteral {
        ParamsLiteral {
            log_n: self.log_n,
            log_q: self.log_q.to_vec(),
            log_p: self.log_p.to_vec(),
            log_scale: self.log_scale,
            digit_primes: self.digit_primes,
            secret: SecretDistribution::UniformTernary,
        }
    }

    /// The checked parameters (through the insecure path for test sets).
    pub fn params(&self) -> Result<Params, ParamsError> {
        if self.insecure {
            Params::insecure_for_testing(&self.literal())
        } else {
            Params::new(&self.literal())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_primes_give_the_same_set_and_are_checked() {
        let literal = NamedSet::by_name("N12_TEST").map_or_else(
            || ParamsLiteral {
                log_n: 12,
                log_q: vec![50, 40, 40],
                log_p: vec![51],
                log_scale: 40,
                digit_primes: 3,
                secret: SecretDistribution::UniformTernary,
            },
            |set| set.literal(),
        );
        let derived = Params::insecure_for_testing(&literal).unwrap();
        let again = Params::insecure_with_primes(&literal, &derived.q(), &derived.p()).unwrap();
        assert_eq!(again.hash(), derived.hash());
        let mut q = derived.q();
        q.swap(0, 1);
        let err = Params::insecure_with_primes(&literal, &q, &derived.p()).unwrap_err();
        assert!(
            matches!(err, ParamsError::PrimesDoNotMatchLiteral { .. }),
            "{err}"
        );
        let err =
            Params::insecure_with_primes(&literal, &derived.q()[1..], &derived.p()).unwrap_err();
        assert!(err.to_string().contains("primes for"), "{err}");
        let mut q = derived.q();
        q[1] += 2; // same size, no longer ≡ 1 mod 2N
        assert!(Params::insecure_with_primes(&literal, &q, &derived.p()).is_err());
        let p = vec![derived.q()[1]];
        assert!(Params::insecure_with_primes(&literal, &derived.q(), &p).is_err());
    }

    #[test]
    fn peers_chain_is_within_the_bound() {
        let peers = ParamsLiteral {
            log_n: 16,
            log_q: std::iter::once(60)
                .chain(std::iter::repeat_n(40, 20))
                .collect(),
            log_p: vec![61; 5],
            log_scale: 40,
            digit_primes: 7,
            secret: SecretDistribution::UniformTernary,
        };
        assert_eq!(peers.log_qp(), 60 + 800 + 305);
        assert_eq!(peers.dnum(), 3);
        assert!(peers.log_qp() <= max_log_qp_128(16).unwrap_or(0));
    }

    #[test]
    fn named_sets_build_within_their_bounds() {
        for set in NAMED_SETS {
            let params = set.params().expect(set.name);
            assert_eq!(params.max_level() + 1, set.log_q.len(), "{}", set.name);
            if !set.insecure {
                assert_eq!(params.security(), Security::Bits128);
                let bound = max_log_qp_128(set.log_n).expect("tabulated");
                assert!(params.log_qp() <= f64::from(bound), "{}", set.name);
            }
        }
        let peers = N16_QP1165_PEERS.params().expect("peers");
        assert_eq!((peers.dnum(), peers.p().len()), (3, 5));
        assert!((peers.log_qp() - 1165.0).abs() < 1.0);
    }

    #[test]
    fn scales_follow_the_primes_exactly() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let q = params.q();
        let top = params.max_level();
        assert_eq!(params.default_scale(top), 2f64.powi(40));
        for (l, &q_l) in q.iter().enumerate().skip(1) {
            let want = params.default_scale(l) * params.default_scale(l) / q_l as f64;
            assert_eq!(params.default_scale(l - 1), want);
        }
    }

    #[test]
    fn refusals_have_clear_messages() {
        let mut lit = N14_QP401_PEERS.literal();
        lit.log_q.extend([40, 40]);
        let err = Params::new(&lit).map(|_| ()).map_err(|e| e.to_string());
        let message = err.expect_err("over the bound");
        assert!(
            message.starts_with("log2(QP) = 481.")
                && message.ends_with(
                    "exceeds the 128-bit bound 438 for N = 2^14 (uniform ternary secret); \
                     use a smaller chain or Params::insecure_for_testing"
                ),
            "{message}"
        );
        let insecure = Params::insecure_for_testing(&lit).expect("no bound");
        assert_eq!(insecure.security(), Security::InsecureForTesting);
        assert!(insecure.to_string().contains("INSECURE"));

        let mut sparse = N14_QP401_PEERS.literal();
        sparse.secret = SecretDistribution::FixedHammingWeight { h: 192 };
        assert_eq!(
            Params::new(&sparse).map(|_| ()).map_err(|e| e.to_string()),
            Err(
                "a fixed-Hamming-weight secret (h = 192) is outside the HE-standard table: \
                 build it with Params::with_sparse_estimate and a stated estimate"
                    .into()
            )
        );
        let estimate = SparseEstimate {
            h: 192,
            max_log_qp: 420,
            bits: 128,
            source: "test".into(),
        };
        let params = Params::with_sparse_estimate(&sparse, &estimate).expect("covered");
        assert_eq!(params.security(), Security::StatedEstimate { bits: 128 });
        let mut no_p = N14_QP401_PEERS.literal();
        no_p.log_p.clear();
        assert_eq!(
            Params::new(&no_p).map(|_| ()).map_err(|e| e.to_string()),
            Err("at least one special prime P is needed for key switching".into())
        );
    }

    #[test]
    fn hash_depends_on_primes_and_security() {
        let lit = TEST_INSECURE_N10.literal();
        let a = Params::insecure_for_testing(&lit).expect("set");
        let b = Params::insecure_for_testing(&lit).expect("set");
        assert_eq!(a.hash(), b.hash());
        let mut other = lit.clone();
        other.log_scale = 39;
        assert_ne!(
            Params::insecure_for_testing(&other).expect("set").hash(),
            a.hash()
        );
        let secure = Params::new(&N14_QP401_PEERS.literal()).expect("set");
        let marked = Params::insecure_for_testing(&N14_QP401_PEERS.literal()).expect("set");
        assert_ne!(secure.hash(), marked.hash());
    }
}
