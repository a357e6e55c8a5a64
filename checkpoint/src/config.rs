//! `config.json` -> [`Config`]: both transformers spellings accepted, defaults made explicit, invariants checked.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::Error;

/// A BitNet b1.58 model's hyperparameters, normalized from a Hugging Face `config.json`.
///
/// Every field is checked on load: dimensions are positive, head counts describe one
/// attention layout, and packed checkpoints have output dimensions divisible by 4.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Width of the residual stream (`hidden_size`).
    pub hidden_size: usize,
    /// Width of the gated feed-forward layer (`intermediate_size`).
    pub intermediate_size: usize,
    /// Number of decoder layers (`num_hidden_layers`).
    pub num_layers: usize,
    /// Number of query heads (`num_attention_heads`).
    pub num_heads: usize,
    /// Number of key/value heads (`num_key_value_heads`, default: `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head (`head_dim`, default: `hidden_size / num_heads`).
    pub head_dim: usize,
    /// Number of token ids (`vocab_size`).
    pub vocab_size: usize,
    /// The ε of every RMSNorm (`rms_norm_eps`).
    pub rms_norm_eps: f64,
    /// RoPE base θ (`rope_theta`, or `rope_parameters.rope_theta` in transformers v5).
    pub rope_theta: f64,
    /// The gate's activation in the feed-forward layer (`hidden_act`).
    pub activation: Activation,
    /// Whether the LM head is the embedding table (`tie_word_embeddings`, default false).
    pub lm_head: LmHead,
    /// How the projection weights are stored (`quantization_config`).
    pub quantization: Quantization,
    /// Which tensor names the checkpoint uses.
    pub naming: Naming,
    /// The dtype the checkpoint was saved in (`torch_dtype` or `dtype`), for reports only.
    pub dtype: Option<String>,
}

/// The feed-forward gate's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `relu(x)²` (`hidden_act: relu2`, microsoft/bitnet-b1.58-2B-4T).
    Relu2,
    /// `x·σ(x)` (`hidden_act: silu`, the 2024 1bitLLM models).
    Silu,
}

/// Where the LM head's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LmHead {
    /// Logits are `h · Eᵀ` with `E = model.embed_tokens.weight`.
    Tied,
    /// Logits are `h · Wᵀ` with `W = lm_head.weight`.
    Untied,
}

/// How the checkpoint stores the ternary projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// `quantization_mode: offline`: packed 2-bit weights and a stored `weight_scale`.
    Offline {
        /// How the stored scale is applied.
        linear_class: LinearClass,
    },
    /// `quantization_mode: online`: master weights, ternarised with absmean when loaded.
    Online,
    /// No `quantization_config` (the 1bitLLM models): master weights, ternarised when loaded.
    Unspecified,
}

impl Quantization {
    /// Whether projections are stored packed (U8 `[out/4, in]`) rather than as master weights.
    pub fn is_packed(self) -> bool {
        matches!(self, Self::Offline { .. })
    }
}

/// transformers' `quantization_config.linear_class`: which module reads the packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearClass {
    /// `autobitlinear`: the stored scale multiplies the output (microsoft/bitnet-b1.58-2B-4T).
    AutoBitLinear,
    /// `bitlinear` (transformers' default): the stored scale divides the output.
    BitLinear,
}

impl LinearClass {
    /// How a stored `weight_scale` turns into the factor of `y = scale · (T x)`.
    pub fn scale_convention(self) -> ScaleConvention {
        match self {
            Self::AutoBitLinear => ScaleConvention::Multiply,
            Self::BitLinear => ScaleConvention::Divide,
        }
    }
}

/// Whether a stored weight scale multiplies or divides a projection's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleConvention {
    /// `y = (T x) · stored`.
    Multiply,
    /// `y = (T x) / stored`.
    Divide,
}

