//! Ternary weight matrices: 2-bit packed in the transformers layout, with one scale; rows decoded on demand.
//!
//! Layout (transformers `pack_weights`): a logical `[rows, cols]` matrix of values in
//! {−1, 0, 1} is stored as `[P, cols]` bytes with `P = ceil(rows / 4)`; 2-bit field `i`
//! (bits `2i+1..2i`) of packed row `p` holds logical row `i·P + p`, as the code `value + 1`.
//! Code 3 encodes nothing and is rejected when a matrix is loaded.

use std::ops::Range;

use crate::bytes::Bytes;
use crate::config::ScaleConvention;
use crate::float::FloatDtype;

/// Logical rows per packed byte.
pub const ROWS_PER_BYTE: usize = 4;

/// A projection's scale as the checkpoint stores it, with the convention that applies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightScale {
    /// The stored value (BF16/F16 scales are widened to f32 exactly).
    pub stored: f32,
    /// Whether `stored` multiplies or divides the output.
    pub convention: ScaleConvention,
}

impl WeightScale {
    /// The factor `s` of `y = s · (T x)`, whatever the convention.
    pub fn effective(&self) -> f64 {
        match self.convention {
            ScaleConvention::Multiply => f64::from(self.stored),
            ScaleConvention::Divide => 1.0 / f64::from(self.stored),
        }
    }
}

/// Where a ternary matrix's codes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightOrigin {
    /// Read packed from the checkpoint, scale from its `weight_scale` tensor.
    Packed,
    /// Ternarised from master weights at load time (absmean, per tensor).
    Ternarized,
}

/// A ternary matrix `T ∈ {−1, 0, 1}^{rows × cols}` with a scale: the projection `y = s · (T x)`.
#[derive(Debug, Clone)]
pub struct TernaryMatrix {
    name: String,
    rows: usize,
    cols: usize,
    packed: Bytes,
    scale: WeightScale,
    origin: WeightOrigin,
}

impl TernaryMatrix {
    /// A matrix over packed bytes, or the `(row, column)` of the first field holding code 3.
    ///
    /// Invariant (checked by the caller): `packed` holds `ceil(rows / 4) · cols` bytes.
    pub(crate) fn new(
        name: String,
        rows: usize,
        cols: usize,
        packed: Bytes,
        scale: WeightScale,
        origin: WeightOrigin,
    ) -> Result<Self, (usize, usize)> {
        let matrix = Self {
            name,
            rows,
            cols,
            packed,
            scale,
            origin,
        };
        if let Some(index) = first_invalid_byte(matrix.packed.as_slice()) {
            return Err(matrix.invalid_field(index));
        }
        Ok(matrix)
    }

    /// The logical `(row, column)` of the first code-3 field of byte `index`.
    fn invalid_field(&self, index: usize) -> (usize, usize) {
        let (packed_row, column) = (index / self.cols, index % self.cols);
        let byte = self.packed.as_slice()[index];
        let field = (0..ROWS_PER_BYTE)
            .find(|field| (byte >> (2 * field)) & 3 == 3)
            .unwrap_or(0);
        (field * self.packed_rows() + packed_row, column)
    }

    /// The weight's tensor name in the checkpoint (`….q_proj.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Logical rows (`out_features`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Logical columns (`in_features`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Packed rows, `ceil(rows / 4)`.
    pub fn packed_rows(&self) -> usize {
        self.rows.div_ceil(ROWS_PER_BYTE)
    }

    /// The packed bytes, `[packed_rows, cols]` row-major.
    pub fn packed(&self) -> &[u8] {
        self.packed.as_slice()
    }

    /// The scale as stored, with its convention.
    pub fn scale(&self) -> WeightScale {
        self.scale
    }

    /// The factor `s` of `y = s · (T x)`.
    pub fn effective_scale(&self) -> f64 {
        self.scale.effective()
    }

    /// Where the codes came from.
    pub fn origin(&self) -> WeightOrigin {
        self.origin
    }

