//! The plaintext executor: a checked plan run on f64 slot vectors, the reference the encrypted executor must reproduce.
//!
//! Every value is one `Vec<f64>` of `layout.slots` entries per ciphertext. Semantics per op
//! (the doc comments of [`Op`] are the contract):
//!
//! - `add`, `sub`, `neg`, `square`: slotwise. `mul` is slotwise, the operand with fewer
//!   ciphertexts broadcast over groups of the other's (see [`Op::MulCt`]); `mul_plain` with
//!   the materialized recipe ([`super::recipe`]), a one-ciphertext operand broadcast;
//!   `add_plain` ciphertext by ciphertext.
//! - `mul_const` multiplies by the encoded constant `round(value·scale)/scale`; `add_const`
//!   adds `value` to every slot, padding included; `relabel` multiplies by `factor`;
//!   `rescale`, `drop_levels` and `bootstrap` leave values unchanged.
//! - `rotate` rotates each ciphertext left by `steps` (slot `j` takes `j + steps`);
//!   `rot_sum` adds `rot_left(acc, step·2^i)` for `2^i < count` (the doubling rounds of
//!   [`rot_sum_rotations`]); `sum_cts`, `slice`, `concat` regroup ciphertexts.
//! - `ternary_linear`: [`ColumnSums`] or [`BlockDiagonals`]; `repack`: [`Repacking`].
//! - `poly`: Clenshaw ([`PolyApprox::evaluate`]) on every slot.
//!
//! Values are dropped after the instruction whose `frees` lists them; an operand freed by
//! its only use is updated in place instead of copied.
//!
//! [`PolyApprox::evaluate`]: crate::plan::PolyApprox::evaluate

use std::collections::BTreeMap;

use super::codec::{Activation, check_shape, decode_with_spread};
use super::diagnostics::{ApproxDiagnostic, BootstrapDiagnostic, Diagnostics, Work};
use super::linear::{BlockDiagonals, ColumnSums};
use super::recipe::materialize;
use super::repack::Repacking;
use super::slots::{SlotVectors, add_assign, mul_assign, rotate_left, sub_assign};
use super::{BoundWeights, ExecError};
use crate::plan::schedule::rot_sum_rotations;
use crate::plan::{Instr, LinearMethod, Op, Plan, PlanInfo, ValueId};

/// One decoded output of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedOutput {
    /// The output's name in the plan.
    pub name: String,
    /// Its `[T, d]` data (first repetition of grouped columns).
    pub value: Activation,
    /// `max |replica − first|` over the repetitions of grouped columns (0 without groups).
    pub replica_spread: f64,
}

/// The result of a plaintext run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaintextRun {
    /// The plan's outputs, decoded, in the plan's order.
    pub outputs: Vec<DecodedOutput>,
    /// Approximation and bootstrap diagnostics.
    pub diagnostics: Diagnostics,
    /// Instructions executed, by mnemonic.
    pub op_counts: BTreeMap<&'static str, u64>,
    /// Homomorphic work the plan implies.
    pub work: Work,
    /// Most ciphertexts live at once (operands and result of the busiest instruction).
    pub peak_live_ciphertexts: u64,
}

impl PlaintextRun {
    /// The decoded output called `name`.
    pub fn output(&self, name: &str) -> Option<&Activation> {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.value)
    }
}

/// Runs checked plans on f64 slot vectors.
#[derive(Debug, Clone, Copy)]
pub struct PlaintextExecutor<'p> {
    plan: &'p Plan,
    weights: &'p BoundWeights,
}

impl<'p> PlaintextExecutor<'p> {
    /// An executor of `plan`, checked (`info` is its certificate), with `weights` bound to it.
    pub fn new(
        plan: &'p Plan,
        info: &PlanInfo,
        weights: &'p BoundWeights,
    ) -> Result<Self, ExecError> {
        if info.last_use.len() != plan.values.len() {
            return Err(ExecError::ForeignInfo);
        }
        if !weights.is_for(plan) {
            return Err(ExecError::ForeignWeights);
        }
        Ok(Self { plan, weights })
    }

