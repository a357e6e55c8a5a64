//! Per-limb loops (add, sub, neg, pointwise mul, MAC, Shoup scalar mul) with run-time CPU dispatch.
//!
//! Each loop body is written once, `#[inline(always)]`, and instantiated for AVX-512 and
//! AVX2 through `#[target_feature]` wrappers chosen at run time, so the compiler can
//! vectorize the branch-free parts with the wide registers; the portable instance runs
//! elsewhere. Loops with 64x64-bit products, which compilers do not vectorize, go to the
//! hand-written AVX-512 / IFMA kernels of `simd` first. Inputs are in `[0, q)` and so are
//! outputs.

use std::mem::MaybeUninit;

use super::modulus::{Modulus, ShoupConstant};
use super::simd;

/// Defines `pub(crate) fn $name(args)` dispatching to AVX-512 / AVX2 / portable instances
/// of the `#[inline(always)]` body `$body`.
macro_rules! dispatched {
    ($(#[$doc:meta])* $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,bmi2")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,bmi2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("bmi2")
                {
                    // SAFETY: the CPU supports every feature `avx512` is compiled with.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("bmi2")
                {
                    // SAFETY: the CPU supports avx2 and bmi2, the features of `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

#[inline(always)]
fn add_body(out: &mut [u64], other: &[u64], q: u64) {
    for (o, &b) in out.iter_mut().zip(other) {
        let s = *o + b;
        *o = s.min(s.wrapping_sub(q));
    }
}

#[inline(always)]
fn sub_body(out: &mut [u64], other: &[u64], q: u64) {
    for (o, &b) in out.iter_mut().zip(other) {
        let s = *o + q - b;
        *o = s.min(s.wrapping_sub(q));
    }
}

/// `out = a + b mod q` into fresh memory: one write stream and no read of `out`, where
/// a copy followed by `add` would write twice and read three times.
#[inline(always)]
fn add_into_body(out: &mut [MaybeUninit<u64>], a: &[u64], b: &[u64], q: u64) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let s = x + y;
        o.write(s.min(s.wrapping_sub(q)));
    }
}

#[inline(always)]
fn sub_into_body(out: &mut [MaybeUninit<u64>], a: &[u64], b: &[u64], q: u64) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let s = x + q - y;
        o.write(s.min(s.wrapping_sub(q)));
    }
}

#[inline(always)]
fn neg_body(out: &mut [u64], q: u64) {
    for o in out.iter_mut() {
        let s = q - *o;
        *o = s.min(s.wrapping_sub(q));
    }
}

#[inline(always)]
fn add_scalar_body(out: &mut [u64], c: u64, q: u64) {
    for o in out.iter_mut() {
        let s = *o + c;
        *o = s.min(s.wrapping_sub(q));
    }
}

#[inline(always)]
fn mul_body(out: &mut [u64], other: &[u64], m: &Modulus) {
    for (o, &b) in out.iter_mut().zip(other) {
        *o = m.mul(*o, b);
    }
}

#[inline(always)]
fn mul_acc_body(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = m.mul_add(x, y, *o);
    }
}

#[inline(always)]
fn mul_shoup_body(out: &mut [u64], w: ShoupConstant, m: &Modulus) {
    for o in out.iter_mut() {
        *o = m.mul_shoup(*o, w);
    }
}

#[inline(always)]
fn sub_mul_shoup_body(out: &mut [u64], other: &[u64], w: ShoupConstant, m: &Modulus) {
    let two_q = 2 * m.value();
    for (o, &t) in out.iter_mut().zip(other) {
        *o = m.mul_shoup(*o + two_q - t, w);
    }
}

/// `out[c] = r mod q` for r = input[c] centered mod `from` (input[c] - from if above
/// `half`), when from < 2q so that one conditional subtraction reduces `input[c]`.
#[inline(always)]
fn center_lift_close_body(out: &mut [u64], input: &[u64], q: u64, half: u64, from_mod_q: u64) {
    for (o, &x) in out.iter_mut().zip(input) {
        let r = x.min(x.wrapping_sub(q));
        // r - from mod q, taken when x > half.
        let shifted = r + q - from_mod_q;
        let shifted = shifted.min(shifted.wrapping_sub(q));
        *o = if x > half { shifted } else { r };
    }
}

