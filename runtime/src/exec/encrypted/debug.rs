//! Op-by-op checking (client side, secret key present): every instruction's encrypted result decrypted and compared with the plaintext executor's on the same inputs.

use std::fmt;

use super::client::decrypt_value;
use super::{EncryptedExecutor, EncryptedRun};
use crate::ckks::scheme::{Ciphertext, Decryptor};
use crate::exec::slots::valid_ranges;
use crate::exec::{BoundWeights, ExecError, PlaintextExecutor, PlaintextRun, SlotVectors};
use crate::plan::{Plan, PlanInfo, ValueId};

/// How far one instruction's decrypted result is from the plaintext executor's.
#[derive(Debug, Clone, PartialEq)]
pub struct OpError {
    /// Instruction index.
    pub instr: usize,
    /// Mnemonic.
    pub op: &'static str,
    /// Level of the result.
    pub level: u32,
    /// `max |encrypted − plaintext|` over the valid slots.
    pub max_abs: f64,
    /// `max |plaintext|` over the valid slots.
    pub max_reference: f64,
    /// `max |encrypted − plaintext|` over every slot (padding included).
    pub max_abs_all: f64,
}

impl OpError {
    /// `max_abs / max_reference` (the absolute error when the reference is all zero).
    pub fn relative(&self) -> f64 {
        if self.max_reference > 0.0 {
            self.max_abs / self.max_reference
        } else {
            self.max_abs
        }
    }

    /// log2 of the precision: `−log2(relative error)`.
    pub fn bits(&self) -> f64 {
        -self.relative().max(f64::MIN_POSITIVE).log2()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instruction {} ({}, level {}): max abs error {:.3e} of max |value| {:.3e} ({:.1} bits; {:.3e} with padding)",
            self.instr,
            self.op,
            self.level,
            self.max_abs,
            self.max_reference,
            self.bits(),
            self.max_abs_all
        )
    }
}

/// The result of an op-by-op check.
#[derive(Debug, Clone)]
pub struct OpCheck {
    /// Every instruction's error, in order.
    pub errors: Vec<OpError>,
    /// The first instruction whose relative error exceeds the threshold.
    pub first_above: Option<OpError>,
    /// The encrypted run.
    pub encrypted: EncryptedRun,
    /// The plaintext run.
    pub plaintext: PlaintextRun,
}

/// Runs `plan` in plaintext on `plain_inputs` and encrypted on `inputs` (their encryption),
/// decrypting every instruction's result with `decryptor` and comparing it with the
/// plaintext one; `threshold` bounds the relative error of every op (the first op above it
/// is reported). Keeps every plaintext value until its encrypted twin is compared.
#[allow(
    clippy::too_many_arguments,
    reason = "the two runs' inputs, side by side"
)]
pub fn check_every_op(
    plan: &Plan,
    info: &PlanInfo,
    weights: &BoundWeights,
    executor: &EncryptedExecutor<'_, '_>,
    decryptor: &Decryptor<'_>,
    plain_inputs: &[SlotVectors],
    inputs: Vec<Vec<Ciphertext>>,
    threshold: f64,
) -> Result<OpCheck, ExecError> {
    let mut reference: Vec<Option<SlotVectors>> = vec![None; plan.instrs.len()];
    let plaintext =
        PlaintextExecutor::new(plan, info, weights)?.run_observed(plain_inputs, |i, v| {
            reference[i] = Some(v.to_vec());
        })?;
    let mut errors = Vec::with_capacity(plan.instrs.len());
    let mut failure = None;
    let encrypted = executor.run_observed(inputs, |index, cts| {
        if failure.is_some() {
            return;
        }
        let Some(expected) = reference[index].take() else {
            return;
        };
        let value = ValueId(index as u32);
        match decrypt_value(plan, decryptor, value, cts) {
            Ok(actual) => errors.push(compare(plan, index, value, &actual, &expected)),
            Err(error) => failure = Some(error),
        }
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    let first_above = errors.iter().find(|e| e.relative() > threshold).cloned();
    Ok(OpCheck {
        errors,
        first_above,
        encrypted,
        plaintext,
    })
}

fn compare(
    plan: &Plan,
    index: usize,
    value: ValueId,
    actual: &[Vec<f64>],
    expected: &[Vec<f64>],
) -> OpError {
    let ty = plan.value(value);
    let (mut max_abs, mut max_reference, mut max_abs_all) = (0.0f64, 0.0f64, 0.0f64);
    for (c, (a, e)) in actual.iter().zip(expected).enumerate() {
        for (x, y) in a.iter().zip(e) {
            max_abs_all = max_abs_all.max((x - y).abs());
        }
        for (range, _) in valid_ranges(&ty.layout, c as u32) {
            for (x, y) in a[range.clone()].iter().zip(&e[range]) {
                max_abs = max_abs.max((x - y).abs());
                max_reference = max_reference.max(y.abs());
            }
        }
    }
    OpError {
        instr: index,
        op: plan.instrs[index].op.mnemonic(),
        level: ty.level,
        max_abs,
        max_reference,
        max_abs_all,
    }
}
