//! The runtime's RoPE (two ternary projections times cos/sin recipes, in a real bound plan) against the reference forward's `rope`.
//!
//! The plan computes `RoPE(β·Wx) = (β·Wx) ⊙ cos + (β·rotate_half(W)x) ⊙ sin` with `rotate_half`
//! as a signed row map of `W` and `β` folded into the recipes, exactly as the compiler lowers
//! it; the forward computes `rope(ternary_linear(embed(ids)))` over the model IR. Both read
//! the same checkpoint; they must agree to 1e-12 relative.

use anyhow::{Context, ensure};
use ensi_checkpoint::{Checkpoint, EMBEDDING};
use ensi_compiler::forward;
use ensi_compiler::ir::{self, Graph, Op as IrOp, Real, Type};
use ensi_runtime::ckks::scheme::{ParamsLiteral, SecretDistribution, Security};
use ensi_runtime::exec::{self, BoundWeights};
use ensi_runtime::plan::{
    self, InputSignature, Instr, Layout, LinearMethod, ModelRef, Op, OutputSignature, PlainId,
    PlainRecipe, Plan, PlanParams, Region, SignedRow, ValueId, ValueType, WeightId, WeightKind,
    WeightRef,
};
use ensi_tests::{Deviation, Reference, fixtures_dir};

const FIXTURE: &str = "dev-h128";
const Q: &str = "model.layers.1.self_attn.q_proj.weight";
/// Scale of the input and of every plaintext (any value: the plaintext executor ignores it).
const SCALE: f64 = 1_099_511_627_776.0;

/// `rotate_half` per head as rows of `W`: output `i < half` is `−W[i + half]`, the rest `W[i − half]`.
fn rotate_half(heads: u32, head_dim: u32) -> Vec<SignedRow> {
    let half = head_dim / 2;
    (0..heads * head_dim)
        .map(|j| {
            let (head, i) = (j / head_dim, j % head_dim);
            let (row, negate) = if i < half {
                (head * head_dim + i + half, true)
            } else {
                (head * head_dim + i - half, false)
            };
            SignedRow { row, negate }
        })
        .collect()
}

/// The plan `input -> {W, rotate_half(W)} -> ⊙ {cos, sin} -> add`, in a dense layout.
fn rope_plan(checkpoint: &Checkpoint, tokens: u32) -> anyhow::Result<Plan> {
    let config = checkpoint.config();
    let (hidden, heads) = (config.hidden_size as u32, config.num_heads as u32);
    let head_dim = config.head_dim as u32;
    let matrix = checkpoint.ternary(Q).context("fixture has no q_proj")?;
    let table = checkpoint.embedding();
    let layout = Layout {
        slots: 512,
        block: (2 * tokens - 1).next_power_of_two(),
        tokens,
        columns: hidden,
        group: 1,
    };
    let recipe = |sine| PlainRecipe::Rope {
        layout,
        head_dim,
        theta: config.rope_theta,
        sine,
        factor: matrix.effective_scale(),
        position_offset: 0,
    };
    let level = 3;
    let ty = |scale| ValueType {
        count: layout.ciphertexts(),
        level,
        scale,
        layout,
        zero_padding: true,
    };
    let linear = |rows: Vec<SignedRow>| Op::TernaryLinear {
        x: ValueId(0),
        weight: WeightId(1),
        rows,
        out: layout,
        method: LinearMethod::Diagonals { baby_steps: 4 },
        plain_scale: SCALE,
    };
    let ops = [
        Op::Input { index: 0 },
        linear(
            (0..hidden)
                .map(|row| SignedRow { row, negate: false })
                .collect(),
        ),
        linear(rotate_half(heads, head_dim)),
        Op::MulPlain {
            a: ValueId(1),
            plain: PlainId(0),
            scale: SCALE,
        },
        Op::MulPlain {
            a: ValueId(2),
            plain: PlainId(1),
            scale: SCALE,
        },
        Op::Add {
            a: ValueId(3),
            b: ValueId(4),
        },
    ];
    let frees = [vec![], vec![], vec![0], vec![1], vec![2], vec![3, 4]];
    Ok(Plan {
        compiler_version: "exec_rope test".into(),
        model: ModelRef {
            name: FIXTURE.into(),
            config_digest: checkpoint.config().digest(),
            tokens,
            hidden,
            vocab: table.rows() as u32,
        },
        params: PlanParams {
            literal: ParamsLiteral {
                log_n: 10,
                log_q: vec![40; 4],
                log_p: vec![50],
                log_scale: 40,
                digit_primes: 1,
                secret: SecretDistribution::UniformTernary,
            },
            q: vec![1_099_511_480_321; 4],
            p: vec![1_125_899_906_839_937],
            hash: [0; 32],
            security: Security::InsecureForTesting,
        },
        galois_elements: vec![],
        needs_relinearization: false,
        needs_bootstrapping: false,
        weights: vec![
            WeightRef {
                name: EMBEDDING.into(),
                kind: WeightKind::Matrix,
                shape: [table.rows() as u32, table.cols() as u32],
                digest: table.digest(),
            },
            WeightRef {
                name: Q.into(),
                kind: WeightKind::Ternary,
                shape: [matrix.rows() as u32, matrix.cols() as u32],
                digest: matrix.digest(),
            },
        ],
        plains: vec![recipe(false), recipe(true)],
        approximations: vec![],
        regions: vec![Region {
            layer: Some(1),
            block: "attention".into(),
        }],
        values: vec![
            ty(SCALE),
            ty(SCALE * SCALE),
            ty(SCALE * SCALE),
            ty(SCALE.powi(3)),
            ty(SCALE.powi(3)),
            ty(SCALE.powi(3)),
        ],
        instrs: ops
            .into_iter()
            .zip(frees)
            .enumerate()
            .map(|(i, (op, frees))| Instr {
                op,
                result: ValueId(i as u32),
                frees: frees.into_iter().map(ValueId).collect(),
                region: 0,
            })
            .collect(),
        inputs: vec![InputSignature {
            name: "embeddings".into(),
            embedding: WeightId(0),
            layout,
            level,
            scale: SCALE,
        }],
        outputs: vec![OutputSignature {
            name: "q".into(),
            value: ValueId(5),
        }],
        provenance: vec![],
    })
}

