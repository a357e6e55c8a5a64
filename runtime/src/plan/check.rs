//! The plan verifier: every op's result type must follow from its operands' types.
//!
//! Both executors run only checked plans ([`PlanInfo`] is the certificate), so they can index
//! values without bounds checks and rely on levels, scales and layouts being consistent. The
//! compiler runs the same check on what it emits.

use super::Plan;
use super::layout::LayoutError;
use super::op::{LinearMethod, Op, ValueId, ValueType};
use super::recipe::{PlainRecipe, WeightKind};

/// Relative tolerance on exact scales: both sides compute them with the same f64 formulas, so
/// any real disagreement is many orders of magnitude above it.
const SCALE_TOLERANCE: f64 = 1e-9;

/// A plan that passed [`check`], with facts the executors use.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInfo {
    /// For every value, the index of the instruction after which it is no longer used.
    pub last_use: Vec<usize>,
    /// Deepest level any value is at (the executors' level budget).
    pub min_level: u32,
    /// Number of bootstrap instructions and the ciphertexts they refresh.
    pub bootstraps: (usize, u64),
}

/// Why a plan is not well formed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// Values and instructions are out of step.
    #[error("plan has {values} value types for {instrs} instructions")]
    ValueCount {
        /// Value types.
        values: usize,
        /// Instructions.
        instrs: usize,
    },
    /// An instruction defines a value other than the next one.
    #[error("instruction {instr} defines {found}, expected v{instr}")]
    ResultOutOfOrder {
        /// Instruction index.
        instr: usize,
        /// The id it defines.
        found: ValueId,
    },
    /// An operand is not defined before its use.
    #[error("instruction {instr} ({op}) uses {operand}, which is not defined before it")]
    UseBeforeDefinition {
        /// Instruction index.
        instr: usize,
        /// Mnemonic.
        op: &'static str,
        /// The operand.
        operand: ValueId,
    },
    /// A value's layout is malformed.
    #[error("{value}: {source}")]
    Layout {
        /// The value.
        value: ValueId,
        /// What is wrong.
        source: LayoutError,
    },
    /// A table index (weight, plain, approximation, input, region) is out of range.
    #[error("instruction {instr} ({op}) refers to {what} {index}, but the plan has {available}")]
    MissingEntry {
        /// Instruction index.
        instr: usize,
        /// Mnemonic.
        op: &'static str,
        /// Which table.
        what: &'static str,
        /// The index.
        index: u32,
        /// Table size.
        available: usize,
    },
    /// The declared result type does not follow from the operands.
    #[error(
        "instruction {instr} ({op}) defines {value} as {declared}, but its operands give {expected}"
    )]
    TypeMismatch {
        /// Instruction index.
        instr: usize,
        /// Mnemonic.
        op: &'static str,
        /// The result.
        value: ValueId,
        /// The declared type.
        declared: String,
        /// What the rule derives.
        expected: String,
    },
    /// Operands do not fit the op (levels, counts, layouts, scales).
    #[error("instruction {instr} ({op}): {problem}")]
    BadOperands {
        /// Instruction index.
        instr: usize,
        /// Mnemonic.
        op: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// An output names a value that does not exist.
    #[error("output `{name}` refers to {value}, which is not defined")]
    BadOutput {
        /// Output name.
        name: String,
        /// The value.
        value: ValueId,
    },
    /// A table entry (plaintext recipe, input, approximation) is malformed or refers to a
    /// weight of the wrong kind or shape.
    #[error("{what} {index}: {problem}")]
    BadEntry {
        /// Which table (`plaintext`, `input`, `approximation`).
        what: &'static str,
        /// Index in that table.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// A freed value is still used later, or freed twice.
    #[error("instruction {instr} frees {value}, which is {problem}")]
    BadFree {
        /// Instruction index.
        instr: usize,
        /// The value.
        value: ValueId,
        /// What is wrong.
        problem: &'static str,
    },
}

fn close(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
}

fn describe(t: &ValueType) -> String {
    format!(
        "{}×ct @L{} scale 2^{:.4} {}{}",
        t.count,
        t.level,
        t.scale.log2(),
        t.layout,
        if t.zero_padding { " zero-padded" } else { "" }
    )
}

/// Checks `plan` and returns its certificate.
pub fn check(plan: &Plan) -> Result<PlanInfo, CheckError> {
    if plan.values.len() != plan.instrs.len() {
        return Err(CheckError::ValueCount {
            values: plan.values.len(),
            instrs: plan.instrs.len(),
        });
    }
    for (index, ty) in plan.values.iter().enumerate() {
        let value = ValueId(index as u32);
        ty.layout
            .validate()
            .map_err(|source| CheckError::Layout { value, source })?;
    }
    check_tables(plan)?;
    let q = &plan.params.q;
    let mut last_use = vec![usize::MAX; plan.values.len()];
    let mut bootstraps = (0usize, 0u64);
    let mut min_level = u32::MAX;

    for (instr_index, instr) in plan.instrs.iter().enumerate() {
        let op = &instr.op;
        let name = op.mnemonic();
        if instr.result.0 as usize != instr_index {
            return Err(CheckError::ResultOutOfOrder {
                instr: instr_index,
                found: instr.result,
            });
        }
        for operand in op.operands() {
            if operand.0 as usize >= instr_index {
                return Err(CheckError::UseBeforeDefinition {
                    instr: instr_index,
                    op: name,
                    operand,
                });
            }
            last_use[operand.0 as usize] = instr_index;
        }
        if instr.region as usize >= plan.regions.len() {
            return Err(CheckError::MissingEntry {
                instr: instr_index,
                op: name,
                what: "region",
                index: instr.region,
                available: plan.regions.len(),
            });
        }
        let declared = plan.values[instr_index];
        let expected = derive(plan, instr_index, op, &declared, q)?;
        let consistent = expected.count == declared.count
            && expected.level == declared.level
            && expected.layout == declared.layout
            && close(expected.scale, declared.scale)
            && (expected.zero_padding || !declared.zero_padding);
        if !consistent {
            return Err(CheckError::TypeMismatch {
                instr: instr_index,
                op: name,
                value: instr.result,
                declared: describe(&declared),
                expected: describe(&expected),
            });
        }
        if let Op::Bootstrap { .. } = op {
            bootstraps.0 += 1;
            bootstraps.1 += u64::from(declared.count);
        }
        min_level = min_level.min(declared.level);
    }

    for output in &plan.outputs {
        if output.value.0 as usize >= plan.values.len() {
            return Err(CheckError::BadOutput {
                name: output.name.clone(),
                value: output.value,
            });
        }
        last_use[output.value.0 as usize] = usize::MAX - 1;
    }
    let mut freed = vec![false; plan.values.len()];
    for (instr_index, instr) in plan.instrs.iter().enumerate() {
        for &value in &instr.frees {
            let slot = value.0 as usize;
            if slot >= plan.values.len() || slot > instr_index {
                return Err(CheckError::BadFree {
                    instr: instr_index,
                    value,
                    problem: "not yet defined",
                });
            }
            if freed[slot] {
                return Err(CheckError::BadFree {
                    instr: instr_index,
                    value,
                    problem: "already freed",
                });
            }
            if last_use[slot] != usize::MAX && last_use[slot] > instr_index {
                return Err(CheckError::BadFree {
                    instr: instr_index,
                    value,
                    problem: "still used later",
                });
            }
            freed[slot] = true;
        }
    }
    Ok(PlanInfo {
        last_use,
        min_level: if plan.instrs.is_empty() { 0 } else { min_level },
        bootstraps,
    })
}

/// Checks the tables instructions refer to: every plaintext recipe, input signature and
/// approximation is well formed, and the weights they name have the kind and shape they use.
fn check_tables(plan: &Plan) -> Result<(), CheckError> {
    let weight = |id: super::op::WeightId, kind: WeightKind| {
        let w = plan.weights.get(id.0 as usize).ok_or_else(|| {
            format!(
                "refers to weight {}, but the plan has {}",
                id.0,
                plan.weights.len()
            )
        })?;
        if w.kind != kind {
            return Err(format!("weight `{}` is a {}, not a {kind}", w.name, w.kind));
        }
        Ok(w)
    };
    for (index, recipe) in plan.plains.iter().enumerate() {
        let entry = |problem: String| CheckError::BadEntry {
            what: "plaintext",
            index,
            problem,
        };
        let layout = recipe.layout();
        layout.validate().map_err(|e| entry(e.to_string()))?;
        let columns = layout.columns;
        match recipe {
            PlainRecipe::ColumnVector {
                weight: id, factor, ..
            } => {
                let w = weight(*id, WeightKind::Vector).map_err(entry)?;
                if w.shape != [columns, 1] {
                    return Err(entry(format!(
                        "vector `{}` has {} entries for {columns} columns",
                        w.name, w.shape[0]
                    )));
                }
                if !factor.is_finite() {
                    return Err(entry(format!("factor {factor} is not finite")));
                }
            }
            PlainRecipe::ColumnValues { values, .. } => {
                if values.len() != columns as usize || values.iter().any(|v| !v.is_finite()) {
                    return Err(entry(format!(
                        "needs {columns} finite values, has {}",
                        values.len()
                    )));
                }
            }
            PlainRecipe::Rope {
                head_dim,
                theta,
                factor,
                ..
            } => {
                if *head_dim < 2 || head_dim % 2 != 0 || columns % head_dim != 0 {
                    return Err(entry(format!(
                        "head_dim {head_dim} must be even and divide the {columns} columns"
                    )));
                }
                if !(theta.is_finite() && *theta > 0.0 && factor.is_finite()) {
                    return Err(entry(format!("theta {theta}, factor {factor}")));
                }
            }
            PlainRecipe::ValidMask { .. } => {}
            PlainRecipe::TokenRange { from, to, .. } => {
                if from > to || *to > layout.tokens {
                    return Err(entry(format!(
                        "token range {from}..{to} is not within the {} tokens",
                        layout.tokens
                    )));
                }
            }
        }
    }
    for (index, input) in plan.inputs.iter().enumerate() {
        let entry = |problem: String| CheckError::BadEntry {
            what: "input",
            index,
            problem,
        };
        input.layout.validate().map_err(|e| entry(e.to_string()))?;
        let w = weight(input.embedding, WeightKind::Matrix).map_err(entry)?;
        if w.shape[1] != input.layout.columns {
            return Err(entry(format!(
                "embedding `{}` has {} columns, the layout {}",
                w.name, w.shape[1], input.layout.columns
            )));
        }
    }
    for (index, approx) in plan.approximations.iter().enumerate() {
        let finite = approx.coefficients.iter().all(|c| c.is_finite());
        if !(approx.lo.is_finite() && approx.hi.is_finite() && approx.lo < approx.hi && finite)
            || approx.coefficients.is_empty()
        {
            return Err(CheckError::BadEntry {
                what: "approximation",
                index,
                problem: format!(
                    "`{}` needs a finite interval lo < hi and finite coefficients",
                    approx.function
                ),
            });
        }
    }
    Ok(())
}

/// The type an op's typing rule gives its result (the declared type supplies what the rule
/// leaves free: a polynomial's or bootstrap's output scale, a rotation's layout claim).
///
/// Crate-visible so that test plan builders derive result types with the verifier's own rules.
pub(crate) fn derive(
    plan: &Plan,
    instr: usize,
    op: &Op,
    declared: &ValueType,
    q: &[u64],
) -> Result<ValueType, CheckError> {
    let name = op.mnemonic();
    let bad = |problem: String| CheckError::BadOperands {
        instr,
        op: name,
        problem,
    };
    let missing = |what: &'static str, index: u32, available: usize| CheckError::MissingEntry {
        instr,
        op: name,
        what,
        index,
        available,
    };
    let ty = |v: ValueId| plan.values[v.0 as usize];
    let same_shape = |a: &ValueType, b: &ValueType| -> Result<(), CheckError> {
        if a.count != b.count || a.level != b.level || a.layout != b.layout {
            return Err(bad(format!(
                "operands differ: {} vs {}",
                describe(a),
                describe(b)
            )));
        }
        if !close(a.scale, b.scale) {
            return Err(bad(format!(
                "scales differ: 2^{:.6} vs 2^{:.6}",
                a.scale.log2(),
                b.scale.log2()
            )));
        }
        Ok(())
    };
    // Ops that relabel the layout (rotations, ciphertext sums, slices) never change the length
    // of the slot vectors; executors size their buffers by it.
    let keeps_slots = |a: &ValueType| -> Result<(), CheckError> {
        if declared.layout.slots != a.layout.slots {
            return Err(bad(format!(
                "the result layout has {} slots, the operand {}",
                declared.layout.slots, a.layout.slots
            )));
        }
        Ok(())
    };
    let prime = |level: u32| -> Result<f64, CheckError> {
        q.get(level as usize).map(|&p| p as f64).ok_or_else(|| {
            bad(format!(
                "level {level} is above the top level {}",
                q.len().saturating_sub(1)
            ))
        })
    };

    Ok(match op {
        Op::Input { index } => {
            let input = plan
                .inputs
                .get(*index as usize)
                .ok_or_else(|| missing("input", *index, plan.inputs.len()))?;
            ValueType {
                count: input.layout.ciphertexts(),
                level: input.level,
                scale: input.scale,
                layout: input.layout,
                zero_padding: true,
            }
        }
        Op::Add { a, b } | Op::Sub { a, b } => {
            let (a, b) = (ty(*a), ty(*b));
            same_shape(&a, &b)?;
            ValueType {
                zero_padding: a.zero_padding && b.zero_padding,
                ..a
            }
        }
        Op::Neg { a } => ty(*a),
        Op::MulCt { a, b } => {
            let (a, b) = (ty(*a), ty(*b));
            if a.level != b.level {
                return Err(bad(format!("levels differ: {} vs {}", a.level, b.level)));
            }
            let (wide, other) = if a.count >= b.count { (a, b) } else { (b, a) };
            if other.count == 0 || !wide.count.is_multiple_of(other.count) {
                return Err(bad(format!(
                    "cannot broadcast {} against {} ciphertexts (the smaller count must divide the larger)",
                    other.count, wide.count
                )));
            }
            if other.layout.slots != wide.layout.slots {
                return Err(bad(format!(
                    "slot counts differ: {} vs {}",
                    a.layout.slots, b.layout.slots
                )));
            }
            ValueType {
                scale: a.scale * b.scale,
                zero_padding: a.zero_padding || b.zero_padding,
                ..wide
            }
        }
        Op::Square { a } => {
            let a = ty(*a);
            ValueType {
                scale: a.scale * a.scale,
                ..a
            }
        }
        Op::Rescale { a } => {
            let a = ty(*a);
            if a.level == 0 {
                return Err(bad("cannot rescale at level 0".into()));
            }
            ValueType {
                level: a.level - 1,
                scale: a.scale / prime(a.level)?,
                ..a
            }
        }
        Op::DropLevels { a, levels } => {
            let a = ty(*a);
            if *levels > a.level {
                return Err(bad(format!(
                    "cannot drop {levels} levels at level {}",
                    a.level
                )));
            }
            ValueType {
                level: a.level - levels,
                ..a
            }
        }
        Op::MulPlain { a, plain, scale } => {
            let a = ty(*a);
            let recipe = plan
                .plains
                .get(plain.0 as usize)
                .ok_or_else(|| missing("plaintext", plain.0, plan.plains.len()))?;
            let layout = recipe.layout();
            if layout.slots != a.layout.slots {
                return Err(bad(format!(
                    "plaintext has {} slots, operand {}",
                    layout.slots, a.layout.slots
                )));
            }
            let count = layout.ciphertexts();
            if a.count != count && a.count != 1 {
                return Err(bad(format!(
                    "plaintext has {count} ciphertexts, operand {}",
                    a.count
                )));
            }
            ValueType {
                count,
                scale: a.scale * scale,
                layout: *layout,
                zero_padding: true,
                ..a
            }
        }
        Op::AddPlain { a, plain } => {
            let a = ty(*a);
            let recipe = plan
                .plains
                .get(plain.0 as usize)
                .ok_or_else(|| missing("plaintext", plain.0, plan.plains.len()))?;
            if recipe.layout().ciphertexts() != a.count || recipe.layout().slots != a.layout.slots {
                return Err(bad(format!(
                    "plaintext {} does not match operand {}",
                    recipe.layout(),
                    a.layout
                )));
            }
            a
        }
        Op::MulConst { a, value, scale } => {
            let a = ty(*a);
            if !(value.is_finite() && scale.is_finite() && *scale >= 1.0) {
                return Err(bad(format!(
                    "constant {value} at scale {scale} is not encodable"
                )));
            }
            ValueType {
                scale: a.scale * scale,
                ..a
            }
        }
        Op::AddConst { a, value } => {
            let a = ty(*a);
            ValueType {
                zero_padding: a.zero_padding && *value == 0.0,
                ..a
            }
        }
        Op::Relabel { a, factor } => {
            let a = ty(*a);
            if !(factor.is_finite() && *factor > 0.0) {
                return Err(bad(format!(
                    "relabel factor {factor} is not a positive number"
                )));
            }
            ValueType {
                scale: a.scale / factor,
                ..a
            }
        }
        Op::Rotate { a, steps } => {
            let a = ty(*a);
            keeps_slots(&a)?;
            let aligned = steps.rem_euclid(a.layout.block as i32) == 0;
            ValueType {
                zero_padding: a.zero_padding && aligned,
                layout: declared.layout,
                ..a
            }
        }
        Op::RotSum { a, step, count } => {
            let a = ty(*a);
            keeps_slots(&a)?;
            if !count.is_power_of_two()
                || u64::from(*step) * u64::from(*count) > u64::from(a.layout.slots)
            {
                return Err(bad(format!(
                    "rot_sum of {count} terms of stride {step} in {} slots",
                    a.layout.slots
                )));
            }
            let aligned = step % a.layout.block == 0;
            ValueType {
                zero_padding: a.zero_padding && aligned,
                layout: declared.layout,
                ..a
            }
        }
        Op::SumCiphertexts { a, group } => {
            let a = ty(*a);
            keeps_slots(&a)?;
            if *group == 0 || a.count % group != 0 {
                return Err(bad(format!(
                    "{} ciphertexts do not split into groups of {group}",
                    a.count
                )));
            }
            ValueType {
                count: a.count / group,
                layout: declared.layout,
                ..a
            }
        }
        Op::Slice { a, start, count } => {
            let a = ty(*a);
            keeps_slots(&a)?;
            if *count == 0 || start.checked_add(*count).is_none_or(|end| end > a.count) {
                return Err(bad(format!(
                    "slice {start}..{} of {} ciphertexts",
                    start + count,
                    a.count
                )));
            }
            ValueType {
                count: *count,
                layout: declared.layout,
                ..a
            }
        }
        Op::Concat { parts } => {
            let Some(first) = parts.first().map(|&p| ty(p)) else {
                return Err(bad("concat of nothing".into()));
            };
            keeps_slots(&first)?;
            let mut count = 0;
            let mut zero_padding = true;
            for &part in parts {
                let part = ty(part);
                if part.level != first.level
                    || !close(part.scale, first.scale)
                    || part.layout.slots != first.layout.slots
                {
                    return Err(bad(format!(
                        "parts differ: {} vs {}",
                        describe(&first),
                        describe(&part)
                    )));
                }
                count += part.count;
                zero_padding &= part.zero_padding;
            }
            ValueType {
                count,
                zero_padding,
                layout: declared.layout,
                ..first
            }
        }
        Op::TernaryLinear {
            x,
            weight,
            rows,
            out,
            method,
            plain_scale,
        } => {
            let x = ty(*x);
            let w = plan
                .weights
                .get(weight.0 as usize)
                .ok_or_else(|| missing("weight", weight.0, plan.weights.len()))?;
            if w.kind != WeightKind::Ternary {
                return Err(bad(format!("weight `{}` is not ternary", w.name)));
            }
            if x.layout.columns != w.shape[1] {
                return Err(bad(format!(
                    "input has {} columns, `{}` has {} inputs",
                    x.layout.columns, w.name, w.shape[1]
                )));
            }
            if rows.len() != out.columns as usize {
                return Err(bad(format!(
                    "{} rows for {} output columns",
                    rows.len(),
                    out.columns
                )));
            }
            if let Some(row) = rows.iter().find(|r| r.row >= w.shape[0]) {
                return Err(bad(format!(
                    "row {} of `{}`, which has {}",
                    row.row, w.name, w.shape[0]
                )));
            }
            out.validate().map_err(|source| CheckError::Layout {
                value: ValueId(instr as u32),
                source,
            })?;
            if x.layout.group != 1 || out.group != 1 || x.layout.tokens != out.tokens {
                return Err(bad(format!(
                    "layouts {} -> {} are not plain column blocks",
                    x.layout, out
                )));
            }
            let scale = match method {
                LinearMethod::Columns => {
                    if x.layout.columns_per_ciphertext() != 1 || out.columns_per_ciphertext() != 1 {
                        return Err(bad(
                            "the column method needs one column per ciphertext".into()
                        ));
                    }
                    // Outputs are sums of whole input ciphertexts: the slot vectors must match.
                    if x.layout.slots != out.slots {
                        return Err(bad(format!(
                            "the column method needs equal slot counts: {} -> {out}",
                            x.layout
                        )));
                    }
                    x.scale
                }
                LinearMethod::Diagonals { baby_steps } => {
                    if x.layout.slots != out.slots || x.layout.block != out.block {
                        return Err(bad(format!(
                            "diagonals need equal slots and blocks: {} -> {out}",
                            x.layout
                        )));
                    }
                    if *baby_steps == 0 || !(plain_scale.is_finite() && *plain_scale >= 1.0) {
                        return Err(bad(format!(
                            "baby steps {baby_steps}, plaintext scale {plain_scale}"
                        )));
                    }
                    x.scale * plain_scale
                }
            };
            ValueType {
                count: out.ciphertexts(),
                level: x.level,
                scale,
                layout: *out,
                zero_padding: matches!(method, LinearMethod::Diagonals { .. }) || x.zero_padding,
            }
        }
        Op::Poly { a, approx } => {
            let a = ty(*a);
            let poly = plan
                .approximations
                .get(approx.0 as usize)
                .ok_or_else(|| missing("approximation", approx.0, plan.approximations.len()))?;
            if poly.depth > a.level {
                return Err(bad(format!(
                    "`{}` needs {} levels, operand has {}",
                    poly.function, poly.depth, a.level
                )));
            }
            ValueType {
                level: a.level - poly.depth,
                scale: declared.scale,
                zero_padding: false,
                ..a
            }
        }
        Op::Bootstrap { a, level } => {
            let a = ty(*a);
            if *level as usize >= q.len() {
                return Err(bad(format!("target level {level} is above the chain")));
            }
            // Zero padding stays zero up to the bootstrap's error, as after any op.
            ValueType {
                level: *level,
                scale: declared.scale,
                ..a
            }
        }
        Op::Repack { a, to, mask_scale } => {
            let a = ty(*a);
            to.validate().map_err(|source| CheckError::Layout {
                value: ValueId(instr as u32),
                source,
            })?;
            if to.tokens != a.layout.tokens || to.columns != a.layout.columns {
                return Err(bad(format!(
                    "repack changes the data: {} -> {to}",
                    a.layout
                )));
            }
            ValueType {
                count: to.ciphertexts(),
                scale: a.scale * mask_scale,
                layout: *to,
                zero_padding: true,
                ..a
            }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests;
