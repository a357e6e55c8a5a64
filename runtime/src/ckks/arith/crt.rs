//! Exact CRT reconstruction of centered coefficients to f64 (Garner mixed radix, any limb count).
//!
//! For residues x_i mod q_i, Garner's algorithm gives the mixed-radix digits v_i of
//! X in [0, Q), X = v_0 + v_1 q_0 + v_2 q_0 q_1 + ... The sign test X > (Q-1)/2 compares
//! digits with those of (Q-1)/2, and the magnitude of a negative value is taken as
//! (Q-1-X) + 1 digit by digit, so nothing cancels. The magnitude is then rebuilt as an
//! integer (u128 when Q < 2^127, else base-2^64 words) and rounded once to f64.

use super::modulus::Modulus;

/// Garner tables for one ordered list of distinct odd primes.
pub(crate) struct CrtReconstructor {
    moduli: Vec<Modulus>,
    /// `prefix_mod[i][j]` = q_0 * ... * q_{j-1} mod q_i, for j < i.
    prefix_mod: Vec<Vec<u64>>,
    /// (q_0 * ... * q_{i-1})^-1 mod q_i.
    prefix_inv: Vec<u64>,
    /// Mixed-radix digits of (Q-1)/2.
    half_digits: Vec<u64>,
    /// Whether Q < 2^127, so that a u128 holds every value.
    fits_u128: bool,
}

impl CrtReconstructor {
    pub(crate) fn new(moduli: &[Modulus]) -> Self {
        let k = moduli.len();
        let prefix_mod: Vec<Vec<u64>> = (0..k)
            .map(|i| {
                let qi = &moduli[i];
                let mut acc = qi.reduce(1);
                (0..i)
                    .map(|j| {
                        let current = acc;
                        acc = qi.mul(acc, qi.reduce(moduli[j].value()));
                        current
                    })
                    .collect()
            })
            .collect();
        let prefix_inv = (0..k)
            .map(|i| {
                let qi = &moduli[i];
                let prefix = (0..i).fold(qi.reduce(1), |acc, j| {
                    qi.mul(acc, qi.reduce(moduli[j].value()))
                });
                // Invariant: the primes are distinct, so the prefix product is invertible.
                qi.inv(prefix).unwrap_or(0)
            })
            .collect();
        // (Q-1)/2 by halving the digits of Q-1 = (q_i - 1)_i from the most significant one.
        let mut half_digits = vec![0u64; k];
        let mut carry = 0u128;
        for i in (0..k).rev() {
            let q = moduli[i].value() as u128;
            let current = carry * q + (q - 1);
            half_digits[i] = (current / 2) as u64;
            carry = current % 2;
        }
        let bits: u32 = moduli.iter().map(Modulus::bits).sum();
        Self {
            moduli: moduli.to_vec(),
            prefix_mod,
            prefix_inv,
            half_digits,
            fits_u128: bits <= 127,
        }
    }

    /// Mixed-radix digits of the residues `x` (one per modulus).
    #[inline]
    fn digits(&self, x: &[u64], digits: &mut [u64]) {
        for i in 0..self.moduli.len() {
            let qi = &self.moduli[i];
            // sum_{j<i} v_j * prefix_mod[i][j], reduced every 8 terms (8 * 2^124 < 2^128).
            let mut acc = 0u128;
            for (j, (&v, &c)) in digits[..i].iter().zip(&self.prefix_mod[i]).enumerate() {
                acc += v as u128 * c as u128;
                if j % 8 == 7 {
                    acc = qi.reduce_u128(acc) as u128;
                }
            }
            let partial = qi.reduce_u128(acc);
            digits[i] = qi.mul(qi.sub(qi.reduce(x[i]), partial), self.prefix_inv[i]);
        }
    }

    /// The centered value of one coefficient, correctly rounded to f64 (±inf past f64's range).
    pub(crate) fn centered_f64(&self, x: &[u64], digits: &mut [u64], words: &mut Vec<u64>) -> f64 {
        let k = self.moduli.len();
        self.digits(x, digits);
        let negative =
            digits.iter().rev().cmp(self.half_digits.iter().rev()) == std::cmp::Ordering::Greater;
        if negative {
            // Q - X = (Q-1-X) + 1: digit-wise complement, then add one with carries.
            let mut carry = 1;
            for (v, m) in digits.iter_mut().zip(&self.moduli) {
                let d = m.value() - 1 - *v + carry;
                carry = u64::from(d == m.value());
                *v = if carry == 1 { 0 } else { d };
            }
        }
        let magnitude = if self.fits_u128 {
            let mut acc = 0u128;
            for i in (0..k).rev() {
                acc = acc * self.moduli[i].value() as u128 + digits[i] as u128;
            }
            acc as f64
        } else {
            words.clear();
            for i in (0..k).rev() {
                mul_add_words(words, self.moduli[i].value(), digits[i]);
            }
            words_to_f64(words)
        };
        if negative { -magnitude } else { magnitude }
    }
}

