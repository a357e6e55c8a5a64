//! [`Checkpoint::open`]: a folder in, every tensor the model needs found, shape- and dtype-checked, and viewed in place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use crate::bytes::Bytes;
use crate::config::{Config, LmHead, Quantization, ScaleConvention};
use crate::error::{Error, ShapeDisplay};
use crate::float::{FloatDtype, FloatMatrix, FloatVector};
use crate::names::{EMBEDDING, FINAL_NORM, Norm, Projection};
use crate::store::{Located, TensorStore};
use crate::ternary::{TernaryMatrix, WeightOrigin, WeightScale, ternarize_absmean};

/// Name of the configuration file in a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";

/// A loaded BitNet b1.58 checkpoint: configuration plus every tensor, validated.
///
/// Tensors are views into the memory-mapped files: packed ternary weights stay packed, the
/// embedding and norms are decoded on demand. Master-weight checkpoints are ternarised at
/// load and kept packed (2 bits per weight). Opening validates every name, shape and dtype,
/// every 2-bit code and every scale, so later stages cannot meet a malformed tensor.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    config: Config,
    embedding: FloatMatrix,
    lm_head: FloatMatrix,
    final_norm: FloatVector,
    layers: Vec<Layer>,
    by_name: HashMap<String, Slot>,
}

/// One decoder layer's tensors.
#[derive(Debug)]
pub struct Layer {
    norms: [FloatVector; 4],
    projections: [TernaryMatrix; 7],
}

impl Layer {
    /// The gains of `norm`.
    pub fn norm(&self, norm: Norm) -> &FloatVector {
        &self.norms[norm as usize]
    }

    /// The ternary matrix of `projection`.
    pub fn projection(&self, projection: Projection) -> &TernaryMatrix {
        &self.projections[projection as usize]
    }
}

/// Where a named tensor lives inside a [`Checkpoint`].
#[derive(Debug, Clone, Copy)]
enum Slot {
    Embedding,
    LmHead,
    FinalNorm,
    Norm(usize, Norm),
    Projection(usize, Projection),
}

impl Checkpoint {
    /// Opens the checkpoint folder `dir`: `config.json` and `model.safetensors` (or the shards
    /// of `model.safetensors.index.json`).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let config = Config::from_file(&dir.join(CONFIG_FILE))?;
        let store = TensorStore::open(dir)?;
        let loader = Loader {
            config: &config,
            store: &store,
        };

        let embedding = loader.matrix(EMBEDDING, config.vocab_size, config.hidden_size)?;
        let mut layers = Vec::new();
        for layer in 0..config.num_layers {
            layers.push(loader.layer(layer)?);
        }
        let final_norm = loader.vector(FINAL_NORM, config.hidden_size)?;
        let lm_head = match config.lm_head {
            LmHead::Tied => embedding.clone(),
            LmHead::Untied => {
                loader.matrix(config.lm_head_name(), config.vocab_size, config.hidden_size)?
            }
        };

        let mut by_name = HashMap::new();
        by_name.insert(EMBEDDING.to_owned(), Slot::Embedding);
        by_name.insert(FINAL_NORM.to_owned(), Slot::FinalNorm);
        if config.lm_head == LmHead::Untied {
            by_name.insert(config.lm_head_name().to_owned(), Slot::LmHead);
        }
        for (index, layer) in layers.iter().enumerate() {
            for norm in Norm::ALL {
                by_name.insert(layer.norm(norm).name().to_owned(), Slot::Norm(index, norm));
            }
            for projection in Projection::ALL {
                let name = layer.projection(projection).name().to_owned();
                by_name.insert(name, Slot::Projection(index, projection));
            }
        }