#[inline(always)]
fn gather_body(out: &mut [u64], input: &[u64], permutation: &[u32]) {
    for (o, &p) in out.iter_mut().zip(permutation) {
        *o = input[p as usize];
    }
}

dispatched!(
    /// `out = out + other mod q`.
    add => add_body(out: &mut [u64], other: &[u64], q: u64)
);
dispatched!(
    /// `out = out - other mod q`.
    sub => sub_body(out: &mut [u64], other: &[u64], q: u64)
);
dispatched!(
    /// `out = a + b mod q`, writing every entry of `out`.
    add_into => add_into_body(out: &mut [MaybeUninit<u64>], a: &[u64], b: &[u64], q: u64)
);
dispatched!(
    /// `out = a - b mod q`, writing every entry of `out`.
    sub_into => sub_into_body(out: &mut [MaybeUninit<u64>], a: &[u64], b: &[u64], q: u64)
);
dispatched!(
    /// `out = -out mod q`.
    neg => neg_body(out: &mut [u64], q: u64)
);
dispatched!(
    /// `out = out + c mod q` for every entry (`c < q`).
    add_scalar => add_scalar_body(out: &mut [u64], c: u64, q: u64)
);
dispatched!(
    /// `out = out * other mod q`, entry-wise (portable instance).
    mul_scalar => mul_body(out: &mut [u64], other: &[u64], m: &Modulus)
);
dispatched!(
    /// `out = out + a * b mod q`, entry-wise (portable instance).
    mul_acc_scalar => mul_acc_body(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus)
);
dispatched!(
    /// `out = out * w mod q` (Shoup; portable instance).
    mul_shoup_scalar => mul_shoup_body(out: &mut [u64], w: ShoupConstant, m: &Modulus)
);
dispatched!(
    /// `out = (out - other) * w mod q` (Shoup; portable instance).
    sub_mul_shoup_scalar => sub_mul_shoup_body(out: &mut [u64], other: &[u64], w: ShoupConstant, m: &Modulus)
);

dispatched!(
    /// `center_lift` for `from < 2q` (portable instance).
    center_lift_close => center_lift_close_body(out: &mut [u64], input: &[u64], q: u64, half: u64, from_mod_q: u64)
);

/// `out[c]` = the centered representative of `input[c]` mod `from` (in (-from/2, from/2],
/// i.e. `input[c] - from` when `input[c] > half = from/2`), reduced mod `to`.
pub(crate) fn center_lift(out: &mut [u64], input: &[u64], from: &Modulus, half: u64, to: &Modulus) {
    let from_mod_q = to.reduce(from.value());
    if from.value() <= 2 * to.value() {
        center_lift_close(out, input, to.value(), half, from_mod_q);
    } else {
        for (o, &x) in out.iter_mut().zip(input) {
            let r = to.reduce(x);
            *o = if x > half { to.sub(r, from_mod_q) } else { r };
        }
    }
}

/// `out = sum_j a_j * b_j mod q` entry-wise over `terms` = [(a_j, b_j)].
///
/// With IFMA (q < 2^50): products summed lazily, one reduction. Other vector paths: one
/// fused multiply-add pass per term. Otherwise products are
/// summed in u128 and reduced once per group of terms that cannot overflow 2^128.
pub(crate) fn inner_product(out: &mut [u64], terms: &[(&[u64], &[u64])], m: &Modulus) {
    let Some(((a0, b0), rest)) = terms.split_first() else {
        out.fill(0);
        return;
    };
    if simd::inner_product(out, terms, m) {
        return;
    }
    if simd::has_vector_path(m) {
        out.copy_from_slice(a0);
        mul(out, b0, m);
        for (a, b) in rest {
            mul_acc(out, a, b, m);
        }
        return;
    }
    let q = m.value() as u128;
    let per_group = (u128::MAX / ((q - 1) * (q - 1)).max(1))
        .min(terms.len() as u128)
        .max(1) as usize;
    const BLOCK: usize = 64;
    let mut acc = [0u128; BLOCK];
    for (start, out_block) in (0..out.len()).step_by(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let len = out_block.len();
        acc[..len].fill(0);
        for group in terms.chunks(per_group) {
            for (a, b) in group {
                for ((s, &x), &y) in acc[..len]
                    .iter_mut()
                    .zip(&a[start..start + len])
                    .zip(&b[start..start + len])
                {
                    *s += x as u128 * y as u128;
                }
            }
            if group.len() == per_group {
                for s in acc[..len].iter_mut() {
                    *s = m.reduce_u128(*s) as u128;
                }
            }
        }
        for (o, &s) in out_block.iter_mut().zip(&acc[..len]) {
            *o = m.reduce_u128(s);
        }
    }
}

