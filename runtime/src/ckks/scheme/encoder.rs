//! Encoder: real or complex slot values (any power-of-two slot count) <-> plaintext polynomials at a level and an exact scale.
//!
//! Encoding is the inverse canonical embedding (numerics' special FFT), a multiplication by
//! the scale with an exact two-product (so |scale * x| >= 2^53 loses nothing beyond the
//! f64 inputs), rounding to integers (i64, or i128 above 2^62) and the NTT. Decoding
//! reconstructs the centered coefficients exactly from the fewest Q limbs that hold them.

use num_complex::Complex64;

use crate::ckks::arith::RnsPoly;

use super::Error;
use super::ciphertext::Plaintext;
use super::params::Params;

/// Bits of room kept above the scale when decoding from a prefix of the limbs: values up
/// to 2^DECODE_HEADROOM_BITS decode exactly. Beyond that, `decode_full` reads every limb.
pub const DECODE_HEADROOM_BITS: f64 = 40.0;

/// Encodes and decodes for one parameter set.
#[derive(Debug, Clone)]
pub struct Encoder {
    params: Params,
}

/// `round(x * scale)` as an integer, with the product's rounding error recovered by an
/// FMA two-product (Dekker), so large products round correctly.
pub(crate) fn round_scaled(x: f64, scale: f64) -> Result<i128, Error> {
    let p = x * scale;
    if !p.is_finite() || p.abs() >= 2f64.powi(126) {
        return Err(Error::ValueOutOfRange {
            value: x,
            log2_scale: scale.log2(),
        });
    }
    let e = x.mul_add(scale, -p);
    // p + e exactly; floor(p) is exact, and the fraction (p - floor p) + e is small, so
    // one rounding of it (half up) rounds the exact product.
    let r = p.floor();
    let rest = (p - r) + e;
    Ok(r as i128 + (rest + 0.5).floor() as i128)
}

pub(crate) fn check_scale(scale: f64) -> Result<(), Error> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidScale { scale })
    }
}

impl Encoder {
    /// An encoder for `params`.
    pub fn new(params: &Params) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn check_level(&self, level: usize) -> Result<(), Error> {
        let max = self.params.max_level();
        if level > max {
            return Err(Error::LevelAboveTop { level, max });
        }
        Ok(())
    }

    /// The integer coefficients of `scale * values` (n = values.len() slots).
    pub(crate) fn integer_coeffs(
        &self,
        values: &[Complex64],
        scale: f64,
    ) -> Result<Vec<i128>, Error> {
        check_scale(scale)?;
        let coeffs = self.params.embedding().slots_to_coeffs(values)?;
        coeffs.iter().map(|&c| round_scaled(c, scale)).collect()
    }

    /// The polynomial of integer coefficients, NTT domain, over Q_level (and P if asked).
    pub(crate) fn poly_from_integers(
        &self,
        coeffs: &[i128],
        level: usize,
        with_special: bool,
    ) -> Result<RnsPoly, Error> {
        let ring = self.params.ring();
        let small = coeffs.iter().all(|&c| c.unsigned_abs() < 1 << 62);
        let mut poly = if small {
            let narrow: Vec<i64> = coeffs.iter().map(|&c| c as i64).collect();
            RnsPoly::from_i64_coeffs(ring, &narrow, level + 1, with_special)?
        } else {
            RnsPoly::from_i128_coeffs(ring, coeffs, level + 1, with_special)?
        };
        poly.ntt(ring);
        Ok(poly)
    }

