//! The plan's text form, for review: one line per instruction with its result type.

use std::fmt::{self, Display, Write};

use super::Plan;
use super::op::{LinearMethod, Op};
use super::recipe::PlainRecipe;

/// Renders `plan` as text (see [`Display`] for [`Plan`]).
pub fn render(plan: &Plan) -> String {
    plan.to_string()
}

fn log2(x: f64) -> String {
    format!("2^{:.3}", x.log2())
}

fn operands(op: &Op) -> String {
    let mut text = op
        .operands()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut attr = |s: String| {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(&s);
    };
    match op {
        Op::Input { index } => attr(format!("#{index}")),
        Op::DropLevels { levels, .. } => attr(format!("levels={levels}")),
        Op::MulPlain { plain, scale, .. } => {
            attr(format!("plain#{}, scale={}", plain.0, log2(*scale)))
        }
        Op::AddPlain { plain, .. } => attr(format!("plain#{}", plain.0)),
        Op::MulConst { value, scale, .. } => attr(format!("{value:e}, scale={}", log2(*scale))),
        Op::AddConst { value, .. } => attr(format!("{value:e}")),
        Op::Relabel { factor, .. } => attr(format!("factor={factor:e}")),
        Op::Rotate { steps, .. } => attr(format!("steps={steps}")),
        Op::RotSum { step, count, .. } => attr(format!("step={step}, count={count}")),
        Op::SumCiphertexts { group, .. } => attr(format!("group={group}")),
        Op::Slice { start, count, .. } => attr(format!("start={start}, count={count}")),
        Op::TernaryLinear {
            weight,
            rows,
            method,
            plain_scale,
            ..
        } => {
            let method = match method {
                LinearMethod::Columns => "columns".to_string(),
                LinearMethod::Diagonals { baby_steps } => {
                    format!("diagonals(baby={baby_steps}, scale={})", log2(*plain_scale))
                }
            };
            attr(format!(
                "weight#{}, rows={}, {method}",
                weight.0,
                rows.len()
            ));
        }
        Op::Poly { approx, .. } => attr(format!("approx#{}", approx.0)),
        Op::Bootstrap { level, .. } => attr(format!("level={level}")),
        Op::Repack { mask_scale, .. } => attr(format!("mask_scale={}", log2(*mask_scale))),
        Op::Add { .. }
        | Op::Sub { .. }
        | Op::Neg { .. }
        | Op::MulCt { .. }
        | Op::Square { .. }
        | Op::Rescale { .. }
        | Op::Concat { .. } => {}
    }
    text
}

impl Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = &self.params;
        let lit = &params.literal;
        writeln!(
            f,
            "; ensi plan — model `{}`, T={}, compiler {}",
            self.model.name, self.model.tokens, self.compiler_version
        )?;
        writeln!(
            f,
            "; params: N=2^{}, log2(QP)={} ({} + {} primes), scale 2^{}, dnum {}, security: {}",
            lit.log_n,
            lit.log_qp(),
            lit.log_q.len(),
            lit.log_p.len(),
            lit.log_scale,
            lit.dnum(),
            params.security.label()
        )?;
        writeln!(
            f,
            "; keys: relinearization={}, bootstrapping={}, {} Galois elements {:?}",
            self.needs_relinearization,
            self.needs_bootstrapping,
            self.galois_elements.len(),
            self.galois_elements
        )?;
        for (i, w) in self.weights.iter().enumerate() {
            writeln!(
                f,
                "weight#{i} = `{}` {:?} {}x{}",
                w.name, w.kind, w.shape[0], w.shape[1]
            )?;
        }
        for (i, p) in self.plains.iter().enumerate() {
            let text = match p {
                PlainRecipe::ColumnVector {
                    weight,
                    factor,
                    layout,
                } => {
                    format!(
                        "column_vector(weight#{}, factor={factor:e}) in {layout}",
                        weight.0
                    )
                }
                PlainRecipe::ColumnValues { values, layout } => {
                    format!("column_values({} values) in {layout}", values.len())
                }
                PlainRecipe::Rope {
                    layout,
                    head_dim,
                    theta,
                    sine,
                    factor,
                    position_offset,
                } => format!(
                    "rope({}, head_dim={head_dim}, theta={theta}, factor={factor:e}, offset={position_offset}) in {layout}",
                    if *sine { "sin" } else { "cos" }
                ),
                PlainRecipe::ValidMask { layout } => format!("valid_mask in {layout}"),
                PlainRecipe::TokenRange { layout, from, to } => {
                    format!("token_range({from}..{to}) in {layout}")
                }
            };
            writeln!(f, "plain#{i} = {text}")?;
        }
        for (i, a) in self.approximations.iter().enumerate() {
            writeln!(
                f,
                "approx#{i} = {} on [{:.6}, {:.6}], degree {}, depth {}, max error {:.3e}",
                a.function,
                a.lo,
                a.hi,
                a.degree(),
                a.depth,
                a.max_error
            )?;
        }
        for (i, input) in self.inputs.iter().enumerate() {
            writeln!(
                f,
                "input#{i} `{}` = embeddings(weight#{}) in {} @L{} scale {}",
                input.name,
                input.embedding.0,
                input.layout,
                input.level,
                log2(input.scale)
            )?;
        }
        let mut region = u32::MAX;
        for instr in &self.instrs {
            if instr.region != region {
                region = instr.region;
                if let Some(r) = self.regions.get(region as usize) {
                    match r.layer {
                        Some(layer) => writeln!(f, "; layer {layer} / {}", r.block)?,
                        None => writeln!(f, "; {}", r.block)?,
                    }
                }
            }
            let ty = self.value(instr.result);
            let mut line = String::new();
            write!(
                line,
                "{} = {} {}",
                instr.result,
                instr.op.mnemonic(),
                operands(&instr.op)
            )?;
            write!(
                f,
                "{line:<60} ; {}×ct @L{} {}{}",
                ty.count,
                ty.level,
                log2(ty.scale),
                if ty.zero_padding { " zp" } else { "" }
            )?;
            if !instr.frees.is_empty() {
                let frees: Vec<_> = instr.frees.iter().map(ToString::to_string).collect();
                write!(f, " free {}", frees.join(" "))?;
            }
            writeln!(f)?;
        }
        for output in &self.outputs {
            writeln!(f, "output `{}` = {}", output.name, output.value)?;
        }
        Ok(())
    }
}
