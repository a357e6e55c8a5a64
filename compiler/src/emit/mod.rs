//! Plan emission: the leveled HE graph, its parameters and rotation keys in, a checked runtime [`Plan`] out (one instruction per value, frees at last use, weights by name and digest, signatures, provenance).
//!
//! Deterministic: the same graph and context give the same plan, byte for byte.

use ensi_checkpoint::Checkpoint;
use ensi_runtime::plan::check::{self, CheckError};
use ensi_runtime::plan::{
    InputSignature, Instr, ModelRef, Op, OutputSignature, Plan, PlanParams, ValueId, ValueType,
    WeightKind,
};
use rayon::prelude::*;

use crate::lower::{HeGraph, HeOp, Stage, Value};

/// Why a plan cannot be emitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Only a leveled graph is a program.
    #[error("only a leveled HE graph can be emitted (run the level pass first)")]
    NotLeveled,
    /// A value lacks its level or scale.
    #[error("v{value} has no level or scale")]
    Untyped {
        /// The value.
        value: usize,
    },
    /// The checkpoint lacks a tensor the graph references.
    #[error("the checkpoint has no {kind} `{name}`")]
    MissingWeight {
        /// Tensor name.
        name: String,
        /// Its kind.
        kind: WeightKind,
    },
    /// The emitted plan fails the runtime's verifier (a compiler bug).
    #[error("the emitted plan fails the plan verifier: {0}")]
    Check(#[from] CheckError),
}

/// Everything a plan says besides its program.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The model.
    pub model: ModelRef,
    /// CKKS parameters.
    pub params: PlanParams,
    /// Galois elements, sorted.
    pub galois_elements: Vec<u64>,
    /// `(key, value)` provenance, in a fixed order.
    pub provenance: Vec<(String, String)>,
}

/// The plan op of a leveled value with operands `operands`.
fn plan_op(op: &HeOp, operands: &[ValueId], layout: ensi_runtime::plan::Layout) -> Option<Op> {
    let a = operands.first().copied().unwrap_or(ValueId(0));
    let b = operands.get(1).copied().unwrap_or(ValueId(0));
    Some(match op {
        HeOp::Input { index } => Op::Input { index: *index },
        HeOp::Add => Op::Add { a, b },
        HeOp::Sub => Op::Sub { a, b },
        HeOp::Neg => Op::Neg { a },
        HeOp::MulCt => Op::MulCt { a, b },
        HeOp::Square => Op::Square { a },
        HeOp::MulPlain { plain, scale } => Op::MulPlain {
            a,
            plain: *plain,
            scale: *scale,
        },
        HeOp::AddPlain { plain } => Op::AddPlain { a, plain: *plain },
        HeOp::MulConst { value, scale } => Op::MulConst {
            a,
            value: *value,
            scale: *scale,
        },
        HeOp::AddConst { value } => Op::AddConst { a, value: *value },
        HeOp::Relabel { factor } => Op::Relabel { a, factor: *factor },
        HeOp::Rotate { steps } => Op::Rotate { a, steps: *steps },
        HeOp::RotSum { step, count } => Op::RotSum {
            a,
            step: *step,
            count: *count,
        },
        HeOp::SumCiphertexts { group } => Op::SumCiphertexts { a, group: *group },
        HeOp::Slice { start, count } => Op::Slice {
            a,
            start: *start,
            count: *count,
        },
        HeOp::Concat => Op::Concat {
            parts: operands.to_vec(),
        },
        HeOp::TernaryLinear {
            weight,
            rows,
            method,
            plain_scale,
        } => Op::TernaryLinear {
            x: a,
            weight: *weight,
            rows: rows.clone(),
            out: layout,
            method: *method,
            plain_scale: *plain_scale,
        },
        HeOp::Poly { approx, .. } => Op::Poly { a, approx: *approx },
        HeOp::Rescale => Op::Rescale { a },
        HeOp::DropLevels { levels } => Op::DropLevels { a, levels: *levels },
        HeOp::Bootstrap { level } => Op::Bootstrap { a, level: *level },
        HeOp::Repack { mask_scale } => Op::Repack {
            a,
            to: layout,
            mask_scale: *mask_scale,
        },
        HeOp::Sum => return None,
    })
}

