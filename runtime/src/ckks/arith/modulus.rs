//! `Modulus`: arithmetic modulo one q < 2^62 (Barrett 128->64, Shoup constants, lazy variants).

use super::Error;

/// Largest bit size accepted for a modulus: q < 2^62 leaves two spare bits for the lazy
/// ranges [0, 2q) and [0, 4q) of Harvey butterflies.
pub const MAX_MODULUS_BITS: u32 = 62;

/// A modulus q with 2 <= q < 2^62 and its Barrett constants.
///
/// Every non-lazy method takes operands in `[0, q)` and returns a value in `[0, q)`.
/// Lazy methods (`*_lazy`) say their output range; they exist for kernels that delay the
/// final correction and are never meant to leak through a public polynomial API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Modulus {
    value: u64,
    /// floor(2^128 / q), high word (== floor(2^64 / q) since q is not a power of two >= 2^64).
    ratio_hi: u64,
    /// floor(2^128 / q), low word.
    ratio_lo: u64,
    /// floor(2^(bits+62) / q) <= 2^63, for `reduce_product`.
    product_ratio: u64,
    bits: u32,
}

/// A fixed multiplicand `w` in `[0, q)` with its Shoup quotient `floor(w * 2^64 / q)`
/// (Shoup; Harvey, "Faster arithmetic for number-theoretic transforms", 2014).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShoupConstant {
    /// The operand `w`.
    pub value: u64,
    /// `floor(w * 2^64 / q)`.
    pub quotient: u64,
}

#[inline(always)]
fn mul_hi(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) >> 64) as u64
}

/// `x - q` if `x >= q`, else `x`, without a branch (`wrapping_sub` underflows to a huge value
/// when `x < q`, which `min` discards).
#[inline(always)]
fn sub_if_ge(x: u64, q: u64) -> u64 {
    x.min(x.wrapping_sub(q))
}

impl Modulus {
    /// Checks `2 <= q < 2^62` and precomputes the Barrett constants.
    pub fn new(q: u64) -> Result<Self, Error> {
        if !(2..1u64 << MAX_MODULUS_BITS).contains(&q) {
            return Err(Error::ModulusOutOfRange { modulus: q });
        }
        let ratio = u128::MAX / q as u128;
        // u128::MAX / q equals floor(2^128 / q) unless q divides 2^128, i.e. q is a power
        // of two; then floor(2^128/q) = u128::MAX / q + 1 (q = 2^k, k < 62, fits).
        let ratio = if q.is_power_of_two() {
            ratio + 1
        } else {
            ratio
        };
        let bits = 64 - q.leading_zeros();
        Ok(Self {
            value: q,
            ratio_hi: (ratio >> 64) as u64,
            ratio_lo: ratio as u64,
            product_ratio: ((1u128 << (bits + 62)) / q as u128) as u64,
            bits,
        })
    }

