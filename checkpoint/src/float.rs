//! Floating-point tensors (norm gains, embedding, LM head) kept as views, decoded to f32 on demand.

use std::fmt;

use half::{bf16, f16};
use safetensors::Dtype;

use crate::bytes::Bytes;

/// The element types accepted for floating-point tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatDtype {
    /// bfloat16 (the dtype of microsoft/bitnet-b1.58-2B-4T).
    BF16,
    /// IEEE half precision (the 1bitLLM models).
    F16,
    /// IEEE single precision.
    F32,
}

impl FloatDtype {
    /// The safetensors dtypes accepted, as error messages list them.
    pub(crate) const EXPECTED: &'static str = "BF16, F16 or F32";

    /// The float dtype for a safetensors dtype, if it is one of the accepted three.
    pub(crate) fn from_safetensors(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::BF16 => Some(Self::BF16),
            Dtype::F16 => Some(Self::F16),
            Dtype::F32 => Some(Self::F32),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::BF16 | Self::F16 => 2,
            Self::F32 => 4,
        }
    }

    /// Decodes one little-endian element; `bytes` holds exactly `self.size()` bytes.
    pub(crate) fn decode(self, bytes: &[u8]) -> f32 {
        match (self, bytes) {
            (Self::BF16, &[a, b]) => bf16::from_bits(u16::from_le_bytes([a, b])).to_f32(),
            (Self::F16, &[a, b]) => f16::from_bits(u16::from_le_bytes([a, b])).to_f32(),
            (Self::F32, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            // Callers chunk by `self.size()`; any other length is a bug of this crate.
            _ => f32::NAN,
        }
    }

    /// Decodes consecutive elements of `bytes` into `out` (one element per `out` slot).
    pub(crate) fn decode_into(self, bytes: &[u8], out: &mut [f32]) {
        // One loop per dtype, not a dispatch per element: each loop vectorizes.
        match self {
            Self::BF16 => {
                for (value, chunk) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *value = bf16::from_bits(u16::from_le_bytes([chunk[0], chunk[1]])).to_f32();
                }
            }
            Self::F16 => {
                for (value, chunk) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *value = f16::from_bits(u16::from_le_bytes([chunk[0], chunk[1]])).to_f32();
                }
            }
            Self::F32 => {
                for (value, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                }
            }
        }
    }
}

impl fmt::Display for FloatDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BF16 => "BF16",
            Self::F16 => "F16",
            Self::F32 => "F32",
        })
    }
}

/// A 1-D floating-point tensor (a norm's gains), viewed in place.
#[derive(Debug, Clone)]
pub struct FloatVector {
    name: String,
    dtype: FloatDtype,
    len: usize,
    bytes: Bytes,
}

impl FloatVector {
    /// Invariant (checked by the loader): `bytes` holds `len` elements of `dtype`.
    pub(crate) fn new(name: String, dtype: FloatDtype, len: usize, bytes: Bytes) -> Self {
        Self {
            name,
            dtype,
            len,
            bytes,
        }
    }

    /// The tensor's name in the checkpoint.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored element type.
    pub fn dtype(&self) -> FloatDtype {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `index`, exactly (BF16 and F16 widen to f32 without rounding).
    ///
    /// # Panics
    ///
    /// If `index >= self.len()`.
    pub fn get(&self, index: usize) -> f32 {
        assert!(
            index < self.len,
            "index {index} out of range for {} elements",
            self.len
        );
        let size = self.dtype.size();
        self.dtype
            .decode(&self.bytes.as_slice()[index * size..(index + 1) * size])
    }

    /// BLAKE3 digest of the decoded values (as f32 bits), independent of the stored dtype.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ensi vector v1");
        hasher.update(&(self.len as u64).to_le_bytes());
        let bytes: Vec<u8> = self
            .to_vec()
            .iter()
            .flat_map(|value| value.to_bits().to_le_bytes())
            .collect();
        hasher.update(&bytes);
        *hasher.finalize().as_bytes()
    }

    /// Every element, decoded.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len];
        self.dtype.decode_into(self.bytes.as_slice(), &mut out);
        out
    }
}

/// A 2-D floating-point tensor (embedding table, LM head), viewed in place and decoded by row.
#[derive(Debug, Clone)]
pub struct FloatMatrix {
    name: String,
    dtype: FloatDtype,
    rows: usize,
    cols: usize,
    bytes: Bytes,
}

impl FloatMatrix {
    /// Invariant (checked by the loader): `bytes` holds `rows · cols` elements of `dtype`.
    pub(crate) fn new(
        name: String,
        dtype: FloatDtype,
        rows: usize,
        cols: usize,
        bytes: Bytes,
    ) -> Self {
        Self {
            name,
            dtype,
            rows,
            cols,
            bytes,
        }
    }

    /// The tensor's name in the checkpoint.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored element type.
    pub fn dtype(&self) -> FloatDtype {
        self.dtype
    }

    /// Number of rows (the vocabulary size for an embedding).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (the hidden size for an embedding).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// BLAKE3 digest of the decoded values (as f32 bits, row-major), independent of the
    /// stored dtype. Reads the whole table.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ensi matrix v1");
        hasher.update(&(self.rows as u64).to_le_bytes());
        hasher.update(&(self.cols as u64).to_le_bytes());
        let mut row = vec![0.0f32; self.cols];
        let mut bytes = Vec::with_capacity(4 * self.cols);
        for r in 0..self.rows {
            self.row_into(r, &mut row);
            bytes.clear();
            bytes.extend(row.iter().flat_map(|value| value.to_bits().to_le_bytes()));
            hasher.update(&bytes);
        }
        *hasher.finalize().as_bytes()
    }

    /// Decodes row `row` into `out`, which must hold `self.cols()` elements.
    ///
    /// Only that row's bytes are read, so for a memory-mapped table only its pages are touched.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()` or `out.len() != self.cols()`.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
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
        let row_bytes = self.cols * self.dtype.size();
        let start = row * row_bytes;
        self.dtype
            .decode_into(&self.bytes.as_slice()[start..start + row_bytes], out);
    }

    /// Row `row`, decoded.
    ///
    /// # Panics
    ///
    /// If `row >= self.rows()`.
    pub fn row(&self, row: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.cols];
        self.row_into(row, &mut out);
        out
    }
}
