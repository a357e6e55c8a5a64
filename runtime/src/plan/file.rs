//! The plan file: magic, format version, length and BLAKE3 checksum, then the bincode body.
//!
//! Loading rejects a file that is not a plan, from another format version, truncated,
//! oversized or corrupted, before decoding a byte of the body; saving writes a temporary
//! sibling and renames it, so a failure never leaves half a plan.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Plan;

/// First bytes of every plan file.
pub const MAGIC: &[u8; 8] = b"ENSIPLAN";
/// Version of the plan format this runtime reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Largest plan accepted by default (plans hold no weights or keys: a few MiB at most).
pub const MAX_PLAN_BYTES: u64 = 256 << 20;

const HEADER_BYTES: usize = 8 + 4 + 8 + 32;

/// Why a plan file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the plan magic.
    #[error("{path}: not an ensi plan (bad magic)")]
    NotAPlan {
        /// The file.
        path: PathBuf,
    },
    /// The file is from another format version.
    #[error("{path}: plan format version {found}, this runtime reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// The file is shorter than its header says.
    #[error("{path}: truncated plan ({found} bytes, header announces {expected})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes present.
        found: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The file exceeds the size limit.
    #[error("{path}: plan of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The body does not match its checksum.
    #[error("{path}: plan checksum mismatch (the file is corrupted)")]
    Checksum {
        /// The file.
        path: PathBuf,
    },
    /// The body does not decode.
    #[error("{path}: malformed plan body: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// Largest body the decoder will allocate for, whatever the header claims.
const DECODE_LIMIT: usize = 1 << 30;

type BodyConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<DECODE_LIMIT>,
>;

fn config() -> BodyConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// Serializes `plan` into the file format.
pub fn to_bytes(plan: &Plan) -> Vec<u8> {
    // Encoding a plain data structure into a Vec cannot fail.
    let body = bincode::serde::encode_to_vec(plan, config()).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&body).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Parses the file format; `path` names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path, limit: u64) -> Result<Plan, PlanFileError> {
    let path = path.to_path_buf();
    if bytes.len() as u64 > limit {
        return Err(PlanFileError::TooLarge {
            path,
            size: bytes.len() as u64,
            limit,
        });
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(PlanFileError::NotAPlan { path });
    }
    if bytes.len() < HEADER_BYTES {
        return Err(PlanFileError::Truncated {
            path,
            found: bytes.len() as u64,
            expected: HEADER_BYTES as u64,
        });
    }
    let word = |range: std::ops::Range<usize>| -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..range.len()].copy_from_slice(&bytes[range]);
        out
    };
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(PlanFileError::Version {
            path,
            found: version,
        });
    }
    let body_len = u64::from_le_bytes(word(12..20));
    let expected = (HEADER_BYTES as u64).saturating_add(body_len);
    if expected > limit {
        return Err(PlanFileError::TooLarge {
            path,
            size: expected,
            limit,
        });
    }
    if (bytes.len() as u64) != expected {
        return Err(PlanFileError::Truncated {
            path,
            found: bytes.len() as u64,
            expected,
        });
    }
    let body = &bytes[HEADER_BYTES..];
    if blake3::hash(body).as_bytes() != &bytes[20..52] {
        return Err(PlanFileError::Checksum { path });
    }
    let (plan, used) =
        bincode::serde::decode_from_slice::<Plan, _>(body, config()).map_err(|e| {
            PlanFileError::Decode {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
    if used != body.len() {
        return Err(PlanFileError::Decode {
            path,
            message: format!("{} trailing bytes after the plan", body.len() - used),
        });
    }
    Ok(plan)
}

/// Reads a plan file, refusing files larger than `limit` bytes.
pub fn load(path: &Path, limit: u64) -> Result<Plan, PlanFileError> {
    let io = |source| PlanFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > limit {
        return Err(PlanFileError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    from_bytes(&bytes, path, limit)
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, so that readers never
/// see half a file and a failure leaves any previous file intact.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `plan` to `path` atomically.
pub fn save(plan: &Plan, path: &Path) -> Result<(), PlanFileError> {
    write_atomically(path, &to_bytes(plan)).map_err(|source| PlanFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}
