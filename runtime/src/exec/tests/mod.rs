//! Tests of the executors' shared semantics and of the plaintext executor, on small hand-built plans.

mod bind;
mod codec;
mod linear;
mod ops;
mod recipes;
mod repack;

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Activation, BoundWeights, PlaintextRun, SlotVectors, encode};
use crate::ckks::scheme::{ParamsLiteral, SecretDistribution, Security};
use crate::plan::check::{check, derive};
use crate::plan::{
    ApproxId, InputSignature, Instr, Layout, ModelRef, Op, OutputSignature, PlainId, PlainRecipe,
    Plan, PlanInfo, PlanParams, PolyApprox, Region, ValueId, ValueType, WeightId, WeightKind,
    WeightRef,
};

/// Scale of every input.
const SCALE: f64 = 1_099_511_627_776.0; // 2^40
/// Levels of the test chain (inputs start at the top).
const LEVELS: usize = 12;

/// A fixture checkpoint of `tests/fixtures`.
pub(super) fn fixture(name: &str) -> Checkpoint {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    Checkpoint::open(&dir).unwrap()
}

/// Deterministic random reals in `[-1, 1)`.
pub(super) fn random_values(seed: u64, len: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A random `tokens × columns` activation.
pub(super) fn random_activation(seed: u64, tokens: u32, columns: u32) -> Activation {
    let (t, d) = (tokens as usize, columns as usize);
    Activation::new(t, d, random_values(seed, t * d)).unwrap()
}

/// `max |a − b|` over two equally long slices.
pub(super) fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Builds plans op by op, each result typed by the verifier's own rule.
pub(super) struct Builder {
    plan: Plan,
}

impl Builder {
    pub(super) fn new() -> Self {
        let q: Vec<u64> = (0..LEVELS as u64)
            .map(|i| 1_099_511_480_321 + 2 * i)
            .collect();
        Builder {
            plan: Plan {
                compiler_version: "test".into(),
                model: ModelRef {
                    name: "test-model".into(),
                    config_digest: [0; 32],
                    tokens: 0,
                    hidden: 0,
                    vocab: 0,
                },
                params: PlanParams {
                    literal: ParamsLiteral {
                        log_n: 7,
                        log_q: vec![40; LEVELS],
                        log_p: vec![50],
                        log_scale: 40,
                        digit_primes: 1,
                        secret: SecretDistribution::UniformTernary,
                    },
                    q,
                    p: vec![1_125_899_906_839_937],
                    hash: [0; 32],
                    security: Security::InsecureForTesting,
                },
                galois_elements: vec![],
                needs_relinearization: true,
                needs_bootstrapping: false,
                weights: vec![],
                plains: vec![],
                approximations: vec![],
                regions: vec![Region {
                    layer: None,
                    block: "test".into(),
                }],
                values: vec![],
                instrs: vec![],
                inputs: vec![],
                outputs: vec![],
                provenance: vec![],
            },
        }
    }

    /// Adds a weight reference.
    pub(super) fn weight(&mut self, weight: WeightRef) -> WeightId {
        self.plan.weights.push(weight);
        WeightId(self.plan.weights.len() as u32 - 1)
    }

    /// Adds a reference to the ternary matrix `name` of `checkpoint`.
    pub(super) fn ternary(&mut self, checkpoint: &Checkpoint, name: &str) -> WeightId {
        let matrix = checkpoint.ternary(name).unwrap();
        self.weight(WeightRef {
            name: name.into(),
            kind: WeightKind::Ternary,
            shape: [matrix.rows() as u32, matrix.cols() as u32],
            digest: matrix.digest(),
        })
    }

    /// Adds a reference to the vector `name` of `checkpoint`.
    pub(super) fn vector(&mut self, checkpoint: &Checkpoint, name: &str) -> WeightId {
        let vector = checkpoint.vector(name).unwrap();
        self.weight(WeightRef {
            name: name.into(),
            kind: WeightKind::Vector,
            shape: [vector.len() as u32, 1],
            digest: vector.digest(),
        })
    }

    /// A new client input in `layout` (with a stand-in embedding reference).
    pub(super) fn input(&mut self, layout: Layout) -> ValueId {
        let embedding = self.weight(WeightRef {
            name: format!("embedding{}", self.plan.inputs.len()),
            kind: WeightKind::Matrix,
            shape: [1, layout.columns],
            digest: [0; 32],
        });
        let index = self.plan.inputs.len() as u32;
        self.plan.inputs.push(InputSignature {
            name: format!("x{index}"),
            embedding,
            layout,
            level: LEVELS as u32 - 1,
            scale: SCALE,
        });
        self.plan.model.tokens = layout.tokens;
        self.push(Op::Input { index })
    }

    pub(super) fn plain(&mut self, recipe: PlainRecipe) -> PlainId {
        self.plan.plains.push(recipe);
        PlainId(self.plan.plains.len() as u32 - 1)
    }

    pub(super) fn approx(&mut self, approx: PolyApprox) -> ApproxId {
        self.plan.approximations.push(approx);
        ApproxId(self.plan.approximations.len() as u32 - 1)
    }

    /// The type of `value`.
    pub(super) fn ty(&self, value: ValueId) -> ValueType {
        *self.plan.value(value)
    }

    /// Appends `op`; its result type is derived from its operands (the first operand's type
    /// fills what the rule leaves free).
    pub(super) fn push(&mut self, op: Op) -> ValueId {
        let hint = match op.operands().first() {
            Some(&operand) => self.ty(operand),
            None => ValueType {
                count: 0,
                level: 0,
                scale: SCALE,
                layout: Layout::columns_packed(1, 1, 1),
                zero_padding: true,
            },
        };
        self.push_as(op, hint)
    }

    /// Appends `op` with a claimed result layout (rotations, slices, sums relabel it).
    pub(super) fn push_with_layout(&mut self, op: Op, layout: Layout) -> ValueId {
        let hint = ValueType {
            layout,
            ..self.ty(op.operands()[0])
        };
        self.push_as(op, hint)
    }

    fn push_as(&mut self, op: Op, hint: ValueType) -> ValueId {
        let index = self.plan.instrs.len();
        let ty = derive(&self.plan, index, &op, &hint, &self.plan.params.q)
            .unwrap_or_else(|e| panic!("test op {} is ill typed: {e}", op.mnemonic()));
        self.plan.values.push(ty);
        self.plan.instrs.push(Instr {
            op,
            result: ValueId(index as u32),
            frees: vec![],
            region: 0,
        });
        ValueId(index as u32)
    }

    pub(super) fn output(&mut self, name: &str, value: ValueId) {
        self.plan.outputs.push(OutputSignature {
            name: name.into(),
            value,
        });
    }

    /// The plan, with every value freed after its last use, and its certificate.
    pub(super) fn finish(mut self) -> (Plan, PlanInfo) {
        let count = self.plan.instrs.len();
        let mut last_use: Vec<usize> = (0..count).collect();
        for (index, instr) in self.plan.instrs.iter().enumerate() {
            for operand in instr.op.operands() {
                last_use[operand.0 as usize] = index;
            }
        }
        let outputs: Vec<ValueId> = self.plan.outputs.iter().map(|o| o.value).collect();
        for (value, &last) in last_use.iter().enumerate() {
            let value = ValueId(value as u32);
            if !outputs.contains(&value) {
                self.plan.instrs[last].frees.push(value);
            }
        }
        let info = check(&self.plan).unwrap_or_else(|e| panic!("test plan rejected: {e}"));
        (self.plan, info)
    }
}

/// Runs a plan without weights on `inputs` given as activations (encoded in the input layouts).
pub(super) fn run_plain(plan: &Plan, info: &PlanInfo, inputs: &[&Activation]) -> PlaintextRun {
    let weights = BoundWeights::trusting_matrices(plan, None).unwrap();
    let slots: Vec<SlotVectors> = plan
        .inputs
        .iter()
        .zip(inputs)
        .map(|(signature, x)| encode(&signature.layout, x).unwrap())
        .collect();
    super::run(plan, info, &weights, &slots).unwrap()
}