    /// Runs the plan on `inputs` (one value per plan input, in the input's layout).
    pub fn run(&self, inputs: &[SlotVectors]) -> Result<PlaintextRun, ExecError> {
        self.run_observed(inputs, |_, _| {})
    }

    /// [`Self::run`], showing `observe` every instruction's result as soon as it is computed:
    /// `(instruction index, slot vectors)`.
    pub fn run_observed(
        &self,
        inputs: &[SlotVectors],
        mut observe: impl FnMut(usize, &[Vec<f64>]),
    ) -> Result<PlaintextRun, ExecError> {
        let plan = self.plan;
        if inputs.len() != plan.inputs.len() {
            return Err(ExecError::InputCount {
                expected: plan.inputs.len(),
                found: inputs.len(),
            });
        }
        for (input, slots) in plan.inputs.iter().zip(inputs) {
            check_shape(&input.layout, slots, &format!("input `{}`", input.name))?;
        }
        let mut machine = Machine {
            plan,
            weights: self.weights,
            inputs,
            values: vec![None; plan.values.len()],
            diagnostics: Diagnostics {
                approximations: (0..)
                    .zip(&plan.approximations)
                    .map(|(i, a)| ApproxDiagnostic::new(crate::plan::ApproxId(i), a))
                    .collect(),
                bootstraps: Vec::new(),
            },
            work: Work::default(),
            scratch: Vec::new(),
        };
        let mut op_counts = BTreeMap::new();
        let (mut live, mut peak) = (0u64, 0u64);
        for (index, instr) in plan.instrs.iter().enumerate() {
            let result = machine.execute(index, instr)?;
            *op_counts.entry(instr.op.mnemonic()).or_insert(0) += 1;
            live += u64::from(plan.value(instr.result).count);
            peak = peak.max(live);
            observe(index, &result);
            machine.values[index] = Some(result);
            for &freed in &instr.frees {
                machine.values[freed.0 as usize] = None;
                live -= u64::from(plan.value(freed).count);
            }
        }
        let mut outputs = Vec::with_capacity(plan.outputs.len());
        for output in &plan.outputs {
            let slots = machine.operand(usize::MAX, output.value)?;
            let (value, replica_spread) =
                decode_with_spread(&plan.value(output.value).layout, slots)?;
            outputs.push(DecodedOutput {
                name: output.name.clone(),
                value,
                replica_spread,
            });
        }
        Ok(PlaintextRun {
            outputs,
            diagnostics: machine.diagnostics,
            op_counts,
            work: machine.work,
            peak_live_ciphertexts: peak,
        })
    }
}

/// Runs `plan` (checked: `info`) on `inputs` with `weights`: [`PlaintextExecutor::run`].
pub fn run(
    plan: &Plan,
    info: &PlanInfo,
    weights: &BoundWeights,
    inputs: &[SlotVectors],
) -> Result<PlaintextRun, ExecError> {
    PlaintextExecutor::new(plan, info, weights)?.run(inputs)
}

/// Runs `plan` showing every instruction's result: [`PlaintextExecutor::run_observed`].
pub fn run_observed(
    plan: &Plan,
    info: &PlanInfo,
    weights: &BoundWeights,
    inputs: &[SlotVectors],
    observe: impl FnMut(usize, &[Vec<f64>]),
) -> Result<PlaintextRun, ExecError> {
    PlaintextExecutor::new(plan, info, weights)?.run_observed(inputs, observe)
}

/// The state of one run.
struct Machine<'r> {
    plan: &'r Plan,
    weights: &'r BoundWeights,
    inputs: &'r [SlotVectors],
    values: Vec<Option<SlotVectors>>,
    diagnostics: Diagnostics,
    work: Work,
    scratch: Vec<f64>,
}

/// The live value `value`, used by instruction `instr` (a function of the value table only,
/// so that other fields of the machine can be updated while it is borrowed).
fn live(
    values: &[Option<SlotVectors>],
    instr: usize,
    value: ValueId,
) -> Result<&SlotVectors, ExecError> {
    values
        .get(value.0 as usize)
        .and_then(Option::as_ref)
        .ok_or(ExecError::DeadOperand { instr, value })
}

