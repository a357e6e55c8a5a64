//! CKKS parameter literals (bit sizes of the modulus chain) and the HE-standard security bound.
//!
//! A [`ParamsLiteral`] is the unchecked, serializable description that plans and files
//! carry; the checked parameter set (actual primes, ring, hash) is built from it once.

use serde::{Deserialize, Serialize};

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
}

impl Security {
    /// A loud marker for reports and file headers.
    pub fn label(self) -> &'static str {
        match self {
            Security::Bits128 => "128-bit (HE standard, uniform ternary secret)",
            Security::InsecureForTesting => "INSECURE — FOR TESTING ONLY",
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
