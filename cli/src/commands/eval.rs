//! `ensi eval` (server): plan + evaluation keys + input ciphertexts -> output ciphertexts and the timing profile; no secret key is ever read.

use std::path::PathBuf;

use anyhow::anyhow;
use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::scheme::Evaluator;
use ensi_runtime::exec::EncryptedExecutor;
use ensi_runtime::exec::encrypted::files::{self, CiphertextFile, FileError};

use super::session::{bind, exec_failure, file_failure, load_plan, progress};
use crate::exit::{Code, Failure};

/// Arguments of `ensi eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan written by `ensi compile`.
    pub plan: PathBuf,

    /// The checkpoint folder the plan was compiled from (its ternary weights and norms).
    pub model_dir: PathBuf,

    /// Evaluation keys file written by `ensi keygen` (a file holding a secret key is refused).
    #[arg(long)]
    pub eval_keys: PathBuf,

    /// Input ciphertexts written by `ensi encrypt`.
    #[arg(long)]
    pub input: PathBuf,

    /// Output ciphertext file to write (give it back to the client).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `ensi eval`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let loaded = load_plan(&args.plan)?;
    let plan = &loaded.plan;
    let (key_id, keys) =
        files::load_evaluation_keys(&args.eval_keys, plan, &loaded.params).map_err(file_failure)?;
    let input = files::load_ciphertexts(&args.input, plan, &loaded.params).map_err(file_failure)?;
    if input.key_id != key_id {
        return Err(file_failure(FileError::KeyMismatch {
            path: args.input.display().to_string(),
            expected: key_id,
            found: input.key_id,
        }));
    }
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    let weights = bind(plan, &checkpoint, &args.model_dir)?;
    let mut inputs = Vec::new();
    for signature in &plan.inputs {
        let cts = input
            .vectors
            .iter()
            .find(|(name, _)| *name == signature.name)
            .map(|(_, cts)| cts.clone())
            .ok_or_else(|| {
                Failure::new(
                    Code::DataError,
                    anyhow!("{}: no input `{}`", args.input.display(), signature.name),
                )
            })?;
        inputs.push(cts);
    }
    let eval =
        Evaluator::new(&loaded.params, &keys).map_err(|e| Failure::new(Code::DataError, e))?;
    let executor =
        EncryptedExecutor::new(plan, &loaded.info, &weights, &eval).map_err(exec_failure)?;
    let bar = progress(plan, "eval");
    let run = executor
        .run_observed(inputs, |index, _| bar.set_position(index as u64 + 1))
        .map_err(exec_failure)?;
    bar.finish_and_clear();
    files::save_ciphertexts(
        &args.output,
        plan,
        &loaded.params,
        &CiphertextFile {
            key_id,
            vectors: run.outputs,
        },
    )
    .map_err(|e| Failure::new(Code::CantCreate, e))?;
    print!("{}", run.profile);
    println!("wrote {}", args.output.display());
    Ok(())
}
