//! The client's codec: `[T, d]` activations to a layout's slot vectors and back, and token embedding.

use ensi_checkpoint::FloatMatrix;

use super::ExecError;
use super::slots::{SlotVectors, valid_ranges};
use crate::plan::{InputSignature, Layout};

/// A real `[T, d]` matrix, row-major: one row per token.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    tokens: usize,
    columns: usize,
    values: Vec<f64>,
}

impl Activation {
    /// A `tokens × columns` activation from row-major `values`.
    pub fn new(tokens: usize, columns: usize, values: Vec<f64>) -> Result<Self, ExecError> {
        if values.len() != tokens * columns {
            return Err(ExecError::ActivationData {
                tokens,
                columns,
                found: values.len(),
            });
        }
        Ok(Self {
            tokens,
            columns,
            values,
        })
    }

    /// An all-zero activation.
    pub fn zeros(tokens: usize, columns: usize) -> Self {
        Self {
            tokens,
            columns,
            values: vec![0.0; tokens * columns],
        }
    }

    /// Rows (T).
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Columns (d).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Row `token`.
    ///
    /// # Panics
    /// If `token >= self.tokens()`.
    pub fn row(&self, token: usize) -> &[f64] {
        &self.values[token * self.columns..(token + 1) * self.columns]
    }

    /// Entry `(token, column)`.
    ///
    /// # Panics
    /// If out of range.
    pub fn get(&self, token: usize, column: usize) -> f64 {
        assert!(column < self.columns, "column {column} out of range");
        self.values[token * self.columns + column]
    }

    fn set(&mut self, token: usize, column: usize, value: f64) {
        self.values[token * self.columns + column] = value;
    }
}

/// Lays `x` out in `layout`: every repetition of every (column, token) holds its value;
/// padding and empty blocks are zero. One slot vector per ciphertext.
pub fn encode(layout: &Layout, x: &Activation) -> Result<SlotVectors, ExecError> {
    let (tokens, columns) = (layout.tokens as usize, layout.columns as usize);
    if x.tokens != tokens || x.columns != columns {
        return Err(ExecError::ActivationShape {
            expected_tokens: tokens,
            expected_columns: columns,
            found_tokens: x.tokens,
            found_columns: x.columns,
        });
    }
    Ok((0..layout.ciphertexts())
        .map(|ciphertext| {
            let mut slots = vec![0.0; layout.slots as usize];
            for (range, column) in valid_ranges(layout, ciphertext) {
                for (token, slot) in slots[range].iter_mut().enumerate() {
                    *slot = x.get(token, column as usize);
                }
            }
            slots
        })
        .collect())
}

/// [`encode`] in the layout of the plan input `input`: the slot vectors the client encrypts.
pub fn encode_input(input: &InputSignature, x: &Activation) -> Result<SlotVectors, ExecError> {
    encode(&input.layout, x)
}

/// Reads the `[T, d]` data of `layout` from its slot vectors (the first repetition of a
/// grouped column).
pub fn decode(layout: &Layout, slots: &[Vec<f64>]) -> Result<Activation, ExecError> {
    decode_with_spread(layout, slots).map(|(x, _)| x)
}

/// [`decode`], also returning the spread between repetitions: `max |replica − first|` over
/// every (column, token) of a grouped layout (0 when `group = 1`).
pub fn decode_with_spread(
    layout: &Layout,
    slots: &[Vec<f64>],
) -> Result<(Activation, f64), ExecError> {
    check_shape(layout, slots, "decoded value")?;
    let mut x = Activation::zeros(layout.tokens as usize, layout.columns as usize);
    let mut seen = vec![false; layout.columns as usize];
    let mut spread = 0.0f64;
    for (ciphertext, vector) in (0..layout.ciphertexts()).zip(slots) {
        for (range, column) in valid_ranges(layout, ciphertext) {
            let column = column as usize;
            let first = !seen[column];
            seen[column] = true;
            for (token, &value) in vector[range].iter().enumerate() {
                if first {
                    x.set(token, column, value);
                } else {
                    spread = spread.max((value - x.get(token, column)).abs());
                }
            }
        }
    }
    Ok((x, spread))
}

/// Checks that `slots` has the ciphertext count and slot count of `layout`.
pub fn check_shape(layout: &Layout, slots: &[Vec<f64>], what: &str) -> Result<(), ExecError> {
    let expected = layout.ciphertexts() as usize;
    if slots.len() != expected {
        return Err(ExecError::CiphertextCount {
            what: what.to_owned(),
            expected,
            found: slots.len(),
        });
    }
    let width = layout.slots as usize;
    if let Some((ciphertext, vector)) = slots.iter().enumerate().find(|(_, v)| v.len() != width) {
        return Err(ExecError::SlotCount {
            what: what.to_owned(),
            ciphertext,
            expected: width,
            found: vector.len(),
        });
    }
    Ok(())
}

/// The client's logits `hidden · tableᵀ` (`table`: the LM head's matrix, `[vocab, d]`, which
/// is the embedding when tied), as `([T, vocab]` row-major, vocab).
pub fn head_logits(table: &FloatMatrix, hidden: &Activation) -> (Vec<f64>, usize) {
    let (vocab, width) = (table.rows(), table.cols());
    let mut row = vec![0.0f32; width];
    let mut logits = vec![0.0; hidden.tokens() * vocab];
    for token in 0..vocab {
        table.row_into(token, &mut row);
        for position in 0..hidden.tokens() {
            logits[position * vocab + token] = hidden
                .row(position)
                .iter()
                .zip(&row)
                .map(|(h, &e)| h * f64::from(e))
                .sum();
        }
    }
    (logits, vocab)
}

/// The embedding rows of `tokens` from `table` (`[vocab, d]`), widened to `f64`: what the
/// client encodes as the plan's input.
pub fn embed_tokens(table: &FloatMatrix, tokens: &[u32]) -> Result<Activation, ExecError> {
    let columns = table.cols();
    let mut x = Activation::zeros(tokens.len(), columns);
    let mut row = vec![0.0f32; columns];
    for (position, &token) in tokens.iter().enumerate() {
        if token as usize >= table.rows() {
            return Err(ExecError::TokenOutOfRange {
                position,
                token,
                vocab: table.rows(),
            });
        }
        table.row_into(token as usize, &mut row);
        for (column, &value) in row.iter().enumerate() {
            x.set(position, column, f64::from(value));
        }
    }
    Ok(x)
}
