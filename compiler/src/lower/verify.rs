//! The HE graph verifier: every value's type must follow from its operands' (counts, layouts, zero padding, and levels and scales once assigned); run after every pass in debug and test builds.

use ensi_runtime::plan::{LinearMethod, PlainRecipe, WeightKind};

use super::LowerError;
use super::graph::{HeGraph, HeOp, HeType, Stage, Value};

/// Relative tolerance on exact scales (both sides use the same f64 formulas).
const SCALE_TOLERANCE: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
}

/// Checks every value of `graph`; the first broken rule is the error.
pub fn verify(graph: &HeGraph) -> Result<(), LowerError> {
    for value in graph.values() {
        check_value(graph, value).map_err(|problem| LowerError::Malformed {
            value: value.index(),
            op: graph.node(value).op.mnemonic(),
            problem,
        })?;
    }
    for (name, value) in &graph.outputs {
        if value.index() >= graph.len() {
            return Err(LowerError::Malformed {
                value: value.index(),
                op: "output",
                problem: format!("output `{name}` names no value"),
            });
        }
    }
    Ok(())
}

fn arity(op: &HeOp) -> Option<usize> {
    match op {
        HeOp::Input { .. } => Some(0),
        HeOp::Add | HeOp::Sub | HeOp::MulCt => Some(2),
        HeOp::Sum | HeOp::Concat => None,
        _ => Some(1),
    }
}

