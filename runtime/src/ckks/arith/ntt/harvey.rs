//! Reference NTT: scalar Harvey butterflies with Shoup twiddles, bit-reversed output.
//!
//! Forward is Cooley-Tukey with `psi^bitrev(k)` twiddles, inverse is Gentleman-Sande with
//! `N^-1` folded into its last stage (Longa and Naehrig, eprint 2016/504; Harvey 2014 for
//! the lazy [0, 4q) / [0, 2q) ranges, which need q < 2^62).

use super::{NttKernel, bit_reverse};
use crate::ckks::arith::Error;
use crate::ckks::arith::modulus::{Modulus, ShoupConstant};

/// Plain scalar Harvey NTT for one prime, using a given primitive 2N-th root `psi`.
#[derive(Clone)]
pub struct HarveyNtt {
    log_n: u32,
    modulus: Modulus,
    /// `psi^bitrev(k)` at index k.
    forward_twiddles: Vec<ShoupConstant>,
    /// `psi^-bitrev(k)` at index k.
    inverse_twiddles: Vec<ShoupConstant>,
    /// `N^-1`, and `N^-1 * psi^-bitrev(1)` for the last inverse stage.
    n_inv: ShoupConstant,
    n_inv_twiddle: ShoupConstant,
}

impl std::fmt::Debug for HarveyNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarveyNtt")
            .field("n", &(1usize << self.log_n))
            .field("modulus", &self.modulus.value())
            .finish()
    }
}

impl HarveyNtt {
    /// Builds the tables for N = 2^log_n; `psi` must satisfy `psi^N = -1 mod q`.
    pub fn new(log_n: u32, modulus: Modulus, psi: u64) -> Result<Self, Error> {
        let q = modulus.value();
        let n = 1usize << log_n;
        if log_n == 0 || modulus.pow(psi, n as u64) != q - 1 {
            return Err(Error::NotNttFriendly { modulus: q, log_n });
        }
        let psi_inv = modulus
            .inv(psi)
            .ok_or(Error::NotNttFriendly { modulus: q, log_n })?;
        let mut forward_twiddles = vec![ShoupConstant::default(); n];
        let mut inverse_twiddles = vec![ShoupConstant::default(); n];
        let (mut power, mut inv_power) = (1u64, 1u64);
        for k in 0..n {
            let index = bit_reverse(k, log_n);
            forward_twiddles[index] = modulus.shoup(power);
            inverse_twiddles[index] = modulus.shoup(inv_power);
            power = modulus.mul(power, psi);
            inv_power = modulus.mul(inv_power, psi_inv);
        }
        let n_inv_value = modulus
            .inv(n as u64)
            .ok_or(Error::NotNttFriendly { modulus: q, log_n })?;
        let n_inv = modulus.shoup(n_inv_value);
        let n_inv_twiddle = modulus.shoup(modulus.mul(n_inv_value, inverse_twiddles[1].value));
        Ok(Self {
            log_n,
            modulus,
            forward_twiddles,
            inverse_twiddles,
            n_inv,
            n_inv_twiddle,
        })
    }

    /// Gentleman-Sande stages down to (excluding) the last one; values end in [0, 2q).
    fn inverse_stages(&self, a: &mut [u64]) {
        let m = &self.modulus;
        let two_q = 2 * m.value();
        let n = a.len();
        let mut gap = 1;
        let mut groups = n / 2;
        while groups > 1 {
            for (group, block) in a.chunks_exact_mut(2 * gap).enumerate() {
                let w = self.inverse_twiddles[groups + group];
                let (lo, hi) = block.split_at_mut(gap);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    // x, y in [0, 2q) -> x + y in [0, 4q) folded to [0, 2q); (x - y) * w lazy.
                    let (u, v) = (*x, *y);
                    let sum = u + v;
                    *x = sum.min(sum.wrapping_sub(two_q));
                    *y = m.mul_shoup_lazy(u + two_q - v, w);
                }
            }
            gap *= 2;
            groups /= 2;
        }
    }

    /// The last Gentleman-Sande stage, scaling both outputs by `scale` / `scale * twiddle`.
    fn inverse_last_stage(
        &self,
        a: &mut [u64],
        scale: ShoupConstant,
        scaled_twiddle: ShoupConstant,
    ) {
        let m = &self.modulus;
        let two_q = 2 * m.value();
        let (lo, hi) = a.split_at_mut(a.len() / 2);
        for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
            let (u, v) = (*x, *y);
            *x = m.mul_shoup(u + v, scale);
            *y = m.mul_shoup(u + two_q - v, scaled_twiddle);
        }
    }
}

impl NttKernel for HarveyNtt {
    fn n(&self) -> usize {
        1 << self.log_n
    }

    fn modulus(&self) -> u64 {
        self.modulus.value()
    }

    fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n(), "limb length must be N");
        let m = &self.modulus;
        let two_q = 2 * m.value();
        let n = a.len();
        let mut groups = 1;
        let mut gap = n / 2;
        while groups < n {
            for (group, block) in a.chunks_exact_mut(2 * gap).enumerate() {
                let w = self.forward_twiddles[groups + group];
                let (lo, hi) = block.split_at_mut(gap);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    // x, y in [0, 4q): fold x to [0, 2q), t = y * w in [0, 2q).
                    let u = (*x).min(x.wrapping_sub(two_q));
                    let t = m.mul_shoup_lazy(*y, w);
                    *x = u + t;
                    *y = u + two_q - t;
                }
            }
            groups *= 2;
            gap /= 2;
        }
        for x in a.iter_mut() {
            let u = (*x).min(x.wrapping_sub(two_q));
            *x = m.reduce_once(u);
        }
    }

    fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n(), "limb length must be N");
        self.inverse_stages(a);
        self.inverse_last_stage(a, self.n_inv, self.n_inv_twiddle);
    }

    fn inverse_unnormalized(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n(), "limb length must be N");
        self.inverse_stages(a);
        let one = self.modulus.shoup(1);
        self.inverse_last_stage(a, one, self.inverse_twiddles[1]);
    }
}
