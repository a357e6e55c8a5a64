//! BitNet b1.58 checkpoints: `config.json` + safetensors in, validated memory-mapped tensors out.
#![doc = include_str!("../README.md")]

mod bytes;
mod checkpoint;
mod config;
mod error;
mod file;
mod float;
mod names;
mod store;
pub mod synth;
mod ternary;

pub use checkpoint::{CONFIG_FILE, Checkpoint, Layer};
pub use config::{Activation, Config, LinearClass, LmHead, Naming, Quantization, ScaleConvention};
pub use error::Error;
pub use float::{FloatDtype, FloatMatrix, FloatVector};
pub use names::{EMBEDDING, FINAL_NORM, LM_HEAD, Norm, Projection};
pub use store::{SHARD_INDEX, SINGLE_FILE};
pub use ternary::{ROWS_PER_BYTE, TernaryMatrix, WeightOrigin, WeightScale, pack_ternary};