fn check_value(graph: &HeGraph, value: Value) -> Result<(), String> {
    let node = graph.node(value);
    let ty = node.ty;
    let op = &node.op;
    let operands = graph.operands(value);
    let types: Vec<HeType> = operands.iter().map(|&o| graph.node(o).ty).collect();
    match arity(op) {
        Some(n) if n != operands.len() => {
            return Err(format!("takes {n} operands, has {}", operands.len()));
        }
        None if operands.is_empty() => return Err("takes at least one operand".into()),
        _ => {}
    }
    ty.layout.validate().map_err(|e| e.to_string())?;
    if ty.count != ty.layout.ciphertexts() {
        return Err(format!(
            "{} ciphertexts for a layout of {}",
            ty.count,
            ty.layout.ciphertexts()
        ));
    }
    match graph.stage {
        Stage::Logical => {
            if op.is_leveled_only() {
                return Err("only the level pass inserts this op".into());
            }
            if ty.level.is_some() || ty.scale.is_some() {
                return Err("a logical value has no level or scale yet".into());
            }
        }
        Stage::Leveled => {
            if matches!(op, HeOp::Sum) {
                return Err("sums are expanded by the level pass".into());
            }
            if let HeOp::Poly { alpha, beta, .. } = op
                && (*alpha != 1.0 || *beta != 0.0)
            {
                return Err("the input map of a polynomial is expanded by the level pass".into());
            }
            if ty.level.is_none() || ty.scale.is_none_or(|s| !(s.is_finite() && s > 0.0)) {
                return Err("a leveled value needs a level and a positive scale".into());
            }
        }
    }
    let first = types.first().copied();
    let same_layout = |other: &HeType| -> Result<(), String> {
        if other.layout != ty.layout || other.count != ty.count {
            return Err(format!(
                "operand layout {} differs from the result's {}",
                other.layout, ty.layout
            ));
        }
        Ok(())
    };
    let same_slots = |other: &HeType| -> Result<(), String> {
        if other.layout.slots != ty.layout.slots {
            return Err(format!(
                "operand has {} slots, the result {}",
                other.layout.slots, ty.layout.slots
            ));
        }
        Ok(())
    };
    // What the result may claim about its padding.
    let zero_padding = match op {
        HeOp::Input { index } => {
            if graph
                .inputs
                .get(*index as usize)
                .is_none_or(|i| i.value != value)
            {
                return Err(format!("input #{index} is not this value"));
            }
            true
        }
        HeOp::Add | HeOp::Sub | HeOp::Sum => {
            for t in &types {
                same_layout(t)?;
            }
            types.iter().all(|t| t.zero_padding)
        }
        HeOp::Neg
        | HeOp::Square
        | HeOp::Relabel { .. }
        | HeOp::Rescale
        | HeOp::DropLevels { .. }
        | HeOp::MulConst { .. } => {
            let a = first.unwrap_or(ty);
            same_layout(&a)?;
            a.zero_padding
        }
        HeOp::AddConst { value: c } => {
            let a = first.unwrap_or(ty);
            same_layout(&a)?;
            a.zero_padding && *c == 0.0
        }
        HeOp::Poly { approx, .. } => {
            let a = first.unwrap_or(ty);
            same_layout(&a)?;
            if approx.0 as usize >= graph.approximations.len() {
                return Err(format!("approximation #{} does not exist", approx.0));
            }
            false
        }
        HeOp::Bootstrap { .. } => {
            // Zero padding stays zero up to the bootstrap's error, as after any op.
            let a = first.unwrap_or(ty);
            same_layout(&a)?;
            a.zero_padding
        }
        HeOp::MulCt => {
            let (a, b) = (types[0], types[1]);
            let (wide, narrow) = if a.count >= b.count { (a, b) } else { (b, a) };
            if !wide.count.is_multiple_of(narrow.count) || a.layout.slots != b.layout.slots {
                return Err(format!(
                    "cannot broadcast {} against {} ciphertexts",
                    narrow.count, wide.count
                ));
            }
            same_layout(&wide)?;
            a.zero_padding || b.zero_padding
        }
        HeOp::MulPlain { plain, .. } | HeOp::AddPlain { plain } => {
            let recipe = graph
                .plains
                .get(plain.0 as usize)
                .ok_or_else(|| format!("plaintext #{} does not exist", plain.0))?;
            let a = first.unwrap_or(ty);
            if *recipe.layout() != ty.layout {
                return Err(format!(
                    "recipe layout {} is not the result's",
                    recipe.layout()
                ));
            }
            same_slots(&a)?;
            if matches!(op, HeOp::AddPlain { .. }) {
                same_layout(&a)?;
                a.zero_padding && matches!(recipe, PlainRecipe::ColumnValues { .. })
            } else {
                if a.count != ty.count && a.count != 1 {
                    return Err(format!(
                        "{} ciphertexts against a recipe of {}",
                        a.count, ty.count
                    ));
                }
                true
            }
        }
        HeOp::Rotate { steps } => {
            let a = first.unwrap_or(ty);
            same_slots(&a)?;
            a.count == ty.count && a.zero_padding && steps.rem_euclid(a.layout.block as i32) == 0
        }
        HeOp::RotSum { step, count } => {
            let a = first.unwrap_or(ty);
            same_slots(&a)?;
            if !count.is_power_of_two()
                || u64::from(*step) * u64::from(*count) > u64::from(a.layout.slots)
            {
                return Err(format!("rot_sum of {count} terms of stride {step}"));
            }
            a.zero_padding && step % a.layout.block == 0
        }
        HeOp::SumCiphertexts { group } => {
            let a = first.unwrap_or(ty);
            same_slots(&a)?;
            if *group == 0 || a.count % group != 0 || a.count / group != ty.count {
                return Err(format!(
                    "{} ciphertexts in groups of {group} give {}",
                    a.count, ty.count
                ));
            }
            a.zero_padding
        }
        HeOp::Slice { start, count } => {
            let a = first.unwrap_or(ty);
            same_slots(&a)?;
            if start + count > a.count || *count != ty.count {
                return Err(format!("slice {start}+{count} of {} ciphertexts", a.count));
            }
            a.zero_padding
        }
        HeOp::Concat => {
            let total: u32 = types.iter().map(|t| t.count).sum();
            for t in &types {
                same_slots(t)?;
            }
            if total != ty.count {
                return Err(format!(
                    "parts hold {total} ciphertexts, the result {}",
                    ty.count
                ));
            }
            types.iter().all(|t| t.zero_padding)
        }
        HeOp::TernaryLinear {
            weight,
            rows,
            method,
            ..
        } => {
            let a = first.unwrap_or(ty);
            let w = graph
                .weights
                .get(weight.0 as usize)
                .ok_or_else(|| format!("weight #{} does not exist", weight.0))?;
            if w.kind != WeightKind::Ternary || a.layout.columns != w.shape[1] {
                return Err(format!(
                    "`{}` does not take {} inputs",
                    w.name, a.layout.columns
                ));
            }
            if rows.len() != ty.layout.columns as usize || rows.iter().any(|r| r.row >= w.shape[0])
            {
                return Err(format!(
                    "{} rows for {} columns of `{}`",
                    rows.len(),
                    ty.layout.columns,
                    w.name
                ));
            }
            same_slots(&a)?;
            match method {
                LinearMethod::Columns => {
                    if a.layout.blocks_per_ciphertext() != 1
                        || ty.layout.blocks_per_ciphertext() != 1
                    {
                        return Err("the column method needs one column per ciphertext".into());
                    }
                    a.zero_padding
                }
                LinearMethod::Diagonals { .. } => {
                    if a.layout.block != ty.layout.block {
                        return Err("diagonals need equal blocks".into());
                    }
                    true
                }
            }
        }
        HeOp::Repack { .. } => {
            let a = first.unwrap_or(ty);
            if a.layout.tokens != ty.layout.tokens || a.layout.columns != ty.layout.columns {
                return Err(format!(
                    "repack changes the data: {} -> {}",
                    a.layout, ty.layout
                ));
            }
            true
        }
    };
    if ty.zero_padding && !zero_padding {
        return Err("claims zero padding its operands do not give".into());
    }
    if graph.stage == Stage::Leveled {
        check_levels(op, ty, &types)?;
    }
    Ok(())
}