    /// BLAKE3 digest of the matrix's content: shape, 2-bit codes and effective scale.
    ///
    /// Independent of where the codes came from (packed on disk or ternarised at load), so a
    /// plan can name the weight it was compiled against and the server can check it has it.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ensi ternary v1");
        hasher.update(&(self.rows as u64).to_le_bytes());
        hasher.update(&(self.cols as u64).to_le_bytes());
        hasher.update(&self.effective_scale().to_bits().to_le_bytes());
        hasher.update(self.packed.as_slice());
        *hasher.finalize().as_bytes()
    }

    /// Whether the packed bytes are read straight from the memory-mapped file (no copy).
    pub fn is_mapped(&self) -> bool {
        self.packed.is_mapped()
    }

    /// Entry `T[row, col]`.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()` or `col >= self.cols()`.
    pub fn entry(&self, row: usize, col: usize) -> i8 {
        assert!(
            row < self.rows && col < self.cols,
            "entry ({row}, {col}) out of range"
        );
        let (packed_row, shift) = self.locate(row);
        decode(self.packed.as_slice()[packed_row * self.cols + col], shift)
    }

    /// Decodes row `row` into `out`, which must hold `self.cols()` entries.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()` or `out.len() != self.cols()`.
    pub fn row_into(&self, row: usize, out: &mut [i8]) {
        assert!(
            row < self.rows,
            "row {row} out of range for {} rows",
            self.rows
        );
        assert_eq!(
            out.len(),
            self.cols,
            "output length must equal the column count"
        );
        let (packed_row, shift) = self.locate(row);
        let start = packed_row * self.cols;
        let bytes = &self.packed.as_slice()[start..start + self.cols];
        for (value, &byte) in out.iter_mut().zip(bytes) {
            *value = decode(byte, shift);
        }
    }

    /// Number of nonzero entries of row `row`.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()`.
    pub fn row_nonzeros(&self, row: usize) -> usize {
        assert!(
            row < self.rows,
            "row {row} out of range for {} rows",
            self.rows
        );
        let (packed_row, shift) = self.locate(row);
        let start = packed_row * self.cols;
        let bytes = &self.packed.as_slice()[start..start + self.cols];
        // Code 1 is zero, codes 0 and 2 are ±1 (code 3 was rejected at load): an entry is
        // nonzero exactly when the low bit of its field is clear. Eight bytes at a time.
        const LOW_BITS: u64 = 0x0101_0101_0101_0101;
        let mut words = bytes.chunks_exact(8);
        let zeros: u32 = words
            .by_ref()
            .map(|chunk| {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                ((u64::from_le_bytes(word) >> shift) & LOW_BITS).count_ones()
            })
            .sum::<u32>()
            + words
                .remainder()
                .iter()
                .map(|&byte| u32::from((byte >> shift) & 1))
                .sum::<u32>();
        self.cols - zeros as usize
    }

    /// Lists the nonzero entries in `columns` of the [`ROWS_PER_BYTE`] rows packed row `packed_row`
    /// holds (row `packed_row + f · P` in field `f`, `P` = [`Self::packed_rows`]): writes
    /// `2 · column + (entry < 0)` for each, in column order, to the front of `out[f]`, and
    /// returns how many each row got. Rows past [`Self::rows`] (padding) hold zeros.
    ///
    /// One pass over the bytes serves all four rows.
    ///
    /// # Panics
    ///
    /// If `packed_row >= self.packed_rows()`, `columns` is not within `0..self.cols()`, or an
    /// `out` slice is shorter than `columns`.
    pub fn signed_columns(
        &self,
        packed_row: usize,
        columns: Range<usize>,
        out: [&mut [u32]; ROWS_PER_BYTE],
    ) -> [usize; ROWS_PER_BYTE] {
        assert!(
            packed_row < self.packed_rows(),
            "packed row {packed_row} out of range for {} packed rows",
            self.packed_rows()
        );
        assert!(
            columns.start <= columns.end && columns.end <= self.cols,
            "columns {columns:?} out of range for {} columns",
            self.cols
        );
        let start = packed_row * self.cols;
        let bytes = &self.packed.as_slice()[start + columns.start..start + columns.end];
        let mut out = out.map(|out| &mut out[..bytes.len()]);
        // Branch-free: every entry is written, only nonzero ones advance the end (the signs
        // of random weights would mispredict a branch on every other entry).
        let mut ends = [0usize; ROWS_PER_BYTE];
        for (column, &byte) in (columns.start as u32..).zip(bytes) {
            for (field, (out, end)) in out.iter_mut().zip(&mut ends).enumerate() {
                let code = (byte >> (2 * field)) & 3;
                out[*end] = 2 * column + u32::from(code == 0);
                *end += usize::from(code != 1);
            }
        }
        ends
    }

    /// Row `row`, decoded.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()`.
    pub fn row(&self, row: usize) -> Vec<i8> {
        let mut out = vec![0; self.cols];
        self.row_into(row, &mut out);
        out
    }

    /// The packed row and bit shift holding logical row `row`.
    fn locate(&self, row: usize) -> (usize, u32) {
        let packed_rows = self.packed_rows();
        let field = row / packed_rows;
        // field < 4, so the shift is at most 6.
        (row % packed_rows, 2 * field as u32)
    }
}