        Ok(Self {
            dir: dir.to_owned(),
            config,
            embedding,
            lm_head,
            final_norm,
            layers,
            by_name,
        })
    }

    /// The folder the checkpoint was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The token embedding table, `[vocab, hidden]`.
    pub fn embedding(&self) -> &FloatMatrix {
        &self.embedding
    }

    /// The LM head's matrix, `[vocab, hidden]`: the embedding table when tied.
    pub fn lm_head(&self) -> &FloatMatrix {
        &self.lm_head
    }

    /// The final RMSNorm's gains, `[hidden]`.
    pub fn final_norm(&self) -> &FloatVector {
        &self.final_norm
    }

    /// The decoder layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The ternary matrix with this tensor name (`model.layers.0.self_attn.q_proj.weight`).
    pub fn ternary(&self, name: &str) -> Option<&TernaryMatrix> {
        match self.by_name.get(name)? {
            &Slot::Projection(layer, projection) => Some(self.layers[layer].projection(projection)),
            _ => None,
        }
    }

    /// The 1-D float tensor (norm gains) with this name.
    pub fn vector(&self, name: &str) -> Option<&FloatVector> {
        match self.by_name.get(name)? {
            Slot::FinalNorm => Some(&self.final_norm),
            &Slot::Norm(layer, norm) => Some(self.layers[layer].norm(norm)),
            _ => None,
        }
    }

    /// The 2-D float tensor (embedding, untied LM head) with this name.
    pub fn matrix(&self, name: &str) -> Option<&FloatMatrix> {
        match self.by_name.get(name)? {
            Slot::Embedding => Some(&self.embedding),
            Slot::LmHead => Some(&self.lm_head),
            _ => None,
        }
    }
}

/// Finds and checks the tensors of one checkpoint.
struct Loader<'a> {
    config: &'a Config,
    store: &'a TensorStore,
}

