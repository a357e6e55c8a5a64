//! One safetensors file: memory-mapped, its header parsed and checked byte for byte against the file.
//!
//! The header is validated here rather than by `safetensors::SafeTensors::read_metadata`
//! because that function's errors do not say which tensor is wrong; the rules are the same
//! (contiguous, non-overlapping offsets that cover the data section exactly, sizes that match
//! shape × dtype), with every size computed in checked arithmetic.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::Dtype;
use serde_json::Value;

use crate::Error;
use crate::bytes::Bytes;
use crate::error::ShapeDisplay;

/// Length of the little-endian `u64` that precedes the JSON header.
const LENGTH_PREFIX: usize = 8;

/// Largest JSON header accepted, as in the `safetensors` crate (100 MB).
const MAX_HEADER_LEN: u64 = 100_000_000;

/// A tensor's place in a file, as the header describes it (already validated).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Element type.
    pub(crate) dtype: Dtype,
    /// Shape, outermost dimension first.
    pub(crate) shape: Vec<usize>,
    /// The tensor's bytes.
    pub(crate) bytes: Bytes,
}

/// A validated safetensors file.
#[derive(Debug)]
pub(crate) struct TensorFile {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl TensorFile {
    /// Maps `path` and validates its header.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let io_error = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        // SAFETY: the mapping is read-only and private to this process; like every reader of
        // memory-mapped model files, we rely on nobody truncating or rewriting the checkpoint
        // while it is open (the file is input data, never written by ensi).
        let map = unsafe { Mmap::map(&file) }.map_err(io_error)?;
        Self::parse(path.to_owned(), Bytes::mapped(map))
    }

    /// Validates the header of the file whose complete contents are `bytes`.
    pub(crate) fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, Error> {
        let file_len = bytes.len();
        let all = bytes.as_slice();
        let Some(prefix) = all.first_chunk::<LENGTH_PREFIX>() else {
            return Err(Error::Truncated {
                path,
                detail: format!(
                    "{file_len} bytes, shorter than the {LENGTH_PREFIX}-byte header length"
                ),
            });
        };
        let header_len = u64::from_le_bytes(*prefix);
        if header_len > MAX_HEADER_LEN {
            return Err(Error::InvalidHeader {
                path,
                detail: format!(
                    "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
                ),
            });
        }
        // Cannot fail: the header length is at most MAX_HEADER_LEN.
        let header_len = usize::try_from(header_len).unwrap_or(usize::MAX);
        let available = file_len - LENGTH_PREFIX;
        if header_len > available {
            return Err(Error::Truncated {
                path,
                detail: format!(
                    "the header needs {header_len} bytes after the length prefix, \
                     but the file holds only {available}"
                ),
            });
        }
        let data_start = LENGTH_PREFIX + header_len;
        let data_len = file_len - data_start;
        let header = &all[LENGTH_PREFIX..data_start];

        let object: serde_json::Map<String, Value> = match serde_json::from_slice(header) {
            Ok(object) => object,
            Err(error) => {
                return Err(Error::InvalidHeader {
                    path,
                    detail: format!("not a JSON object ({error})"),
                });
            }
        };

        let mut spans = Vec::with_capacity(object.len());
        for (name, value) in &object {
            if name == "__metadata__" {
                continue;
            }
            let raw = RawEntry::read(value).map_err(|detail| Error::InvalidTensorEntry {
                path: path.clone(),
                tensor: name.clone(),
                detail,
            })?;
            spans.push((name.as_str(), raw));
        }

        // Walk the tensors in the order of their data: each must start where the previous
        // ended and span exactly shape × dtype bytes.
        spans.sort_by_key(|(name, raw)| (raw.start, raw.end, *name));
        let mut expected_start = 0usize;
        let mut previous: Option<&str> = None;
        for (name, raw) in &spans {
            let bad = |detail: String| Error::BadOffsets {
                path: path.clone(),
                tensor: (*name).to_owned(),
                detail,
            };
            if raw.end < raw.start {
                return Err(bad(format!(
                    "data_offsets [{}, {}] end before they start",
                    raw.start, raw.end
                )));
            }
            if raw.start != expected_start {
                let relation = match previous {
                    None => "the data section starts at 0".to_owned(),
                    Some(prev) if raw.start < expected_start => {
                        format!("it overlaps tensor `{prev}`, which ends at {expected_start}")
                    }
                    Some(prev) => format!(
                        "it leaves a gap of {} bytes after tensor `{prev}`, which ends at {expected_start}",
                        raw.start - expected_start
                    ),
                };
                return Err(bad(format!(
                    "data_offsets [{}, {}] start at {}, but {relation}",
                    raw.start, raw.end, raw.start
                )));
            }
            let span = raw.end - raw.start;
            if span != raw.byte_len {
                return Err(bad(format!(
                    "data_offsets [{}, {}] span {span} bytes, but shape {} of {} needs {}",
                    raw.start,
                    raw.end,
                    ShapeDisplay(&raw.shape),
                    raw.dtype,
                    raw.byte_len
                )));
            }
            expected_start = raw.end;
            previous = Some(name);
        }

        // The header may be self-consistent while the file simply stops early: name the first
        // tensor whose bytes are not all present.
        if let Some((name, raw)) = spans.iter().find(|(_, raw)| raw.end > data_len) {
            return Err(Error::Truncated {
                path,
                detail: format!(
                    "tensor `{name}` needs data up to byte {} of the data section, \
                     which holds only {data_len} bytes",
                    raw.end
                ),
            });
        }
        if expected_start < data_len {
            return Err(Error::InvalidHeader {
                path,
                detail: format!(
                    "the tensors cover {expected_start} bytes of data, but the file holds {data_len} \
                     (the last {} bytes belong to no tensor)",
                    data_len - expected_start
                ),
            });
        }

        let mut entries = BTreeMap::new();
        for (name, raw) in spans {
            let window = data_start + raw.start..data_start + raw.end;
            // Invariant: the walk above proved data_start + end <= file_len.
            let Some(tensor_bytes) = bytes.slice(window) else {
                return Err(Error::Truncated {
                    path,
                    detail: format!("tensor `{name}` lies outside the file"),
                });
            };
            entries.insert(
                name.to_owned(),
                Entry {
                    dtype: raw.dtype,
                    shape: raw.shape,
                    bytes: tensor_bytes,
                },
            );
        }
        Ok(Self { path, entries })
    }