/// The value in the 2-bit field at `shift` of `byte` (code − 1); code 3 was rejected at load.
fn decode(byte: u8, shift: u32) -> i8 {
    ((byte >> shift) & 3) as i8 - 1
}

/// Index of the first byte with a field holding code 3 (`0b11`), if any.
fn first_invalid_byte(packed: &[u8]) -> Option<usize> {
    // A field is 3 exactly when both of its bits are set: `b & (b >> 1)` on the low bit of
    // each field. Eight bytes at a time; the shift never carries across a field boundary
    // that the mask keeps.
    const LOW_BITS: u64 = 0x5555_5555_5555_5555;
    let mut chunks = packed.chunks_exact(8);
    for (chunk_index, chunk) in chunks.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if word & (word >> 1) & LOW_BITS != 0 {
            let offset = chunk
                .iter()
                .position(|&b| b & (b >> 1) & 0x55 != 0)
                .unwrap_or(0);
            return Some(chunk_index * 8 + offset);
        }
    }
    let tail_start = packed.len() - chunks.remainder().len();
    chunks
        .remainder()
        .iter()
        .position(|&b| b & (b >> 1) & 0x55 != 0)
        .map(|offset| tail_start + offset)
}

/// Packs a row-major `[rows, cols]` matrix of values in {−1, 0, 1} in the transformers layout.
///
/// Rows beyond `rows` in the last packed quarter (when `rows % 4 != 0`) hold zeros.
///
/// # Panics
///
/// If `values.len() != rows · cols` or a value is not −1, 0 or 1.
pub fn pack_ternary(values: &[i8], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(
        values.len(),
        rows * cols,
        "values must hold rows × cols entries"
    );
    let packed_rows = rows.div_ceil(ROWS_PER_BYTE);
    let mut packed = vec![0x55u8; packed_rows * cols];
    for (row, row_values) in values.chunks_exact(cols.max(1)).enumerate().take(rows) {
        let (packed_row, field) = (row % packed_rows, row / packed_rows);
        let shift = 2 * field;
        for (col, &value) in row_values.iter().enumerate() {
            assert!((-1..=1).contains(&value), "value {value} is not ternary");
            let code = (value + 1) as u8;
            let byte = &mut packed[packed_row * cols + col];
            *byte = (*byte & !(3 << shift)) | (code << shift);
        }
    }
    packed
}

/// A master weight ternarised with absmean: packed codes and the scale of `y = β · (T x)`.
pub(crate) struct Ternarized {
    /// `[ceil(rows/4), cols]` packed codes.
    pub(crate) packed: Vec<u8>,
    /// The per-tensor scale β.
    pub(crate) beta: f32,
}