/// Centered values of coefficients `start..start + out.len()` of the limb-major `data`
/// (one length-`n` limb per modulus), correctly rounded to f64.
pub(crate) fn centered_f64_range(
    moduli: &[Modulus],
    data: &[u64],
    n: usize,
    start: usize,
    out: &mut [f64],
) {
    let len = out.len();
    let limb = |i: usize| &data[i * n + start..i * n + start + len];
    match moduli {
        [m] => {
            for (o, &x) in out.iter_mut().zip(limb(0)) {
                *o = m.center(x) as f64;
            }
        }
        [q0, q1] => {
            // Garner: v1 = (x1 - x0) * q0^-1 mod q1, X = x0 + v1*q0 < q0*q1 < 2^124.
            let q0_inv = q1.shoup(q1.inv(q1.reduce(q0.value())).unwrap_or(0));
            let q0_mod_q1 = q1.reduce(q0.value());
            let product = q0.value() as u128 * q1.value() as u128;
            let half = product / 2;
            for ((o, &x0), &x1) in out.iter_mut().zip(limb(0)).zip(limb(1)) {
                let x0_mod_q1 = if q0_mod_q1 == q0.value() {
                    x0
                } else {
                    q1.reduce(x0)
                };
                let v1 = q1.mul_shoup(x1 + q1.value() - x0_mod_q1, q0_inv);
                let x = x0 as u128 + v1 as u128 * q0.value() as u128;
                *o = if x > half {
                    -u128_to_f64(product - x)
                } else {
                    u128_to_f64(x)
                };
            }
        }
        _ => {
            let crt = CrtReconstructor::new(moduli);
            let k = moduli.len();
            let mut residues = vec![0u64; k];
            let mut digits = vec![0u64; k];
            let mut words = Vec::with_capacity(k + 1);
            for (c, o) in out.iter_mut().enumerate() {
                for (i, r) in residues.iter_mut().enumerate() {
                    *r = data[i * n + start + c];
                }
                *o = crt.centered_f64(&residues, &mut digits, &mut words);
            }
        }
    }
}

/// Correctly rounded u128 -> f64, with the common small case on the fast conversion.
#[inline(always)]
fn u128_to_f64(x: u128) -> f64 {
    if x >> 64 == 0 {
        x as u64 as f64
    } else {
        x as f64
    }
}

/// words = words * m + a, little-endian base 2^64.
fn mul_add_words(words: &mut Vec<u64>, m: u64, a: u64) {
    let mut carry = a as u128;
    for w in words.iter_mut() {
        let t = *w as u128 * m as u128 + carry;
        *w = t as u64;
        carry = t >> 64;
    }
    if carry != 0 {
        words.push(carry as u64);
    }
}

/// A little-endian base-2^64 integer rounded to nearest f64 (ties to even).
fn words_to_f64(words: &[u64]) -> f64 {
    let Some(top) = words.iter().rposition(|&w| w != 0) else {
        return 0.0;
    };
    if top < 2 {
        let low = words[0] as u128 | (words.get(1).copied().unwrap_or(0) as u128) << 64;
        return low as f64;
    }
    // The 128 bits starting at the leading one, with every lower bit folded into a sticky
    // bit; bit 0 of that window lies far below the 53-bit mantissa, so OR-ing the sticky
    // bit there breaks ties exactly as the full value would.
    let shift = words[top].leading_zeros();
    let window = |i: usize| -> u128 {
        let hi = words[i] as u128;
        let lo = if i > 0 { words[i - 1] as u128 } else { 0 };
        (hi << 64 | lo) << shift
    };
    let mut mantissa = window(top);
    let below = if shift > 0 {
        words[top - 2] >> (64 - shift)
    } else {
        0
    };
    mantissa |= below as u128;
    let dropped_low = if shift > 0 {
        words[top - 2] << shift != 0
    } else {
        words[top - 2] != 0
    };
    let sticky = dropped_low || words[..top - 2].iter().any(|&w| w != 0);
    if sticky {
        mantissa |= 1;
    }
    let exponent = (top as i32 - 1) * 64 - shift as i32;
    mantissa as f64 * 2f64.powi(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;

    #[test]
    fn words_to_f64_rounds_correctly() {
        // 2^128 + 2^75 + 1: the sticky bit must round up past the tie at 2^75.
        let words = [1u64, 1 << 11, 1];
        let value =
            BigUint::from(1u8) << 128usize | BigUint::from(1u8) << 75usize | BigUint::from(1u8);
        let expected = value.to_string().parse::<f64>().expect("decimal");
        assert_eq!(words_to_f64(&words), expected);
        // Exactly the tie 2^128 + 2^75: ties to even rounds down.
        assert_eq!(words_to_f64(&[0, 1 << 11, 1]), 2f64.powi(128));
        // Large values and huge ones.
        let many = [u64::MAX; 20];
        assert_eq!(words_to_f64(&many), f64::INFINITY);
        let mut w = vec![0u64; 15];
        w.push(0x8000_0000_0000_0000);
        assert_eq!(words_to_f64(&w), 2f64.powi(1023));
    }
}
