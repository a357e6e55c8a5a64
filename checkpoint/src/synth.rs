//! Synthetic BitNet checkpoints: real names, shapes and layouts, deterministic random weights, for tests and benchmarks.
//!
//! [`SynthSpec`] describes a 2025-style model by its sizes; [`tensors_for`] and
//! [`write_weights`] follow any parsed [`Config`] (either naming scheme, packed or master
//! weights, either scale convention, tied or untied head), for configurations kept as files.
//!
//! Files are written in a streaming fashion (the data of a 1.2 GB checkpoint is generated
//! in 1 MiB chunks), so synthesizing a 2B-shaped model costs no memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use half::bf16;
use safetensors::Dtype;
use serde_json::{Map, Value, json};

use crate::checkpoint::CONFIG_FILE;
use crate::config::{Config, LmHead, Naming, Quantization, ScaleConvention};
use crate::names::{EMBEDDING, FINAL_NORM, LM_HEAD, Norm, Projection};
use crate::store::SINGLE_FILE;

/// The hyperparameters of a synthetic BitNet checkpoint (2025 naming, ReLU², RoPE θ = 500000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSpec {
    /// Residual width.
    pub hidden_size: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Packed U8 weights with BF16 scales (`offline`), or BF16 master weights (`online`).
    pub packed: bool,
    /// Whether the LM head is the embedding.
    pub tied: bool,
    /// Seed of every random tensor.
    pub seed: u64,
}

impl SynthSpec {
    /// The tensor shapes of microsoft/bitnet-b1.58-2B-4T (≈1.18 GB packed).
    pub fn bitnet_2b_4t() -> Self {
        Self {
            hidden_size: 2560,
            intermediate_size: 6912,
            num_layers: 30,
            num_heads: 20,
            num_kv_heads: 5,
            vocab_size: 128_256,
            packed: true,
            tied: true,
            seed: 2025,
        }
    }

    /// A model small enough to build byte by byte in tests: hidden 8, 1 layer, 2/1 heads.
    pub fn tiny() -> Self {
        Self {
            hidden_size: 8,
            intermediate_size: 16,
            num_layers: 1,
            num_heads: 2,
            num_kv_heads: 1,
            vocab_size: 16,
            packed: true,
            tied: true,
            seed: 7,
        }
    }

    /// The `config.json` of this model.
    pub fn config_json(&self) -> Value {
        let mode = if self.packed { "offline" } else { "online" };
        json!({
            "architectures": ["BitNetForCausalLM"],
            "model_type": "bitnet",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "vocab_size": self.vocab_size,
            "hidden_act": "relu2",
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "tie_word_embeddings": self.tied,
            "torch_dtype": "bfloat16",
            "quantization_config": {
                "quant_method": "bitnet",
                "linear_class": "autobitlinear",
                "quantization_mode": mode,
            },
        })
    }

    /// Every tensor of the checkpoint, in the order they are written.
    pub fn tensors(&self) -> Vec<SynthTensor> {
        tensors_for(&self.config())
    }

    /// The normalized configuration `config_json` describes, for naming and shaping tensors.
    fn config(&self) -> Config {
        let naming = Naming::BitNet;
        let head_dim = self.hidden_size / self.num_heads.max(1);
        Config {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_layers,
            num_heads: self.num_heads,
            num_kv_heads: self.num_kv_heads,
            head_dim,
            vocab_size: self.vocab_size,
            rms_norm_eps: 1e-5,
            rope_theta: 500_000.0,
            activation: crate::Activation::Relu2,
            lm_head: if self.tied {
                LmHead::Tied
            } else {
                LmHead::Untied
            },
            quantization: if self.packed {
                Quantization::Offline {
                    linear_class: crate::LinearClass::AutoBitLinear,
                }
            } else {
                Quantization::Online
            },
            naming,
            dtype: Some("bfloat16".to_owned()),
        }
    }

