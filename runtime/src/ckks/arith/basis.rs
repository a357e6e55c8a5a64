//! RNS base conversion (Bajard et al. / HPS), and on top of it ModUp, ModDown and Rescale.
//!
//! Fast base conversion from B = {b_i} to a target prime t: with y_i = [x * (B/b_i)^-1]_{b_i},
//! `sum_i y_i * (B/b_i) = x + u*B` for some integer 0 <= u < |B| (Bajard, Eynard, Hasan,
//! Zucca, SAC 2016). `ConversionMode::Centered` also subtracts v*B with
//! v = round(sum_i y_i / b_i) computed in f64 (Halevi, Polyakov, Shoup, eprint 2018/117),
//! which yields the centered representative of x mod B itself.
//! Sums of products are accumulated in u128 and reduced once per output (delayed reduction).

use super::RingContext;
use super::kernels;
use super::modulus::{Modulus, ShoupConstant};
use super::parallel::{Work, for_each_job, for_each_job_with_scratch, for_each_limb};
use super::poly::{Representation, RnsPoly};
use super::scratch;
use super::simd;

/// Coefficients per block of the conversion kernel: the `y` block (sources x BLOCK words)
/// stays in L1 while every target row is produced from it.
const BLOCK: usize = 256;

/// What a base conversion returns for an input x mod B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversionMode {
    /// `x + u*B` with `0 <= u < |B|` (the u*B error that hybrid key switching absorbs).
    Approximate,
    /// The centered representative of x mod B, in `[-B/2, B/2]`; only when x mod B lies
    /// within ~2^-45 * B of ±B/2 may the neighbour representative (off by B) come out.
    Centered,
}

/// Whether the source limbs hold x or N*x mod b_i (the output of an unnormalized inverse
/// NTT); the `N^-1` factor is then folded into `(B/b_i)^-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceScale {
    /// The limbs hold x.
    One,
    /// The limbs hold N*x.
    TimesN,
}

/// Precomputed tables to convert from a source basis B to a list of target primes.
#[derive(Clone, Debug)]
pub struct BaseConverter {
    source: Vec<Modulus>,
    target: Vec<Modulus>,
    /// (B/b_i)^-1 mod b_i.
    hat_inv: Vec<ShoupConstant>,
    /// (B/b_i)^-1 * N^-1 mod b_i.
    hat_inv_n_inv: Vec<ShoupConstant>,
    /// (B/b_i) mod t_j, row-major: row j holds the source count entries for target j.
    hat_mod_target: Vec<u64>,
    /// -B mod t_j.
    neg_b_mod_target: Vec<u64>,
    /// 1/b_i in f64.
    source_inv: Vec<f64>,
    /// Source terms whose u128 sum cannot overflow before a reduction (see `new`).
    terms_per_reduction: usize,
    /// `hat_mod_target` times 2^64 mod t_j (Montgomery form), same layout.
    hat_montgomery: Vec<u64>,
    /// `neg_b_mod_target` times 2^64 mod t_j.
    neg_b_montgomery: Vec<u64>,
    /// -t_j^-1 mod 2^64.
    target_neg_inv: Vec<u64>,
    /// Whether every sum fits Montgomery reduction: s * max_b + s + 1 <= 2^64 (see
    /// `accumulate_fixed`).
    montgomery: bool,
    /// Per target: whether the IFMA kernel applies (t_j < 2^50 and 2s + 1 < 2^(bits(t_j)-2),
    /// see `simd::x86::convert_row_ifma`).
    ifma_rows: Vec<bool>,
    /// `hat_mod_target` times 2^52 mod t_j, same layout (for sources of 52 bits or more).
    hat_shifted: Vec<u64>,
    /// Per source: b_i >= 2^52, so its values are split for IFMA.
    wide_sources: Vec<bool>,
    /// Whether the IFMA kernel must reduce the high half first: a wide source or
    /// (s+1) * max_b > 2^51.
    ifma_fold_high: bool,
}

impl BaseConverter {
    /// Tables from `source` to `target` for ring degree `n`. Primes must be distinct.
    pub fn new(source: &[Modulus], target: &[Modulus], n: usize) -> Self {
        let hat_inv: Vec<ShoupConstant> = source
            .iter()
            .enumerate()
            .map(|(i, bi)| {
                let hat = product_mod(source, i, bi);
                bi.shoup(bi.inv(hat).unwrap_or(0))
            })
            .collect();
        let hat_inv_n_inv = source
            .iter()
            .zip(&hat_inv)
            .map(|(bi, h)| bi.shoup(bi.mul(h.value, bi.inv(bi.reduce(n as u64)).unwrap_or(0))))
            .collect();
        let hat_mod_target: Vec<u64> = target
            .iter()
            .flat_map(|tj| (0..source.len()).map(move |i| product_mod(source, i, tj)))
            .collect();
        let neg_b_mod_target: Vec<u64> = target
            .iter()
            .map(|tj| tj.neg(product_mod(source, usize::MAX, tj)))
            .collect();
        let source_inv = source.iter().map(|b| 1.0 / b.value() as f64).collect();
        // Each term is < max_b * max_t; keep the sum plus the v*B correction below 2^127.
        let max_b = source.iter().map(|m| m.value() as u128).max().unwrap_or(1);
        let max_t = target.iter().map(|m| m.value() as u128).max().unwrap_or(1);
        let terms_per_reduction = ((1u128 << 127) / (max_b * max_t)).clamp(1, 64) as usize - 1;
        let to_montgomery = |value: u64, t: &Modulus| t.reduce_u128((value as u128) << 64);
        let hat_montgomery = hat_mod_target
            .iter()
            .enumerate()
            .map(|(k, &h)| to_montgomery(h, &target[k / source.len().max(1)]))
            .collect();
        let neg_b_montgomery = neg_b_mod_target
            .iter()
            .zip(target)
            .map(|(&v, t)| to_montgomery(v, t))
            .collect();
        let target_neg_inv = target
            .iter()
            .map(|t| neg_inverse_mod_2_64(t.value()))
            .collect();
        let s = source.len() as u128;
        let montgomery = s * max_b + s < 1u128 << 64;
        let ifma_rows = target
            .iter()
            .map(|t| t.value() < simd::IFMA_MODULUS_BOUND && 2 * s + 1 < 1u128 << (t.bits() - 2))
            .collect();
        let hat_shifted = hat_mod_target
            .iter()
            .enumerate()
            .map(|(k, &h)| target[k / source.len().max(1)].reduce_u128((h as u128) << 52))
            .collect();
        let wide_sources: Vec<bool> = source.iter().map(|b| b.value() >= 1 << 52).collect();
        let ifma_fold_high = wide_sources.contains(&true) || (s + 1) * max_b > 1u128 << 51;
        Self {
            source: source.to_vec(),
            target: target.to_vec(),
            hat_inv,
            hat_inv_n_inv,
            hat_mod_target,
            neg_b_mod_target,
            source_inv,
            terms_per_reduction: terms_per_reduction.max(1),
            hat_montgomery,
            neg_b_montgomery,
            target_neg_inv,
            montgomery,
            ifma_rows,
            hat_shifted,
            wide_sources,
            ifma_fold_high,
        }
    }

