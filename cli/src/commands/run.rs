//! `ensi run`: compile (or reuse a plan), keygen, encrypt, eval, decrypt in one process; `hidden` and `logits` written like `ensi forward`; a precision report against the plaintext reference forward and the timing profile.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use ensi_checkpoint::Checkpoint;
use ensi_compiler::ir;
use ensi_compiler::report::Format;
use ensi_compiler::{CompileOptions, PlacementPolicy, compile, forward, frontend};
use ensi_runtime::ckks::scheme::{Decryptor, Encryptor, Evaluator, KeyGenerator};
use ensi_runtime::exec::encrypted::{client, debug};
use ensi_runtime::exec::{self, EncryptedExecutor};

use super::compile::Policy;
use super::decrypt::write_outputs;
use super::forward::{TokenIds, parse_tokens};
use super::session::{Precision, bind, checked, exec_failure, load_plan, logits, progress, top_k};
use crate::exit::{Code, Failure};

/// Arguments of `ensi run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hugging Face BitNet checkpoint folder.
    pub model_dir: PathBuf,

    /// Token ids, separated by spaces or commas: "3 17 9".
    #[arg(long, value_parser = parse_tokens)]
    pub tokens: TokenIds,

    /// Small insecure rings with a deep chain (no bootstrapping), for tests and demos;
    /// marked INSECURE everywhere.
    #[arg(long)]
    pub insecure_test_params: bool,

    /// Bootstrap placement policy (when compiling).
    #[arg(long, value_enum, default_value_t = Policy::Rmsnorm)]
    pub policy: Policy,

    /// Reuse this plan instead of compiling (it must be for this model and T).
    #[arg(long)]
    pub plan: Option<PathBuf>,

    /// Write the decrypted `hidden` [1, T, hidden] and `logits` [1, T, vocab] (f32).
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// Decrypt after every instruction (client side) and report the first one whose error
    /// exceeds the predicted end-to-end error (slow: keeps the plaintext run's values).
    #[arg(long)]
    pub check_every_op: bool,
}

fn seconds(start: Instant) -> String {
    format!("{:.2} s", start.elapsed().as_secs_f64())
}