impl Loader<'_> {
    fn layer(&self, layer: usize) -> Result<Layer, Error> {
        let config = self.config;
        let norm = |norm: Norm| self.vector(&config.norm_name(layer, norm), norm.width(config));
        let projection = |projection: Projection| self.projection(layer, projection);
        // In the order the forward pass uses them, so the error reported is the first bad
        // tensor a reader of the model meets.
        let input = norm(Norm::Input)?;
        let q = projection(Projection::Q)?;
        let k = projection(Projection::K)?;
        let v = projection(Projection::V)?;
        let attn_sub = norm(Norm::AttnSub)?;
        let o = projection(Projection::O)?;
        let post_attention = norm(Norm::PostAttention)?;
        let gate = projection(Projection::Gate)?;
        let up = projection(Projection::Up)?;
        let ffn_sub = norm(Norm::FfnSub)?;
        let down = projection(Projection::Down)?;
        Ok(Layer {
            norms: [input, attn_sub, post_attention, ffn_sub],
            projections: [q, k, v, o, gate, up, down],
        })
    }

    fn projection(&self, layer: usize, projection: Projection) -> Result<TernaryMatrix, Error> {
        let name = self.config.projection_name(layer, projection);
        let (rows, cols) = projection.shape(self.config);
        match self.config.quantization {
            Quantization::Offline { linear_class } => {
                let scale_name = self.config.scale_name(layer, projection);
                self.packed(
                    &name,
                    rows,
                    cols,
                    &scale_name,
                    linear_class.scale_convention(),
                )
            }
            Quantization::Online | Quantization::Unspecified => self.master(&name, rows, cols),
        }
    }

    /// A packed U8 `[rows/4, cols]` weight and its `weight_scale`.
    fn packed(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        scale_name: &str,
        convention: ScaleConvention,
    ) -> Result<TernaryMatrix, Error> {
        let found = self.store.get(name)?;
        if found.entry.dtype != Dtype::U8 {
            return Err(wrong_dtype(&found, name, "U8 (packed ternary)"));
        }
        // Config validation guarantees rows % 4 == 0 for packed checkpoints.
        let expected = [rows / 4, cols];
        if found.entry.shape != expected {
            return Err(wrong_shape(
                &found,
                name,
                format!("{} (packed ternary)", ShapeDisplay(&expected)),
            ));
        }
        let scale = self.scale(scale_name, convention)?;
        TernaryMatrix::new(
            name.to_owned(),
            rows,
            cols,
            found.entry.bytes.clone(),
            scale,
            WeightOrigin::Packed,
        )
        .map_err(|(row, column)| Error::InvalidTernaryCode {
            path: found.path.to_owned(),
            tensor: name.to_owned(),
            row,
            column,
        })
    }

    /// A scalar `weight_scale` (`[]` or `[1]`, BF16/F16/F32, positive and finite).
    fn scale(&self, name: &str, convention: ScaleConvention) -> Result<WeightScale, Error> {
        let found = self.store.get(name)?;
        let dtype = float_dtype(&found, name)?;
        if !matches!(found.entry.shape[..], [] | [1]) {
            return Err(wrong_shape(&found, name, "[] or [1]".to_owned()));
        }
        let stored = dtype.decode(found.entry.bytes.as_slice());
        if !(stored.is_finite() && stored > 0.0) {
            return Err(Error::InvalidScale {
                path: found.path.to_owned(),
                tensor: name.to_owned(),
                value: stored,
            });
        }
        Ok(WeightScale { stored, convention })
    }

    /// A float master weight `[rows, cols]`, ternarised with absmean.
    fn master(&self, name: &str, rows: usize, cols: usize) -> Result<TernaryMatrix, Error> {
        let found = self.store.get(name)?;
        let dtype = float_dtype(&found, name)?;
        if found.entry.shape != [rows, cols] {
            return Err(wrong_shape(
                &found,
                name,
                format!("{} (master weights)", ShapeDisplay(&[rows, cols])),
            ));
        }
        let ternarized = ternarize_absmean(dtype, found.entry.bytes.as_slice(), rows, cols)
            .map_err(|(index, value)| Error::NonFinite {
                path: found.path.to_owned(),
                tensor: name.to_owned(),
                index,
                value,
            })?;
        let scale = WeightScale {
            stored: ternarized.beta,
            convention: ScaleConvention::Multiply,
        };
        TernaryMatrix::new(
            name.to_owned(),
            rows,
            cols,
            Bytes::owned(ternarized.packed),
            scale,
            WeightOrigin::Ternarized,
        )
        .map_err(|(row, column)| Error::InvalidTernaryCode {
            path: found.path.to_owned(),
            tensor: name.to_owned(),
            row,
            column,
        })
    }

    /// A 1-D float tensor of `len` finite elements.
    fn vector(&self, name: &str, len: usize) -> Result<FloatVector, Error> {
        let found = self.store.get(name)?;
        let dtype = float_dtype(&found, name)?;
        if found.entry.shape != [len] {
            return Err(wrong_shape(&found, name, ShapeDisplay(&[len]).to_string()));
        }
        let vector = FloatVector::new(name.to_owned(), dtype, len, found.entry.bytes.clone());
        if let Some((index, value)) = vector
            .to_vec()
            .into_iter()
            .enumerate()
            .find(|(_, value)| !value.is_finite())
        {
            return Err(Error::NonFinite {
                path: found.path.to_owned(),
                tensor: name.to_owned(),
                index,
                value,
            });
        }
        Ok(vector)
    }

    /// A 2-D float tensor `[rows, cols]`, left unread (decoded by row on demand).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<FloatMatrix, Error> {
        let found = self.store.get(name)?;
        let dtype = float_dtype(&found, name)?;
        if found.entry.shape != [rows, cols] {
            return Err(wrong_shape(
                &found,
                name,
                ShapeDisplay(&[rows, cols]).to_string(),
            ));
        }
        Ok(FloatMatrix::new(
            name.to_owned(),
            dtype,
            rows,
            cols,
            found.entry.bytes.clone(),
        ))
    }
}

fn float_dtype(found: &Located<'_>, name: &str) -> Result<FloatDtype, Error> {
    FloatDtype::from_safetensors(found.entry.dtype)
        .ok_or_else(|| wrong_dtype(found, name, FloatDtype::EXPECTED))
}

fn wrong_dtype(found: &Located<'_>, name: &str, expected: &'static str) -> Error {
    Error::WrongDtype {
        path: found.path.to_owned(),
        tensor: name.to_owned(),
        found: found.entry.dtype.to_string(),
        expected,
    }
}

fn wrong_shape(found: &Located<'_>, name: &str, expected: String) -> Error {
    Error::WrongShape {
        path: found.path.to_owned(),
        tensor: name.to_owned(),
        found: found.entry.shape.clone(),
        expected,
    }
}
