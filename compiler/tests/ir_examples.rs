//! The models of `ir-examples/` through every stage, and the model-level stages of `attention-block.ir` (reviewed in diffs, updated on purpose with `cargo insta`).
//!
//! Each folder of `ir-examples/` holding a `config.json` is a model configuration the
//! fixtures do not cover; its weights are synthesized from the configuration (seeded, so the
//! snapshots are stable) into a temporary folder. At T = 4 on an insecure test ring, five
//! snapshots per model: the model IR the frontend builds (the encrypted form the compiler
//! lowers), the IR after the rewrites, the logical HE graph, the leveled HE graph and the
//! text report.
//!
//! Snapshots show what the stages do, not that the plan is right: each model's plan is also
//! run by the runtime's plaintext executor and compared with the model IR's forward pass.
//!
//! `attention-block.ir` stops after the rewrites: it is a one-layer block using every op of
//! the table, not a model, and cannot be lowered. The compiler's entry point builds its graph
//! from a checkpoint through the frontend, which never produces this one (ReLU² and SiLU of
//! the same value, no `o_proj`); driving the lowering directly fails too, since the block
//! computes activation quantization (no HE lowering: encrypted graphs are built without it)
//! and names its weights `q`, `embed`, ..., while a checkpoint resolves only a BitNet model's
//! tensor names.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

use ensi_checkpoint::synth::write_weights;
use ensi_checkpoint::{
    Activation, CONFIG_FILE, Checkpoint, Config, FloatDtype, LinearClass, LmHead, Naming,
    Quantization,
};
use ensi_compiler::ir::{self, Graph};
use ensi_compiler::report::Format;
use ensi_compiler::rewrite::{self, RewriteOptions, RewriteReport};
use ensi_compiler::{CompileOptions, approx, calibrate, compile, forward, frontend, stages};
use ensi_runtime::exec::{self, BoundWeights};
use ensi_runtime::plan;

/// Token count of every snapshot.
const TOKENS: usize = 4;
/// Seed of the synthesized weights.
const SEED: u64 = 2024;
/// Relative distance allowed between a plan and the approximate forward: the same series and
/// Newton steps, evaluated in another order.
const EVALUATION_ORDER: f64 = 1e-9;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ir-examples")
}

/// Every example model folder, sorted by name.
fn example_models() -> Vec<(String, PathBuf)> {
    let mut models: Vec<_> = std::fs::read_dir(examples())
        .expect("ir-examples is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.join(CONFIG_FILE).is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, path)
        })
        .collect();
    models.sort();
    models
}

/// Checks that an example still has what its README says it exercises, so that an edit
/// cannot quietly turn it into a copy of a fixture (all of them: 2025 naming, ReLU², tied
/// head, packed `autobitlinear` or online BF16 weights, GQA ratio 1 or 2, `head_dim` =
/// hidden / heads).
fn check_purpose(name: &str, checkpoint: &Checkpoint) {
    let config = checkpoint.config();
    let float = checkpoint.embedding().dtype();
    let ratio = config.num_heads / config.num_kv_heads;
    match name {
        "gqa4-bitlinear" => {
            assert_eq!(ratio, 4, "{name}");
            let bitlinear = LinearClass::BitLinear;
            let packed = Quantization::Offline {
                linear_class: bitlinear,
            };
            assert_eq!(config.quantization, packed, "{name}");
        }
        "onebitllm-silu-untied" => {
            assert_eq!(config.naming, Naming::OneBitLlm, "{name}");
            assert_eq!(config.activation, Activation::Silu, "{name}");
            assert_eq!(config.lm_head, LmHead::Untied, "{name}");
            assert_eq!(config.quantization, Quantization::Unspecified, "{name}");
            assert_eq!(float, FloatDtype::F16, "{name}");
            assert!(!config.num_heads.is_power_of_two(), "{name}");
        }
        "silu-online-wide-heads" => {
            assert_eq!(config.activation, Activation::Silu, "{name}");
            assert_eq!(config.lm_head, LmHead::Untied, "{name}");
            assert_eq!(config.quantization, Quantization::Online, "{name}");
            assert_eq!(float, FloatDtype::F32, "{name}");
            assert_eq!(config.query_width(), 2 * config.hidden_size, "{name}");
        }
        other => panic!("ir-examples/{other}: say in check_purpose what it exercises"),
    }
}

/// The example's `config.json` with synthesized weights, in a temporary folder.
fn synthesized(dir: &Path) -> (tempfile::TempDir, Checkpoint) {
    let temp = tempfile::tempdir().expect("temporary folder");
    std::fs::copy(dir.join(CONFIG_FILE), temp.path().join(CONFIG_FILE)).expect("config copied");
    let config = Config::from_file(&temp.path().join(CONFIG_FILE)).expect("config parses");
    write_weights(temp.path(), &config, SEED).expect("weights written");
    let checkpoint = Checkpoint::open(temp.path()).expect("synthesized checkpoint opens");
    (temp, checkpoint)
}

/// Verifies and prints `graph`, checking that the text parses back to it.
fn printed(graph: &Graph) -> String {
    ir::verify(graph).expect("the graph verifies");
    let text = ir::print(graph);
    assert_eq!(
        ir::parse(&text).as_ref(),
        Ok(graph),
        "the printed IR parses back"
    );
    text
}

