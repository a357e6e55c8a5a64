//! The client/server files of an encrypted run: secret key (client only, 0600), evaluation keys, ciphertext bundles; each bound to the plan's parameter hash and to its keygen, checked on load.
//!
//! Envelope (little-endian): magic `ENSIRUN1`, kind (u8), version (u16), reserved (u8), the
//! plan's parameter hash (32 bytes), the key id of the keygen (16 random bytes, shared by
//! the secret key, its evaluation keys and every ciphertext encrypted under it), the plan
//! digest (32 bytes; BLAKE3 of the plan file's bytes, zero for keys, which serve any plan
//! on the same parameters), body length (u64), BLAKE3 of header and body (32 bytes), body.
//! Bodies are the scheme's own checksummed containers
//! ([`crate::ckks::scheme::serialize`]). Files are written through a temporary sibling and a
//! rename (never half a file).
//!
//! The server's loaders ([`load_evaluation_keys`], [`load_ciphertexts`]) refuse any file
//! holding a secret key, in this envelope or as a bare scheme container.

use std::path::Path;

#[cfg(feature = "serialize-secret")]
use zeroize::Zeroizing;

#[cfg(feature = "serialize-secret")]
use crate::ckks::scheme::SecretKey;
use crate::ckks::scheme::serialize::{
    self, MAGIC as SCHEME_MAGIC, SerializeError, ciphertext_from_bytes, ciphertext_to_bytes,
    evaluation_keys_from_bytes, evaluation_keys_to_bytes,
};
use crate::ckks::scheme::{Ciphertext, EvaluationKeys, Params};
use crate::plan::{Plan, file as plan_file};

/// Envelope magic.
pub const MAGIC: [u8; 8] = *b"ENSIRUN1";
/// Envelope version.
pub const VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 1 + 2 + 1 + 32 + 16 + 32 + 8 + 32;
/// Largest file body read (evaluation keys of bootstrapping sets are tens of GiB).
pub const MAX_BODY: u64 = 64 << 30;

/// What an envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// The client's secret key.
    SecretKey = 1,
    /// Evaluation keys (relinearization, Galois).
    EvaluationKeys = 2,
    /// Named vectors of ciphertexts (inputs or outputs of a plan).
    Ciphertexts = 3,
}

impl FileKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::SecretKey,
            2 => Self::EvaluationKeys,
            3 => Self::Ciphertexts,
            _ => return None,
        })
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecretKey => "secret key",
            Self::EvaluationKeys => "evaluation keys",
            Self::Ciphertexts => "ciphertexts",
        }
    }
}

/// A keygen's identity: 16 random bytes shared by its secret key, its evaluation keys and
/// every ciphertext encrypted under it (so that keys of another keygen are a clear error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// A fresh random id.
    pub fn random() -> Result<Self, FileError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| FileError::Random(e.to_string()))?;
        Ok(Self(id))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a run file could not be written or loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The scheme container inside (or reading, writing) failed.
    #[error("{path}: {source}")]
    Scheme {
        /// The file.
        path: String,
        /// The scheme's error.
        source: SerializeError,
    },
    /// Not a file of an encrypted run.
    #[error(
        "{path}: not an ensi run file (keys or ciphertexts written by ensi keygen/encrypt/eval)"
    )]
    BadMagic {
        /// The file.
        path: String,
    },
    /// Another kind of file.
    #[error("{path}: expected {expected}, found {found}")]
    WrongKind {
        /// The file.
        path: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A file holding a secret key given to the server.
    #[error(
        "{path}: this file contains a SECRET key; refusing to load it on the server side \
         (give the evaluation keys file written by `ensi keygen`)"
    )]
    SecretOnServer {
        /// The file.
        path: String,
    },
    /// Truncated, altered or trailing bytes.
    #[error("{path}: {problem}")]
    Corrupted {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Made for other CKKS parameters than the plan's.
    #[error(
        "{path}: made for CKKS parameters {found}, the plan's are {expected} (a file for another plan)"
    )]
    ParamsMismatch {
        /// The file.
        path: String,
        /// Short hash of the plan's parameters.
        expected: String,
        /// Short hash in the file.
        found: String,
    },
    /// Made by another keygen.
    #[error(
        "{path}: made under keys {found}, expected keys {expected}: keys from another `ensi keygen`"
    )]
    KeyMismatch {
        /// The file.
        path: String,
        /// The key id expected.
        expected: KeyId,
        /// The key id in the file.
        found: KeyId,
    },
    /// Ciphertexts encrypted for another plan.
    #[error(
        "{path}: encrypted for another plan than the one given (plan digest {found}, expected {expected})"
    )]
    PlanMismatch {
        /// The file.
        path: String,
        /// Digest of the plan given.
        expected: String,
        /// Digest in the file.
        found: String,
    },
    /// The system's randomness failed.
    #[error("cannot draw a key id: {0}")]
    Random(String),
}

