//! `ensi forward`: checkpoint + token ids -> the plaintext reference forward pass -> `hidden`, `logits` (and `layer{i}`) in a safetensors file.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use ensi_checkpoint::Checkpoint;
use ensi_compiler::forward::{self, ForwardError};
use ensi_compiler::frontend::{self, Options};
use ensi_compiler::ir::{self, AttentionKind};

use crate::exit::{Code, Failure};
use crate::output::{F32Tensor, write_safetensors};

/// Arguments of `ensi forward`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hugging Face BitNet checkpoint folder (config.json + model.safetensors or a shard index).
    pub model_dir: PathBuf,

    /// Token ids, separated by spaces or commas: "3 17 9".
    #[arg(long, value_parser = parse_tokens)]
    pub tokens: TokenIds,

    /// Attention: softmax (the stock model) or sigmoid (σ(q·k/√d − ln T), no normalization).
    #[arg(long, value_enum, default_value_t = Attention::Softmax)]
    pub attention: Attention,

    /// 8-bit per-token activation quantization: on (the stock model) or off (as under encryption).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub act_quant: Switch,

    /// Also write the residual stream after each decoder layer, as `layer0`, `layer1`, ...
    #[arg(long)]
    pub layers: bool,

    /// Output file (safetensors, f32): `hidden` [1, T, hidden], `logits` [1, T, vocab].
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Token ids from the command line.
#[derive(Debug, Clone)]
pub struct TokenIds(pub Vec<u32>);

pub fn parse_tokens(text: &str) -> Result<TokenIds, String> {
    let ids = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<u32>()
                .map_err(|_| format!("`{part}` is not a token id"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err("no token ids given".to_owned());
    }
    Ok(TokenIds(ids))
}

/// `--attention` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Attention {
    /// Softmax over the causal positions.
    Softmax,
    /// Sigmoid with bias −ln T, unnormalized.
    Sigmoid,
}

/// `on` / `off` switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Runs `ensi forward`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let tokens = &args.tokens.0;
    let checkpoint = Checkpoint::open(&args.model_dir)?;
    let options = Options {
        tokens: tokens.len(),
        attention: match args.attention {
            Attention::Softmax => AttentionKind::Softmax,
            Attention::Sigmoid => AttentionKind::Sigmoid,
        },
        act_quant: args.act_quant == Switch::On,
        layer_outputs: args.layers,
    };
    let software = |error: anyhow::Error| Failure::new(Code::Software, error);
    let graph = frontend::build(&checkpoint, &options).map_err(|e| software(e.into()))?;
    let info = ir::verify(&graph)
        .context("the frontend built a graph that does not verify")
        .map_err(software)?;
    let outputs =
        forward::run(&graph, &info, &checkpoint, tokens).map_err(|error| match error {
            ForwardError::TokenOutOfRange { .. } => Failure::new(Code::DataError, error),
            other => software(other.into()),
        })?;

    let tensors: Vec<F32Tensor> = outputs
        .iter()
        .map(|(name, matrix)| F32Tensor {
            name: name.to_owned(),
            shape: vec![1, matrix.rows(), matrix.cols()],
            // f32 output, as the reference outputs it is compared with.
            values: matrix.data().iter().map(|&v| v as f32).collect(),
        })
        .collect();
    write_safetensors(&args.output, &tensors)
        .with_context(|| format!("{}: cannot write the output file", args.output.display()))
        .map_err(|error| Failure::new(Code::CantCreate, error))?;

    let config = checkpoint.config();
    println!(
        "{}: hidden {}, {} layers, vocab {}; {} tokens, {} attention, activation quantization {}",
        args.model_dir.display(),
        config.hidden_size,
        config.num_layers,
        config.vocab_size,
        tokens.len(),
        options.attention,
        if options.act_quant { "on" } else { "off" },
    );
    let shapes: Vec<String> = tensors
        .iter()
        .map(|t| format!("{} {:?}", t.name, t.shape))
        .collect();
    println!("wrote {}: {}", args.output.display(), shapes.join(", "));
    if let Some(logits) = outputs.get(frontend::LOGITS) {
        let top: Vec<String> = (0..logits.rows())
            .map(|row| {
                let values = logits.row(row);
                let best =
                    (0..values.len()).fold(0, |b, i| if values[i] > values[b] { i } else { b });
                best.to_string()
            })
            .collect();
        println!("top-1 next token at each position: {}", top.join(" "));
    }
    Ok(())
}
