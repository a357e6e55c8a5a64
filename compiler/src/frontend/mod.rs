//! Checkpoint -> model IR: the BitNet b1.58 forward pass over `T` tokens, as an [`ir::Graph`](crate::ir::Graph) referring to weights by name.
//!
//! The graph is the model exactly as transformers' `BitNetForCausalLM` computes it (see
//! `reference/bitnet-format.md`, section 5), with two switches that the encrypted
//! evaluation needs: activation quantization can be left out, and attention can be sigmoid
//! instead of softmax. Only configuration, names, shapes and scales are read from the
//! checkpoint; no weight data is touched.

use ensi_checkpoint::{Activation, Checkpoint, LmHead, Norm, Projection};

use crate::ir::{AttentionKind, Graph, Handle, Node, Op, Real, TensorName, Type};

/// Name of the output holding the final-normed hidden state, `[T, hidden]`.
pub const HIDDEN: &str = "hidden";
/// Name of the output holding the logits, `[T, vocab]`.
pub const LOGITS: &str = "logits";

/// Name of the output holding the residual stream after decoder layer `layer`.
pub fn layer_output(layer: usize) -> String {
    format!("layer{layer}")
}

/// Which variant of the model the graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Number of token positions `T`.
    pub tokens: usize,
    /// Softmax (the stock model) or sigmoid attention (the HE-friendly form).
    pub attention: AttentionKind,
    /// Whether projections quantize their inputs to 8 bits per token, as the stock model
    /// does (dropped under encryption).
    pub act_quant: bool,
    /// Whether each layer's residual stream is an output (`layer0`, `layer1`, ...).
    pub layer_outputs: bool,
}

impl Options {
    /// The stock model: softmax attention and 8-bit activation quantization.
    pub fn stock(tokens: usize) -> Self {
        Self {
            tokens,
            attention: AttentionKind::Softmax,
            act_quant: true,
            layer_outputs: false,
        }
    }

    /// The form an encrypted evaluation computes: sigmoid attention, no activation quantization.
    pub fn encrypted(tokens: usize) -> Self {
        Self {
            tokens,
            attention: AttentionKind::Sigmoid,
            act_quant: false,
            layer_outputs: false,
        }
    }
}

/// Why a graph cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontendError {
    /// The graph needs at least one token.
    #[error("the token count must be at least 1")]
    NoTokens,
}

/// Bits of BitNet's activation quantization.
const ACT_QUANT_BITS: u32 = 8;

/// Builds the model graph of `checkpoint` for `options.tokens` tokens.
///
/// Outputs: [`HIDDEN`], [`LOGITS`], and with `layer_outputs` one [`layer_output`] per layer.
/// The result passes [`ir::verify`](crate::ir::verify).
pub fn build(checkpoint: &Checkpoint, options: &Options) -> Result<Graph, FrontendError> {
    if options.tokens == 0 {
        return Err(FrontendError::NoTokens);
    }
    let mut builder = Builder {
        checkpoint,
        options,
        graph: Graph::new(),
    };
    let config = checkpoint.config();
    let ids = builder.graph.push(
        Op::Tokens {},
        Type::Ids {
            len: options.tokens,
        },
    );
    let embedding = checkpoint.embedding();
    let mut residual = builder.push(
        Op::Embed {
            ids,
            table: embedding.name().into(),
        },
        embedding.cols(),
    );
    for layer in 0..config.num_layers {
        residual = builder.decoder_layer(layer, residual);
        if options.layer_outputs {
            builder.graph.add_output(layer_output(layer), residual);
        }
    }
    let hidden = builder.rms_norm(residual, checkpoint.final_norm().name());
    let head = checkpoint.lm_head();
    let logits = builder.push(
        Op::LmHead {
            x: hidden,
            weight: head.name().into(),
            tied: config.lm_head == LmHead::Tied,
        },
        head.rows(),
    );
    builder.graph.add_output(HIDDEN, hidden);
    builder.graph.add_output(LOGITS, logits);
    Ok(builder.graph)
}

/// Appends the nodes of the model to a graph.
struct Builder<'a> {
    checkpoint: &'a Checkpoint,
    options: &'a Options,
    graph: Graph,
}