/// BLAKE3 of a plan's file bytes: what ciphertext files are bound to.
pub fn plan_digest(plan: &Plan) -> [u8; 32] {
    *blake3::hash(&plan_file::to_bytes(plan)).as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

struct Header {
    kind: FileKind,
    params_hash: [u8; 32],
    key_id: KeyId,
    plan: [u8; 32],
}

fn envelope(header: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(header.kind as u8);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&header.params_hash);
    out.extend_from_slice(&header.key_id.0);
    out.extend_from_slice(&header.plan);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&out);
    hasher.update(body);
    out.extend_from_slice(hasher.finalize().as_bytes());
    out.extend_from_slice(body);
    out
}

/// Whether `bytes` hold a secret key: this envelope of kind secret key, or a bare scheme
/// secret-key container.
fn holds_secret(bytes: &[u8]) -> bool {
    (bytes.len() > 8 && bytes[..8] == MAGIC && bytes[8] == FileKind::SecretKey as u8)
        || (bytes.len() > 8
            && bytes[..8] == SCHEME_MAGIC
            && bytes[8] == serialize::Kind::SecretKey as u8)
}

/// Checks the envelope of `bytes` (magic, kind, version, length, checksum, parameters) and
/// returns its header and body.
fn open<'b>(
    bytes: &'b [u8],
    path: &Path,
    expected: FileKind,
    plan: &Plan,
) -> Result<(Header, &'b [u8]), FileError> {
    let path_text = path.display().to_string();
    let corrupted = |problem: String| FileError::Corrupted {
        path: path_text.clone(),
        problem,
    };
    if expected != FileKind::SecretKey && holds_secret(bytes) {
        return Err(FileError::SecretOnServer { path: path_text });
    }
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return Err(FileError::BadMagic { path: path_text });
    }
    if bytes.len() < HEADER_LEN {
        return Err(corrupted(format!(
            "truncated: {} bytes, the header alone has {HEADER_LEN}",
            bytes.len()
        )));
    }
    let kind = FileKind::from_u8(bytes[8]);
    if kind != Some(expected) {
        return Err(FileError::WrongKind {
            path: path_text,
            expected: expected.name(),
            found: kind.map_or_else(|| format!("kind {}", bytes[8]), |k| k.name().to_owned()),
        });
    }
    let version = u16::from_le_bytes([bytes[9], bytes[10]]);
    if version != VERSION {
        return Err(corrupted(format!(
            "file version {version}, this build reads version {VERSION}"
        )));
    }
    let field = |at: usize, len: usize| &bytes[at..at + len];
    let mut params_hash = [0u8; 32];
    params_hash.copy_from_slice(field(12, 32));
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(field(44, 16));
    let mut plan_digest = [0u8; 32];
    plan_digest.copy_from_slice(field(60, 32));
    let mut len = [0u8; 8];
    len.copy_from_slice(field(92, 8));
    let body_len = u64::from_le_bytes(len);
    if body_len > MAX_BODY {
        return Err(corrupted(format!("declares a body of {body_len} bytes")));
    }
    let total = HEADER_LEN as u64 + body_len;
    if (bytes.len() as u64) != total {
        return Err(corrupted(format!(
            "{} bytes, the header declares {total}: truncated or extended",
            bytes.len()
        )));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&bytes[..100]);
    hasher.update(&bytes[HEADER_LEN..]);
    if hasher.finalize().as_bytes() != field(100, 32) {
        return Err(corrupted(
            "checksum mismatch: the file was altered or damaged".into(),
        ));
    }
    if params_hash != plan.params.hash {
        return Err(FileError::ParamsMismatch {
            path: path_text,
            expected: hex(&plan.params.hash),
            found: hex(&params_hash),
        });
    }
    Ok((
        Header {
            kind: expected,
            params_hash,
            key_id: KeyId(key_id),
            plan: plan_digest,
        },
        &bytes[HEADER_LEN..],
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    serialize::read_file(path, MAX_BODY + HEADER_LEN as u64).map_err(|source| FileError::Scheme {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    serialize::write_file(path, bytes, mode).map_err(|source| FileError::Scheme {
        path: path.display().to_string(),
        source,
    })
}

fn scheme(path: &Path) -> impl Fn(SerializeError) -> FileError + '_ {
    move |source| FileError::Scheme {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the secret key of keygen `key_id` (owner-only permissions, 0600).
#[cfg(feature = "serialize-secret")]
pub fn save_secret_key(
    path: &Path,
    plan: &Plan,
    key_id: KeyId,
    key: &SecretKey,
) -> Result<(), FileError> {
    let inner = serialize::secret_key_to_bytes(key);
    let header = Header {
        kind: FileKind::SecretKey,
        params_hash: plan.params.hash,
        key_id,
        plan: [0; 32],
    };
    let bytes = Zeroizing::new(envelope(&header, &inner));
    write(path, &bytes, 0o600)
}

/// Loads a secret key written by [`save_secret_key`] for `plan`'s parameters.
#[cfg(feature = "serialize-secret")]
pub fn load_secret_key(
    path: &Path,
    plan: &Plan,
    params: &Params,
) -> Result<(KeyId, SecretKey), FileError> {
    let bytes = Zeroizing::new(read(path)?);
    let (header, body) = open(&bytes, path, FileKind::SecretKey, plan)?;
    let key = serialize::secret_key_from_bytes(params, body).map_err(scheme(path))?;
    Ok((header.key_id, key))
}

/// Writes evaluation keys of keygen `key_id`.
pub fn save_evaluation_keys(
    path: &Path,
    plan: &Plan,
    key_id: KeyId,
    keys: &EvaluationKeys,
) -> Result<(), FileError> {
    let header = Header {
        kind: FileKind::EvaluationKeys,
        params_hash: plan.params.hash,
        key_id,
        plan: [0; 32],
    };
    write(
        path,
        &envelope(&header, &evaluation_keys_to_bytes(keys)),
        0o644,
    )
}

/// Loads evaluation keys for `plan` (refusing any file that holds a secret key).
pub fn load_evaluation_keys(
    path: &Path,
    plan: &Plan,
    params: &Params,
) -> Result<(KeyId, EvaluationKeys), FileError> {
    let bytes = read(path)?;
    let (header, body) = open(&bytes, path, FileKind::EvaluationKeys, plan)?;
    if holds_secret(body) {
        return Err(FileError::SecretOnServer {
            path: path.display().to_string(),
        });
    }
    let keys = evaluation_keys_from_bytes(params, body).map_err(scheme(path))?;
    Ok((header.key_id, keys))
}

/// Named ciphertext vectors of one plan, encrypted under one keygen.
#[derive(Debug, Clone)]
pub struct CiphertextFile {
    /// The keygen they are encrypted under.
    pub key_id: KeyId,
    /// `(name, ciphertexts)`: the plan's inputs or outputs.
    pub vectors: Vec<(String, Vec<Ciphertext>)>,
}

/// Writes `file`'s ciphertexts for `plan` (fresh symmetric encryptions ship their seeds).
pub fn save_ciphertexts(
    path: &Path,
    plan: &Plan,
    params: &Params,
    file: &CiphertextFile,
) -> Result<(), FileError> {
    let mut body = Vec::new();
    body.extend_from_slice(&(file.vectors.len() as u32).to_le_bytes());
    for (name, cts) in &file.vectors {
        body.extend_from_slice(&(name.len() as u32).to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(cts.len() as u32).to_le_bytes());
        for ct in cts {
            let bytes = ciphertext_to_bytes(params, ct, true);
            body.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            body.extend_from_slice(&bytes);
        }
    }
    let header = Header {
        kind: FileKind::Ciphertexts,
        params_hash: plan.params.hash,
        key_id: file.key_id,
        plan: plan_digest(plan),
    };
    write(path, &envelope(&header, &body), 0o644)
}

/// Loads ciphertexts encrypted for `plan` (its digest and parameters checked; refusing a
/// file that holds a secret key).
pub fn load_ciphertexts(
    path: &Path,
    plan: &Plan,
    params: &Params,
) -> Result<CiphertextFile, FileError> {
    let bytes = read(path)?;
    let (header, body) = open(&bytes, path, FileKind::Ciphertexts, plan)?;
    let digest = plan_digest(plan);
    if header.plan != digest {
        return Err(FileError::PlanMismatch {
            path: path.display().to_string(),
            expected: hex(&digest),
            found: hex(&header.plan),
        });
    }
    let corrupted = |problem: &str| FileError::Corrupted {
        path: path.display().to_string(),
        problem: format!("malformed ciphertext list: {problem}"),
    };
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], FileError> {
        let end = at.checked_add(n).filter(|&e| e <= body.len());
        let end = end.ok_or_else(|| corrupted("truncated"))?;
        let out = &body[at..end];
        at = end;
        Ok(out)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let vectors_len = u32_at(take(4)?);
    let mut vectors = Vec::new();
    for _ in 0..vectors_len {
        let name_len = u32_at(take(4)?);
        let name = std::str::from_utf8(take(name_len)?)
            .map_err(|_| corrupted("a name is not UTF-8"))?
            .to_owned();
        let count = u32_at(take(4)?);
        let mut cts = Vec::new();
        for _ in 0..count {
            let len_bytes = take(8)?;
            let mut len = [0u8; 8];
            len.copy_from_slice(len_bytes);
            let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| corrupted("length"))?;
            let ct_bytes = take(len)?;
            if holds_secret(ct_bytes) {
                return Err(FileError::SecretOnServer {
                    path: path.display().to_string(),
                });
            }
            cts.push(ciphertext_from_bytes(params, ct_bytes).map_err(scheme(path))?);
        }
        vectors.push((name, cts));
    }
    if at != body.len() {
        return Err(corrupted("trailing bytes"));
    }
    debug_assert_eq!(header.kind, FileKind::Ciphertexts);
    debug_assert_eq!(header.params_hash, plan.params.hash);
    Ok(CiphertextFile {
        key_id: header.key_id,
        vectors,
    })
}