    /// Number of source primes.
    pub fn source_count(&self) -> usize {
        self.source.len()
    }

    /// Number of target primes.
    pub fn target_count(&self) -> usize {
        self.target.len()
    }

    /// Converts the `source_count()` contiguous limbs of `input` (limb i mod b_i) to the
    /// targets listed in `outputs` as (target row, limb), all limbs of length n.
    ///
    /// # Panics
    /// If `input` does not hold `source_count()` limbs of the outputs' length.
    pub fn convert(
        &self,
        input: &[u64],
        scale: SourceScale,
        mode: ConversionMode,
        outputs: Vec<(usize, &mut [u64])>,
    ) {
        let Some(n) = outputs.first().map(|(_, limb)| limb.len()) else {
            return;
        };
        let s = self.source.len();
        assert_eq!(
            input.len(),
            s * n,
            "input must hold one limb per source prime"
        );
        assert!(
            outputs
                .iter()
                .all(|(row, limb)| limb.len() == n && *row < self.target.len())
        );
        let hat_inv = match scale {
            SourceScale::One => &self.hat_inv,
            SourceScale::TimesN => &self.hat_inv_n_inv,
        };
        // Split the coefficient range into one span per job; each job walks its span in
        // BLOCK-sized steps and writes the matching slice of every output limb.
        let jobs_wanted = (rayon::current_num_threads() * 4)
            .min(n.div_ceil(BLOCK))
            .max(1);
        let span = n.div_ceil(jobs_wanted).next_multiple_of(BLOCK.min(n));
        let mut jobs: Vec<Vec<(usize, &mut [u64])>> =
            (0..n.div_ceil(span)).map(|_| Vec::new()).collect();
        for (row, limb) in outputs {
            for (job, piece) in jobs.iter_mut().zip(limb.chunks_mut(span)) {
                job.push((row, piece));
            }
        }
        let work = s * self.target.len();
        for_each_job(jobs, span * work.max(1), |job_index, mut pieces| {
            let start = job_index * span;
            let len = pieces.first().map_or(0, |(_, p)| p.len());
            let mut y = vec![0u64; s * BLOCK];
            let mut v = vec![0u64; BLOCK];
            let mut offset = 0;
            while offset < len {
                let block = BLOCK.min(len - offset);
                self.convert_block(
                    input,
                    n,
                    start + offset,
                    block,
                    hat_inv,
                    mode,
                    &mut y,
                    &mut v,
                );
                self.accumulate_rows(&mut pieces, offset, block, &y, &v, mode);
                offset += block;
            }
        });
    }

    /// Fills `y[i*BLOCK + c]` = x_i[c] * hat_inv_i (source-major: the block of each source is
    /// contiguous) and, when centering, `v[c]` = round(sum_i y_i[c] / b_i).
    #[allow(clippy::too_many_arguments, reason = "internal kernel step")]
    #[inline]
    fn convert_block(
        &self,
        input: &[u64],
        n: usize,
        start: usize,
        block: usize,
        hat_inv: &[ShoupConstant],
        mode: ConversionMode,
        y: &mut [u64],
        v: &mut [u64],
    ) {
        for (i, (bi, &h)) in self.source.iter().zip(hat_inv).enumerate() {
            let y_i = &mut y[i * BLOCK..i * BLOCK + block];
            y_i.copy_from_slice(&input[i * n + start..i * n + start + block]);
            kernels::mul_shoup(y_i, h, bi);
        }
        if mode == ConversionMode::Centered {
            let mut z = [0f64; BLOCK];
            for (i, &inv) in self.source_inv.iter().enumerate() {
                for (zc, &yc) in z[..block].iter_mut().zip(&y[i * BLOCK..i * BLOCK + block]) {
                    *zc += yc as f64 * inv;
                }
            }
            for (vc, zc) in v[..block].iter_mut().zip(&z[..block]) {
                *vc = zc.round() as u64;
            }
        }
    }