    /// Writes `config.json` and `model.safetensors` into `dir`; returns the safetensors size.
    pub fn write(&self, dir: &Path) -> io::Result<u64> {
        write_config(dir, &self.config_json())?;
        write_weights(dir, &self.config(), self.seed)
    }
}

/// Every tensor a checkpoint of `config` holds, in the order they are written: names from its
/// naming scheme, packed U8 weights with a `weight_scale` or float master weights from its
/// quantization, an `lm_head` when untied, floats in its `torch_dtype` (BF16 when absent).
pub fn tensors_for(config: &Config) -> Vec<SynthTensor> {
    let hidden = config.hidden_size;
    let float = float_dtype(config);
    let mut tensors = vec![SynthTensor::new(
        EMBEDDING,
        float,
        vec![config.vocab_size, hidden],
        SynthData::Uniform { amplitude: 1.0 },
    )];
    for layer in 0..config.num_layers {
        for norm in Norm::ALL {
            let name = config.norm_name(layer, norm);
            let shape = vec![norm.width(config)];
            tensors.push(SynthTensor::new(&name, float, shape, SynthData::Gain));
        }
        for projection in Projection::ALL {
            let (rows, cols) = projection.shape(config);
            let name = config.projection_name(layer, projection);
            // Effective scales near 1/sqrt(fan_in) keep activations of order one.
            let amplitude = 1.0 / (cols as f32).sqrt();
            match config.quantization {
                Quantization::Offline { linear_class } => {
                    let stored = match linear_class.scale_convention() {
                        ScaleConvention::Multiply => amplitude,
                        ScaleConvention::Divide => amplitude.recip(),
                    };
                    tensors.push(SynthTensor::new(
                        &name,
                        Dtype::U8,
                        vec![rows / 4, cols],
                        SynthData::Ternary,
                    ));
                    tensors.push(SynthTensor::new(
                        &config.scale_name(layer, projection),
                        Dtype::BF16,
                        vec![1],
                        SynthData::Bytes(bf16::from_f32(stored).to_le_bytes().to_vec()),
                    ));
                }
                Quantization::Online | Quantization::Unspecified => {
                    tensors.push(SynthTensor::new(
                        &name,
                        float,
                        vec![rows, cols],
                        SynthData::Uniform { amplitude },
                    ));
                }
            }
        }
    }
    tensors.push(SynthTensor::new(
        FINAL_NORM,
        float,
        vec![hidden],
        SynthData::Gain,
    ));
    if config.lm_head == LmHead::Untied {
        tensors.push(SynthTensor::new(
            LM_HEAD,
            float,
            vec![config.vocab_size, hidden],
            SynthData::Uniform { amplitude: 1.0 },
        ));
    }
    tensors
}

/// Writes the `model.safetensors` of a checkpoint of `config` into `dir` (next to its
/// `config.json`, which the caller writes); returns the file's size.
pub fn write_weights(dir: &Path, config: &Config, seed: u64) -> io::Result<u64> {
    write_safetensors(&dir.join(SINGLE_FILE), &tensors_for(config), seed)
}

/// The float dtype `torch_dtype` names; BF16 (the 2B-4T checkpoint's) for anything else.
fn float_dtype(config: &Config) -> Dtype {
    match config.dtype.as_deref() {
        Some("float16") => Dtype::F16,
        Some("float32") => Dtype::F32,
        _ => Dtype::BF16,
    }
}

/// One tensor of a synthetic checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthTensor {
    /// Tensor name.
    pub name: String,
    /// Element type written into the header.
    pub dtype: Dtype,
    /// Shape written into the header.
    pub shape: Vec<usize>,
    /// How the bytes are produced.
    pub data: SynthData,
}

impl SynthTensor {
    /// A tensor called `name`.
    pub fn new(name: &str, dtype: Dtype, shape: Vec<usize>, data: SynthData) -> Self {
        Self {
            name: name.to_owned(),
            dtype,
            shape,
            data,
        }
    }

    /// Bytes the header says the tensor occupies: shape × dtype (whole bytes).
    pub fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.bitsize() / 8
    }
}