    /// The file's path, as given when it was opened.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor called `name`, if the file holds it.
    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }
}

/// A header entry read from JSON, before the offsets are checked against its neighbours.
struct RawEntry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
    /// Bytes that shape × dtype occupy.
    byte_len: usize,
}

impl RawEntry {
    fn read(value: &Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err("not a JSON object".to_owned());
        };
        let dtype_text = match fields.get("dtype") {
            Some(Value::String(text)) => text,
            Some(_) => return Err("`dtype` is not a string".to_owned()),
            None => return Err("no `dtype`".to_owned()),
        };
        let dtype: Dtype = serde_json::from_value(Value::String(dtype_text.clone()))
            .map_err(|_| format!("unknown dtype `{dtype_text}`"))?;
        let shape = read_indices(fields.get("shape"), "shape")?;
        let offsets = read_indices(fields.get("data_offsets"), "data_offsets")?;
        let [start, end] = offsets[..] else {
            return Err(format!(
                "`data_offsets` has {} entries, expected 2",
                offsets.len()
            ));
        };
        let elements = shape
            .iter()
            .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
            .ok_or_else(|| format!("shape {} overflows", ShapeDisplay(&shape)))?;
        let bits = elements
            .checked_mul(dtype.bitsize())
            .ok_or_else(|| format!("shape {} overflows", ShapeDisplay(&shape)))?;
        if bits % 8 != 0 {
            return Err(format!(
                "shape {} of {dtype} is not a whole number of bytes",
                ShapeDisplay(&shape)
            ));
        }
        Ok(Self {
            dtype,
            shape,
            start,
            end,
            byte_len: bits / 8,
        })
    }
}

/// Reads a JSON array of non-negative integers that fit in `usize`.
fn read_indices(value: Option<&Value>, key: &str) -> Result<Vec<usize>, String> {
    let Some(value) = value else {
        return Err(format!("no `{key}`"));
    };
    let Value::Array(items) = value else {
        return Err(format!("`{key}` is not an array"));
    };
    items
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|number| usize::try_from(number).ok())
                .ok_or_else(|| format!("`{key}` holds `{item}`, not a non-negative integer"))
        })
        .collect()
}
