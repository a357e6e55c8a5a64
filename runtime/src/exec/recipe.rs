//! Plaintext recipes materialized: one real slot vector per ciphertext of the recipe's layout, zero outside valid slots.

use super::slots::{SlotVectors, valid_ranges};
use super::{BoundWeights, ExecError};
use crate::plan::PlainRecipe;

/// RoPE's angular frequency of dimension pair `pair` (`i`): `θ_i = theta^(−2i/head_dim)`.
///
/// The same f64 expression as the reference forward (`compiler/src/forward`), so recipes and
/// forward agree to the last bit; Hugging Face computes it in f32, which the fixtures' float32
/// tolerance absorbs.
pub fn rope_frequency(theta: f64, head_dim: u32, pair: u32) -> f64 {
    theta.powf(-f64::from(2 * pair) / f64::from(head_dim))
}

/// The slot vectors of `recipe`, one per ciphertext of its layout.
pub fn materialize(recipe: &PlainRecipe, weights: &BoundWeights) -> Result<SlotVectors, ExecError> {
    let layout = recipe.layout();
    (0..layout.ciphertexts())
        .map(|ciphertext| {
            let mut slots = vec![0.0; layout.slots as usize];
            materialize_into(recipe, weights, ciphertext, &mut slots)?;
            Ok(slots)
        })
        .collect()
}

/// Writes ciphertext `ciphertext` of `recipe` into `out` (`layout.slots` entries): the
/// recipe's value on every valid slot (every repetition of a grouped column), zero on
/// padding and empty blocks.
///
/// For one ciphertext at a time: the encrypted executor encodes plaintexts at their level of
/// use and need not hold a whole recipe.
///
/// # Panics
/// If `out` is shorter than the layout's slot count.
pub fn materialize_into(
    recipe: &PlainRecipe,
    weights: &BoundWeights,
    ciphertext: u32,
    out: &mut [f64],
) -> Result<(), ExecError> {
    out.fill(0.0);
    let layout = recipe.layout();
    match recipe {
        PlainRecipe::ColumnVector { weight, factor, .. } => {
            let vector = weights.vector(*weight)?;
            for (range, column) in valid_ranges(layout, ciphertext) {
                let value = factor * vector.get(column as usize).copied().unwrap_or(0.0);
                out[range].fill(value);
            }
        }
        PlainRecipe::ColumnValues { values, .. } => {
            for (range, column) in valid_ranges(layout, ciphertext) {
                out[range].fill(values.get(column as usize).copied().unwrap_or(0.0));
            }
        }
        PlainRecipe::Rope {
            head_dim,
            theta,
            sine,
            factor,
            position_offset,
            ..
        } => {
            let half = head_dim / 2;
            for (range, column) in valid_ranges(layout, ciphertext) {
                let pair = (column % head_dim) % half.max(1);
                let frequency = rope_frequency(*theta, *head_dim, pair);
                for (token, slot) in out[range].iter_mut().enumerate() {
                    let angle = f64::from(token as u32 + position_offset) * frequency;
                    *slot = factor * if *sine { angle.sin() } else { angle.cos() };
                }
            }
        }
        PlainRecipe::ValidMask { .. } => {
            for (range, _) in valid_ranges(layout, ciphertext) {
                out[range].fill(1.0);
            }
        }
        PlainRecipe::TokenRange { from, to, .. } => {
            let (from, to) = (*from as usize, *to as usize);
            for (range, _) in valid_ranges(layout, ciphertext) {
                let start = range.start;
                out[start + from.min(range.len())..start + to.min(range.len())].fill(1.0);
            }
        }
    }
    Ok(())
}