    /// `accumulate_row` for every output piece, on coefficients `offset..offset + block`.
    fn accumulate_rows(
        &self,
        pieces: &mut [(usize, &mut [u64])],
        offset: usize,
        block: usize,
        y: &[u64],
        v: &[u64],
        mode: ConversionMode,
    ) {
        let ifma = simd::simd_level() == simd::SimdLevel::Ifma;
        for (row, piece) in pieces.iter_mut() {
            let out = &mut piece[offset..offset + block];
            #[cfg(target_arch = "x86_64")]
            if ifma && self.ifma_rows[*row] {
                let s = self.source.len();
                let hats = &self.hat_mod_target[*row * s..(*row + 1) * s];
                let centered = mode == ConversionMode::Centered;
                // SAFETY: the IFMA level was detected, `ifma_rows` guarantees the kernel's
                // bounds on t and s, `wide_sources` marks every source >= 2^52, and
                // `ifma_fold_high` is set whenever a source is wide or (s+1) * max_b > 2^51.
                unsafe {
                    simd::x86::convert_row_ifma(
                        y,
                        BLOCK,
                        hats,
                        &self.hat_shifted[*row * s..(*row + 1) * s],
                        &self.wide_sources,
                        self.neg_b_mod_target[*row],
                        v,
                        centered,
                        self.ifma_fold_high,
                        &self.target[*row],
                        out,
                    )
                };
                continue;
            }
            let _ = ifma;
            self.accumulate_row(*row, y, v, mode, out);
        }
    }

