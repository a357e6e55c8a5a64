//! `ensi decrypt` (client): output ciphertexts -> the hidden state, the logits (hidden × the LM head) and the top-k tokens at each position.

use std::path::PathBuf;

use anyhow::Context;
use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::scheme::Decryptor;
use ensi_runtime::exec::encrypted::client;
use ensi_runtime::exec::encrypted::files::{self, FileError};

use super::session::{exec_failure, file_failure, load_plan, logits, top_k};
use crate::exit::{Code, Failure};
use crate::output::{F32Tensor, write_safetensors};

/// Arguments of `ensi decrypt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan written by `ensi compile`.
    pub plan: PathBuf,

    /// The checkpoint folder (only its embedding table is read, for the logits).
    pub model_dir: PathBuf,

    /// Secret key file written by `ensi keygen`.
    #[arg(long)]
    pub secret_key: PathBuf,

    /// Output ciphertexts written by `ensi eval`.
    #[arg(long)]
    pub input: PathBuf,

    /// Tokens to list per position.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,

    /// Also write `hidden` [1, T, hidden] and `logits` [1, T, vocab] (f32 safetensors).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Runs `ensi decrypt`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let loaded = load_plan(&args.plan)?;
    let plan = &loaded.plan;
    let (key_id, secret) =
        files::load_secret_key(&args.secret_key, plan, &loaded.params).map_err(file_failure)?;
    let output =
        files::load_ciphertexts(&args.input, plan, &loaded.params).map_err(file_failure)?;
    if output.key_id != key_id {
        return Err(file_failure(FileError::KeyMismatch {
            path: args.input.display().to_string(),
            expected: key_id,
            found: output.key_id,
        }));
    }
    let decryptor =
        Decryptor::new(&loaded.params, &secret).map_err(|e| Failure::new(Code::Software, e))?;
    let decoded =
        client::decrypt_outputs(plan, &decryptor, &output.vectors).map_err(exec_failure)?;
    let hidden = decoded
        .into_iter()
        .find(|o| o.name == "hidden")
        .context("the plan has no `hidden` output")
        .map_err(|e| Failure::new(Code::DataError, e))?
        .value;
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    let (logits, vocab) = logits(&checkpoint, &hidden);
    for (position, best) in top_k(&logits, vocab, args.top_k).iter().enumerate() {
        let listed: Vec<String> = best
            .iter()
            .map(|&t| format!("{t} ({:.3})", logits[position * vocab + t]))
            .collect();
        println!("position {position}: {}", listed.join(", "));
    }
    if let Some(path) = &args.output {
        write_outputs(path, &hidden, &logits, vocab)?;
        println!("wrote {}: hidden, logits", path.display());
    }
    Ok(())
}

/// Writes `hidden` and `logits` as `ensi forward` does.
pub fn write_outputs(
    path: &std::path::Path,
    hidden: &ensi_runtime::exec::Activation,
    logits: &[f64],
    vocab: usize,
) -> Result<(), Failure> {
    let tensors = [
        F32Tensor {
            name: "hidden".into(),
            shape: vec![1, hidden.tokens(), hidden.columns()],
            values: hidden.values().iter().map(|&v| v as f32).collect(),
        },
        F32Tensor {
            name: "logits".into(),
            shape: vec![1, hidden.tokens(), vocab],
            values: logits.iter().map(|&v| v as f32).collect(),
        },
    ];
    write_safetensors(path, &tensors)
        .with_context(|| format!("{}: cannot write the output file", path.display()))
        .map_err(|error| Failure::new(Code::CantCreate, error))
}
