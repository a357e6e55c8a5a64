//! Loader errors: each message names the file, and the config key or tensor at fault.

use std::path::PathBuf;

/// Everything that can be wrong with a checkpoint folder.
///
/// Messages are meant for users: they start with the file's path and name the config key or
/// the tensor involved, and tests compare them verbatim. Underlying I/O and JSON errors are
/// kept as sources, so a caller printing the cause chain shows them too.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or memory-mapped.
    #[error("{}: cannot read file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The folder holds neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error("{}: no model.safetensors or model.safetensors.index.json in this folder", dir.display())]
    NoWeights {
        /// The checkpoint folder.
        dir: PathBuf,
    },

    /// `config.json` or the shard index is not valid JSON.
    #[error("{}: invalid JSON", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint (with line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A required key is absent from `config.json`.
    #[error("{}: missing config key `{key}`", path.display())]
    MissingConfigKey {
        /// `config.json`.
        path: PathBuf,
        /// The key, dotted for nested keys (`rope_parameters.rope_theta`).
        key: String,
    },

    /// A key of `config.json` has a value the loader cannot use.
    #[error("{}: config key `{key}` {problem}", path.display())]
    InvalidConfigValue {
        /// `config.json`.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with its value, phrased to follow the key.
        problem: String,
    },

    /// `hidden_act` names an activation other than ReLU² or SiLU.
    #[error("{}: unknown activation `{found}` in `hidden_act` (supported: `relu2`, `silu`)", path.display())]
    UnknownActivation {
        /// `config.json`.
        path: PathBuf,
        /// The value found.
        found: String,
    },

    /// Head counts and dimensions that cannot describe one attention layout.
    #[error("{}: inconsistent head counts: {detail}", path.display())]
    InconsistentHeads {
        /// `config.json`.
        path: PathBuf,
        /// Which numbers disagree.
        detail: String,
    },

    /// A well-formed configuration of a model or feature ensi does not implement.
    #[error("{}: unsupported model: {detail}", path.display())]
    Unsupported {
        /// `config.json`.
        path: PathBuf,
        /// What is not supported.
        detail: String,
    },

    /// The file ends before the data its header describes.
    #[error("{}: truncated file: {detail}", path.display())]
    Truncated {
        /// The safetensors file.
        path: PathBuf,
        /// Which bytes are missing.
        detail: String,
    },

    /// The safetensors header as a whole is malformed.
    #[error("{}: invalid safetensors header: {detail}", path.display())]
    InvalidHeader {
        /// The safetensors file.
        path: PathBuf,
        /// What is malformed.
        detail: String,
    },

    /// One tensor's header entry is malformed (dtype, shape or offsets are not readable).
    #[error("{}: tensor `{tensor}`: invalid header entry: {detail}", path.display())]
    InvalidTensorEntry {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is malformed.
        detail: String,
    },

    /// The header's `data_offsets` of a tensor contradict its shape or its neighbours.
    #[error("{}: tensor `{tensor}`: header lies about offsets: {detail}", path.display())]
    BadOffsets {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Which offsets are wrong and why.
        detail: String,
    },

    /// A tensor the model needs is not in the checkpoint.
    #[error("{}: missing tensor `{tensor}`", path.display())]
    MissingTensor {
        /// The safetensors file (or the shard index) that should hold it.
        path: PathBuf,
        /// The tensor.
        tensor: String,
    },

    /// A tensor has a shape other than the configuration implies.
    #[error("{}: tensor `{tensor}` has shape {}, expected {expected}", path.display(), ShapeDisplay(found))]
    WrongShape {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shape in the header.
        found: Vec<usize>,
        /// The shape the configuration implies, as text (`[640, 2560]`, `[] or [1]`).
        expected: String,
    },

    /// A tensor has a dtype the loader does not accept for its role.
    #[error("{}: tensor `{tensor}` has dtype {found}, expected {expected}", path.display())]
    WrongDtype {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype in the header.
        found: String,
        /// The accepted dtypes, as text.
        expected: &'static str,
    },

    /// A packed ternary weight holds the 2-bit code 3, which no ternary value encodes.
    #[error(
        "{}: tensor `{tensor}`: invalid 2-bit code 3 for output row {row}, input column {column} \
         (codes are value + 1: 0, 1 or 2)",
        path.display()
    )]
    InvalidTernaryCode {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The logical output row of the first invalid field.
        row: usize,
        /// The input column of the first invalid field.
        column: usize,
    },

    /// A `weight_scale` that is zero, negative, infinite or NaN.
    #[error("{}: tensor `{tensor}`: weight scale {value} is not a positive finite number", path.display())]
    InvalidScale {
        /// The safetensors file.
        path: PathBuf,
        /// The scale tensor.
        tensor: String,
        /// The stored value.
        value: f32,
    },

    /// A norm gain or master weight holds an infinity or NaN.
    #[error("{}: tensor `{tensor}`: element {index} is not finite ({value})", path.display())]
    NonFinite {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The flat index of the first non-finite element.
        index: usize,
        /// The value found.
        value: f32,
    },

    /// `model.safetensors.index.json` is not a usable shard index.
    #[error("{}: invalid shard index: {detail}", path.display())]
    ShardIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Formats a shape the way the messages print it: `[640, 2560]`, `[]` for a scalar.
pub(crate) struct ShapeDisplay<'a>(pub &'a [usize]);

impl std::fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{dim}")?;
        }
        f.write_str("]")
    }
}
