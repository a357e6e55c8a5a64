//! `ensi compile`: checkpoint -> the whole compiler -> a checked plan file (written atomically) and its report on stdout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use ensi_checkpoint::Checkpoint;
use ensi_compiler::calibrate::{self, Inputs};
use ensi_compiler::forward::Function;
use ensi_compiler::ir::AttentionKind;
use ensi_compiler::lower::Encoding;
use ensi_compiler::lower::encoding::EncodingPolicy;
use ensi_compiler::report::Format;
use ensi_compiler::{CompileOptions, PlacementPolicy, compile};
use ensi_runtime::plan::file;

use crate::exit::{Code, Failure};

/// Arguments of `ensi compile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hugging Face BitNet checkpoint folder (config.json + model.safetensors or a shard index).
    pub model_dir: PathBuf,

    /// Output plan file (written to a temporary sibling, then renamed: never half a plan).
    #[arg(short, long)]
    pub output: PathBuf,

    /// Tokens per inference (T).
    #[arg(
        long,
        conflicts_with = "token_file",
        required_unless_present = "token_file"
    )]
    pub tokens: Option<usize>,

    /// Token sequences, one per line (ids separated by spaces or commas): calibrate on them and
    /// include them in the error prediction; T is their length.
    #[arg(long)]
    pub token_file: Option<PathBuf>,

    /// Attention: sigmoid (σ(q·k/√d − ln T), the HE-friendly form) or softmax (the baseline).
    #[arg(long, value_enum, default_value_t = Attention::Sigmoid)]
    pub attention: Attention,

    /// Bootstrap placement policy.
    #[arg(long, value_enum, default_value_t = Policy::Rmsnorm)]
    pub policy: Policy,

    /// Precision target: max |plan − exact| / max |exact| of the hidden state at most 2^−B.
    #[arg(long, default_value_t = ensi_compiler::approx::DEFAULT_PRECISION_BITS)]
    pub precision_bits: u32,

    /// Small insecure rings (N = 2^11..2^13) with a deep chain, for tests; marked INSECURE in
    /// the plan and every report.
    #[arg(long)]
    pub insecure_test_params: bool,

    /// Encoding of the layers: chosen per layer by the cost model, or forced.
    #[arg(long, value_enum, default_value_t = EncodingArg::Auto)]
    pub encoding: EncodingArg,

    /// Random calibration sequences (when no token file is given).
    #[arg(long, default_value_t = calibrate::DEFAULT_SEQUENCES)]
    pub calibration_sequences: usize,

    /// Fit every approximation at these per-class tolerances instead of predicting the
    /// end-to-end error (for models too large to run the prediction at compile time), e.g.
    /// `relu2=3.8e-6,sigmoid=1e-5,inv_sqrt=3.9e-5`.
    #[arg(long, value_parser = parse_tolerances)]
    pub tolerances: Option<Tolerances>,

    /// Memory of the machine the plan runs on, GiB (for the encoding choice).
    #[arg(long, default_value_t = 24.0)]
    pub memory_gib: f64,
}

/// `--attention` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Attention {
    /// Sigmoid with bias −ln T, unnormalized.
    Sigmoid,
    /// Softmax over the causal positions.
    Softmax,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// ENSI: bootstrap at RMSNorms.
    Rmsnorm,
    /// The cheapest placement under the cost model.
    Optimal,
    /// Bootstrap when levels run out.
    Greedy,
}

/// `--encoding` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// The cheapest feasible encoding per layer.
    Auto,
    /// ENSI's column packing everywhere.
    Columns,
    /// Dense packing everywhere.
    Dense,
}

/// Per-class tolerances from the command line.
#[derive(Debug, Clone)]
pub struct Tolerances(pub BTreeMap<Function, f64>);

fn parse_tolerances(text: &str) -> Result<Tolerances, String> {
    let mut map = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not FUNCTION=TOLERANCE"))?;
        let function = Function::ALL
            .into_iter()
            .find(|f| f.name() == name.trim())
            .ok_or_else(|| format!("unknown function `{}`", name.trim()))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", value.trim()))?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("tolerance {value} must be positive"));
        }
        map.insert(function, value);
    }
    Ok(Tolerances(map))
}

/// The options `args` ask for.
fn options(args: &Args) -> Result<CompileOptions, Failure> {
    let data = |error: anyhow::Error| Failure::new(Code::DataError, error);
    let (tokens, calibration_inputs, extra) = match (&args.token_file, args.tokens) {
        (Some(path), _) => {
            let sequences = calibrate::read_token_file(path).map_err(|e| data(e.into()))?;
            let length = sequences.first().map_or(0, Vec::len);
            (length, Inputs::Sequences(sequences.clone()), sequences)
        }
        (None, Some(tokens)) => (
            tokens,
            Inputs::Random {
                sequences: args.calibration_sequences,
                seed: 0,
            },
            Vec::new(),
        ),
        (None, None) => return Err(data(anyhow::anyhow!("give --tokens or --token-file"))),
    };
    let mut options = CompileOptions::new(tokens);
    options.attention = match args.attention {
        Attention::Sigmoid => AttentionKind::Sigmoid,
        Attention::Softmax => AttentionKind::Softmax,
    };
    options.policy = match args.policy {
        Policy::Rmsnorm => PlacementPolicy::RmsNorm,
        Policy::Optimal => PlacementPolicy::Optimal,
        Policy::Greedy => PlacementPolicy::Greedy,
    };
    options.approx.precision_bits = args.precision_bits;
    options.approx.extra_inputs = extra;
    options.calibration.inputs = calibration_inputs;
    options.tolerances = args.tolerances.as_ref().map(|t| t.0.clone());
    options.insecure = args.insecure_test_params;
    options.encoding = match args.encoding {
        EncodingArg::Auto => EncodingPolicy::Auto,
        EncodingArg::Columns => EncodingPolicy::Fixed(Encoding::Columns),
        EncodingArg::Dense => EncodingPolicy::Fixed(Encoding::Dense),
    };
    options.memory_bytes = (args.memory_gib.max(0.0) * f64::from(1u32 << 30)) as u64;
    Ok(options)
}

/// Runs `ensi compile`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let options = options(args)?;
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    let name = args.model_dir.file_name().map_or_else(
        || args.model_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let compiled = compile(&checkpoint, &name, &options)
        .with_context(|| format!("cannot compile {}", args.model_dir.display()))
        .map_err(|error| Failure::new(Code::DataError, error))?;
    file::save(&compiled.plan, &args.output)
        .with_context(|| format!("{}: cannot write the plan", args.output.display()))
        .map_err(|error| Failure::new(Code::CantCreate, error))?;
    print!("{}", compiled.report.render(&compiled.plan, Format::Text));
    println!("wrote {}", args.output.display());
    Ok(())
}
