//! AVX-512 and AVX-512 IFMA versions of the entry-wise modular loops, picked at run time.
//!
//! Two vector paths, 8 lanes each:
//! - `Avx512` (F + DQ), any q < 2^62: 64x64->128 products from four 32x32 `vpmuludq`,
//!   Barrett / Shoup as in `Modulus`.
//! - `Ifma` (F + DQ + IFMA), q < 2^50: `vpmadd52{lo,hi}uq` products on 52-bit halves;
//!   Barrett with floor(2^(k+51)/q), Shoup with floor(w*2^52/q) (as tfhe-ntt's IFMA path).
//!
//! Lengths need not be multiples of 8: the tail goes through the scalar `Modulus` code.
//! `ENSI_SIMD=scalar|avx512|ifma` caps the level (for measurements and tests).

use std::sync::OnceLock;

use super::modulus::{Modulus, ShoupConstant};

/// The widest vector path this CPU (and `ENSI_SIMD`) allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SimdLevel {
    /// Portable code (auto-vectorized where the compiler manages).
    Scalar,
    /// AVX-512 F + DQ.
    Avx512,
    /// AVX-512 F + DQ + IFMA.
    Ifma,
}

/// Moduli below this use the IFMA path (values and 4q fit 52 bits with room for lazy sums).
pub(crate) const IFMA_MODULUS_BOUND: u64 = 1 << 50;

pub(crate) fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = detect();
        let cap = match std::env::var("ENSI_SIMD").as_deref() {
            Ok("scalar") => SimdLevel::Scalar,
            Ok("avx512") => SimdLevel::Avx512,
            _ => SimdLevel::Ifma,
        };
        detected.min(cap)
    })
}

fn detect() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512dq") {
            return if has!("avx512ifma") {
                SimdLevel::Ifma
            } else {
                SimdLevel::Avx512
            };
        }
    }
    SimdLevel::Scalar
}

/// Which vector path serves modulus `m` at `level`, if any.
#[inline]
fn path(level: SimdLevel, m: &Modulus) -> SimdLevel {
    match level {
        SimdLevel::Ifma if m.value() < IFMA_MODULUS_BOUND => SimdLevel::Ifma,
        SimdLevel::Ifma | SimdLevel::Avx512 => SimdLevel::Avx512,
        SimdLevel::Scalar => SimdLevel::Scalar,
    }
}

/// Whether a vector path serves modulus `m` on this machine.
pub(crate) fn has_vector_path(m: &Modulus) -> bool {
    path(simd_level(), m) != SimdLevel::Scalar
}