impl Machine<'_> {
    fn operand(&self, instr: usize, value: ValueId) -> Result<&SlotVectors, ExecError> {
        live(&self.values, instr, value)
    }

    /// The value `value` to update in place: moved out when `instr` frees it and uses it
    /// once, copied otherwise.
    fn owned(
        &mut self,
        index: usize,
        instr: &Instr,
        value: ValueId,
    ) -> Result<SlotVectors, ExecError> {
        let uses = instr.op.operands().iter().filter(|&&v| v == value).count();
        if uses == 1 && instr.frees.contains(&value) {
            self.values
                .get_mut(value.0 as usize)
                .and_then(Option::take)
                .ok_or(ExecError::DeadOperand {
                    instr: index,
                    value,
                })
        } else {
            self.operand(index, value).cloned()
        }
    }

    /// `owned(a)` with `f` applied to every slot.
    fn map(
        &mut self,
        index: usize,
        instr: &Instr,
        a: ValueId,
        f: impl Fn(f64) -> f64,
    ) -> Result<SlotVectors, ExecError> {
        let mut x = self.owned(index, instr, a)?;
        x.iter_mut().flatten().for_each(|s| *s = f(*s));
        Ok(x)
    }

    /// `owned(a) ∘= b` ciphertext by ciphertext; when `b` has fewer ciphertexts (a divisor
    /// of `a`'s count), ciphertext `i` of `a` meets ciphertext `i / (count_a / count_b)`.
    fn zip(
        &mut self,
        index: usize,
        instr: &Instr,
        a: ValueId,
        b: ValueId,
        f: fn(&mut [f64], &[f64]),
    ) -> Result<SlotVectors, ExecError> {
        let mut x = self.owned(index, instr, a)?;
        let y = self.operand(index, b)?;
        // A checked plan's counts divide (equal for additions).
        let group = (x.len() / y.len().max(1)).max(1);
        for (i, slots) in x.iter_mut().enumerate() {
            f(slots, &y[i / group]);
        }
        Ok(x)
    }

    fn execute(&mut self, index: usize, instr: &Instr) -> Result<SlotVectors, ExecError> {
        let plan = self.plan;
        let count = |v: ValueId| plan.value(v).count;
        let result_count = u64::from(plan.value(instr.result).count);
        Ok(match &instr.op {
            Op::Input { index: input } => self.inputs[*input as usize].clone(),
            Op::Add { a, b } => self.zip(index, instr, *a, *b, add_assign)?,
            Op::Sub { a, b } => self.zip(index, instr, *a, *b, sub_assign)?,
            Op::Neg { a } => self.map(index, instr, *a, |x| -x)?,
            Op::MulCt { a, b } => {
                self.work.ct_mults += result_count;
                // The product commutes: update the wider operand, broadcast the other.
                let (wide, other) = if count(*a) >= count(*b) {
                    (*a, *b)
                } else {
                    (*b, *a)
                };
                self.zip(index, instr, wide, other, mul_assign)?
            }
            Op::Square { a } => {
                self.work.ct_mults += result_count;
                self.map(index, instr, *a, |x| x * x)?
            }
            Op::Rescale { a } | Op::DropLevels { a, .. } => self.owned(index, instr, *a)?,
            Op::Bootstrap { a, .. } => {
                let layout = plan.value(*a).layout;
                let measured =
                    BootstrapDiagnostic::measure(index, *a, &layout, self.operand(index, *a)?);
                self.diagnostics.bootstraps.push(measured);
                self.work.bootstrapped += result_count;
                self.owned(index, instr, *a)?
            }
            Op::MulPlain { a, plain, .. } => {
                self.work.plain_mults += result_count;
                let mut p = materialize(&plan.plains[plain.0 as usize], self.weights)?;
                let x = self.operand(index, *a)?;
                for (i, slots) in p.iter_mut().enumerate() {
                    mul_assign(slots, &x[if x.len() == 1 { 0 } else { i }]);
                }
                p
            }
            Op::AddPlain { a, plain } => {
                let p = materialize(&plan.plains[plain.0 as usize], self.weights)?;
                let mut x = self.owned(index, instr, *a)?;
                for (slots, p) in x.iter_mut().zip(&p) {
                    add_assign(slots, p);
                }
                x
            }
            Op::MulConst { a, value, scale } => {
                // The encrypted side multiplies by the integer round(value·scale) and divides
                // the scale by `scale`: the constant it really applies is this one.
                let encoded = (value * scale).round() / scale;
                self.map(index, instr, *a, |x| x * encoded)?
            }
            Op::AddConst { a, value } => {
                let value = *value;
                self.map(index, instr, *a, |x| x + value)?
            }
            Op::Relabel { a, factor } => {
                let factor = *factor;
                self.map(index, instr, *a, |x| x * factor)?
            }
            Op::Rotate { a, steps } => {
                let slots = i64::from(plan.value(*a).layout.slots);
                if i64::from(*steps).rem_euclid(slots) != 0 {
                    self.work.rotations += result_count;
                }
                let mut x = self.owned(index, instr, *a)?;
                x.iter_mut().for_each(|v| rotate_left(v, i64::from(*steps)));
                x
            }
            Op::RotSum {
                a,
                step,
                count: terms,
            } => {
                let mut x = self.owned(index, instr, *a)?;
                let scratch = &mut self.scratch;
                for stride in rot_sum_rotations(*step, *terms) {
                    self.work.rotations += result_count;
                    for v in &mut x {
                        scratch.clear();
                        scratch.extend_from_slice(v);
                        rotate_left(scratch, i64::from(stride));
                        add_assign(v, scratch);
                    }
                }
                x
            }
            Op::SumCiphertexts { a, group } => {
                let x = self.operand(index, *a)?;
                x.chunks(*group as usize)
                    .map(|run| {
                        let mut sum = run[0].clone();
                        run[1..].iter().for_each(|v| add_assign(&mut sum, v));
                        sum
                    })
                    .collect()
            }
            Op::Slice { a, start, count } => {
                let range = *start as usize..(*start + *count) as usize;
                if instr.frees.contains(a) {
                    let mut x = self.owned(index, instr, *a)?;
                    x.drain(range).collect()
                } else {
                    self.operand(index, *a)?[range].to_vec()
                }
            }
            Op::Concat { parts } => {
                let mut out = Vec::new();
                for &part in parts {
                    out.extend(self.owned(index, instr, part)?);
                }
                out
            }
            Op::TernaryLinear {
                x,
                weight,
                rows,
                out,
                method,
                ..
            } => {
                let weights = self.weights;
                let matrix = weights.ternary(*weight)?;
                let input = live(&self.values, index, *x)?;
                match method {
                    LinearMethod::Columns => {
                        let sums = ColumnSums::new(matrix, rows);
                        self.work.linear_additions += sums.additions() as u64;
                        sums.apply(input, out.slots as usize)
                    }
                    LinearMethod::Diagonals { baby_steps } => {
                        let layout = plan.value(*x).layout;
                        let diagonals =
                            BlockDiagonals::new(matrix, rows, &layout, out, *baby_steps);
                        let nonzero = diagonals.pattern().nonzero_diagonals() as u64;
                        self.work.nonzero_diagonals += nonzero;
                        self.work.plain_mults += nonzero;
                        self.work.rotations += diagonals.pattern().rotations() as u64;
                        diagonals.apply(input)
                    }
                }
            }
            Op::Poly { a, approx } => {
                let poly = &plan.approximations[approx.0 as usize];
                let layout = plan.value(*a).layout;
                let x = live(&self.values, index, *a)?;
                self.diagnostics.approximations[approx.0 as usize].record(index, &layout, x);
                self.map(index, instr, *a, |x| poly.evaluate(x))?
            }
            Op::Repack { a, to, .. } => {
                let repacking = Repacking::new(&plan.value(*a).layout, to);
                self.work.plain_mults += repacking.moves().len() as u64;
                self.work.rotations += repacking.rotations() as u64;
                repacking.apply(live(&self.values, index, *a)?)
            }
        })
    }
}
