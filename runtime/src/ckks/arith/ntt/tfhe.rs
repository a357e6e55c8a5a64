//! Fast NTT: tfhe-ntt's `prime64::Plan` (run-time dispatch AVX-512 IFMA / AVX-512 / AVX2 / scalar).

use super::NttKernel;

/// tfhe-ntt's negacyclic plan for one prime; its forward output is bit-reversed, matching
/// the slot order of `NttKernel`, and its inverse is unnormalized (`normalize` adds `N^-1`).
#[derive(Clone)]
pub struct TfheNtt {
    plan: tfhe_ntt::prime64::Plan,
}

impl std::fmt::Debug for TfheNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TfheNtt")
            .field("n", &self.plan.ntt_size())
            .field("modulus", &self.plan.modulus())
            .field("ifma", &self.plan.use_ifma())
            .finish()
    }
}

impl TfheNtt {
    /// The plan for (N, q), or `None` where tfhe-ntt has none (N < 16, q not an
    /// NTT-friendly prime).
    pub fn new(n: usize, q: u64) -> Option<Self> {
        tfhe_ntt::prime64::Plan::try_new(n, q).map(|plan| Self { plan })
    }
}

impl NttKernel for TfheNtt {
    fn n(&self) -> usize {
        self.plan.ntt_size()
    }

    fn modulus(&self) -> u64 {
        self.plan.modulus()
    }

    #[inline]
    fn forward(&self, a: &mut [u64]) {
        self.plan.fwd(a);
    }

    #[inline]
    fn inverse(&self, a: &mut [u64]) {
        self.plan.inv(a);
        self.plan.normalize(a);
    }

    #[inline]
    fn inverse_unnormalized(&self, a: &mut [u64]) {
        self.plan.inv(a);
    }
}