/// `out = sum_j a_j * b_j mod q` with lazy IFMA accumulation; false if that path does not
/// apply (no IFMA, q >= 2^50, or too many terms for one reduction).
pub(crate) fn inner_product(out: &mut [u64], terms: &[(&[u64], &[u64])], m: &Modulus) -> bool {
    let bound_ok = (terms.len() as u128) << (m.bits() + 1) <= 1u128 << 52;
    if path(simd_level(), m) != SimdLevel::Ifma || !bound_ok {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: IFMA detected, q < 2^50 and the term bound checked just above.
    unsafe {
        x86::inner_product_ifma(out, terms, m)
    };
    true
}

/// `inner_product` for two right-hand sides sharing the left one; false if that path does
/// not apply.
pub(crate) fn inner_product_pair(
    out0: &mut [u64],
    out1: &mut [u64],
    terms: &[(&[u64], &[u64], &[u64])],
    m: &Modulus,
) -> bool {
    let bound_ok = (terms.len() as u128) << (m.bits() + 1) <= 1u128 << 52;
    if path(simd_level(), m) != SimdLevel::Ifma || !bound_ok {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: IFMA detected, q < 2^50 and the term bound checked just above.
    unsafe {
        x86::inner_product_pair_ifma(out0, out1, terms, m)
    };
    true
}

/// `out = out * b mod q`; false if no vector path applies (the caller then loops itself).
pub(crate) fn mul(out: &mut [u64], b: &[u64], m: &Modulus) -> bool {
    run(out, m, |path, out| match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `path` only returns a vector level whose features were detected.
        SimdLevel::Ifma => unsafe { x86::mul_ifma(out, b, m) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdLevel::Avx512 => unsafe { x86::mul_avx512(out, b, m) },
        _ => unreachable!("scalar handled by `run`"),
    })
}

/// `out = out + a * b mod q`; false if no vector path applies.
pub(crate) fn mul_acc(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus) -> bool {
    run(out, m, |path, out| match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `path` only returns a vector level whose features were detected.
        SimdLevel::Ifma => unsafe { x86::mul_acc_ifma(out, a, b, m) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdLevel::Avx512 => unsafe { x86::mul_acc_avx512(out, a, b, m) },
        _ => unreachable!("scalar handled by `run`"),
    })
}

/// `out = (out + offset - sub) * w mod q` (Shoup) with `sub` empty meaning no subtraction;
/// false if no vector path applies.
pub(crate) fn sub_mul_shoup(out: &mut [u64], sub: &[u64], w: ShoupConstant, m: &Modulus) -> bool {
    run(out, m, |path, out| match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `path` only returns a vector level whose features were detected.
        SimdLevel::Ifma => unsafe { x86::sub_mul_shoup_ifma(out, sub, w, m) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        SimdLevel::Avx512 => unsafe { x86::sub_mul_shoup_avx512(out, sub, w, m) },
        _ => unreachable!("scalar handled by `run`"),
    })
}

/// `out = a + b mod q` (or `a - b` when `subtract`) with non-temporal stores, for outputs
/// too large to stay in cache: the stores skip the read-for-ownership of every output
/// line, a third of the traffic of this memory-bound loop. False without AVX-512.
pub(crate) fn add_into_streaming(
    out: &mut [std::mem::MaybeUninit<u64>],
    a: &[u64],
    b: &[u64],
    q: u64,
    subtract: bool,
) -> bool {
    if simd_level() == SimdLevel::Scalar {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a vector level implies AVX-512 F was detected.
    unsafe {
        x86::add_into_streaming(out, a, b, q, subtract)
    };
    true
}

fn run(out: &mut [u64], m: &Modulus, body: impl FnOnce(SimdLevel, &mut [u64])) -> bool {
    match path(simd_level(), m) {
        SimdLevel::Scalar => false,
        level => {
            body(level, out);
            true
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! The vector kernels; every function requires the features it is compiled with.

    use std::arch::x86_64::*;

    use crate::ckks::arith::modulus::{Modulus, ShoupConstant};

    const MASK52: u64 = (1 << 52) - 1;

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load(x: &[u64; 8]) -> __m512i {
        // SAFETY: `x` is 64 readable bytes; the unaligned load has no alignment requirement.
        unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store(x: &mut [u64; 8], v: __m512i) {
        // SAFETY: `x` is 64 writable bytes; the unaligned store has no alignment requirement.
        unsafe { _mm512_storeu_si512(x.as_mut_ptr().cast(), v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat(x: u64) -> __m512i {
        _mm512_set1_epi64(x as i64)
    }

    /// See `simd::add_into_streaming`. The head up to the first 64-byte boundary of `out`
    /// and the tail go through scalar code; a store fence orders the streaming stores
    /// before the caller (or another thread) reads `out`.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn add_into_streaming(
        out: &mut [std::mem::MaybeUninit<u64>],
        a: &[u64],
        b: &[u64],
        q: u64,
        subtract: bool,
    ) {
        let (a, b) = (&a[..out.len()], &b[..out.len()]);
        let scalar = |o: &mut std::mem::MaybeUninit<u64>, x: u64, y: u64| {
            let s = if subtract { x + q - y } else { x + y };
            o.write(s.min(s.wrapping_sub(q)));
        };
        let head = out.as_ptr().align_offset(64).min(out.len());
        let (out_head, out_body) = out.split_at_mut(head);
        for ((o, &x), &y) in out_head.iter_mut().zip(a).zip(b) {
            scalar(o, x, y);
        }
        let (a, b) = (&a[head..], &b[head..]);
        let vectors = out_body.len() / 8;
        let qv = splat(q);
        for i in 0..vectors {
            let (x, y) = (&a[8 * i..8 * i + 8], &b[8 * i..8 * i + 8]);
            // SAFETY: both are 8-element slices; the unaligned loads read 64 bytes each.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_si512(x.as_ptr().cast()),
                    _mm512_loadu_si512(y.as_ptr().cast()),
                )
            };
            let s = if subtract {
                _mm512_sub_epi64(_mm512_add_epi64(x, qv), y)
            } else {
                _mm512_add_epi64(x, y)
            };
            let target = out_body[8 * i..8 * i + 8].as_mut_ptr();
            // SAFETY: `target` is 64 writable bytes of `out`, 64-byte aligned because the
            // body starts at an aligned address and advances by 64 bytes.
            unsafe { _mm512_stream_si512(target.cast(), reduce_once(s, qv)) };
        }
        _mm_sfence();
        let done = 8 * vectors;
        for ((o, &x), &y) in out_body[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
            scalar(o, x, y);
        }
    }

    /// `x - q` where `x >= q`, else `x` (unsigned min of x and x - q).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce_once(x: __m512i, q: __m512i) -> __m512i {
        _mm512_min_epu64(x, _mm512_sub_epi64(x, q))
    }

    /// Full 64x64 -> 128 products: (low, high) words, from four 32x32 products.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn widening_mul(a: __m512i, b: __m512i) -> (__m512i, __m512i) {
        let mask32 = splat(0xffff_ffff);
        let a_hi = _mm512_srli_epi64::<32>(a);
        let b_hi = _mm512_srli_epi64::<32>(b);
        let p00 = _mm512_mul_epu32(a, b);
        let p01 = _mm512_mul_epu32(a, b_hi);
        let p10 = _mm512_mul_epu32(a_hi, b);
        let p11 = _mm512_mul_epu32(a_hi, b_hi);
        let mid = _mm512_add_epi64(_mm512_srli_epi64::<32>(p00), _mm512_and_si512(p01, mask32));
        let mid = _mm512_add_epi64(mid, _mm512_and_si512(p10, mask32));
        let hi = _mm512_add_epi64(p11, _mm512_srli_epi64::<32>(p01));
        let hi = _mm512_add_epi64(hi, _mm512_srli_epi64::<32>(p10));
        let hi = _mm512_add_epi64(hi, _mm512_srli_epi64::<32>(mid));
        let lo = _mm512_or_si512(_mm512_slli_epi64::<32>(mid), _mm512_and_si512(p00, mask32));
        (lo, hi)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul_hi(a: __m512i, b: __m512i) -> __m512i {
        widening_mul(a, b).1
    }

    /// Constants of the 64-bit Barrett reduction of `Modulus::reduce_product`.
    struct Barrett64 {
        q: __m512i,
        ratio: __m512i,
        shift_right: __m512i,
        shift_left: __m512i,
    }

    impl Barrett64 {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(m: &Modulus) -> Self {
            let k = m.bits() as u64;
            Self {
                q: splat(m.value()),
                ratio: splat(m.product_ratio()),
                shift_right: splat(k - 2),
                shift_left: splat(66 - k),
            }
        }

        /// (hi, lo) mod q for hi*2^64 + lo < 2^(k+62).
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        fn reduce(&self, lo: __m512i, hi: __m512i) -> __m512i {
            let x1 = _mm512_or_si512(
                _mm512_srlv_epi64(lo, self.shift_right),
                _mm512_sllv_epi64(hi, self.shift_left),
            );
            let est = mul_hi(x1, self.ratio);
            let r = _mm512_sub_epi64(lo, _mm512_mullo_epi64(est, self.q));
            reduce_once(reduce_once(r, self.q), self.q)
        }
    }

    /// Constants of the 52-bit Barrett reduction (q < 2^50, k = bits of q).
    struct Barrett52 {
        q: __m512i,
        ratio: __m512i,
        shift_right: __m512i,
        shift_left: __m512i,
        mask: __m512i,
    }

    impl Barrett52 {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(m: &Modulus) -> Self {
            let k = m.bits() as u64;
            Self {
                q: splat(m.value()),
                // floor(2^(k+51) / q) < 2^52 since q > 2^(k-1).
                ratio: splat(((1u128 << (k + 51)) / m.value() as u128) as u64),
                shift_right: splat(k - 1),
                shift_left: splat(53 - k),
                mask: splat(MASK52),
            }
        }

        /// x mod q for x = hi*2^52 + lo, x < 2^(k+51)·(1/2) (so x >> (k-1) < 2^52); lo may
        /// exceed 2^52 (it is added, not or-ed).
        ///
        /// c = x >> (k-1) and est = floor(c * ratio / 2^52) undershoot floor(x/q) by at most
        /// 2, so r = x - est*q < 3q, computed mod 2^52.
        #[inline]
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn reduce(&self, lo: __m512i, hi: __m512i) -> __m512i {
            let zero = _mm512_setzero_si512();
            let c = _mm512_add_epi64(
                _mm512_sllv_epi64(hi, self.shift_left),
                _mm512_srlv_epi64(lo, self.shift_right),
            );
            let est = _mm512_madd52hi_epu64(zero, c, self.ratio);
            let r = _mm512_sub_epi64(lo, _mm512_madd52lo_epu64(zero, est, self.q));
            let r = _mm512_and_si512(r, self.mask);
            reduce_once(reduce_once(r, self.q), self.q)
        }
    }

    /// Shoup multiplication by a fixed w, any 64-bit input.
    struct Shoup64 {
        q: __m512i,
        value: __m512i,
        quotient: __m512i,
    }

    impl Shoup64 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        fn mul(&self, x: __m512i) -> __m512i {
            let est = mul_hi(x, self.quotient);
            let r = _mm512_sub_epi64(
                _mm512_mullo_epi64(x, self.value),
                _mm512_mullo_epi64(est, self.q),
            );
            reduce_once(r, self.q)
        }
    }

    /// Shoup multiplication with 52-bit words: quotient floor(w * 2^52 / q), inputs < 2^52.
    struct Shoup52 {
        q: __m512i,
        value: __m512i,
        quotient: __m512i,
        mask: __m512i,
    }

    impl Shoup52 {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(w: ShoupConstant, m: &Modulus) -> Self {
            Self {
                q: splat(m.value()),
                value: splat(w.value),
                quotient: splat((((w.value as u128) << 52) / m.value() as u128) as u64),
                mask: splat(MASK52),
            }
        }

        /// x * w mod q for x < 2^52: est = floor(x * quotient / 2^52) is short of
        /// floor(x*w/q) by at most 1, so x*w - est*q < 2q, computed mod 2^52.
        #[inline]
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn mul(&self, x: __m512i) -> __m512i {
            let zero = _mm512_setzero_si512();
            let est = _mm512_madd52hi_epu64(zero, x, self.quotient);
            let r = _mm512_sub_epi64(
                _mm512_madd52lo_epu64(zero, x, self.value),
                _mm512_madd52lo_epu64(zero, est, self.q),
            );
            reduce_once(_mm512_and_si512(r, self.mask), self.q)
        }
    }

    /// `out[c]` = sum_j a_j[c] * b_j[c] mod q with IFMA: low and high 52-bit halves of the
    /// products summed over all terms, one `Barrett52` reduction per output.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, DQ and IFMA; q < 2^50 with k = bits(q),
    /// terms * 2^(k+1) <= 2^52 (the Barrett input bound), and every input below q.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn inner_product_ifma(
        out: &mut [u64],
        terms: &[(&[u64], &[u64])],
        m: &Modulus,
    ) {
        let barrett = Barrett52::new(m);
        let zero = _mm512_setzero_si512();
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        for (chunk, o) in out_v.iter_mut().enumerate() {
            let c = chunk * 8;
            let (mut lo, mut hi) = (zero, zero);
            for (a, b) in terms {
                let a: &[u64; 8] = a[c..c + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("8 values"));
                let b: &[u64; 8] = b[c..c + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("8 values"));
                let (a, b) = (load(a), load(b));
                lo = _mm512_madd52lo_epu64(lo, a, b);
                hi = _mm512_madd52hi_epu64(hi, a, b);
            }
            store(o, barrett.reduce(lo, hi));
        }
        let done = len - out_tail.len();
        for (k, o) in out_tail.iter_mut().enumerate() {
            let c = done + k;
            let acc: u128 = terms.iter().map(|(a, b)| a[c] as u128 * b[c] as u128).sum();
            *o = m.reduce_u128(acc);
        }
    }

    /// `inner_product_ifma` for two right-hand sides: each a_j is loaded once.
    ///
    /// # Safety
    /// As `inner_product_ifma`.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn inner_product_pair_ifma(
        out0: &mut [u64],
        out1: &mut [u64],
        terms: &[(&[u64], &[u64], &[u64])],
        m: &Modulus,
    ) {
        let barrett = Barrett52::new(m);
        let zero = _mm512_setzero_si512();
        let len = out0.len().min(out1.len());
        let chunks = len / 8;
        let vector = |x: &[u64], c: usize| -> __m512i {
            let x: &[u64; 8] = x[c..c + 8]
                .try_into()
                .unwrap_or_else(|_| unreachable!("8 values"));
            load(x)
        };
        for chunk in 0..chunks {
            let c = chunk * 8;
            let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
            for &(a, b0, b1) in terms {
                let a = vector(a, c);
                let (b0, b1) = (vector(b0, c), vector(b1, c));
                lo0 = _mm512_madd52lo_epu64(lo0, a, b0);
                hi0 = _mm512_madd52hi_epu64(hi0, a, b0);
                lo1 = _mm512_madd52lo_epu64(lo1, a, b1);
                hi1 = _mm512_madd52hi_epu64(hi1, a, b1);
            }
            let o0: &mut [u64; 8] = (&mut out0[c..c + 8])
                .try_into()
                .unwrap_or_else(|_| unreachable!("8 values"));
            store(o0, barrett.reduce(lo0, hi0));
            let o1: &mut [u64; 8] = (&mut out1[c..c + 8])
                .try_into()
                .unwrap_or_else(|_| unreachable!("8 values"));
            store(o1, barrett.reduce(lo1, hi1));
        }
        for c in chunks * 8..len {
            let acc0: u128 = terms
                .iter()
                .map(|&(a, b, _)| a[c] as u128 * b[c] as u128)
                .sum();
            let acc1: u128 = terms
                .iter()
                .map(|&(a, _, b)| a[c] as u128 * b[c] as u128)
                .sum();
            out0[c] = m.reduce_u128(acc0);
            out1[c] = m.reduce_u128(acc1);
        }
    }

    /// One output row of a base conversion with IFMA: `out[c]` = sum_i y_i[c] * hats[i]
    /// (+ v[c] * neg_b when `centered`) mod t, where `y` holds the source blocks at stride
    /// `stride` (source i at `y[i*stride..]`).
    ///
    /// Products of 52-bit operands are summed as separate low and high 52-bit halves
    /// (2 IFMA per term), x = hi * 2^52 + lo. A source value y of up to 64 bits (`wide[i]`)
    /// is split as y_lo + y_hi * 2^52 and enters as y_lo * hat + y_hi * hat_shifted, with
    /// hat_shifted = hat * 2^52 mod t (4 IFMA). x is then reduced by `Barrett52`, whose input
    /// bound x >> (k-1) < 2^52 holds directly when (s+1) * max_b <= 2^51 and no source is
    /// wide. Otherwise (`fold_high`) hi is reduced first and x = (hi mod t) * (2^52 mod t) +
    /// lo, which is below t^2 + (2s+1) * 2^52, within the bound for 2s + 1 < 2^(k-2).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, DQ and IFMA; t < 2^50 with 2s + 1 < 2^(bits(t)-2);
    /// y values below 2^52 where not `wide`, every hat and hat_shifted below t, v[c] <= s;
    /// and `fold_high` unless (s+1) * max_b <= 2^51 with no wide source.
    #[allow(clippy::too_many_arguments, reason = "one kernel, all of its operands")]
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn convert_row_ifma(
        y: &[u64],
        stride: usize,
        hats: &[u64],
        hats_shifted: &[u64],
        wide: &[bool],
        neg_b: u64,
        v: &[u64],
        centered: bool,
        fold_high: bool,
        t: &Modulus,
        out: &mut [u64],
    ) {
        let barrett = Barrett52::new(t);
        let zero = _mm512_setzero_si512();
        let two_52_mod_t = splat(((1u128 << 52) % t.value() as u128) as u64);
        let hat_vectors: Vec<(__m512i, __m512i, bool)> = hats
            .iter()
            .zip(hats_shifted)
            .zip(wide)
            .map(|((&h, &hs), &w)| (splat(h), splat(hs), w))
            .collect();
        let neg_b_vector = splat(neg_b);
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        for (chunk, o) in out_v.iter_mut().enumerate() {
            let c = chunk * 8;
            let (mut lo, mut hi) = (zero, zero);
            for (i, &(h, h_shifted, wide)) in hat_vectors.iter().enumerate() {
                let y_i: &[u64; 8] = y[i * stride + c..i * stride + c + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("8 values"));
                let y_i = load(y_i);
                // IFMA reads the low 52 bits of y_i: all of it unless the source is wide.
                lo = _mm512_madd52lo_epu64(lo, y_i, h);
                hi = _mm512_madd52hi_epu64(hi, y_i, h);
                if wide {
                    let y_hi = _mm512_srli_epi64::<52>(y_i);
                    lo = _mm512_madd52lo_epu64(lo, y_hi, h_shifted);
                    hi = _mm512_madd52hi_epu64(hi, y_hi, h_shifted);
                }
            }
            if centered {
                let v_c: &[u64; 8] = v[c..c + 8]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("8 values"));
                let v_c = load(v_c);
                lo = _mm512_madd52lo_epu64(lo, v_c, neg_b_vector);
                hi = _mm512_madd52hi_epu64(hi, v_c, neg_b_vector);
            }
            if fold_high {
                let hi_mod_t = barrett.reduce(hi, zero);
                let folded_hi = _mm512_madd52hi_epu64(zero, hi_mod_t, two_52_mod_t);
                lo = _mm512_madd52lo_epu64(lo, hi_mod_t, two_52_mod_t);
                hi = folded_hi;
            }
            store(o, barrett.reduce(lo, hi));
        }
        let done = len - out_tail.len();
        for (k, o) in out_tail.iter_mut().enumerate() {
            let c = done + k;
            let mut acc: u128 = hats
                .iter()
                .enumerate()
                .map(|(i, &h)| y[i * stride + c] as u128 * h as u128)
                .sum();
            if centered {
                acc += v[c] as u128 * neg_b as u128;
            }
            *o = t.reduce_u128(acc);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(crate) unsafe fn mul_avx512(out: &mut [u64], b: &[u64], m: &Modulus) {
        let barrett = Barrett64::new(m);
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        let (b_v, b_tail) = b[..out_v.len() * 8 + out_tail.len()].as_chunks::<8>();
        for (o, y) in out_v.iter_mut().zip(b_v) {
            let (lo, hi) = widening_mul(load(o), load(y));
            store(o, barrett.reduce(lo, hi));
        }
        for (o, &y) in out_tail.iter_mut().zip(b_tail) {
            *o = m.mul(*o, y);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F, DQ and IFMA; q < 2^50.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn mul_ifma(out: &mut [u64], b: &[u64], m: &Modulus) {
        let barrett = Barrett52::new(m);
        let zero = _mm512_setzero_si512();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        let (b_v, b_tail) = b[..out_v.len() * 8 + out_tail.len()].as_chunks::<8>();
        for (o, y) in out_v.iter_mut().zip(b_v) {
            let (x, y) = (load(o), load(y));
            let lo = _mm512_madd52lo_epu64(zero, x, y);
            let hi = _mm512_madd52hi_epu64(zero, x, y);
            store(o, barrett.reduce(lo, hi));
        }
        for (o, &y) in out_tail.iter_mut().zip(b_tail) {
            *o = m.mul(*o, y);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(crate) unsafe fn mul_acc_avx512(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus) {
        let barrett = Barrett64::new(m);
        let one = splat(1);
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        let (a_v, a_tail) = a[..len].as_chunks::<8>();
        let (b_v, b_tail) = b[..len].as_chunks::<8>();
        for ((o, x), y) in out_v.iter_mut().zip(a_v).zip(b_v) {
            let c = load(o);
            let (lo, hi) = widening_mul(load(x), load(y));
            let lo = _mm512_add_epi64(lo, c);
            let carry = _mm512_cmplt_epu64_mask(lo, c);
            let hi = _mm512_mask_add_epi64(hi, carry, hi, one);
            store(o, barrett.reduce(lo, hi));
        }
        for ((o, &x), &y) in out_tail.iter_mut().zip(a_tail).zip(b_tail) {
            *o = m.mul_add(x, y, *o);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F, DQ and IFMA; q < 2^50.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn mul_acc_ifma(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus) {
        let barrett = Barrett52::new(m);
        let zero = _mm512_setzero_si512();
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        let (a_v, a_tail) = a[..len].as_chunks::<8>();
        let (b_v, b_tail) = b[..len].as_chunks::<8>();
        for ((o, x), y) in out_v.iter_mut().zip(a_v).zip(b_v) {
            let (x, y) = (load(x), load(y));
            // lo may reach 2^53: c + (a*b mod 2^52); Barrett52 adds it, not ors it.
            let lo = _mm512_madd52lo_epu64(load(o), x, y);
            let hi = _mm512_madd52hi_epu64(zero, x, y);
            store(o, barrett.reduce(lo, hi));
        }
        for ((o, &x), &y) in out_tail.iter_mut().zip(a_tail).zip(b_tail) {
            *o = m.mul_add(x, y, *o);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(crate) unsafe fn sub_mul_shoup_avx512(
        out: &mut [u64],
        sub: &[u64],
        w: ShoupConstant,
        m: &Modulus,
    ) {
        let shoup = Shoup64 {
            q: splat(m.value()),
            value: splat(w.value),
            quotient: splat(w.quotient),
        };
        let two_q = splat(2 * m.value());
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        if sub.is_empty() {
            for o in out_v.iter_mut() {
                store(o, shoup.mul(load(o)));
            }
            for o in out_tail.iter_mut() {
                *o = m.mul_shoup(*o, w);
            }
        } else {
            let (s_v, s_tail) = sub[..len].as_chunks::<8>();
            for (o, s) in out_v.iter_mut().zip(s_v) {
                let x = _mm512_sub_epi64(_mm512_add_epi64(load(o), two_q), load(s));
                store(o, shoup.mul(x));
            }
            for (o, &s) in out_tail.iter_mut().zip(s_tail) {
                *o = m.mul_shoup(*o + 2 * m.value() - s, w);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512 F, DQ and IFMA; q < 2^50.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(crate) unsafe fn sub_mul_shoup_ifma(
        out: &mut [u64],
        sub: &[u64],
        w: ShoupConstant,
        m: &Modulus,
    ) {
        let shoup = Shoup52::new(w, m);
        let two_q = splat(2 * m.value());
        let len = out.len();
        let (out_v, out_tail) = out.as_chunks_mut::<8>();
        if sub.is_empty() {
            for o in out_v.iter_mut() {
                store(o, shoup.mul(load(o)));
            }
            for o in out_tail.iter_mut() {
                *o = m.mul_shoup(*o, w);
            }
        } else {
            let (s_v, s_tail) = sub[..len].as_chunks::<8>();
            for (o, s) in out_v.iter_mut().zip(s_v) {
                let x = _mm512_sub_epi64(_mm512_add_epi64(load(o), two_q), load(s));
                store(o, shoup.mul(x));
            }
            for (o, &s) in out_tail.iter_mut().zip(s_tail) {
                *o = m.mul_shoup(*o + 2 * m.value() - s, w);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ckks::arith::primes::primes_below;

    fn inputs(len: usize, q: u64, seed: u64) -> Vec<u64> {
        let mut state = seed | 1;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Include the extremes 0 and q - 1.
                match i % 11 {
                    0 => q - 1,
                    5 => 0,
                    _ => state % q,
                }
            })
            .collect()
    }

    /// Every vector kernel against the scalar `Modulus` arithmetic, for moduli from 20 to
    /// 62 bits (both sides of the IFMA bound) and lengths with and without a tail.
    #[test]
    fn vector_kernels_match_scalar() {
        let level = detect();
        if level == SimdLevel::Scalar {
            return;
        }
        for bits in [20u32, 31, 40, 49, 50, 51, 55, 60, 61, 62] {
            let q = primes_below(4, bits, 1, &[]).expect("prime")[0];
            let m = Modulus::new(q).expect("q < 2^62");
            let w = m.shoup(q / 3 + 7);
            for len in [0usize, 5, 8, 37, 256] {
                let (a, b, c) = (
                    inputs(len, q, 1 + bits as u64),
                    inputs(len, q, 99),
                    inputs(len, q, 7),
                );
                let want_mul: Vec<u64> = a.iter().zip(&b).map(|(&x, &y)| m.mul(x, y)).collect();
                let want_acc: Vec<u64> = a
                    .iter()
                    .zip(&b)
                    .zip(&c)
                    .map(|((&x, &y), &z)| m.mul_add(x, y, z))
                    .collect();
                let want_shoup: Vec<u64> = a.iter().map(|&x| m.mul_shoup(x, w)).collect();
                let want_sub: Vec<u64> = a
                    .iter()
                    .zip(&b)
                    .map(|(&x, &y)| m.mul_shoup(m.sub(x, y), w))
                    .collect();
                let mut paths = vec![SimdLevel::Avx512];
                if level == SimdLevel::Ifma && q < IFMA_MODULUS_BOUND {
                    paths.push(SimdLevel::Ifma);
                }
                for path in paths {
                    let (mut mul, mut acc, mut shoup, mut subbed) =
                        (a.clone(), c.clone(), a.clone(), a.clone());
                    // SAFETY: `detect` found the features of `path`; IFMA only for q < 2^50.
                    unsafe {
                        match path {
                            SimdLevel::Ifma => {
                                x86::mul_ifma(&mut mul, &b, &m);
                                x86::mul_acc_ifma(&mut acc, &a, &b, &m);
                                x86::sub_mul_shoup_ifma(&mut shoup, &[], w, &m);
                                x86::sub_mul_shoup_ifma(&mut subbed, &b, w, &m);
                            }
                            _ => {
                                x86::mul_avx512(&mut mul, &b, &m);
                                x86::mul_acc_avx512(&mut acc, &a, &b, &m);
                                x86::sub_mul_shoup_avx512(&mut shoup, &[], w, &m);
                                x86::sub_mul_shoup_avx512(&mut subbed, &b, w, &m);
                            }
                        }
                    }
                    let context = format!("{path:?} q = {q} len = {len}");
                    assert_eq!(mul, want_mul, "mul {context}");
                    assert_eq!(acc, want_acc, "mul_acc {context}");
                    assert_eq!(shoup, want_shoup, "mul_shoup {context}");
                    assert_eq!(subbed, want_sub, "sub_mul_shoup {context}");
                }
            }
        }
    }

    /// The streaming add and sub against `Modulus` for outputs starting at every offset from
    /// a 64-byte boundary (the scalar head), with and without a tail.
    #[test]
    fn streaming_add_and_sub_match_scalar() {
        if simd_level() == SimdLevel::Scalar {
            return;
        }
        for bits in [20u32, 50, 61, 62] {
            let q = primes_below(4, bits, 1, &[]).expect("prime")[0];
            let m = Modulus::new(q).expect("q < 2^62");
            for len in [0usize, 3, 8, 37, 259] {
                let (a, b) = (inputs(len, q, 5 + bits as u64), inputs(len, q, 11));
                for offset in 0..8 {
                    for subtract in [false, true] {
                        let mut buffer = vec![std::mem::MaybeUninit::<u64>::uninit(); len + 8];
                        let out = &mut buffer[offset..offset + len];
                        assert!(add_into_streaming(out, &a, &b, q, subtract));
                        // SAFETY: the kernel wrote every entry of `out`.
                        let got: Vec<u64> =
                            out.iter().map(|x| unsafe { x.assume_init() }).collect();
                        let want: Vec<u64> = a
                            .iter()
                            .zip(&b)
                            .map(|(&x, &y)| if subtract { m.sub(x, y) } else { m.add(x, y) })
                            .collect();
                        assert_eq!(
                            got, want,
                            "q = {q} len = {len} offset = {offset} sub = {subtract}"
                        );
                    }
                }
            }
        }
    }
}