    /// `out[c]` = sum_i y_i[c] * (B/b_i) (- v[c] * B) mod t_row.
    #[inline]
    fn accumulate_row(
        &self,
        row: usize,
        y: &[u64],
        v: &[u64],
        mode: ConversionMode,
        out: &mut [u64],
    ) {
        let s = self.source.len();
        let t = &self.target[row];
        let centered = mode == ConversionMode::Centered;
        let hats_m = &self.hat_montgomery[row * s..(row + 1) * s];
        let neg_b_m = self.neg_b_montgomery[row];
        let t_inv = self.target_neg_inv[row];
        macro_rules! fixed {
            ($($s:literal)*) => {
                match s {
                    $($s if self.montgomery => {
                        let hats: &[u64; $s] = &hats_m.as_chunks::<$s>().0[0];
                        let blocks: &[[u64; BLOCK]] = &y.as_chunks::<BLOCK>().0[..$s];
                        let y: &[[u64; BLOCK]; $s] = blocks.try_into().unwrap_or_else(|_| unreachable!("y holds s blocks"));
                        if centered {
                            accumulate_fixed::<$s, true>(t, t_inv, hats, neg_b_m, y, v, out)
                        } else {
                            accumulate_fixed::<$s, false>(t, t_inv, hats, neg_b_m, y, v, out)
                        }
                    })*
                    _ => {
                        let hats = &self.hat_mod_target[row * s..(row + 1) * s];
                        let neg_b = self.neg_b_mod_target[row];
                        self.accumulate_chunked(t, hats, neg_b, y, v, centered, out)
                    }
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    }

    /// The general case: any source count, partial sums reduced every
    /// `terms_per_reduction` terms.
    #[allow(clippy::too_many_arguments, reason = "internal kernel step")]
    fn accumulate_chunked(
        &self,
        t: &Modulus,
        hats: &[u64],
        neg_b: u64,
        y: &[u64],
        v: &[u64],
        centered: bool,
        out: &mut [u64],
    ) {
        for (c, (o, &vc)) in out.iter_mut().zip(v).enumerate() {
            let mut acc: u128 = 0;
            for (i, &h) in hats.iter().enumerate() {
                acc += y[i * BLOCK + c] as u128 * h as u128;
                if (i + 1) % self.terms_per_reduction == 0 {
                    acc = t.reduce_u128(acc) as u128;
                }
            }
            if centered {
                acc += vc as u128 * neg_b as u128;
            }
            *o = t.reduce_u128(acc);
        }
    }
}

/// `out[c]` = sum_i y[i][c] * hats[i] (+ v[c] * neg_b) * 2^-64 mod t for a source count `S`
/// known at compile time: the terms unroll, the constants stay in registers.
///
/// One Montgomery reduction (REDC) per output: with x < t * 2^64 and m = x * (-t^-1) mod
/// 2^64, (x + m*t) / 2^64 is exact and < 2t. Here x < S*max_b*t + (S+1)*t <= t * 2^64 by
/// the `montgomery` condition, and the constants carry the 2^64 that REDC divides out.
#[inline(always)]
fn accumulate_fixed<const S: usize, const CENTERED: bool>(
    t: &Modulus,
    t_neg_inv: u64,
    hats: &[u64; S],
    neg_b: u64,
    y: &[[u64; BLOCK]; S],
    v: &[u64],
    out: &mut [u64],
) {
    let q = t.value();
    let block = out.len().min(BLOCK);
    for c in 0..block {
        let mut acc: u128 = 0;
        for i in 0..S {
            acc += y[i][c] as u128 * hats[i] as u128;
        }
        if CENTERED {
            acc += v[c] as u128 * neg_b as u128;
        }
        let (lo, hi) = (acc as u64, (acc >> 64) as u64);
        let m = lo.wrapping_mul(t_neg_inv);
        // lo + low(m*t) = 0 mod 2^64, carrying exactly when lo != 0.
        let r = hi + ((m as u128 * q as u128) >> 64) as u64 + u64::from(lo != 0);
        out[c] = r.min(r.wrapping_sub(q));
    }
}

/// -t^-1 mod 2^64 for odd t (Newton iteration, each step doubles the correct low bits).
fn neg_inverse_mod_2_64(t: u64) -> u64 {
    let mut inv = t; // correct to 3 bits for odd t
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(t.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// Product of all `primes` except index `skip`, mod `m` (`skip = usize::MAX`: all of them).
fn product_mod(primes: &[Modulus], skip: usize, m: &Modulus) -> u64 {
    primes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .fold(m.reduce(1), |acc, (_, p)| m.mul(acc, m.reduce(p.value())))
}

impl RingContext {
    /// ModUp of one digit (hybrid key switching, Han and Ki, eprint 2019/688): the limbs of
    /// digit `digit` of a Q-only polynomial at level l, lifted to all of Q_l and P.
    ///
    /// Input in either representation; output in the Evaluation domain with the input's
    /// Q limbs plus the P limbs. On the digit's own limbs the output equals the input; on
    /// the others it is the approximate conversion x + u*D of the digit value x (D the
    /// digit's modulus, 0 <= u < digit size), an error that key switching absorbs.
    ///
    /// # Panics
    /// If the input carries P limbs, the ring has no special primes or the digit does not exist.
    pub fn mod_up(&self, input: &RnsPoly, digit: usize) -> RnsPoly {
        let mut out = RnsPoly::zero(self, input.q_limbs(), true, Representation::Evaluation);
        self.mod_up_into(input, digit, &mut out);
        out
    }

    /// `mod_up` into an existing polynomial of the right shape (Q limbs of the input, with P).
    ///
    /// # Panics
    /// As `mod_up`, or if `out` has another shape.
    pub fn mod_up_into(&self, input: &RnsPoly, digit: usize, out: &mut RnsPoly) {
        self.mod_up_with_mode(input, digit, out, ConversionMode::Approximate);
    }

    /// `mod_up_into` with the centered conversion: the lifted digit is the centered
    /// representative of x mod D, in [-D/2, D/2], with no u*D term.
    ///
    /// Key switching should use this one: an approximate digit x + u*D lies in [0, alpha*D),
    /// so its mean is about alpha*D/2 in every coefficient. That constant part times the key
    /// error is the error times the all-ones polynomial, whose slot values near the root 1
    /// are ~N/pi instead of ~sqrt(N): a few slots then carry errors ~2^5 larger than the rest
    /// (measured: 7-9 bits between the mean and the worst slot of a rotation at N = 2^14,
    /// 2^15, against 3 bits with centered digits). The centering costs one f64
    /// multiply-add per source per coefficient.
    ///
    /// # Panics
    /// As `mod_up_into`.
    pub fn mod_up_centered_into(&self, input: &RnsPoly, digit: usize, out: &mut RnsPoly) {
        self.mod_up_with_mode(input, digit, out, ConversionMode::Centered);
    }

    fn mod_up_with_mode(
        &self,
        input: &RnsPoly,
        digit: usize,
        out: &mut RnsPoly,
        mode: ConversionMode,
    ) {
        assert!(!input.has_special(), "ModUp takes a Q-only polynomial");
        let q_limbs = input.q_limbs();
        let level = q_limbs - 1;
        let Some(converter) = self.mod_up_converter(level, digit) else {
            panic!("ModUp needs special primes");
        };
        assert!(
            out.q_limbs() == q_limbs && out.has_special() && out.n() == self.n(),
            "ModUp output must have the input's Q limbs and the P limbs"
        );
        let n = self.n();
        let range = self.digit_range(level, digit);
        let digit_data = &input.as_slice()[range.start * n..range.end * n];

        // Source limbs in the coefficient domain (unnormalized when coming from the NTT domain).
        let coefficient_input = input.representation() == Representation::Coefficient;
        if coefficient_input {
            self.mod_up_from_source(
                converter,
                q_limbs,
                range,
                digit_data,
                digit_data,
                SourceScale::One,
                mode,
                true,
                out,
            );
        } else {
            scratch::with_scratch(digit_data.len(), |source| {
                source.copy_from_slice(digit_data);
                for_each_limb(Work::Heavy, source, n, |i, limb| {
                    self.limb_kernel(q_limbs, range.start + i)
                        .inverse_unnormalized(limb);
                });
                self.mod_up_from_source(
                    converter,
                    q_limbs,
                    range.clone(),
                    digit_data,
                    source,
                    SourceScale::TimesN,
                    mode,
                    false,
                    out,
                );
            });
        }
    }

    /// The rest of ModUp once the digit's limbs are in the coefficient domain (`source`):
    /// copy the NTT-domain digit limbs, convert to the other limbs, NTT those.
    #[allow(clippy::too_many_arguments, reason = "the state of one ModUp call")]
    fn mod_up_from_source(
        &self,
        converter: &BaseConverter,
        q_limbs: usize,
        range: std::ops::Range<usize>,
        digit_data: &[u64],
        source: &[u64],
        scale: SourceScale,
        mode: ConversionMode,
        coefficient_input: bool,
        out: &mut RnsPoly,
    ) {
        let n = self.n();

        out.set_representation(Representation::Evaluation);
        let out_data = out.as_mut_slice();
        out_data[range.start * n..range.end * n].copy_from_slice(digit_data);
        let count = range.len();
        let q_total = self.q().len();
        let mut outputs = Vec::with_capacity(q_limbs - count + self.p().len());
        let mut digit_limbs = Vec::with_capacity(count);
        for (limb_index, limb) in out_data.chunks_mut(n).enumerate() {
            if range.contains(&limb_index) {
                digit_limbs.push((limb_index, limb));
                continue;
            }
            let row = if limb_index < range.start {
                limb_index
            } else if limb_index < q_limbs {
                limb_index - count
            } else {
                q_total - count + (limb_index - q_limbs)
            };
            outputs.push((row, limb_index, limb));
        }
        let (rows, mut targets): (Vec<(usize, usize)>, Vec<&mut [u64]>) = outputs
            .into_iter()
            .map(|(row, index, limb)| ((row, index), limb))
            .unzip();
        converter.convert(
            source,
            scale,
            mode,
            rows.iter()
                .map(|&(row, _)| row)
                .zip(targets.iter_mut().map(|t| &mut **t))
                .collect(),
        );
        let mut ntt_jobs: Vec<(usize, &mut [u64])> =
            rows.iter().map(|&(_, index)| index).zip(targets).collect();
        if coefficient_input {
            ntt_jobs.extend(digit_limbs);
        }
        for_each_job(ntt_jobs, n * 16, |_, (index, limb)| {
            self.limb_kernel(q_limbs, index).forward(limb);
        });
    }

    /// ModDown: a polynomial over Q_l * P becomes round(x / P) over Q_l, in place.
    ///
    /// The P part is converted exactly (centered, `ConversionMode::Centered`), so the
    /// result is x/P rounded to the nearest integer (ties either way). Works in either
    /// representation and keeps it.
    ///
    /// # Panics
    /// If the polynomial does not carry the P limbs.
    pub fn mod_down(&self, poly: &mut RnsPoly) {
        assert!(
            poly.has_special(),
            "ModDown takes a polynomial with P limbs"
        );
        let Some(converter) = self.mod_down_converter() else {
            panic!("ModDown needs special primes");
        };
        let n = self.n();
        let q_limbs = poly.q_limbs();
        let representation = poly.representation();
        let (q_part, p_part) = poly.as_mut_slice().split_at_mut(q_limbs * n);

        // The P limbs in the coefficient domain.
        let (scale, p_coeffs) = match representation {
            Representation::Coefficient => (SourceScale::One, &*p_part),
            Representation::Evaluation => {
                for_each_limb(Work::Heavy, p_part, n, |j, limb| {
                    self.limb_kernel(q_limbs, q_limbs + j)
                        .inverse_unnormalized(limb);
                });
                (SourceScale::TimesN, &*p_part)
            }
        };
        scratch::with_scratch(q_limbs * n, |converted| {
            // Every word of `converted` is written by the conversion before it is read.
            let outputs = converted.chunks_mut(n).enumerate().collect();
            converter.convert(p_coeffs, scale, ConversionMode::Centered, outputs);
            let p_inv = self.p_inv_mod_q();
            let jobs: Vec<(&mut [u64], &mut [u64])> =
                q_part.chunks_mut(n).zip(converted.chunks_mut(n)).collect();
            for_each_job(jobs, n * 16, |i, (x, t)| {
                let qi = &self.q()[i];
                if representation == Representation::Evaluation {
                    self.limb_kernel(q_limbs, i).forward(t);
                }
                kernels::sub_mul_shoup(x, t, p_inv[i], qi);
            });
        });
        poly.drop_special_limbs();
    }

    /// ModDown of `src` (over Q_l * P) written to, or with `accumulate` added to, `dst`
    /// (over Q_l, same representation): `dst (+)= round(src / P)`. `src` keeps its shape
    /// (so its buffer can be reused for the next key switch) but its contents are consumed.
    ///
    /// # Panics
    /// If `src` lacks the P limbs, or `dst` is not the Q-only shape of `src`.
    pub fn mod_down_into(&self, src: &mut RnsPoly, dst: &mut RnsPoly, accumulate: bool) {
        assert!(src.has_special(), "ModDown takes a polynomial with P limbs");
        assert!(
            !dst.has_special()
                && dst.q_limbs() == src.q_limbs()
                && dst.representation() == src.representation(),
            "ModDown output must be the Q-only shape of the input"
        );
        let Some(converter) = self.mod_down_converter() else {
            panic!("ModDown needs special primes");
        };
        let n = self.n();
        let q_limbs = src.q_limbs();
        let representation = src.representation();
        let (q_part, p_part) = src.as_mut_slice().split_at_mut(q_limbs * n);
        let scale = match representation {
            Representation::Coefficient => SourceScale::One,
            Representation::Evaluation => {
                for_each_limb(Work::Heavy, p_part, n, |j, limb| {
                    self.limb_kernel(q_limbs, q_limbs + j)
                        .inverse_unnormalized(limb);
                });
                SourceScale::TimesN
            }
        };
        let p_coeffs = &*p_part;
        scratch::with_scratch(q_limbs * n, |converted| {
            // Every word of `converted` is written by the conversion before it is read.
            let outputs = converted.chunks_mut(n).enumerate().collect();
            converter.convert(p_coeffs, scale, ConversionMode::Centered, outputs);
            let p_inv = self.p_inv_mod_q();
            // (Q limb of src, its converted P part, the output limb).
            type Job<'a> = ((&'a mut [u64], &'a mut [u64]), &'a mut [u64]);
            let jobs: Vec<Job<'_>> = q_part
                .chunks_mut(n)
                .zip(converted.chunks_mut(n))
                .zip(dst.as_mut_slice().chunks_mut(n))
                .collect();
            for_each_job(jobs, n * 16, |i, ((x, t), out)| {
                let qi = &self.q()[i];
                if representation == Representation::Evaluation {
                    self.limb_kernel(q_limbs, i).forward(t);
                }
                kernels::sub_mul_shoup(x, t, p_inv[i], qi);
                if accumulate {
                    kernels::add(out, x, qi.value());
                } else {
                    out.copy_from_slice(x);
                }
            });
        });
    }

    /// Rescale: divides a Q-only polynomial at level l >= 1 by q_l with exact rounding
    /// and drops limb l, in place. Works in either representation and keeps it.
    ///
    /// The last limb is lifted to its centered representative r in (-q_l/2, q_l/2], so
    /// (x - r)/q_l = round(x/q_l), computed as (x_i - r) * q_l^-1 mod q_i.
    ///
    /// # Panics
    /// If the polynomial carries P limbs or has a single Q limb.
    pub fn rescale(&self, poly: &mut RnsPoly) {
        assert!(!poly.has_special(), "rescale takes a Q-only polynomial");
        let q_limbs = poly.q_limbs();
        assert!(q_limbs >= 2, "rescale needs at least two Q limbs");
        let level = q_limbs - 1;
        let n = self.n();
        let representation = poly.representation();
        let data = poly.as_mut_slice();
        let (keep, last) = data[..q_limbs * n].split_at_mut(level * n);
        if representation == Representation::Evaluation {
            self.limb_kernel(q_limbs, level).inverse(last);
        }
        let last: &[u64] = last;
        let q_last = self.q()[level];
        let half = q_last.value() / 2;
        let inverses = self.rescale_constants(level);
        // One length-N scratch per worker, reused limb after limb so it stays in cache.
        let jobs: Vec<&mut [u64]> = keep.chunks_mut(n).collect();
        for_each_job_with_scratch(jobs, n * 16, n, |i, x, t| {
            let qi = &self.q()[i];
            kernels::center_lift(t, last, &q_last, half, qi);
            if representation == Representation::Evaluation {
                self.limb_kernel(q_limbs, i).forward(t);
            }
            kernels::sub_mul_shoup(x, t, inverses[i], qi);
        });
        poly.truncate_q_limbs(level);
    }

    /// Rescales several polynomials of the same shape at once (the two or three parts of a
    /// ciphertext), exactly as `rescale` does each. Limb i of every polynomial is processed
    /// in one job, so the NTT tables of q_i (1 MiB at N = 2^16) are read from memory once
    /// for all of them instead of once per polynomial.
    ///
    /// # Panics
    /// As `rescale`, or if the polynomials differ in shape.
    pub fn rescale_many(&self, polys: &mut [&mut RnsPoly]) {
        let Some(first) = polys.first() else {
            return;
        };
        let (q_limbs, representation) = (first.q_limbs(), first.representation());
        for poly in polys.iter() {
            assert!(!poly.has_special(), "rescale takes a Q-only polynomial");
            assert!(
                poly.q_limbs() == q_limbs && poly.representation() == representation,
                "rescale_many takes polynomials of one shape"
            );
        }
        assert!(q_limbs >= 2, "rescale needs at least two Q limbs");
        let level = q_limbs - 1;
        let n = self.n();
        let q_last = self.q()[level];
        let half = q_last.value() / 2;
        let inverses = self.rescale_constants(level);
        let mut lasts: Vec<&[u64]> = Vec::with_capacity(polys.len());
        let mut keeps: Vec<std::slice::ChunksMut<'_, u64>> = Vec::with_capacity(polys.len());
        for poly in polys.iter_mut() {
            let (keep, last) = poly.as_mut_slice()[..q_limbs * n].split_at_mut(level * n);
            if representation == Representation::Evaluation {
                self.limb_kernel(q_limbs, level).inverse(last);
            }
            lasts.push(last);
            keeps.push(keep.chunks_mut(n));
        }
        let jobs: Vec<Vec<&mut [u64]>> = (0..level)
            .map(|_| keeps.iter_mut().filter_map(Iterator::next).collect())
            .collect();
        let lasts = &lasts;
        for_each_job_with_scratch(jobs, n * 16 * lasts.len(), n, |i, limbs, t| {
            let qi = &self.q()[i];
            for (x, last) in limbs.into_iter().zip(lasts) {
                kernels::center_lift(t, last, &q_last, half, qi);
                if representation == Representation::Evaluation {
                    self.limb_kernel(q_limbs, i).forward(t);
                }
                kernels::sub_mul_shoup(x, t, inverses[i], qi);
            }
        });
        for poly in polys.iter_mut() {
            poly.truncate_q_limbs(level);
        }
    }
}

#[cfg(test)]
mod tests {
    use num_bigint::{BigInt, BigUint};

    use super::*;
    use crate::ckks::arith::ntt::NttBackend;
    use crate::ckks::arith::primes::primes_below;
    use crate::ckks::arith::test_util::{
        centered_bigints, limb_primes, product, random_poly, residue, round_div, test_ring,
        test_ring_62,
    };

    /// The value of the limbs `range` of a Coefficient-domain poly, as an integer in [0, D).
    fn unsigned_value(
        poly: &RnsPoly,
        primes: &[u64],
        range: std::ops::Range<usize>,
        c: usize,
    ) -> BigUint {
        let d = product(&primes[range.clone()]);
        let mut x = BigUint::from(0u8);
        for i in range {
            let p = primes[i];
            let hat = &d / BigUint::from(p);
            let hat_mod = (&hat % BigUint::from(p))
                .to_u64_digits()
                .first()
                .copied()
                .unwrap_or(0);
            let inv = Modulus::new(p)
                .expect("prime")
                .inv(hat_mod)
                .expect("coprime");
            x += hat * BigUint::from(inv) * BigUint::from(poly.limb(i)[c]);
        }
        x % d
    }

    #[test]
    fn base_conversion_matches_bigint_crt() {
        // All primes of 40 bits: the IFMA kernel where the CPU has it.
        let small = crate::ckks::arith::primes::scaling_primes(6, 40, 8, &[]).expect("primes");
        let small_ring = RingContext::new(6, &small[..5], &small[5..], 2).expect("ring");
        // 52-bit sources into 40-bit targets: the IFMA kernel folding the high half first.
        let mut wide = crate::ckks::arith::primes::primes_below(6, 52, 4, &[]).expect("primes");
        wide.extend(crate::ckks::arith::primes::scaling_primes(6, 40, 4, &[]).expect("primes"));
        let wide_ring = RingContext::new(6, &wide[..5], &wide[5..], 2).expect("ring");
        for ring in [
            small_ring,
            wide_ring,
            test_ring(6, 5, 3, 2, NttBackend::Fast),
            test_ring_62(6, 5, 3, 2),
        ] {
            let n = ring.n();
            let source = &ring.q()[..4];
            let targets: Vec<Modulus> = ring.q()[4..].iter().chain(ring.p()).copied().collect();
            let converter = BaseConverter::new(source, &targets, n);
            let x = random_poly(&ring, 7, 4, false, Representation::Coefficient);
            let primes: Vec<u64> = source.iter().map(|m| m.value()).collect();
            let b = product(&primes);
            for mode in [ConversionMode::Approximate, ConversionMode::Centered] {
                let mut out = vec![0u64; targets.len() * n];
                converter.convert(
                    x.as_slice(),
                    SourceScale::One,
                    mode,
                    out.chunks_mut(n).enumerate().collect(),
                );
                // The same input times N with the N^-1 folded in gives the same output.
                let times_n: Vec<u64> = x
                    .as_slice()
                    .chunks(n)
                    .zip(source)
                    .flat_map(|(limb, m)| {
                        limb.iter()
                            .map(|&v| m.mul(v, m.reduce(n as u64)))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let mut out_n = vec![0u64; targets.len() * n];
                converter.convert(
                    &times_n,
                    SourceScale::TimesN,
                    mode,
                    out_n.chunks_mut(n).enumerate().collect(),
                );
                assert_eq!(out, out_n);
                for c in 0..n {
                    let value = BigInt::from(unsigned_value(&x, &primes, 0..4, c));
                    let centered = if value > BigInt::from(&b >> 1u32) {
                        &value - BigInt::from(b.clone())
                    } else {
                        value.clone()
                    };
                    let got: Vec<u64> = (0..targets.len()).map(|j| out[j * n + c]).collect();
                    match mode {
                        ConversionMode::Centered => {
                            let expected: Vec<u64> = targets
                                .iter()
                                .map(|t| residue(&centered, t.value()))
                                .collect();
                            assert_eq!(got, expected, "coefficient {c}");
                        }
                        ConversionMode::Approximate => {
                            let u = (0..4u32).find(|&u| {
                                let v = &value + BigInt::from(u) * BigInt::from(b.clone());
                                targets
                                    .iter()
                                    .zip(&got)
                                    .all(|(t, &g)| residue(&v, t.value()) == g)
                            });
                            assert!(u.is_some(), "coefficient {c}: not x + u*B with 0 <= u < 4");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mod_up_lifts_each_digit() {
        for ring in [
            test_ring(5, 6, 2, 4, NttBackend::Fast),
            test_ring(4, 6, 3, 2, NttBackend::Reference),
            test_ring_62(5, 6, 2, 3),
        ] {
            for level in [5, 3, 0] {
                let x = random_poly(
                    &ring,
                    3 + level as u8,
                    level + 1,
                    false,
                    Representation::Evaluation,
                );
                let mut x_coeff = x.clone();
                x_coeff.intt(&ring);
                for digit in 0..ring.digits_at_level(level) {
                    let range = ring.digit_range(level, digit);
                    let up = ring.mod_up(&x, digit);
                    assert_eq!(ring.mod_up(&x_coeff, digit), up, "either input domain");
                    assert_eq!(up.representation(), Representation::Evaluation);
                    for i in range.clone() {
                        assert_eq!(up.limb(i), x.limb(i), "digit limbs copied");
                    }
                    let mut up_coeff = up.clone();
                    up_coeff.intt(&ring);
                    let mut centered = up.clone();
                    ring.mod_up_centered_into(&x_coeff, digit, &mut centered);
                    let mut also = up.clone();
                    ring.mod_up_centered_into(&x, digit, &mut also);
                    assert_eq!(centered, also, "either input domain (centered)");
                    centered.intt(&ring);
                    let primes = limb_primes(&ring, &up);
                    let d = BigInt::from(product(&primes[range.clone()]));
                    for c in 0..ring.n() {
                        let value =
                            BigInt::from(unsigned_value(&x_coeff, &primes, range.clone(), c));
                        let centered_value = if &value * 2 > d {
                            &value - &d
                        } else {
                            value.clone()
                        };
                        for (i, &p) in primes.iter().enumerate() {
                            assert_eq!(
                                centered.limb(i)[c],
                                residue(&centered_value, p),
                                "centered: level {level} digit {digit} coefficient {c}"
                            );
                        }
                        let u = (0..range.len()).find(|&u| {
                            let v = &value + BigInt::from(u) * &d;
                            primes
                                .iter()
                                .enumerate()
                                .all(|(i, &p)| residue(&v, p) == up_coeff.limb(i)[c])
                        });
                        assert!(u.is_some(), "level {level} digit {digit} coefficient {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn mod_down_rounds_exactly() {
        for ring in [
            test_ring(5, 4, 3, 2, NttBackend::Fast),
            test_ring(3, 4, 2, 2, NttBackend::Reference),
            test_ring_62(5, 4, 3, 2),
        ] {
            let p = BigInt::from(product(
                &ring.p().iter().map(|m| m.value()).collect::<Vec<_>>(),
            ));
            for level in [3, 1, 0] {
                for representation in [Representation::Evaluation, Representation::Coefficient] {
                    let x = random_poly(&ring, 11 + level as u8, level + 1, true, representation);
                    let mut x_coeff = x.clone();
                    x_coeff.intt(&ring);
                    let values = centered_bigints(&ring, &x_coeff);
                    let mut down = x.clone();
                    ring.mod_down(&mut down);
                    assert_eq!(
                        (down.q_limbs(), down.has_special(), down.representation()),
                        (level + 1, false, representation)
                    );
                    down.intt(&ring);
                    for (c, value) in values.iter().enumerate() {
                        // round(x / P) = floor((2x + P) / 2P).
                        let rounded = round_div(value, &p);
                        for (i, m) in ring.q()[..=level].iter().enumerate() {
                            assert_eq!(
                                down.limb(i)[c],
                                residue(&rounded, m.value()),
                                "level {level} coefficient {c} limb {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rescale_rounds_exactly() {
        let mut mixed = primes_below(6, 40, 1, &[]).expect("prime");
        mixed.extend(primes_below(6, 50, 1, &[]).expect("prime"));
        mixed.extend(primes_below(6, 61, 1, &[]).expect("prime"));
        for ring in [
            // Rescaling by a prime more than twice the others.
            RingContext::new(6, &mixed, &[], 1).expect("ring"),
            test_ring(6, 5, 0, 1, NttBackend::Fast),
            test_ring(2, 3, 0, 1, NttBackend::Reference),
            test_ring_62(6, 4, 0, 1),
        ] {
            for level in 1..ring.q().len() {
                for representation in [Representation::Evaluation, Representation::Coefficient] {
                    let x = random_poly(&ring, 40 + level as u8, level + 1, false, representation);
                    let mut x_coeff = x.clone();
                    x_coeff.intt(&ring);
                    let values = centered_bigints(&ring, &x_coeff);
                    let q_last = BigInt::from(ring.q()[level].value());
                    let mut rescaled = x.clone();
                    ring.rescale(&mut rescaled);
                    assert_eq!(
                        (rescaled.q_limbs(), rescaled.representation()),
                        (level, representation)
                    );
                    rescaled.intt(&ring);
                    for (c, value) in values.iter().enumerate() {
                        let rounded = round_div(value, &q_last);
                        for (i, m) in ring.q()[..level].iter().enumerate() {
                            assert_eq!(rescaled.limb(i)[c], residue(&rounded, m.value()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mod_down_into_matches_mod_down() {
        let ring = test_ring(6, 4, 2, 2, NttBackend::Fast);
        for representation in [Representation::Evaluation, Representation::Coefficient] {
            let x = random_poly(&ring, 80, 3, true, representation);
            let base = random_poly(&ring, 81, 3, false, representation);
            let mut want = x.clone();
            ring.mod_down(&mut want);
            let mut dst = base.clone();
            ring.mod_down_into(&mut x.clone(), &mut dst, false);
            assert_eq!(dst, want);
            let mut acc = base.clone();
            ring.mod_down_into(&mut x.clone(), &mut acc, true);
            assert_eq!(acc, base.add(&ring, &want));
        }
    }

    #[test]
    fn rescale_many_matches_rescale() {
        let ring = test_ring(6, 4, 0, 1, NttBackend::Fast);
        for representation in [Representation::Evaluation, Representation::Coefficient] {
            let mut a = random_poly(&ring, 90, 4, false, representation);
            let mut b = random_poly(&ring, 91, 4, false, representation);
            let (mut want_a, mut want_b) = (a.clone(), b.clone());
            ring.rescale(&mut want_a);
            ring.rescale(&mut want_b);
            ring.rescale_many(&mut [&mut a, &mut b]);
            assert_eq!((a, b), (want_a, want_b));
        }
    }

    /// Key switching with the identity key: sum_j ModUp_j(x) * g_j = P*x mod Q_l*P exactly,
    /// for the gadget g_j = P on digit j's limbs and 0 elsewhere (the u*D_j error of ModUp
    /// vanishes since D_j * g_j = 0 mod Q_l*P), so ModDown must give back x.
    #[test]
    fn mod_up_gadget_mod_down_is_the_identity() {
        for ring in [
            test_ring(6, 7, 3, 3, NttBackend::Fast),
            test_ring_62(5, 5, 2, 2),
        ] {
            for level in [ring.max_level(), 2, 0] {
                let x = random_poly(
                    &ring,
                    60 + level as u8,
                    level + 1,
                    false,
                    Representation::Evaluation,
                );
                let mut acc = RnsPoly::zero(&ring, level + 1, true, Representation::Evaluation);
                for digit in 0..ring.digits_at_level(level) {
                    let range = ring.digit_range(level, digit);
                    let gadget: Vec<u64> = (0..acc.num_limbs())
                        .map(|i| {
                            if range.contains(&i) {
                                ring.p_mod_q()[i]
                            } else {
                                0
                            }
                        })
                        .collect();
                    let mut term = ring.mod_up(&x, digit);
                    let mut centered = term.clone();
                    ring.mod_up_centered_into(&x, digit, &mut centered);
                    // The two lifts differ by a multiple of D on every limb, which the
                    // gadget cancels.
                    centered.mul_scalar_assign(&ring, &gadget);
                    term.mul_scalar_assign(&ring, &gadget);
                    assert_eq!(centered, term, "level {level} digit {digit}");
                    acc.add_assign(&ring, &term);
                }
                ring.mod_down(&mut acc);
                assert_eq!(acc, x, "level {level}");
            }
        }
    }

    #[test]
    fn conversions_agree_in_a_one_thread_pool() {
        let ring = test_ring(10, 6, 2, 3, NttBackend::Fast);
        let x = random_poly(&ring, 1, 6, false, Representation::Evaluation);
        let ext = random_poly(&ring, 2, 6, true, Representation::Evaluation);
        let run = || {
            let up = ring.mod_up(&x, 1);
            let mut down = ext.clone();
            ring.mod_down(&mut down);
            let mut rescaled = x.clone();
            ring.rescale(&mut rescaled);
            (up, down, rescaled)
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        assert_eq!(pool.install(run), run());
    }
}