/// How a synthetic tensor's bytes are produced.
#[derive(Debug, Clone, PartialEq)]
pub enum SynthData {
    /// Exactly these bytes (their length need not match the header: malformed files are a use).
    Bytes(Vec<u8>),
    /// Random packed ternary bytes: every 2-bit field uniform in {0, 1, 2}.
    Ternary,
    /// Random values uniform in `[-amplitude, amplitude]`, in the tensor's float dtype.
    Uniform {
        /// Half-width of the interval.
        amplitude: f32,
    },
    /// Random norm gains, uniform in `[0.5, 1.5]`, in the tensor's float dtype.
    Gain,
}

/// Writes `config` as `dir/config.json`.
pub fn write_config(dir: &Path, config: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(config).map_err(io::Error::other)?;
    std::fs::write(dir.join(CONFIG_FILE), text)
}

/// Writes `tensors` as a safetensors file at `path`, in order; returns the file's size.
///
/// The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
/// Random data depends only on `seed` and the tensor's position.
pub fn write_safetensors(path: &Path, tensors: &[SynthTensor], seed: u64) -> io::Result<u64> {
    let mut header = Map::new();
    header.insert("__metadata__".to_owned(), json!({ "format": "pt" }));
    let mut offset = 0usize;
    for tensor in tensors {
        let len = match &tensor.data {
            SynthData::Bytes(bytes) => bytes.len(),
            _ => tensor.byte_len(),
        };
        header.insert(
            tensor.name.clone(),
            json!({
                "dtype": tensor.dtype.to_string(),
                "shape": tensor.shape,
                "data_offsets": [offset, offset + len],
            }),
        );
        offset += len;
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).map_err(io::Error::other)?;
    header.resize(header.len().next_multiple_of(8), b' ');

    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut chunk = Vec::new();
    for (index, tensor) in tensors.iter().enumerate() {
        let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match &tensor.data {
            SynthData::Bytes(bytes) => out.write_all(bytes)?,
            data => {
                let mut remaining = tensor.byte_len();
                while remaining > 0 {
                    let len = remaining.min(1 << 20);
                    chunk.clear();
                    fill(&mut chunk, len, tensor.dtype, data, &mut rng);
                    out.write_all(&chunk)?;
                    remaining -= len;
                }
            }
        }
    }
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(8 + header.len() as u64 + offset as u64)
}

/// Appends `len` generated bytes (a whole number of elements) to `chunk`.
fn fill(chunk: &mut Vec<u8>, len: usize, dtype: Dtype, data: &SynthData, rng: &mut SplitMix64) {
    let (low, high) = match data {
        SynthData::Ternary => {
            chunk.extend((0..len).map(|_| {
                let mut draw = rng.next();
                let mut byte = 0u8;
                for field in 0..4 {
                    byte |= ((draw % 3) as u8) << (2 * field);
                    draw /= 3;
                }
                byte
            }));
            return;
        }
        SynthData::Uniform { amplitude } => (-amplitude, *amplitude),
        SynthData::Gain => (0.5, 1.5),
        SynthData::Bytes(_) => return,
    };
    let size = match dtype {
        Dtype::F32 => 4,
        Dtype::F16 | Dtype::BF16 => 2,
        _ => {
            // Not a float type: any bytes will do.
            chunk.extend((0..len).map(|_| rng.next() as u8));
            return;
        }
    };
    for _ in 0..len / size {
        let value = low + (high - low) * ((rng.next() >> 40) as f32 / (1u64 << 24) as f32);
        match dtype {
            Dtype::F32 => chunk.extend_from_slice(&value.to_le_bytes()),
            Dtype::F16 => chunk.extend_from_slice(&half::f16::from_f32(value).to_le_bytes()),
            _ => chunk.extend_from_slice(&bf16::from_f32(value).to_le_bytes()),
        }
    }
}

/// Steele, Lea and Flood's SplitMix64: tiny, fast, and good enough for synthetic weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
