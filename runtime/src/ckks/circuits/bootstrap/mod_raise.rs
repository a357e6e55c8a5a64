//! The start of bootstrapping: ScaleDown to level 0 at scale q0 / 2^ratio, the dense-to-sparse key switch, ModRaise (centered lift of level 0 to a high level), the switch back, and the trace onto the subring of sparse slots.

use crate::ckks::arith::{Representation, RnsPoly};
use crate::ckks::scheme::{Ciphertext, EncapsulationKeys, Error, Evaluator};

use super::BootstrapError;

/// Brings `ct` to level 0 with scale exactly `delta0`: at level >= 1 one constant product
/// at level 1 and a rescale; at level 0 an integer product, which needs `delta0` to be an
/// integer multiple of the input's scale (true for the default scale of level 0, see
/// `Bootstrapper::level0_scale`).
pub(crate) fn scale_down(
    eval: &Evaluator<'_>,
    ct: &Ciphertext,
    delta0: f64,
) -> Result<Ciphertext, BootstrapError> {
    if ct.level() == 0 {
        let factor = (delta0 / ct.scale()).round();
        if factor < 1.0 || (factor * ct.scale() - delta0).abs() > 1e-9 * delta0 {
            return Err(BootstrapError::InputScaleUnsupported {
                log2_scale: ct.scale().log2(),
                log2_delta0: delta0.log2(),
            });
        }
        let mut out = if factor > 1.0 {
            eval.mul_int(ct, factor as i64)?
        } else {
            ct.clone()
        };
        out.set_scale(delta0);
        return Ok(out);
    }
    let mut out = eval.drop_to_level(ct, 1)?;
    let q1 = eval.params().q()[1] as f64;
    let const_scale = (delta0 * q1 / ct.scale()).round();
    if const_scale < 1.0 {
        return Err(BootstrapError::InputScaleUnsupported {
            log2_scale: ct.scale().log2(),
            log2_delta0: delta0.log2(),
        });
    }
    eval.mul_const_assign(&mut out, 1.0, const_scale)?;
    eval.rescale_assign(&mut out)?;
    // round(delta0 q1 / scale) * scale / q1 = delta0 within 2^-50 (relative).
    out.set_scale(delta0);
    Ok(out)
}

/// The switch back from the sparse secret (at the level ModRaise lifted to).
pub(crate) fn switch_to_dense(
    eval: &Evaluator<'_>,
    ct: &Ciphertext,
    keys: &EncapsulationKeys,
) -> Result<Ciphertext, Error> {
    eval.switch_key(ct, keys.to_dense())
}

/// The switch of a level-0 ciphertext to the sparse secret, in the ring of q_0 and p_0
/// where its key lives: ModUp of c1 to {q_0, p_0}, product with the key, ModDown by p_0.
pub(crate) fn switch_to_sparse(
    eval: &Evaluator<'_>,
    ct: &Ciphertext,
    keys: &EncapsulationKeys,
) -> Result<Ciphertext, BootstrapError> {
    if ct.level() != 0 {
        return Err(BootstrapError::Scheme(Error::LevelMismatch {
            op: "switch to the sparse secret",
            left: ct.level(),
            right: 0,
        }));
    }
    let small = keys.sparse_ring();
    let ring = eval.params().ring();
    let into_small = |p: &RnsPoly| {
        RnsPoly::from_limbs(
            small,
            p.as_slice().to_vec(),
            1,
            false,
            Representation::Evaluation,
        )
    };
    let c1 = into_small(&ct.c1).map_err(Error::from)?;
    let mut digit = RnsPoly::zero(small, 1, true, Representation::Evaluation);
    small.mod_up_centered_into(&c1, 0, &mut digit);
    let key = keys.to_sparse();
    let mut d0 = RnsPoly::zero(small, 1, true, Representation::Evaluation);
    let mut d1 = RnsPoly::zero(small, 1, true, Representation::Evaluation);
    RnsPoly::inner_product_pair(
        small,
        &mut d0,
        &mut d1,
        &[&digit],
        &[&key.b[0]],
        &[&key.a[0]],
    );
    let mut c0 = into_small(&ct.c0).map_err(Error::from)?;
    small.mod_down_into(&mut d0, &mut c0, true);
    let mut c1 = RnsPoly::zero(small, 1, false, Representation::Evaluation);
    small.mod_down_into(&mut d1, &mut c1, false);
    let back = |p: RnsPoly| {
        RnsPoly::from_limbs(ring, p.into_limbs(), 1, false, Representation::Evaluation)
    };
    let mut out = ct.clone();
    out.c0 = back(c0).map_err(Error::from)?;
    out.c1 = back(c1).map_err(Error::from)?;
    out.c1_seed = None;
    Ok(out)
}

/// ModRaise: the level-0 ciphertext's parts, lifted to [-q0/2, q0/2) and reduced modulo
/// q_0..q_level. The plaintext becomes `Delta0 m + e + q0 I` with `|I| <= (h + 1) / 2`
/// under a secret of Hamming weight h. The result is labelled with scale q0 (so that its
/// coefficients read as `I + Delta0 m / q0`).
pub(crate) fn mod_raise(
    eval: &Evaluator<'_>,
    ct: &Ciphertext,
    level: usize,
) -> Result<Ciphertext, BootstrapError> {
    if ct.level() != 0 {
        return Err(BootstrapError::Scheme(Error::LevelMismatch {
            op: "ModRaise",
            left: ct.level(),
            right: 0,
        }));
    }
    let ring = eval.params().ring();
    let q0 = ring.q()[0].value();
    let lift = |poly: &RnsPoly| -> Result<RnsPoly, Error> {
        let mut p = poly.clone();
        p.intt(ring);
        let coeffs: Vec<i64> = p
            .limb(0)
            .iter()
            .map(|&v| {
                if v >= q0.div_ceil(2) {
                    v as i64 - q0 as i64
                } else {
                    v as i64
                }
            })
            .collect();
        let mut raised = RnsPoly::from_i64_coeffs(ring, &coeffs, level + 1, false)?;
        raised.ntt(ring);
        Ok(raised)
    };
    let mut out = ct.clone();
    out.c0 = lift(&ct.c0)?;
    out.c1 = lift(&ct.c1)?;
    out.level = level;
    out.c1_seed = None;
    out.set_scale(q0 as f64);
    Ok(out)
}

/// The trace from the full ring onto `R[X^(N/2n)]`: `log2(N/2n)` steps
/// `ct += X -> X^(5^(n 2^j))` (the automorphisms fixing the subring). Multiplies the
/// subring part by N/2n and removes the rest (the integer part I of ModRaise lives
/// everywhere); the factor is folded into CoeffsToSlots.
pub(crate) fn trace(
    eval: &Evaluator<'_>,
    ct: &Ciphertext,
    slots: usize,
) -> Result<Ciphertext, Error> {
    let ring = eval.params().ring();
    let mut out = ct.clone();
    let mut step = slots;
    while step < eval.params().max_slots() {
        let g = ring.rotation(step as i64);
        let rotated = eval.apply_galois(&out, g)?;
        eval.add_assign(&mut out, &rotated)?;
        step *= 2;
    }
    Ok(out)
}

/// The Galois elements of `trace` for `slots` slots.
pub(crate) fn trace_steps(max_slots: usize, slots: usize) -> Vec<i64> {
    let mut steps = Vec::new();
    let mut step = slots;
    while step < max_slots {
        steps.push(step as i64);
        step *= 2;
    }
    steps
}