impl Builder<'_> {
    /// Appends a node whose result is `[T, width]`.
    fn push(&mut self, op: Op, width: usize) -> Handle<Node> {
        self.graph
            .push(op, Type::tensor(self.options.tokens, width))
    }

    fn width(&self, value: Handle<Node>) -> usize {
        match self.graph.node(value).ty {
            Type::Tensor { cols, .. } => cols,
            Type::Ids { .. } => 0,
        }
    }

    /// One decoder layer: pre-norm attention with SubLN, then the pre-norm gated feed-forward
    /// layer with SubLN, each added to the residual stream.
    fn decoder_layer(&mut self, layer: usize, residual: Handle<Node>) -> Handle<Node> {
        let config = self.checkpoint.config();
        let weights = &self.checkpoint.layers()[layer];
        let (heads, kv_heads, head_dim) = (config.num_heads, config.num_kv_heads, config.head_dim);
        let theta = Real(config.rope_theta);

        let normed = self.rms_norm(residual, weights.norm(Norm::Input).name());
        // transformers quantizes the input inside each of q, k and v; the three results are
        // identical, so the graph quantizes once (likewise for gate and up).
        let input = self.act_quant(normed);
        let q = self.linear(input, layer, Projection::Q);
        let k = self.linear(input, layer, Projection::K);
        let v = self.linear(input, layer, Projection::V);
        let q = self.push(
            Op::Rope {
                x: q,
                heads,
                head_dim,
                theta,
            },
            self.width(q),
        );
        let k = self.push(
            Op::Rope {
                x: k,
                heads: kv_heads,
                head_dim,
                theta,
            },
            self.width(k),
        );
        let attention = Op::Attention {
            q,
            k,
            v,
            heads,
            kv_heads,
            head_dim,
            kind: self.options.attention,
            causal: true,
            score_scale: Real(1.0),
        };
        let attended = self.push(attention, config.query_width());
        let attended = self.rms_norm(attended, weights.norm(Norm::AttnSub).name());
        let attended = self.act_quant(attended);
        let attended = self.linear(attended, layer, Projection::O);
        let residual = self.push(
            Op::Add {
                lhs: residual,
                rhs: attended,
            },
            config.hidden_size,
        );

        let normed = self.rms_norm(residual, weights.norm(Norm::PostAttention).name());
        let input = self.act_quant(normed);
        let gate = self.linear(input, layer, Projection::Gate);
        let up = self.linear(input, layer, Projection::Up);
        let width = config.intermediate_size;
        let gate = match config.activation {
            Activation::Relu2 => self.push(Op::Relu2 { x: gate }, width),
            Activation::Silu => self.push(
                Op::Silu {
                    x: gate,
                    input_scale: Real(1.0),
                },
                width,
            ),
        };
        let product = self.push(Op::Mul { lhs: gate, rhs: up }, width);
        let product = self.rms_norm(product, weights.norm(Norm::FfnSub).name());
        let product = self.act_quant(product);
        let down = self.linear(product, layer, Projection::Down);
        self.push(
            Op::Add {
                lhs: residual,
                rhs: down,
            },
            config.hidden_size,
        )
    }

    fn rms_norm(&mut self, x: Handle<Node>, gain: &str) -> Handle<Node> {
        let eps = Real(self.checkpoint.config().rms_norm_eps);
        self.push(
            Op::RmsNorm {
                x,
                gain: TensorName::from(gain),
                gain_scale: Real(1.0),
                eps,
            },
            self.width(x),
        )
    }

    /// `x` quantized to 8 bits per token, or `x` itself when activation quantization is off.
    fn act_quant(&mut self, x: Handle<Node>) -> Handle<Node> {
        if !self.options.act_quant {
            return x;
        }
        self.push(
            Op::ActQuant {
                x,
                bits: ACT_QUANT_BITS,
            },
            self.width(x),
        )
    }

    fn linear(&mut self, x: Handle<Node>, layer: usize, projection: Projection) -> Handle<Node> {
        let matrix = self.checkpoint.layers()[layer].projection(projection);
        let op = Op::TernaryLinear {
            x,
            weight: matrix.name().into(),
            scale: Real(matrix.effective_scale()),
        };
        self.push(op, matrix.rows())
    }
}
