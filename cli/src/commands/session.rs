//! What the client/server commands share: loading and checking a plan, binding weights, mapping errors to exit codes, the client's logits and top-k, the precision report.

use std::path::Path;

use anyhow::Context;
use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::scheme::Params;
use ensi_runtime::exec::encrypted::client;
use ensi_runtime::exec::encrypted::files::FileError;
use ensi_runtime::exec::{Activation, BoundWeights, ExecError};
use ensi_runtime::plan::{MAX_PLAN_BYTES, Plan, PlanFileError, PlanInfo, check, file};

use crate::exit::{Code, Failure};

/// A loaded, checked plan with its parameters.
pub struct LoadedPlan {
    /// The plan.
    pub plan: Plan,
    /// Its certificate.
    pub info: PlanInfo,
    /// Its CKKS parameters, rebuilt and checked against its hash.
    pub params: Params,
}

/// Loads `path`, checks it and rebuilds its parameters.
pub fn load_plan(path: &Path) -> Result<LoadedPlan, Failure> {
    let plan = file::load(path, MAX_PLAN_BYTES).map_err(|error| {
        let code = match error {
            PlanFileError::Io { .. } => Code::NoInput,
            _ => Code::DataError,
        };
        Failure::new(code, error)
    })?;
    checked(plan).map_err(|error| {
        Failure::new(
            Code::DataError,
            error.context(format!("{}: unusable plan", path.display())),
        )
    })
}

/// Checks `plan` and rebuilds its parameters.
pub fn checked(plan: Plan) -> anyhow::Result<LoadedPlan> {
    let info = check::check(&plan).context("the plan does not verify")?;
    let params = client::plan_params(&plan)?;
    Ok(LoadedPlan { plan, info, params })
}

/// Binds the plan's weights from `checkpoint` (digests checked).
pub fn bind(
    plan: &Plan,
    checkpoint: &Checkpoint,
    model_dir: &Path,
) -> Result<BoundWeights, Failure> {
    BoundWeights::bind(plan, checkpoint).map_err(|error| {
        Failure::new(
            Code::DataError,
            anyhow::Error::new(error).context(format!(
                "{}: not the model the plan was compiled for",
                model_dir.display()
            )),
        )
    })
}

/// A run file error: missing files are `NoInput`, the rest invalid data.
pub fn file_failure(error: FileError) -> Failure {
    let code = match &error {
        FileError::Scheme {
            source: ensi_runtime::ckks::scheme::serialize::SerializeError::Io { .. },
            ..
        } => Code::NoInput,
        _ => Code::DataError,
    };
    Failure::new(code, error)
}

/// An executor or client error: invalid data (the plan, keys or files do not fit).
pub fn exec_failure(error: ExecError) -> Failure {
    Failure::new(Code::DataError, error)
}

/// The client's logits: `hidden · Wᵀ` with the LM head `W` (`lm_head.weight`, or the
/// embedding table when tied), `[T, vocab]` row-major.
pub fn logits(checkpoint: &Checkpoint, hidden: &Activation) -> (Vec<f64>, usize) {
    ensi_runtime::exec::head_logits(checkpoint.lm_head(), hidden)
}

/// The `k` best tokens of each row, best first.
pub fn top_k(values: &[f64], cols: usize, k: usize) -> Vec<Vec<usize>> {
    values
        .chunks_exact(cols.max(1))
        .map(|row| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            order.truncate(k);
            order
        })
        .collect()
}

/// How far a decrypted tensor is from its reference.
#[derive(Debug, Clone, Copy)]
pub struct Precision {
    /// `max |actual − reference|`.
    pub max_abs: f64,
    /// Mean `|actual − reference|`.
    pub mean_abs: f64,
    /// `max |reference|`.
    pub max_reference: f64,
}

impl Precision {
    /// Compares two equally long tensors.
    pub fn between(actual: &[f64], reference: &[f64]) -> Self {
        let mut max_abs = 0.0f64;
        let mut sum = 0.0;
        let mut max_reference = 0.0f64;
        for (a, r) in actual.iter().zip(reference) {
            let e = (a - r).abs();
            max_abs = max_abs.max(e);
            sum += e;
            max_reference = max_reference.max(r.abs());
        }
        Self {
            max_abs,
            mean_abs: sum / actual.len().max(1) as f64,
            max_reference,
        }
    }

    /// `max_abs / max_reference`.
    pub fn relative(&self) -> f64 {
        self.max_abs / self.max_reference.max(f64::MIN_POSITIVE)
    }

    /// `−log2(relative)`.
    pub fn bits(&self) -> f64 {
        -self.relative().max(f64::MIN_POSITIVE).log2()
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max abs {:.3e}, mean abs {:.3e}, relative {:.3e} ({:.1} bits)",
            self.max_abs,
            self.mean_abs,
            self.relative(),
            self.bits()
        )
    }
}

/// A progress bar over a plan's instructions on stderr; drawn only on a terminal (quiet in
/// pipes and files).
pub fn progress(plan: &Plan, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(plan.instrs.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} instructions, {elapsed_precise}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use ensi_checkpoint::synth::SynthSpec;
    use ensi_compiler::{forward, frontend, ir};

    use super::*;

    /// The client's logits of the reference hidden state are the model's logits, with a tied
    /// head and with an untied one (whose matrix is not the embedding).
    #[test]
    fn client_logits_are_the_models_logits() {
        for tied in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let spec = SynthSpec {
                tied,
                ..SynthSpec::tiny()
            };
            spec.write(dir.path()).unwrap();
            let checkpoint = Checkpoint::open(dir.path()).unwrap();
            let tokens = [3, 1, 4];
            let options = frontend::Options::encrypted(tokens.len());
            let graph = frontend::build(&checkpoint, &options).unwrap();
            let info = ir::verify(&graph).unwrap();
            let outputs = forward::run(&graph, &info, &checkpoint, &tokens).unwrap();
            let hidden = outputs.get(frontend::HIDDEN).unwrap();
            let expected = outputs.get(frontend::LOGITS).unwrap();
            let hidden =
                Activation::new(hidden.rows(), hidden.cols(), hidden.data().to_vec()).unwrap();
            let (logits, vocab) = logits(&checkpoint, &hidden);
            assert_eq!(vocab, expected.cols());
            let worst = logits
                .iter()
                .zip(expected.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-9, "tied {tied}: {worst:e}");
        }
    }
}