fn id(value: Value) -> ValueId {
    ValueId(value.index() as u32)
}

/// Emits `graph` (leveled) as a plan in `context`, with the digests of its weights read from
/// `checkpoint`, and checks it with the runtime's verifier.
pub fn emit(graph: &HeGraph, checkpoint: &Checkpoint, context: Context) -> Result<Plan, EmitError> {
    if graph.stage != Stage::Leveled {
        return Err(EmitError::NotLeveled);
    }
    let mut values = Vec::with_capacity(graph.len());
    let mut instrs = Vec::with_capacity(graph.len());
    let mut last_use = vec![None; graph.len()];
    for value in graph.values() {
        let node = graph.node(value);
        let (Some(level), Some(scale)) = (node.ty.level, node.ty.scale) else {
            return Err(EmitError::Untyped {
                value: value.index(),
            });
        };
        let operands: Vec<ValueId> = graph.operands(value).into_iter().map(id).collect();
        for operand in &operands {
            last_use[operand.0 as usize] = Some(value.index());
        }
        let op = plan_op(&node.op, &operands, node.ty.layout).ok_or(EmitError::NotLeveled)?;
        values.push(ValueType {
            count: node.ty.count,
            level,
            scale,
            layout: node.ty.layout,
            zero_padding: node.ty.zero_padding,
        });
        instrs.push(Instr {
            op,
            result: id(value),
            frees: Vec::new(),
            region: node.region,
        });
    }
    for (_, value) in &graph.outputs {
        last_use[value.index()] = None;
    }
    for (value, last) in last_use.iter().enumerate() {
        let is_output = graph.outputs.iter().any(|(_, o)| o.index() == value);
        match last {
            Some(instr) => instrs[*instr].frees.push(ValueId(value as u32)),
            // A value nothing reads (never emitted by the level pass) dies at once.
            None if !is_output => instrs[value].frees.push(ValueId(value as u32)),
            None => {}
        }
    }
    // Digests read every weight (gigabytes for real models): in parallel, the first missing
    // weight in plan order reported.
    let digests: Vec<Result<[u8; 32], EmitError>> = graph
        .weights
        .par_iter()
        .map(|weight| {
            let missing = || EmitError::MissingWeight {
                name: weight.name.clone(),
                kind: weight.kind,
            };
            Ok(match weight.kind {
                WeightKind::Ternary => checkpoint
                    .ternary(&weight.name)
                    .ok_or_else(missing)?
                    .digest(),
                WeightKind::Vector => checkpoint
                    .vector(&weight.name)
                    .ok_or_else(missing)?
                    .digest(),
                WeightKind::Matrix => checkpoint
                    .matrix(&weight.name)
                    .ok_or_else(missing)?
                    .digest(),
            })
        })
        .collect();
    let mut weights = graph.weights.clone();
    for (weight, digest) in weights.iter_mut().zip(digests) {
        weight.digest = digest?;
    }
    let inputs = graph
        .inputs
        .iter()
        .map(|input| {
            let ty = values[input.value.index()];
            InputSignature {
                name: input.name.clone(),
                embedding: input.embedding,
                layout: ty.layout,
                level: ty.level,
                scale: ty.scale,
            }
        })
        .collect();
    let outputs = graph
        .outputs
        .iter()
        .map(|(name, value)| OutputSignature {
            name: name.clone(),
            value: id(*value),
        })
        .collect();
    let needs_relinearization = instrs
        .iter()
        .any(|i| matches!(i.op, Op::MulCt { .. } | Op::Square { .. }));
    let needs_bootstrapping = instrs.iter().any(|i| matches!(i.op, Op::Bootstrap { .. }));
    let plan = Plan {
        compiler_version: env!("CARGO_PKG_VERSION").to_owned(),
        model: context.model,
        params: context.params,
        galois_elements: context.galois_elements,
        needs_relinearization,
        needs_bootstrapping,
        weights,
        plains: graph.plains.clone(),
        approximations: graph.approximations.clone(),
        regions: graph.regions.clone(),
        values,
        instrs,
        inputs,
        outputs,
        provenance: context.provenance,
    };
    check::check(&plan)?;
    Ok(plan)
}