    /// The modulus q.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.value
    }

    /// floor(2^(bits+62) / q), the constant of `reduce_product` (for vector kernels).
    #[inline]
    pub(crate) fn product_ratio(&self) -> u64 {
        self.product_ratio
    }

    /// Bit length of q (`ceil(log2(q + 1))`).
    #[inline]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `a + b mod q`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.value && b < self.value);
        sub_if_ge(a + b, self.value)
    }

    /// `a - b mod q`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.value && b < self.value);
        sub_if_ge(a + self.value - b, self.value)
    }

    /// `-a mod q`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        debug_assert!(a < self.value);
        // (q - a) for a != 0, and 0 for a == 0.
        sub_if_ge(self.value - a, self.value)
    }

    /// `x mod q` for any u64 (Barrett with floor(2^64/q)).
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        // ratio_hi = floor(2^64 / q); the estimate is short by at most 1, so x - est*q < 2q.
        let est = mul_hi(x, self.ratio_hi);
        sub_if_ge(x.wrapping_sub(est.wrapping_mul(self.value)), self.value)
    }

    /// `x mod q` for any u128 (Barrett with floor(2^128/q)).
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let r = self.reduce_u128_lazy(x);
        sub_if_ge(sub_if_ge(r, self.value), self.value)
    }

    /// `x mod q` up to two extra multiples of q: returns a value in `[0, 3q)`.
    ///
    /// The quotient estimate is floor(x * floor(2^128/q) / 2^128) computed without the
    /// lowest 64x64 product's low word: it undershoots floor(x/q) by at most 2.
    #[inline(always)]
    pub fn reduce_u128_lazy(&self, x: u128) -> u64 {
        let (x_hi, x_lo) = ((x >> 64) as u64, x as u64);
        let (r_hi, r_lo) = (self.ratio_hi, self.ratio_lo);
        // Middle column of the 256-bit product x * ratio, keeping only what reaches bit 128.
        let lo_lo_carry = mul_hi(x_lo, r_lo) as u128;
        // The column sum may pass 2^128; that carry is worth 2^64 in the quotient, which
        // vanishes mod 2^64, and only the quotient mod 2^64 matters since x - est*q < 3q.
        let mid = (x_lo as u128 * r_hi as u128)
            .wrapping_add(x_hi as u128 * r_lo as u128)
            .wrapping_add(lo_lo_carry);
        let est = (x_hi.wrapping_mul(r_hi)).wrapping_add((mid >> 64) as u64);
        x_lo.wrapping_sub(est.wrapping_mul(self.value))
    }

    /// `x mod q` for `x < 2^(bits+62)` (so any `x < q * 2^62`, e.g. a product of two
    /// residues): Barrett with a 64-bit quotient estimate, two multiplications.
    ///
    /// With x1 = floor(x / 2^(bits-2)) < 2^64 and mu = floor(2^(bits+62) / q) <= 2^63,
    /// floor(x1 * mu / 2^64) undershoots floor(x/q) by at most 2 (each floor costs < 1,
    /// the first at most 1/2), so one estimate and two corrections suffice.
    #[inline(always)]
    pub fn reduce_product(&self, x: u128) -> u64 {
        debug_assert!(x >> (self.bits + 62) == 0, "reduce_product input too large");
        let x1 = (x >> (self.bits - 2)) as u64;
        let est = mul_hi(x1, self.product_ratio);
        let r = (x as u64).wrapping_sub(est.wrapping_mul(self.value));
        sub_if_ge(sub_if_ge(r, self.value), self.value)
    }

    /// `a * b mod q`.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.value && b < self.value);
        self.reduce_product(a as u128 * b as u128)
    }

    /// `a * b + c mod q`.
    #[inline(always)]
    pub fn mul_add(&self, a: u64, b: u64, c: u64) -> u64 {
        debug_assert!(a < self.value && b < self.value && c < self.value);
        self.reduce_product(a as u128 * b as u128 + c as u128)
    }

    /// Shoup constant for the fixed multiplicand `w` (reduced mod q first).
    #[inline]
    pub fn shoup(&self, w: u64) -> ShoupConstant {
        let value = self.reduce(w);
        let quotient = (((value as u128) << 64) / self.value as u128) as u64;
        ShoupConstant { value, quotient }
    }

    /// `x * w mod q` for any u64 `x` (Shoup).
    #[inline(always)]
    pub fn mul_shoup(&self, x: u64, w: ShoupConstant) -> u64 {
        sub_if_ge(self.mul_shoup_lazy(x, w), self.value)
    }

    /// `x * w mod q` in `[0, 2q)` for any u64 `x`: one high and two low multiplications.
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, x: u64, w: ShoupConstant) -> u64 {
        let est = mul_hi(x, w.quotient);
        x.wrapping_mul(w.value)
            .wrapping_sub(est.wrapping_mul(self.value))
    }

    /// `a^e mod q` (square and multiply).
    pub fn pow(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = self.reduce(1);
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// `a^-1 mod q`, or `None` if `gcd(a, q) != 1` (extended Euclid; q need not be prime).
    pub fn inv(&self, a: u64) -> Option<u64> {
        let (mut r0, mut r1) = (self.value as i128, self.reduce(a) as i128);
        let (mut t0, mut t1) = (0i128, 1i128);
        while r1 != 0 {
            let quotient = r0 / r1;
            (r0, r1) = (r1, r0 - quotient * r1);
            (t0, t1) = (t1, t0 - quotient * t1);
        }
        if r0 != 1 {
            return None;
        }
        Some(t0.rem_euclid(self.value as i128) as u64)
    }

    /// The residue of a signed integer.
    #[inline(always)]
    pub fn from_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 { self.neg(r) } else { r }
    }

    /// The residue of a signed 128-bit integer.
    #[inline(always)]
    pub fn from_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 { self.neg(r) } else { r }
    }

    /// The centered representative of `a` in `(-q/2, q/2]`.
    #[inline(always)]
    pub fn center(&self, a: u64) -> i64 {
        debug_assert!(a < self.value);
        if a > self.value / 2 {
            a as i64 - self.value as i64
        } else {
            a as i64
        }
    }

    /// Brings a value in `[0, 2q)` into `[0, q)`.
    #[inline(always)]
    pub fn reduce_once(&self, x: u64) -> u64 {
        debug_assert!(x < 2 * self.value);
        sub_if_ge(x, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn modulus_strategy() -> impl Strategy<Value = Modulus> {
        prop_oneof![
            (2u64..1 << 20),
            (2u64..1u64 << 62),
            ((1u64 << 62) - 1000..1u64 << 62),
            (0u32..62).prop_map(|k| 1u64 << k.max(1)),
        ]
        .prop_map(|q| Modulus::new(q).expect("in range by construction"))
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(Modulus::new(0).is_err());
        assert!(Modulus::new(1).is_err());
        assert!(Modulus::new(1 << 62).is_err());
        let err = Modulus::new(u64::MAX).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "modulus 18446744073709551615 is outside [2, 2^62)"
        );
    }

    proptest! {
        #[test]
        fn add_sub_neg_match_u128(m in modulus_strategy(), a: u64, b: u64) {
            let q = m.value();
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.add(a, b) as u128, (a as u128 + b as u128) % q as u128);
            prop_assert_eq!(m.sub(a, b) as u128, (a as u128 + q as u128 - b as u128) % q as u128);
            prop_assert_eq!(m.neg(a) as u128, (q as u128 - a as u128) % q as u128);
        }

        #[test]
        fn mul_and_reduce_match_u128(m in modulus_strategy(), a: u64, b: u64, x: u128, y: u64) {
            let q = m.value();
            prop_assert_eq!(m.reduce(y), y % q);
            prop_assert_eq!(m.reduce_u128(x) as u128, x % q as u128);
            prop_assert!(m.reduce_u128_lazy(x) < 3 * q);
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.mul(a, b) as u128, (a as u128 * b as u128) % q as u128);
            prop_assert_eq!(m.mul_add(a, b, b) as u128, (a as u128 * b as u128 + b as u128) % q as u128);
        }

        #[test]
        fn reduce_product_matches_u128(m in modulus_strategy(), x: u128) {
            let x = x >> (66 - m.bits());
            prop_assert_eq!(m.reduce_product(x) as u128, x % m.value() as u128);
            let top = (1u128 << (m.bits() + 62)) - 1;
            prop_assert_eq!(m.reduce_product(top) as u128, top % m.value() as u128);
        }

        #[test]
        fn reduce_u128_extremes(m in modulus_strategy(), k in 0u128..4) {
            let x = u128::MAX - k;
            prop_assert_eq!(m.reduce_u128(x) as u128, x % m.value() as u128);
            prop_assert_eq!(m.reduce_u128(k) as u128, k % m.value() as u128);
        }

        #[test]
        fn shoup_matches_u128(m in modulus_strategy(), x: u64, w: u64) {
            let q = m.value();
            let c = m.shoup(w);
            let expected = (x as u128 * (w % q) as u128) % q as u128;
            prop_assert_eq!(m.mul_shoup(x, c) as u128, expected);
            let lazy = m.mul_shoup_lazy(x, c);
            prop_assert!(lazy < 2 * q);
            prop_assert_eq!(lazy as u128 % q as u128, expected);
        }

        #[test]
        fn inverse_and_pow(m in modulus_strategy(), a: u64, e in 0u64..1000) {
            let q = m.value();
            let a = a % q;
            match m.inv(a) {
                Some(inv) => prop_assert_eq!(m.mul(a, inv), 1 % q),
                None => prop_assert!(gcd(a, q) != 1),
            }
            let mut expected = 1u128 % q as u128;
            for _ in 0..e {
                expected = expected * a as u128 % q as u128;
            }
            prop_assert_eq!(m.pow(a, e) as u128, expected);
        }

        #[test]
        fn signed_residues_and_center(m in modulus_strategy(), x: i64, y: i128) {
            let q = m.value() as i128;
            prop_assert_eq!(m.from_i64(x) as i128, (x as i128).rem_euclid(q));
            prop_assert_eq!(m.from_i128(y) as i128, y.rem_euclid(q));
            let r = m.from_i64(x);
            let c = m.center(r) as i128;
            prop_assert!(2 * c <= q && 2 * c > -q);
            prop_assert_eq!(c.rem_euclid(q), r as i128);
        }
    }

    fn gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
}
