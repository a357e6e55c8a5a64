//! Output files: f32 safetensors written to a temporary sibling, then renamed into place, so a failure never leaves half a file.

use std::io::Write;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// One f32 tensor to write.
pub struct F32Tensor {
    /// Tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// Writes `tensors` as a safetensors file at `path`, atomically: the bytes go to a temporary
/// file in the same folder, are flushed to disk, and the file is renamed over `path`.
pub fn write_safetensors(path: &Path, tensors: &[F32Tensor]) -> anyhow::Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(tensor, data)| {
            Ok((
                tensor.name.as_str(),
                TensorView::new(Dtype::F32, tensor.shape.clone(), data)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let serialized = safetensors::serialize(views, None)?;

    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".ensi-")
        .suffix(".tmp")
        .tempfile_in(folder)?;
    file.write_all(&serialized)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    Ok(())
}