    /// Encodes complex slot values (a power-of-two count up to N/2) at `level` and `scale`.
    pub fn encode_complex(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext, Error> {
        self.encode_with(values, level, scale, false)
    }

    /// Encodes real slot values at `level` and `scale`.
    pub fn encode_real(
        &self,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext, Error> {
        self.encode_complex(&lift(values), level, scale)
    }

    /// As `encode_complex`, with the P limbs too (a plaintext multiplied into products kept
    /// over Q*P, e.g. the diagonals of a double-hoisted linear transform).
    pub fn encode_complex_qp(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext, Error> {
        self.encode_with(values, level, scale, true)
    }

    fn encode_with(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
        with_special: bool,
    ) -> Result<Plaintext, Error> {
        self.check_level(level)?;
        let coeffs = self.integer_coeffs(values, scale)?;
        let poly = self.poly_from_integers(&coeffs, level, with_special)?;
        Ok(Plaintext {
            poly,
            level,
            scale,
            slots: values.len(),
            params_hash: self.params.hash(),
        })
    }

    /// A real constant in every slot: the polynomial round(c * scale) (coefficient 0 only),
    /// whose NTT is that residue in every entry. Returns the residue on each Q limb of
    /// `level` (then P if asked), for `add_scalar_assign` / `mul_scalar_assign`.
    pub fn encode_const(
        &self,
        value: f64,
        level: usize,
        scale: f64,
        with_special: bool,
    ) -> Result<Vec<u64>, Error> {
        self.check_level(level)?;
        check_scale(scale)?;
        let product = value * scale;
        if product.is_finite() && product.abs() >= 2f64.powi(126) {
            // Beyond i128 (a constant added to a product of two ciphertexts at large scales):
            // an f64 this large is the integer m·2^e with |m| < 2^53, whose residues are
            // exact; the product's own rounding is 2^-53 relative, far below slot precision.
            let bits = product.to_bits();
            let exponent = ((bits >> 52) & 0x7ff) as i64 - 1075;
            let mantissa = ((bits & ((1 << 52) - 1)) | (1 << 52)) as i64;
            let m = if product < 0.0 { -mantissa } else { mantissa };
            return Ok(self
                .params
                .ring()
                .limb_moduli(level + 1, with_special)
                .iter()
                .map(|q| q.mul(q.from_i64(m), q.pow(2, exponent as u64)))
                .collect());
        }
        let integer = round_scaled(value, scale)?;
        Ok(self
            .params
            .ring()
            .scalar_residues(integer, level + 1, with_special))
    }

    /// Decodes a plaintext to its complex slots, dividing by its scale.
    pub fn decode_complex(&self, plaintext: &Plaintext) -> Result<Vec<Complex64>, Error> {
        let mut poly = plaintext.poly.clone();
        poly.intt(self.params.ring());
        self.decode_coefficient_poly(&poly, plaintext.scale, plaintext.slots)
    }

    /// Decodes a plaintext to the real parts of its slots.
    pub fn decode_real(&self, plaintext: &Plaintext) -> Result<Vec<f64>, Error> {
        Ok(self
            .decode_complex(plaintext)?
            .iter()
            .map(|z| z.re)
            .collect())
    }

    /// The fewest leading Q limbs whose product exceeds scale * 2^DECODE_HEADROOM_BITS.
    pub(crate) fn decode_limbs(&self, scale: f64, q_limbs: usize) -> usize {
        let need = scale.log2() + DECODE_HEADROOM_BITS + 1.0;
        let mut bits = 0.0;
        for (i, q) in self.params.ring().q()[..q_limbs].iter().enumerate() {
            bits += (q.value() as f64).log2();
            if bits >= need {
                return i + 1;
            }
        }
        q_limbs
    }

    /// Decodes a Coefficient-domain polynomial (only its first `decode_limbs` limbs are read).
    pub(crate) fn decode_coefficient_poly(
        &self,
        poly: &RnsPoly,
        scale: f64,
        slots: usize,
    ) -> Result<Vec<Complex64>, Error> {
        let ring = self.params.ring();
        let limbs = self.decode_limbs(scale, poly.q_limbs());
        let mut coeffs = vec![0.0; ring.n()];
        poly.to_centered_f64_prefix(ring, limbs, &mut coeffs);
        let inv = 1.0 / scale;
        for c in &mut coeffs {
            *c *= inv;
        }
        Ok(self.params.embedding().coeffs_to_slots(&coeffs, slots)?)
    }
}

pub(crate) fn lift(values: &[f64]) -> Vec<Complex64> {
    values.iter().map(|&x| Complex64::new(x, 0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::scheme::params::{TEST_INSECURE_N10, TEST_INSECURE_N11};

    #[test]
    fn round_scaled_is_exact_beyond_2_pow_53() {
        assert_eq!(round_scaled(1.5, 1.0).ok(), Some(2));
        assert_eq!(round_scaled(-2.5, 1.0).ok(), Some(-2));
        assert_eq!(round_scaled(-2.6, 1.0).ok(), Some(-3));
        // 2^60 * (1 + 2^-52): the f64 product is exact.
        let x = 1.0 + f64::EPSILON;
        assert_eq!(
            round_scaled(x, 2f64.powi(60)).ok(),
            Some((1i128 << 60) + (1 << 8))
        );
        // x * scale with a product error the two-product recovers: (2^53+1) * 3.
        let big = 2f64.powi(53) + 2.0;
        assert_eq!(round_scaled(big, 3.0).ok(), Some(3 * ((1i128 << 53) + 2)));
        assert!(round_scaled(f64::NAN, 1.0).is_err());
        assert!(round_scaled(1.0, 2f64.powi(127)).is_err());
    }

    #[test]
    fn encode_decode_round_trips_at_every_slot_count() {
        for set in [TEST_INSECURE_N10, TEST_INSECURE_N11] {
            let params = set.params().expect("set");
            let encoder = Encoder::new(&params);
            let mut slots = 1;
            while slots <= params.max_slots() {
                let values: Vec<Complex64> = (0..slots)
                    .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
                    .collect();
                for level in [0, params.max_level()] {
                    let scale = params.default_scale(level);
                    let pt = encoder
                        .encode_complex(&values, level, scale)
                        .expect("encode");
                    let back = encoder.decode_complex(&pt).expect("decode");
                    for (a, b) in values.iter().zip(&back) {
                        assert!((a - b).norm() < 1e-9, "slots {slots} level {level}");
                    }
                }
                slots *= 2;
            }
        }
    }

    #[test]
    fn large_scales_encode_through_i128() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let encoder = Encoder::new(&params);
        let values = vec![0.75, -0.5, 1234.0, 1e-3];
        let scale = 2f64.powi(80);
        let pt = encoder
            .encode_real(&values, params.max_level(), scale)
            .expect("encode");
        let back = encoder.decode_real(&pt).expect("decode");
        for (a, b) in values.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn constants_are_coefficient_zero() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let encoder = Encoder::new(&params);
        let scale = params.default_scale(2);
        let residues = encoder
            .encode_const(-0.3125, 2, scale, false)
            .expect("const");
        let pt = encoder
            .encode_real(&[-0.3125; 8], 2, scale)
            .expect("encode");
        // The NTT of the constant polynomial is the constant in every entry.
        for (i, &r) in residues.iter().enumerate() {
            assert!(pt.poly().limb(i).iter().all(|&v| v == r), "limb {i}");
        }
    }

    #[test]
    fn bad_requests_are_errors() {
        let params = TEST_INSECURE_N10.params().expect("set");
        let encoder = Encoder::new(&params);
        assert_eq!(
            encoder
                .encode_real(&[1.0; 3], 0, 1e9)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("slot count must be a power of two in 1..=512, got 3".into())
        );
        assert_eq!(
            encoder
                .encode_real(&[1.0; 4], 99, 1e9)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("level 99 is above the top level 6".into())
        );
        assert!(encoder.encode_real(&[1.0; 4], 0, -1.0).is_err());
    }
}
