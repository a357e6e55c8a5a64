//! Per-limb loops (add, sub, neg, pointwise mul, MAC, Shoup scalar mul) with run-time CPU dispatch.
//!
//! Each loop body is written once, `#[inline(always)]`, and instantiated for AVX-512 and
//! AVX2 through `#[target_feature]` wrappers chosen at run time, so the compiler can
//! vectorize the branch-free parts with the wide registers; the portable instance runs
//! elsewhere. Inputs are in `[0, q)` and so are outputs.

use super::modulus::{Modulus, ShoupConstant};

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
                if std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("bmi2")
                {
                    // SAFETY: the CPU supports every feature `avx512` is compiled with
                    // (avx512dq and avx512vl imply avx512f and avx2; bmi2 checked).
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
    /// `out = -out mod q`.
    neg => neg_body(out: &mut [u64], q: u64)
);
dispatched!(
    /// `out = out + c mod q` for every entry (`c < q`).
    add_scalar => add_scalar_body(out: &mut [u64], c: u64, q: u64)
);
dispatched!(
    /// `out = out * other mod q`, entry-wise.
    mul => mul_body(out: &mut [u64], other: &[u64], m: &Modulus)
);
dispatched!(
    /// `out = out + a * b mod q`, entry-wise.
    mul_acc => mul_acc_body(out: &mut [u64], a: &[u64], b: &[u64], m: &Modulus)
);
dispatched!(
    /// `out = out * w mod q` (Shoup).
    mul_shoup => mul_shoup_body(out: &mut [u64], w: ShoupConstant, m: &Modulus)
);
dispatched!(
    /// `out = (out - other) * w mod q` (Shoup; the last step of ModDown and rescale).
    sub_mul_shoup => sub_mul_shoup_body(out: &mut [u64], other: &[u64], w: ShoupConstant, m: &Modulus)
);
dispatched!(
    /// `out[i] = input[permutation[i]]`.
    gather => gather_body(out: &mut [u64], input: &[u64], permutation: &[u32])
);
