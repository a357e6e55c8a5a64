//! `ensi encrypt` (client): token ids -> embedding rows (the checkpoint's embedding table only) -> the plan's input layout -> ciphertexts under the secret key.

use std::path::PathBuf;

use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::scheme::Encryptor;
use ensi_runtime::exec::encrypted::client;
use ensi_runtime::exec::encrypted::files::{self, CiphertextFile};
use ensi_runtime::exec::{self, ExecError};

use super::forward::{TokenIds, parse_tokens};
use super::session::{exec_failure, file_failure, load_plan};
use crate::exit::{Code, Failure};

/// Arguments of `ensi encrypt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan written by `ensi compile`.
    pub plan: PathBuf,

    /// The checkpoint folder (only its embedding table is read).
    pub model_dir: PathBuf,

    /// Token ids, separated by spaces or commas: "3 17 9" (as many as the plan's T).
    #[arg(long, value_parser = parse_tokens)]
    pub tokens: TokenIds,

    /// Secret key file written by `ensi keygen`.
    #[arg(long)]
    pub secret_key: PathBuf,

    /// Ciphertext file to write (give it to the server).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `ensi encrypt`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let loaded = load_plan(&args.plan)?;
    let plan = &loaded.plan;
    let tokens = &args.tokens.0;
    if tokens.len() != plan.model.tokens as usize {
        return Err(Failure::new(
            Code::DataError,
            anyhow::anyhow!(
                "{} token ids given, the plan was compiled for T = {}",
                tokens.len(),
                plan.model.tokens
            ),
        ));
    }
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    if checkpoint.config().digest() != plan.model.config_digest {
        return Err(exec_failure(ExecError::ConfigMismatch {
            model: plan.model.name.clone(),
        }));
    }
    let (key_id, secret) =
        files::load_secret_key(&args.secret_key, plan, &loaded.params).map_err(file_failure)?;
    let embedded = exec::embed_tokens(checkpoint.embedding(), tokens).map_err(exec_failure)?;
    let mut encryptor = Encryptor::with_secret_key(&loaded.params, &secret)
        .map_err(|e| Failure::new(Code::Software, e))?;
    let inputs = client::encrypt_inputs(plan, &mut encryptor, &[embedded]).map_err(exec_failure)?;
    let count: usize = inputs.iter().map(Vec::len).sum();
    let vectors = plan
        .inputs
        .iter()
        .map(|input| input.name.clone())
        .zip(inputs)
        .collect();
    files::save_ciphertexts(
        &args.output,
        plan,
        &loaded.params,
        &CiphertextFile { key_id, vectors },
    )
    .map_err(|e| Failure::new(Code::CantCreate, e))?;
    println!(
        "encrypted {} tokens under keys {key_id}: {count} ciphertexts -> {}",
        tokens.len(),
        args.output.display()
    );
    Ok(())
}