#[test]
fn plan_rope_equals_the_reference_forward_rope() -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(fixtures_dir().join(FIXTURE))?;
    let reference = Reference::load(FIXTURE)?;
    let tokens = reference.input_ids();
    let config = checkpoint.config();
    let (t, hidden) = (tokens.len(), config.hidden_size);
    let matrix = checkpoint.ternary(Q).expect("fixture has q_proj");

    let mut graph = Graph::new();
    let ids = graph.push(IrOp::Tokens {}, Type::Ids { len: t });
    let x = graph.push(
        IrOp::Embed {
            ids,
            table: EMBEDDING.into(),
        },
        Type::tensor(t, hidden),
    );
    let q = graph.push(
        IrOp::TernaryLinear {
            x,
            weight: Q.into(),
            scale: Real(matrix.effective_scale()),
        },
        Type::tensor(t, hidden),
    );
    let rotated = graph.push(
        IrOp::Rope {
            x: q,
            heads: config.num_heads,
            head_dim: config.head_dim,
            theta: Real(config.rope_theta),
        },
        Type::tensor(t, hidden),
    );
    graph.add_output("q", rotated);
    let info = ir::verify(&graph)?;
    let want = forward::run(&graph, &info, &checkpoint, tokens)?;

    let plan = rope_plan(&checkpoint, t as u32)?;
    let plan_info = plan::check::check(&plan)?;
    let weights = BoundWeights::bind(&plan, &checkpoint)?;
    let embedded = exec::embed_tokens(checkpoint.embedding(), tokens)?;
    let input = exec::encode_input(&plan.inputs[0], &embedded)?;
    let run = exec::run(&plan, &plan_info, &weights, &[input])?;

    let got = run.output("q").expect("the plan outputs q");
    let want = want.get("q").expect("the graph outputs q");
    let deviation = Deviation::between(got.values(), want.data())?;
    ensure!(
        deviation.relative() <= 1e-12,
        "plan RoPE differs from the forward's: {deviation:?}"
    );
    ensure!(run.work.nonzero_diagonals > 0 && run.peak_live_ciphertexts == 24);
    Ok(())
}