/// `out0 = sum_j a_j * b_j` and `out1 = sum_j a_j * c_j` mod q over `terms` = [(a_j, b_j, c_j)].
pub(crate) fn inner_product_pair(
    out0: &mut [u64],
    out1: &mut [u64],
    terms: &[(&[u64], &[u64], &[u64])],
    m: &Modulus,
) {
    if simd::inner_product_pair(out0, out1, terms, m) {
        return;
    }
    let first: Vec<(&[u64], &[u64])> = terms.iter().map(|&(a, b, _)| (a, b)).collect();
    let second: Vec<(&[u64], &[u64])> = terms.iter().map(|&(a, _, c)| (a, c)).collect();
    inner_product(out0, &first, m);
    inner_product(out1, &second, m);
}

/// `out = out * other mod q`, entry-wise.
pub(crate) fn mul(out: &mut [u64], other: &[u64], m: &Modulus) {
    if !simd::mul(out, other, m) {
        mul_scalar(out, other, m);
    }
}

/// `out = out + a * b mod q`, entry-wise.
pub(crate) fn mul_acc(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus) {
    if !simd::mul_acc(out, a, b, m) {
        mul_acc_scalar(out, a, b, m);
    }
}

/// `out = out * w mod q` (Shoup).
pub(crate) fn mul_shoup(out: &mut [u64], w: ShoupConstant, m: &Modulus) {
    if !simd::sub_mul_shoup(out, &[], w, m) {
        mul_shoup_scalar(out, w, m);
    }
}

/// `out = (out - other) * w mod q` (Shoup; the last step of ModDown and rescale).
pub(crate) fn sub_mul_shoup(out: &mut [u64], other: &[u64], w: ShoupConstant, m: &Modulus) {
    if !simd::sub_mul_shoup(out, other, w, m) {
        sub_mul_shoup_scalar(out, other, w, m);
    }
}
dispatched!(
    /// `out[i] = input[permutation[i]]` (portable instance).
    gather_scalar => gather_body(out: &mut [u64], input: &[u64], permutation: &[u32])
);

/// Outputs per block of `gather_automorphism`: 4096 words = 32 KiB, one L1.
const GATHER_BLOCK: usize = 4096;

/// `out[i] = input[permutation[i]]` for an NTT-domain automorphism permutation.
///
/// Such a permutation maps every aligned block of `GATHER_BLOCK` outputs onto one aligned
/// block of inputs: slot i evaluates at exponent 2*bitrev(i)+1, the top bits of i are the
/// low bits of bitrev(i), and g*j + (g-1)/2 mod N keeps the low bits of j within their
/// residue class. So each source block is first read sequentially (the hardware prefetcher
/// streams it into cache), then gathered from while hot.
pub(crate) fn gather_automorphism(out: &mut [u64], input: &[u64], permutation: &[u32]) {
    if input.len() <= GATHER_BLOCK {
        gather_scalar(out, input, permutation);
        return;
    }
    for (out_block, perm_block) in out
        .chunks_mut(GATHER_BLOCK)
        .zip(permutation.chunks(GATHER_BLOCK))
    {
        let start = perm_block[0] as usize / GATHER_BLOCK * GATHER_BLOCK;
        let source = &input[start..(start + GATHER_BLOCK).min(input.len())];
        std::hint::black_box(source.iter().step_by(8).fold(0u64, |acc, &v| acc ^ v));
        gather_scalar(out_block, input, perm_block);
    }
}