/// The tensor-name scheme of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Naming {
    /// transformers' `BitNetForCausalLM` (`model_type: bitnet`, 2025): sub-norms
    /// `self_attn.attn_sub_norm` and `mlp.ffn_sub_norm`.
    BitNet,
    /// The 2024 1bitLLM reproductions (`model_type: llama`, `BitnetForCausalLM`): sub-norms
    /// `self_attn.inner_attn_ln` and `mlp.ffn_layernorm`.
    OneBitLlm,
}

impl Config {
    /// Reads and checks `path` (a `config.json`).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(path, &text)
    }

    /// BLAKE3 digest of everything in the configuration that changes the computation (shapes,
    /// ε, θ, activation, head, quantization, naming) — not of the file's bytes, so formatting
    /// and unknown keys do not matter. Plans carry it to refuse another model's checkpoint.
    pub fn digest(&self) -> [u8; 32] {
        let canonical = format!(
            "ensi config v1|hidden={}|intermediate={}|layers={}|heads={}|kv_heads={}|head_dim={}\
             |vocab={}|eps={:016x}|theta={:016x}|act={:?}|head={:?}|quant={:?}|naming={:?}",
            self.hidden_size,
            self.intermediate_size,
            self.num_layers,
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
            self.vocab_size,
            self.rms_norm_eps.to_bits(),
            self.rope_theta.to_bits(),
            self.activation,
            self.lm_head,
            self.quantization,
            self.naming,
        );
        *blake3::hash(canonical.as_bytes()).as_bytes()
    }

    /// Parses and checks the contents of a `config.json`; `path` is used in error messages only.
    pub fn from_json(path: &Path, json: &[u8]) -> Result<Self, Error> {
        let object: Map<String, Value> =
            serde_json::from_slice(json).map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            })?;
        let keys = Keys {
            path,
            object: &object,
        };

        let naming = keys.naming()?;
        let hidden_size = keys.positive("hidden_size")?;
        let intermediate_size = keys.positive("intermediate_size")?;
        let num_layers = keys.positive("num_hidden_layers")?;
        let num_heads = keys.positive("num_attention_heads")?;
        let num_kv_heads = keys
            .optional_positive("num_key_value_heads")?
            .unwrap_or(num_heads);
        let vocab_size = keys.positive("vocab_size")?;
        let head_dim = match keys.optional_positive("head_dim")? {
            Some(head_dim) => head_dim,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(keys.heads(format!(
                    "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_heads} \
                     (and there is no head_dim)"
                )));
            }
        };
        if num_kv_heads > num_heads || num_heads % num_kv_heads != 0 {
            return Err(keys.heads(format!(
                "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            )));
        }
        if head_dim % 2 != 0 {
            return Err(keys.heads(format!(
                "head_dim {head_dim} is odd, but rotary embeddings rotate pairs of half-dimensions"
            )));
        }
        let Some(kv_width) = num_kv_heads.checked_mul(head_dim) else {
            return Err(keys.heads(format!(
                "num_key_value_heads {num_kv_heads} × head_dim {head_dim} overflows"
            )));
        };
        let Some(query_width) = num_heads.checked_mul(head_dim) else {
            return Err(keys.heads(format!(
                "num_attention_heads {num_heads} × head_dim {head_dim} overflows"
            )));
        };

        let activation = keys.activation()?;
        let rms_norm_eps = keys.positive_number("rms_norm_eps")?;
        let rope_theta = keys.rope_theta()?;
        let lm_head = match keys.optional_bool("tie_word_embeddings")? {
            Some(true) => LmHead::Tied,
            Some(false) | None => LmHead::Untied,
        };
        for bias in ["attention_bias", "mlp_bias"] {
            if keys.optional_bool(bias)? == Some(true) {
                return Err(keys.unsupported(format!("`{bias}: true` (BitNet has no biases)")));
            }
        }
        let quantization = keys.quantization()?;
        if quantization.is_packed() {
            // Four 2-bit fields a byte, along the output dimension.
            let widths = [
                ("hidden_size", hidden_size),
                ("intermediate_size", intermediate_size),
            ];
            for (key, width) in widths {
                if width % 4 != 0 {
                    return Err(keys.invalid(
                        key,
                        format!("must be divisible by 4 for packed ternary weights, found {width}"),
                    ));
                }
            }
            for (what, width) in [("query", query_width), ("key/value", kv_width)] {
                if width % 4 != 0 {
                    return Err(keys.heads(format!(
                        "the {what} projection's width {width} is not divisible by 4, \
                         as packed ternary weights need"
                    )));
                }
            }
        }
        let dtype = match keys.optional_string("torch_dtype")? {
            Some(dtype) => Some(dtype),
            None => keys.optional_string("dtype")?,
        };

        Ok(Self {
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            rms_norm_eps,
            rope_theta,
            activation,
            lm_head,
            quantization,
            naming,
            dtype: dtype.map(str::to_owned),
        })
    }

    /// Width of the concatenated query heads, `num_heads · head_dim`.
    pub fn query_width(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// Width of the concatenated key (or value) heads, `num_kv_heads · head_dim`.
    pub fn kv_width(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }
}

/// Typed access to the keys of one JSON object, with errors that name the file and key.
struct Keys<'a> {
    path: &'a Path,
    object: &'a Map<String, Value>,
}

impl Keys<'_> {
    fn path(&self) -> PathBuf {
        self.path.to_owned()
    }

    /// A key's value; JSON `null` counts as absent, as transformers treats it.
    fn get(&self, key: &str) -> Option<&Value> {
        self.object.get(key).filter(|value| !value.is_null())
    }

    fn missing(&self, key: &str) -> Error {
        Error::MissingConfigKey {
            path: self.path(),
            key: key.to_owned(),
        }
    }

    fn invalid(&self, key: &str, problem: String) -> Error {
        Error::InvalidConfigValue {
            path: self.path(),
            key: key.to_owned(),
            problem,
        }
    }

    fn heads(&self, detail: String) -> Error {
        Error::InconsistentHeads {
            path: self.path(),
            detail,
        }
    }

    fn unsupported(&self, detail: String) -> Error {
        Error::Unsupported {
            path: self.path(),
            detail,
        }
    }

    fn positive(&self, key: &str) -> Result<usize, Error> {
        self.optional_positive(key)?
            .ok_or_else(|| self.missing(key))
    }

    fn optional_positive(&self, key: &str) -> Result<Option<usize>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value
            .as_u64()
            .and_then(|number| usize::try_from(number).ok())
        {
            Some(number) if number > 0 => Ok(Some(number)),
            _ => Err(self.invalid(key, format!("must be a positive integer, found `{value}`"))),
        }
    }

    fn positive_number(&self, key: &str) -> Result<f64, Error> {
        let value = self.get(key).ok_or_else(|| self.missing(key))?;
        match value.as_f64() {
            Some(number) if number.is_finite() && number > 0.0 => Ok(number),
            _ => Err(self.invalid(key, format!("must be a positive number, found `{value}`"))),
        }
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(value) => {
                Err(self.invalid(key, format!("must be true or false, found `{value}`")))
            }
        }
    }

    fn optional_string(&self, key: &str) -> Result<Option<&str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(value) => Err(self.invalid(key, format!("must be a string, found `{value}`"))),
        }
    }

    fn string(&self, key: &str) -> Result<&str, Error> {
        self.optional_string(key)?.ok_or_else(|| self.missing(key))
    }

    fn naming(&self) -> Result<Naming, Error> {
        match self.string("model_type")? {
            "bitnet" => Ok(Naming::BitNet),
            "llama" => {
                let is_bitnet = self
                    .get("architectures")
                    .and_then(Value::as_array)
                    .is_some_and(|architectures| {
                        architectures
                            .iter()
                            .any(|a| a.as_str() == Some("BitnetForCausalLM"))
                    });
                if is_bitnet {
                    Ok(Naming::OneBitLlm)
                } else {
                    Err(self.unsupported(
                        "model_type `llama` without architecture `BitnetForCausalLM` is a plain \
                         Llama model, not BitNet b1.58"
                            .to_owned(),
                    ))
                }
            }
            other => Err(self.unsupported(format!(
                "model_type `{other}` is not BitNet b1.58 (expected `bitnet`, or `llama` with \
                 architecture `BitnetForCausalLM`)"
            ))),
        }
    }

    fn activation(&self) -> Result<Activation, Error> {
        match self.string("hidden_act")? {
            "relu2" => Ok(Activation::Relu2),
            "silu" => Ok(Activation::Silu),
            other => Err(Error::UnknownActivation {
                path: self.path(),
                found: other.to_owned(),
            }),
        }
    }

    fn rope_theta(&self) -> Result<f64, Error> {
        if self.get("rope_scaling").is_some() {
            return Err(self.unsupported("`rope_scaling` (only plain RoPE is implemented)".into()));
        }
        if self.get("rope_theta").is_some() {
            return self.positive_number("rope_theta");
        }
        let Some(parameters) = self.get("rope_parameters") else {
            return Err(self.missing("rope_theta"));
        };
        let Value::Object(parameters) = parameters else {
            return Err(self.invalid(
                "rope_parameters",
                format!("must be a JSON object, found `{parameters}`"),
            ));
        };
        let nested = Keys {
            path: self.path,
            object: parameters,
        };
        if let Some(kind) = nested.optional_string("rope_type")?
            && kind != "default"
        {
            return Err(self.unsupported(format!(
                "rope_parameters.rope_type `{kind}` (only `default` is implemented)"
            )));
        }
        nested
            .positive_number("rope_theta")
            .map_err(|error| prefix_key(error, "rope_parameters."))
    }

    fn quantization(&self) -> Result<Quantization, Error> {
        const KEY: &str = "quantization_config";
        let Some(value) = self.get(KEY) else {
            return Ok(Quantization::Unspecified);
        };
        let Value::Object(fields) = value else {
            return Err(self.invalid(KEY, format!("must be a JSON object, found `{value}`")));
        };
        let nested = Keys {
            path: self.path,
            object: fields,
        };
        let prefixed = |error| prefix_key(error, "quantization_config.");
        let method = nested.string("quant_method").map_err(prefixed)?;
        if method != "bitnet" {
            return Err(self.unsupported(format!(
                "quantization_config.quant_method `{method}` (expected `bitnet`)"
            )));
        }
        if nested.optional_bool("use_rms_norm").map_err(prefixed)? == Some(true) {
            return Err(self.unsupported(
                "quantization_config.use_rms_norm (a norm inside BitLinear)".to_owned(),
            ));
        }
        // transformers' BitNetQuantConfig defaults: linear_class bitlinear, mode offline.
        let linear_class = match nested.optional_string("linear_class").map_err(prefixed)? {
            Some("autobitlinear") => LinearClass::AutoBitLinear,
            Some("bitlinear") | None => LinearClass::BitLinear,
            Some(other) => {
                return Err(self.invalid(
                    "quantization_config.linear_class",
                    format!("must be `autobitlinear` or `bitlinear`, found `{other}`"),
                ));
            }
        };
        match nested
            .optional_string("quantization_mode")
            .map_err(prefixed)?
        {
            Some("offline") | None => Ok(Quantization::Offline { linear_class }),
            Some("online") => Ok(Quantization::Online),
            Some(other) => Err(self.invalid(
                "quantization_config.quantization_mode",
                format!("must be `offline` or `online`, found `{other}`"),
            )),
        }
    }
}

/// Qualifies the key named by a nested lookup's error (`rope_theta` -> `rope_parameters.rope_theta`).
fn prefix_key(error: Error, prefix: &str) -> Error {
    match error {
        Error::MissingConfigKey { path, key } => Error::MissingConfigKey {
            path,
            key: format!("{prefix}{key}"),
        },
        Error::InvalidConfigValue { path, key, problem } => Error::InvalidConfigValue {
            path,
            key: format!("{prefix}{key}"),
            problem,
        },
        other => other,
    }
}