/// The rewritten graph, printed under the rewrites' deterministic summary.
fn rewritten(graph: &Graph, options: &RewriteOptions) -> String {
    let (rewritten, report) = rewrite::optimize(graph, options).expect("rewrites");
    format!("{}{}", summary(&report), printed(&rewritten))
}

fn summary(report: &RewriteReport) -> String {
    let mut text = format!(
        "; stop: {}, iterations: {}, e-nodes: {}, e-classes: {}\n; cost before: {:?}\n; cost after:  {:?}\n",
        report.stop_reason,
        report.iterations,
        report.egraph_nodes,
        report.egraph_classes,
        report.cost_before,
        report.cost_after
    );
    for rule in report.rules.iter().filter(|rule| rule.applied > 0) {
        text += &format!("; {:>3} × {}\n", rule.applied, rule.rule);
    }
    text
}

#[test]
fn every_example_model_through_every_stage() {
    let models = example_models();
    assert!(!models.is_empty(), "ir-examples holds model folders");
    let options = CompileOptions::insecure_test(TOKENS);
    for (name, dir) in models {
        let (_temp, checkpoint) = synthesized(&dir);
        check_purpose(&name, &checkpoint);
        let graph = frontend::build(&checkpoint, &options.frontend()).expect("frontend");
        insta::assert_snapshot!(format!("{name}-model"), printed(&graph));
        insta::assert_snapshot!(
            format!("{name}-rewritten"),
            rewritten(&graph, &options.rewrite)
        );
        let stages = stages(&checkpoint, &name, &options)
            .unwrap_or_else(|error| panic!("{name} compiles: {error}"));
        insta::assert_snapshot!(format!("{name}-logical"), stages.logical.to_string());
        insta::assert_snapshot!(format!("{name}-leveled"), stages.leveled.to_string());
        let report = stages
            .compiled
            .report
            .render(&stages.compiled.plan, Format::Text);
        insta::assert_snapshot!(format!("{name}-report"), report);
    }
}

#[test]
fn attention_block_model_stages() {
    let path = examples().join("attention-block.ir");
    let source = std::fs::read_to_string(&path).expect("attention-block.ir is readable");
    let graph = ir::parse(&source).expect("attention-block.ir parses");
    insta::assert_snapshot!("attention-block-model", printed(&graph));
    insta::assert_snapshot!(
        "attention-block-rewritten",
        rewritten(&graph, &RewriteOptions::default())
    );
}

/// max |a − b| / max |b|.
fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let error = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    error / b.iter().map(|y| y.abs()).fold(0.0, f64::max)
}

/// The plan run in plaintext on a calibration sequence, where the compiler's predicted error
/// holds by construction (on other tokens an approximation may meet arguments outside its
/// calibrated interval), against the approximate forward (the same polynomials, so equal up to
/// evaluation order) and the exact forward (within the prediction).
#[test]
fn every_example_model_plan_computes_its_model() {
    let options = CompileOptions::insecure_test(TOKENS);
    for (name, dir) in example_models() {
        let (_temp, checkpoint) = synthesized(&dir);
        let compiled = compile(&checkpoint, &name, &options).expect("compiles");
        // The graph the compiler lowered, its calibration and the approximations it chose.
        let graph = frontend::build(&checkpoint, &options.frontend()).expect("frontend");
        let (graph, _) = rewrite::optimize(&graph, &options.rewrite).expect("rewrites");
        let info = ir::verify(&graph).expect("verifies");
        let calibration =
            calibrate::run(&graph, &info, &checkpoint, &options.calibration).expect("calibrates");
        let (table, _) = approx::select(&graph, &info, &checkpoint, &calibration, &options.approx)
            .expect("approximates");
        let tokens = &calibration.sequences()[0];

        let plan = &compiled.plan;
        let plan_info = plan::check::check(plan).expect("the plan checks");
        let weights = BoundWeights::bind(plan, &checkpoint).expect("weights bind");
        let embedded = exec::embed_tokens(checkpoint.embedding(), tokens).expect("embedding");
        let input = exec::encode_input(&plan.inputs[0], &embedded).expect("encoding");
        let run = exec::run(plan, &plan_info, &weights, &[input]).expect("plaintext run");
        let hidden = run.output("hidden").expect("hidden output").values();

        let approximate =
            approx::forward(&graph, &info, &checkpoint, tokens, &table).expect("approximate");
        let twin = relative_difference(hidden, approximate.get("hidden").unwrap().data());
        assert!(
            twin <= EVALUATION_ORDER,
            "{name}: {twin:e} from the approximate forward"
        );
        let exact = forward::run(&graph, &info, &checkpoint, tokens).expect("exact forward");
        let error = relative_difference(hidden, exact.get("hidden").unwrap().data());
        let predicted = compiled.report.summary.predicted_error;
        assert!(
            error <= predicted + EVALUATION_ORDER,
            "{name}: {error:e} from the exact forward, predicted {predicted:e}"
        );
        assert!(
            !run.diagnostics.any_out_of_interval(),
            "{name}: {}",
            run.diagnostics
        );
        for bootstrap in &run.diagnostics.bootstraps {
            assert!(
                bootstrap.max_abs_all <= 1.0,
                "{name}: bootstrap at instruction {} sees {:e}",
                bootstrap.instr,
                bootstrap.max_abs_all
            );
        }
        eprintln!(
            "{name}: relative error {error:.3e} (predicted {predicted:.3e}), {twin:.1e} from the approximate forward"
        );
    }
}
