//! `ensi keygen` (client): a plan -> a secret key file (owner-only) and an evaluation keys file for exactly the plan's Galois elements and relinearization.

use std::path::PathBuf;

use ensi_runtime::ckks::scheme::KeyGenerator;
use ensi_runtime::exec::encrypted::client;
use ensi_runtime::exec::encrypted::files::{self, KeyId};

use super::session::{exec_failure, load_plan};
use crate::exit::{Code, Failure};

/// Arguments of `ensi keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan written by `ensi compile`.
    pub plan: PathBuf,

    /// Secret key file to write (permissions 0600; keep it on the client).
    #[arg(long)]
    pub secret_key: PathBuf,

    /// Evaluation keys file to write (public: give it to the server).
    #[arg(long)]
    pub eval_keys: PathBuf,
}

/// Runs `ensi keygen`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let loaded = load_plan(&args.plan)?;
    let mut keygen =
        KeyGenerator::new(&loaded.params).map_err(|e| Failure::new(Code::Software, e))?;
    let keys = client::evaluation_keys(&loaded.plan, &mut keygen).map_err(exec_failure)?;
    let key_id = KeyId::random().map_err(|e| Failure::new(Code::Software, e))?;
    files::save_secret_key(&args.secret_key, &loaded.plan, key_id, keygen.secret_key())
        .map_err(|e| Failure::new(Code::CantCreate, e))?;
    files::save_evaluation_keys(&args.eval_keys, &loaded.plan, key_id, &keys)
        .map_err(|e| Failure::new(Code::CantCreate, e))?;
    println!(
        "keys {key_id} for parameters {} ({}): secret key {} (0600), evaluation keys {} ({} Galois keys{}, {:.1} MiB)",
        loaded.params.short_hash(),
        loaded.params.security().label(),
        args.secret_key.display(),
        args.eval_keys.display(),
        keys.galois_elements().len(),
        if keys.relin().is_some() {
            " + relinearization"
        } else {
            ""
        },
        keys.size_bytes() as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