/// The level rules of the leveled graph (the plan verifier checks exact scales again on the
/// emitted plan).
fn check_levels(op: &HeOp, ty: HeType, types: &[HeType]) -> Result<(), String> {
    let (Some(level), Some(scale)) = (ty.level, ty.scale) else {
        return Ok(());
    };
    let levels: Vec<u32> = types.iter().filter_map(|t| t.level).collect();
    let scales: Vec<f64> = types.iter().filter_map(|t| t.scale).collect();
    let expect = |want: u32| -> Result<(), String> {
        if level != want {
            return Err(format!("at level {level}, its operands give {want}"));
        }
        Ok(())
    };
    match op {
        HeOp::Input { .. } => Ok(()),
        HeOp::Add | HeOp::Sub | HeOp::Concat => {
            if levels.iter().any(|&l| l != levels[0])
                || scales.iter().any(|&s| !close(s, scales[0]))
            {
                return Err("operands differ in level or scale".into());
            }
            expect(levels[0])
        }
        HeOp::MulCt => {
            if levels[0] != levels[1] {
                return Err("operands at different levels".into());
            }
            if !close(scale, scales[0] * scales[1]) {
                return Err("scale is not the product of the operands'".into());
            }
            expect(levels[0])
        }
        HeOp::Rescale => {
            if levels[0] == 0 {
                return Err("rescale at level 0".into());
            }
            expect(levels[0] - 1)
        }
        HeOp::DropLevels { levels: drop } => expect(levels[0].saturating_sub(*drop)),
        HeOp::Poly { .. } | HeOp::Bootstrap { .. } => {
            if level > levels[0] && !matches!(op, HeOp::Bootstrap { .. }) {
                return Err("a polynomial cannot raise the level".into());
            }
            Ok(())
        }
        _ => expect(levels.first().copied().unwrap_or(level)),
    }
}