/// Runs `ensi run`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let tokens = args.tokens.0.clone();
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    let data = |e: anyhow::Error| Failure::new(Code::DataError, e);
    let software = |e: anyhow::Error| Failure::new(Code::Software, e);

    // Compile (or load) the plan.
    let start = Instant::now();
    let mut options = CompileOptions::new(tokens.len());
    options.insecure = args.insecure_test_params;
    options.approx.extra_inputs = vec![tokens.clone()];
    options.policy = match args.policy {
        Policy::Rmsnorm => PlacementPolicy::RmsNorm,
        Policy::Optimal => PlacementPolicy::Optimal,
        Policy::Greedy => PlacementPolicy::Greedy,
    };
    let (loaded, predicted) = match &args.plan {
        Some(path) => (load_plan(path)?, None),
        None => {
            let name = args.model_dir.file_name().map_or_else(
                || args.model_dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let compiled = compile(&checkpoint, &name, &options)
                .with_context(|| format!("cannot compile {}", args.model_dir.display()))
                .map_err(data)?;
            let predicted = compiled.report.summary.predicted_error;
            let summary = compiled.report.render(&compiled.plan, Format::Text);
            if let Some(first) = summary.lines().next() {
                println!("{first}");
            }
            (checked(compiled.plan).map_err(software)?, Some(predicted))
        }
    };
    let plan = &loaded.plan;
    if tokens.len() != plan.model.tokens as usize {
        return Err(data(anyhow::anyhow!(
            "{} token ids given, the plan was compiled for T = {}",
            tokens.len(),
            plan.model.tokens
        )));
    }
    let weights = bind(plan, &checkpoint, &args.model_dir)?;
    println!(
        "plan: {} instructions, N = 2^{}, {} levels, {} ({})",
        plan.instrs.len(),
        loaded.params.log_n(),
        loaded.params.max_level(),
        loaded.params.security().label(),
        seconds(start)
    );

    // Client: keys and encryption.
    let start = Instant::now();
    let mut keygen = KeyGenerator::new(&loaded.params).map_err(|e| software(e.into()))?;
    let keys = client::evaluation_keys(plan, &mut keygen).map_err(exec_failure)?;
    let embedded = exec::embed_tokens(checkpoint.embedding(), &tokens).map_err(exec_failure)?;
    let plain_input = exec::encode_input(&plan.inputs[0], &embedded).map_err(exec_failure)?;
    let mut encryptor = Encryptor::with_secret_key(&loaded.params, keygen.secret_key())
        .map_err(|e| software(e.into()))?;
    let inputs = client::encrypt_inputs(plan, &mut encryptor, &[embedded]).map_err(exec_failure)?;
    println!(
        "client: keygen ({} Galois keys, {:.1} MiB) and encryption ({} ciphertexts): {}",
        keys.galois_elements().len(),
        keys.size_bytes() as f64 / (1024.0 * 1024.0),
        inputs.iter().map(Vec::len).sum::<usize>(),
        seconds(start)
    );

    // Server: evaluation (with the client-side op-by-op check if asked).
    let eval = Evaluator::new(&loaded.params, &keys).map_err(|e| software(e.into()))?;
    let executor =
        EncryptedExecutor::new(plan, &loaded.info, &weights, &eval).map_err(exec_failure)?;
    let decryptor =
        Decryptor::new(&loaded.params, keygen.secret_key()).map_err(|e| software(e.into()))?;
    let run = if args.check_every_op {
        let threshold = predicted.unwrap_or(1e-3);
        let check = debug::check_every_op(
            plan,
            &loaded.info,
            &weights,
            &executor,
            &decryptor,
            &[plain_input],
            inputs,
            threshold,
        )
        .map_err(exec_failure)?;
        let worst = check
            .errors
            .iter()
            .max_by(|a, b| a.relative().total_cmp(&b.relative()));
        match &check.first_above {
            Some(first) => println!(
                "check every op: first instruction above the predicted error {threshold:.3e}: {first}"
            ),
            None => println!(
                "check every op: all {} instructions within the predicted error {threshold:.3e}",
                check.errors.len()
            ),
        }
        if let Some(worst) = worst {
            println!("check every op: worst {worst}");
        }
        check.encrypted
    } else {
        let bar = progress(plan, "eval");
        let run = executor
            .run_observed(inputs, |index, _| bar.set_position(index as u64 + 1))
            .map_err(exec_failure)?;
        bar.finish_and_clear();
        run
    };
    print!("{}", run.profile);

    // Client: decryption and logits.
    let decoded = client::decrypt_outputs(plan, &decryptor, &run.outputs).map_err(exec_failure)?;
    let hidden = decoded
        .into_iter()
        .find(|o| o.name == "hidden")
        .context("the plan has no `hidden` output")
        .map_err(data)?
        .value;
    let (enc_logits, vocab) = logits(&checkpoint, &hidden);

    // The plaintext reference forward (f64, the encrypted form: no activation quantization).
    let graph =
        frontend::build(&checkpoint, &options.frontend()).map_err(|e| software(e.into()))?;
    let info = ir::verify(&graph).map_err(|e| software(e.into()))?;
    let reference =
        forward::run(&graph, &info, &checkpoint, &tokens).map_err(|e| data(e.into()))?;
    let ref_hidden = reference
        .get(frontend::HIDDEN)
        .context("the reference forward has no hidden state")
        .map_err(software)?;
    let hidden_precision = Precision::between(hidden.values(), ref_hidden.data());
    let ref_hidden = exec::Activation::new(
        ref_hidden.rows(),
        ref_hidden.cols(),
        ref_hidden.data().to_vec(),
    )
    .map_err(exec_failure)?;
    let (ref_logits, _) = logits(&checkpoint, &ref_hidden);
    let logits_precision = Precision::between(&enc_logits, &ref_logits);
    let ours = top_k(&enc_logits, vocab, 1);
    let theirs = top_k(&ref_logits, vocab, 1);
    let agree = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    println!("precision against the plaintext reference forward:");
    println!("  hidden  {hidden_precision}");
    println!("  logits  {logits_precision}");
    if let Some(predicted) = predicted {
        println!("  predicted (compiler) {predicted:.3e}");
    }
    println!("  top-1 agreement {agree}/{} positions", ours.len());
    println!(
        "  top-1 tokens: {}",
        ours.iter()
            .map(|t| t.first().map_or_else(String::new, usize::to_string))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(path) = &args.output {
        write_outputs(path, &hidden, &enc_logits, vocab)?;
        println!("wrote {}: hidden, logits", path.display());
    }
    Ok(())
}
