//! Shared helpers of the end-to-end tests: fixture paths, reference tensors, error statistics.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use safetensors::{Dtype, SafeTensors};

/// The folder holding the BitNet fixtures copied from Hugging Face's reference run.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Names of every fixture checkpoint, smallest first.
pub const FIXTURES: [&str; 4] = ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"];

/// The reference outputs of one fixture (`reference.safetensors`), widened to f64.
#[derive(Debug, Clone)]
pub struct Reference {
    input_ids: Vec<u32>,
    tensors: BTreeMap<String, RefTensor>,
}

/// One reference tensor: its shape and values.
#[derive(Debug, Clone)]
pub struct RefTensor {
    /// Shape as stored (`[1, T, H]`).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f64>,
}

impl Reference {
    /// Reads `fixtures/<fixture>/reference.safetensors`.
    pub fn load(fixture: &str) -> anyhow::Result<Self> {
        let path = fixtures_dir().join(fixture).join("reference.safetensors");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let file = SafeTensors::deserialize(&bytes)?;
        let mut input_ids = Vec::new();
        let mut tensors = BTreeMap::new();
        for (name, view) in file.tensors() {
            match view.dtype() {
                Dtype::I64 => {
                    for chunk in view.data().chunks_exact(8) {
                        let id = i64::from_le_bytes(chunk.try_into()?);
                        input_ids.push(u32::try_from(id)?);
                    }
                }
                Dtype::F32 => {
                    let values = view
                        .data()
                        .chunks_exact(4)
                        .map(|c| c.try_into().map(|b| f64::from(f32::from_le_bytes(b))))
                        .collect::<Result<_, _>>()?;
                    tensors.insert(
                        name,
                        RefTensor {
                            shape: view.shape().to_vec(),
                            values,
                        },
                    );
                }
                other => bail!(
                    "{}: tensor {name} has unexpected dtype {other}",
                    path.display()
                ),
            }
        }
        Ok(Self { input_ids, tensors })
    }

    /// The token ids the reference was computed on.
    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// The tensor called `name` (`hidden.softmax.exact`, `layer0.sigmoid.noaq`, ...).
    pub fn tensor(&self, name: &str) -> anyhow::Result<&RefTensor> {
        self.tensors
            .get(name)
            .with_context(|| format!("no reference tensor {name}"))
    }

    /// Names of all float tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
}

/// How far a computed tensor is from its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deviation {
    /// `max |actual − reference|`.
    pub max_abs_error: f64,
    /// `max |reference|`.
    pub max_abs_reference: f64,
}

impl Deviation {
    /// Compares `actual` with `reference`, element by element.
    ///
    /// # Errors
    ///
    /// If the lengths differ.
    pub fn between(actual: &[f64], reference: &[f64]) -> anyhow::Result<Self> {
        if actual.len() != reference.len() {
            bail!(
                "{} values computed, {} in the reference",
                actual.len(),
                reference.len()
            );
        }
        let max_abs_error = actual
            .iter()
            .zip(reference)
            .map(|(a, r)| (a - r).abs())
            .fold(0.0, f64::max);
        let max_abs_reference = reference.iter().map(|r| r.abs()).fold(0.0, f64::max);
        Ok(Self {
            max_abs_error,
            max_abs_reference,
        })
    }

    /// `max_abs_error / max_abs_reference`, the figure the tolerances bound.
    pub fn relative(&self) -> f64 {
        self.max_abs_error / self.max_abs_reference
    }
}

/// The index of the largest value of each row of a row-major `[rows, cols]` matrix.
pub fn argmax_rows(values: &[f64], cols: usize) -> Vec<usize> {
    values
        .chunks_exact(cols)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}
