//! The model's roles (projections, norms) and the tensor names they have in each naming scheme.

use crate::config::{Config, LmHead, Naming};

/// Name of the token embedding table, `[vocab, hidden]`.
pub const EMBEDDING: &str = "model.embed_tokens.weight";
/// Name of the final RMSNorm's gain, `[hidden]`.
pub const FINAL_NORM: &str = "model.norm.weight";
/// Name of an untied LM head, `[vocab, hidden]`.
pub const LM_HEAD: &str = "lm_head.weight";

/// The seven ternary projections of a decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    /// Queries, `[heads·head_dim, hidden]`.
    Q,
    /// Keys, `[kv_heads·head_dim, hidden]`.
    K,
    /// Values, `[kv_heads·head_dim, hidden]`.
    V,
    /// Attention output, `[hidden, heads·head_dim]`.
    O,
    /// Feed-forward gate, `[intermediate, hidden]`.
    Gate,
    /// Feed-forward up projection, `[intermediate, hidden]`.
    Up,
    /// Feed-forward down projection, `[hidden, intermediate]`.
    Down,
}

impl Projection {
    /// Every projection, in the order a layer applies them.
    pub const ALL: [Self; 7] = [
        Self::Q,
        Self::K,
        Self::V,
        Self::O,
        Self::Gate,
        Self::Up,
        Self::Down,
    ];

    /// The module path inside a layer (`self_attn.q_proj`).
    pub fn module(self) -> &'static str {
        match self {
            Self::Q => "self_attn.q_proj",
            Self::K => "self_attn.k_proj",
            Self::V => "self_attn.v_proj",
            Self::O => "self_attn.o_proj",
            Self::Gate => "mlp.gate_proj",
            Self::Up => "mlp.up_proj",
            Self::Down => "mlp.down_proj",
        }
    }

    /// Logical `(out_features, in_features)` under `config`.
    pub fn shape(self, config: &Config) -> (usize, usize) {
        let hidden = config.hidden_size;
        match self {
            Self::Q => (config.query_width(), hidden),
            Self::K | Self::V => (config.kv_width(), hidden),
            Self::O => (hidden, config.query_width()),
            Self::Gate | Self::Up => (config.intermediate_size, hidden),
            Self::Down => (hidden, config.intermediate_size),
        }
    }
}

/// The four RMSNorms of a decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Norm {
    /// Before attention (`input_layernorm`).
    Input,
    /// Between attention and `o_proj` (SubLN: `attn_sub_norm`, 1bitLLM `inner_attn_ln`).
    AttnSub,
    /// Before the feed-forward layer (`post_attention_layernorm`).
    PostAttention,
    /// Between the gated product and `down_proj` (SubLN: `ffn_sub_norm`, 1bitLLM `ffn_layernorm`).
    FfnSub,
}

impl Norm {
    /// Every norm, in the order a layer applies them.
    pub const ALL: [Self; 4] = [
        Self::Input,
        Self::AttnSub,
        Self::PostAttention,
        Self::FfnSub,
    ];

    /// The module path inside a layer, in the checkpoint's naming scheme.
    pub fn module(self, naming: Naming) -> &'static str {
        match (self, naming) {
            (Self::Input, _) => "input_layernorm",
            (Self::AttnSub, Naming::BitNet) => "self_attn.attn_sub_norm",
            (Self::AttnSub, Naming::OneBitLlm) => "self_attn.inner_attn_ln",
            (Self::PostAttention, _) => "post_attention_layernorm",
            (Self::FfnSub, Naming::BitNet) => "mlp.ffn_sub_norm",
            (Self::FfnSub, Naming::OneBitLlm) => "mlp.ffn_layernorm",
        }
    }

    /// Number of gains under `config`.
    pub fn width(self, config: &Config) -> usize {
        match self {
            Self::Input | Self::PostAttention => config.hidden_size,
            Self::AttnSub => config.query_width(),
            Self::FfnSub => config.intermediate_size,
        }
    }
}

impl Config {
    /// Name of a projection's weight (`model.layers.3.mlp.up_proj.weight`).
    pub fn projection_name(&self, layer: usize, projection: Projection) -> String {
        format!("model.layers.{layer}.{}.weight", projection.module())
    }

    /// Name of a packed projection's scale (`model.layers.3.mlp.up_proj.weight_scale`).
    pub fn scale_name(&self, layer: usize, projection: Projection) -> String {
        format!("model.layers.{layer}.{}.weight_scale", projection.module())
    }

    /// Name of a norm's gain (`model.layers.3.post_attention_layernorm.weight`).
    pub fn norm_name(&self, layer: usize, norm: Norm) -> String {
        format!("model.layers.{layer}.{}.weight", norm.module(self.naming))
    }

    /// Name of the matrix the LM head multiplies by: the embedding when tied.
    pub fn lm_head_name(&self) -> &'static str {
        match self.lm_head {
            LmHead::Tied => EMBEDDING,
            LmHead::Untied => LM_HEAD,
        }
    }
}