/// Ternarises a row-major `[rows, cols]` master weight stored as `dtype` in `bytes`, or
/// returns the flat index and value of its first non-finite element.
///
/// Mirrors transformers' `WeightQuant` in float32: `s = 1 / max(mean|W|, 1e-5)`,
/// `T = clamp(round_half_even(W · s), −1, 1)`, dequantized `T / s`; so β is `1 / s` rounded
/// to f32, and codes agree with transformers at rounding ties. The mean is accumulated in
/// f64, then rounded to f32.
pub(crate) fn ternarize_absmean(
    dtype: FloatDtype,
    bytes: &[u8],
    rows: usize,
    cols: usize,
) -> Result<Ternarized, (usize, f32)> {
    let size = dtype.size();
    let count = rows * cols;
    let mut sum = 0.0f64;
    for (index, chunk) in bytes.chunks_exact(size).take(count).enumerate() {
        let value = dtype.decode(chunk);
        if !value.is_finite() {
            return Err((index, value));
        }
        sum += f64::from(value.abs());
    }
    let mean = if count == 0 {
        0.0
    } else {
        (sum / count as f64) as f32
    };
    let inverse = 1.0f32 / mean.max(1e-5);
    let beta = 1.0f32 / inverse;

    let packed_rows = rows.div_ceil(ROWS_PER_BYTE);
    let mut packed = vec![0x55u8; packed_rows * cols];
    for (index, chunk) in bytes.chunks_exact(size).take(count).enumerate() {
        let (row, col) = (index / cols, index % cols);
        let value = (dtype.decode(chunk) * inverse)
            .round_ties_even()
            .clamp(-1.0, 1.0);
        // value ∈ {−1, 0, 1}, so the code is 0, 1 or 2.
        let code = (value as i8 + 1) as u8;
        let shift = 2 * (row / packed_rows);
        let byte = &mut packed[(row % packed_rows) * cols + col];
        *byte = (*byte & !(3 << shift)) | (code << shift);
    }
    Ok(Ternarized { packed, beta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(values: &[i8], rows: usize, cols: usize) -> TernaryMatrix {
        let scale = WeightScale {
            stored: 1.5,
            convention: ScaleConvention::Multiply,
        };
        let packed = Bytes::owned(pack_ternary(values, rows, cols));
        TernaryMatrix::new("w".into(), rows, cols, packed, scale, WeightOrigin::Packed)
            .unwrap_or_else(|at| panic!("invalid code at {at:?}"))
    }

    /// The worked example of the reference note (section 4.2): O = 8, I = 3.
    const EXAMPLE: [i8; 24] = [
        1, 0, -1, /* */ 0, 1, 1, /* */ -1, -1, 0, /* */ 1, 1, 1, //
        0, 0, 0, /* */ -1, 1, 0, /* */ 1, -1, -1, /* */ 0, 0, 1,
    ];

    #[test]
    fn packs_the_reference_example() {
        assert_eq!(
            pack_ternary(&EXAMPLE, 8, 3),
            [0x92, 0x11, 0x14, 0x49, 0x6A, 0x9A]
        );
    }

    #[test]
    fn decodes_what_it_packs() {
        let m = matrix(&EXAMPLE, 8, 3);
        for row in 0..8 {
            assert_eq!(m.row(row), EXAMPLE[row * 3..row * 3 + 3], "row {row}");
            for col in 0..3 {
                assert_eq!(m.entry(row, col), EXAMPLE[row * 3 + col]);
            }
        }
    }

    #[test]
    fn lists_and_counts_the_nonzeros_of_rows() {
        // 8 rows: packed row 0 holds rows 0, 2, 4, 6; packed row 1 rows 1, 3, 5, 7.
        let m = matrix(&EXAMPLE, 8, 3);
        let mut out = [[7u32; 4]; ROWS_PER_BYTE];
        let [a, b, c, d] = &mut out;
        assert_eq!(m.signed_columns(0, 0..3, [a, b, c, d]), [2, 2, 0, 3]);
        assert_eq!(out[0][..2], [0, 5]);
        assert_eq!(out[1][..2], [1, 3]);
        assert_eq!(out[3][..3], [0, 3, 5]);
        let [a, b, c, d] = &mut out;
        assert_eq!(m.signed_columns(1, 1..3, [a, b, c, d]), [2, 2, 1, 1]);
        assert_eq!(out[0][..2], [2, 4]);
        assert_eq!(out[1][..2], [2, 4]);
        assert_eq!(out[2][..1], [2]);
        assert_eq!(out[3][..1], [4]);
        let nonzeros: Vec<usize> = (0..8).map(|row| m.row_nonzeros(row)).collect();
        assert_eq!(nonzeros, [2, 2, 2, 3, 0, 2, 3, 1]);
    }

    #[test]
    fn counts_nonzeros_a_word_at_a_time_and_in_the_tail() {
        let (rows, cols) = (7, 21);
        let values: Vec<i8> = (0..rows * cols)
            .map(|i| [1i8, 0, -1, 0, 0, 1][(i * 7) % 6])
            .collect();
        let m = matrix(&values, rows, cols);
        for row in 0..rows {
            let expected = m.row(row).iter().filter(|&&v| v != 0).count();
            assert_eq!(m.row_nonzeros(row), expected, "row {row}");
        }
    }

    #[test]
    fn unpacks_the_transformers_docstring_example() {
        // transformers' unpack_weights docstring: 2 packed rows, 2 columns.
        let packed = vec![0b1010_0001, 0b0001_1000, 0b1001_0000, 0b0000_1010];
        let scale = WeightScale {
            stored: 1.0,
            convention: ScaleConvention::Multiply,
        };
        let m = TernaryMatrix::new(
            "w".into(),
            8,
            2,
            Bytes::owned(packed),
            scale,
            WeightOrigin::Packed,
        )
        .unwrap_or_else(|at| panic!("invalid code at {at:?}"));
        let expected: [[i8; 2]; 8] = [
            [0, -1],
            [-1, 1],
            [-1, 1],
            [-1, 1],
            [1, 0],
            [0, -1],
            [1, -1],
            [1, -1],
        ];
        for (row, values) in expected.iter().enumerate() {
            assert_eq!(m.row(row), values, "row {row}");
        }
    }

    #[test]
    fn pads_row_counts_not_divisible_by_four_with_zeros() {
        let values: Vec<i8> = (0..5 * 3).map(|i| [(1i8), -1, 0][i % 3]).collect();
        let m = matrix(&values, 5, 3);
        assert_eq!(m.packed_rows(), 2);
        for row in 0..5 {
            assert_eq!(m.row(row), values[row * 3..row * 3 + 3]);
        }
    }

    #[test]
    fn finds_code_three_in_every_field_and_position() {
        let rows = 8;
        let cols = 5;
        for index in 0..(rows / 4) * cols {
            for field in 0..4 {
                let mut packed = pack_ternary(&vec![0; rows * cols], rows, cols);
                packed[index] |= 3 << (2 * field);
                let scale = WeightScale {
                    stored: 1.0,
                    convention: ScaleConvention::Multiply,
                };
                let result = TernaryMatrix::new(
                    "w".into(),
                    rows,
                    cols,
                    Bytes::owned(packed),
                    scale,
                    WeightOrigin::Packed,
                );
                let expected_row = field * (rows / 4) + index / cols;
                assert_eq!(result.err(), Some((expected_row, index % cols)));
            }
        }
    }

    #[test]
    fn scale_conventions() {
        let multiply = WeightScale {
            stored: 2.0,
            convention: ScaleConvention::Multiply,
        };
        let divide = WeightScale {
            stored: 2.0,
            convention: ScaleConvention::Divide,
        };
        assert_eq!(multiply.effective(), 2.0);
        assert_eq!(divide.effective(), 0.5);
    }

    #[test]
    fn absmean_ternarisation_rounds_half_to_even() {
        // mean|W| = 1, so W · s = W: 0.5 rounds to 0, 1.5 to 2 then clamps to 1, −0.5 to −0.
        let weights: [f32; 4] = [0.5, 1.5, -0.5, -1.5];
        let bytes: Vec<u8> = weights.iter().flat_map(|w| w.to_le_bytes()).collect();
        let Ok(t) = ternarize_absmean(FloatDtype::F32, &bytes, 4, 1) else {
            panic!("finite weights");
        };
        assert_eq!(t.beta, 1.0);
        let scale = WeightScale {
            stored: t.beta,
            convention: ScaleConvention::Multiply,
        };
        let m = TernaryMatrix::new(
            "w".into(),
            4,
            1,
            Bytes::owned(t.packed),
            scale,
            WeightOrigin::Ternarized,
        )
        .unwrap_or_else(|at| panic!("invalid code at {at:?}"));
        assert_eq!(
            (0..4).map(|r| m.entry(r, 0)).collect::<Vec<_>>(),
            [0, 1, 0, -1]
        );
    }

    #[test]
    fn absmean_of_zero_weights_uses_the_floor() {
        let bytes = vec![0u8; 8 * 4];
        let Ok(t) = ternarize_absmean(FloatDtype::F32, &bytes, 4, 2) else {
            panic!("finite weights");
        };
        assert_eq!(t.beta, 1.0 / (1.0f32 / 1e-5));
        assert!(t.packed.iter().all(|&b| b == 0x55), "all zeros");
    }

    #[test]
    fn absmean_rejects_non_finite_weights() {
        let weights: [f32; 3] = [0.5, f32::NAN, 1.0];
        let bytes: Vec<u8> = weights.iter().flat_map(|w| w.to_le_bytes()).collect();
        let error = ternarize_absmean(FloatDtype::F32, &bytes, 3, 1).err();
        assert!(matches!(error, Some((1, v)) if v.is_nan()));
    }
}
