//! Versioned, checksummed, size-limited files for parameter literals, public keys, evaluation keys (seed-compressed), ciphertexts (full or seeded) and, with `serialize-secret`, secret keys.
//!
//! Container (little-endian): magic `ENSICKKS`, kind (u8), version (u16), reserved (u8),
//! the parameters' BLAKE3 hash (32 bytes; zero for a parameter literal), body length
//! (u64), BLAKE3 of everything before it and of the body (32 bytes), body. Loading checks
//! magic, kind, version, length (against a limit, before reading), checksum, and that the
//! hash is that of the `Params` given; then every polynomial's shape and residues.
//! Seeded parts (`a` of keys, `c1` of symmetric ciphertexts) ship as their 32-byte seeds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::ckks::arith::{Representation, RnsPoly};

use super::ciphertext::Ciphertext;
#[cfg(feature = "serialize-secret")]
use super::keys::SecretKey;
use super::keys::{
    EncapsulationKeys, EvaluationKeys, PublicKey, SwitchingKey, expand_sparse_a, sparse_ring,
};
use super::params::{Params, ParamsLiteral, Security, hex_prefix};

/// File magic.
pub const MAGIC: [u8; 8] = *b"ENSICKKS";
/// The container version this build writes and reads.
pub const VERSION: u16 = 1;
/// Header bytes before the body.
pub const HEADER_LEN: usize = 8 + 1 + 2 + 1 + 32 + 8 + 32;
/// Default largest body accepted (64 GiB: evaluation keys of bootstrapping sets are tens of GiB).
pub const DEFAULT_MAX_BODY: u64 = 64 << 30;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A `ParamsLiteral` (JSON body).
    ParamsLiteral = 1,
    /// A public key.
    PublicKey = 2,
    /// Evaluation keys.
    EvaluationKeys = 3,
    /// A ciphertext.
    Ciphertext = 4,
    /// A secret key (`serialize-secret` only).
    SecretKey = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::ParamsLiteral,
            2 => Self::PublicKey,
            3 => Self::EvaluationKeys,
            4 => Self::Ciphertext,
            5 => Self::SecretKey,
            _ => return None,
        })
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::ParamsLiteral => "parameter literal",
            Self::PublicKey => "public key",
            Self::EvaluationKeys => "evaluation keys",
            Self::Ciphertext => "ciphertext",
            Self::SecretKey => "secret key",
        }
    }
}

/// Why a file could not be written or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SerializeError {
    /// Fewer bytes than the header or the declared body.
    #[error("truncated file: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// Not an ensi CKKS file.
    #[error("not an ensi CKKS file (bad magic)")]
    BadMagic,
    /// Another kind of file than expected.
    #[error("expected a {expected} file, found kind {found}")]
    WrongKind {
        /// The kind asked for.
        expected: &'static str,
        /// The kind found (name or number).
        found: String,
    },
    /// A container version this build does not read.
    #[error("unsupported file version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
        /// The version supported.
        supported: u16,
    },
    /// The body or header was altered.
    #[error("checksum mismatch: the file is corrupted")]
    ChecksumMismatch,
    /// Made for other parameters.
    #[error(
        "parameter mismatch: the {what} file was made for parameters {found}, expected {expected}"
    )]
    ParamsMismatch {
        /// What the file holds.
        what: &'static str,
        /// Short hash expected.
        expected: String,
        /// Short hash found.
        found: String,
    },
    /// A body larger than the limit.
    #[error("file body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes after the declared body.
    #[error("{extra} unexpected bytes after the body")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// A body that does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("I/O error on {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
}

/// Builds a container around `body` (header, checksum). Exposed for tools and fuzzing.
pub fn encode_container(kind: Kind, params_hash: [u8; 32], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&params_hash);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let checksum = checksum(&out, body);
    out.extend_from_slice(&checksum);
    out.extend_from_slice(body);
    out
}

fn checksum(header: &[u8], body: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(header);
    h.update(body);
    *h.finalize().as_bytes()
}

/// The checked header of a container.
struct Header {
    params_hash: [u8; 32],
    body_len: u64,
}

fn parse_header(bytes: &[u8], expected: Kind, limit: u64) -> Result<Header, SerializeError> {
    if bytes.len() < HEADER_LEN {
        // A wrong magic says more than a short length.
        if bytes.len() >= 8 && bytes[..8] != MAGIC {
            return Err(SerializeError::BadMagic);
        }
        return Err(SerializeError::Truncated {
            needed: HEADER_LEN as u64,
            got: bytes.len() as u64,
        });
    }
    if bytes[..8] != MAGIC {
        return Err(SerializeError::BadMagic);
    }
    let kind = bytes[8];
    if kind != expected as u8 {
        return Err(SerializeError::WrongKind {
            expected: expected.name(),
            found: Kind::from_u8(kind).map_or_else(|| kind.to_string(), |k| k.name().to_string()),
        });
    }
    let version = u16::from_le_bytes([bytes[9], bytes[10]]);
    if version != VERSION {
        return Err(SerializeError::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let mut params_hash = [0u8; 32];
    params_hash.copy_from_slice(&bytes[12..44]);
    let body_len = u64::from_le_bytes(bytes[44..52].try_into().unwrap_or([0; 8]));
    if body_len > limit {
        return Err(SerializeError::TooLarge {
            size: body_len,
            limit,
        });
    }
    Ok(Header {
        params_hash,
        body_len,
    })
}

/// Checks the container and returns its body and params hash.
fn open_container(
    bytes: &[u8],
    expected: Kind,
    limit: u64,
) -> Result<(&[u8], [u8; 32]), SerializeError> {
    let header = parse_header(bytes, expected, limit)?;
    let total = HEADER_LEN as u64 + header.body_len;
    let have = bytes.len() as u64;
    if have < total {
        return Err(SerializeError::Truncated {
            needed: total,
            got: have,
        });
    }
    if have > total {
        return Err(SerializeError::TrailingBytes {
            extra: have - total,
        });
    }
    let body = &bytes[HEADER_LEN..];
    if checksum(&bytes[..HEADER_LEN - 32], body)[..] != bytes[HEADER_LEN - 32..HEADER_LEN] {
        return Err(SerializeError::ChecksumMismatch);
    }
    Ok((body, header.params_hash))
}

fn check_params(
    params: &Params,
    found: [u8; 32],
    what: &'static str,
) -> Result<(), SerializeError> {
    if found == params.hash() {
        Ok(())
    } else {
        Err(SerializeError::ParamsMismatch {
            what,
            expected: params.short_hash(),
            found: hex_prefix(&found),
        })
    }
}

// ----- body codec ------------------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn security(&mut self, s: Security) {
        match s {
            Security::Bits128 => self.u8(0),
            Security::InsecureForTesting => self.u8(1),
            Security::StatedEstimate { bits } => {
                self.u8(2);
                self.u32(bits);
            }
        }
    }
    /// Shape (Q limbs, P flag) then residues.
    fn poly(&mut self, p: &RnsPoly) {
        self.u32(p.q_limbs() as u32);
        self.u8(u8::from(p.has_special()));
        self.0.reserve(8 * p.as_slice().len());
        for &v in p.as_slice() {
            self.u64(v);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn malformed(&self, reason: impl Into<String>) -> SerializeError {
        SerializeError::Malformed {
            what: self.what,
            reason: reason.into(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SerializeError> {
        if self.bytes.len() < n {
            return Err(self.malformed(format!("body ends {} bytes early", n - self.bytes.len())));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, SerializeError> {
        Ok(self.take(1)?[0])
    }
    /// The Q-limb count of the polynomial that follows, without consuming it.
    fn peek_q_limbs(&self) -> Result<usize, SerializeError> {
        let b = self
            .bytes
            .get(..4)
            .ok_or_else(|| self.malformed("body ends inside a polynomial header"))?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u32(&mut self) -> Result<u32, SerializeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, SerializeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn seed(&mut self) -> Result<[u8; 32], SerializeError> {
        let mut s = [0u8; 32];
        s.copy_from_slice(self.take(32)?);
        Ok(s)
    }
    fn security(&mut self) -> Result<Security, SerializeError> {
        match self.u8()? {
            0 => Ok(Security::Bits128),
            1 => Ok(Security::InsecureForTesting),
            2 => Ok(Security::StatedEstimate { bits: self.u32()? }),
            v => Err(self.malformed(format!("unknown security marker {v}"))),
        }
    }
    /// A polynomial of exactly the expected shape (Evaluation domain).
    fn poly(
        &mut self,
        params: &Params,
        q_limbs: usize,
        special: bool,
    ) -> Result<RnsPoly, SerializeError> {
        let got_q = self.u32()? as usize;
        let got_special = self.u8()?;
        if got_q != q_limbs || got_special != u8::from(special) {
            return Err(self.malformed(format!(
                "polynomial with {got_q} Q limbs (P: {got_special}), expected {q_limbs} (P: {})",
                u8::from(special)
            )));
        }
        let ring = params.ring();
        let limbs = q_limbs + if special { ring.p().len() } else { 0 };
        let count = limbs * ring.n();
        let raw = self.take(count * 8)?;
        let data: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect();
        RnsPoly::from_limbs(ring, data, q_limbs, special, Representation::Evaluation)
            .map_err(|e| self.malformed(e.to_string()))
    }
    fn finish(&self) -> Result<(), SerializeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!(
                "{} bytes left after the last field",
                self.bytes.len()
            )))
        }
    }
}

// ----- per kind ----------------------------------------------------------------------------

/// A parameter literal as a file (JSON body; no params hash).
pub fn params_literal_to_bytes(literal: &ParamsLiteral) -> Vec<u8> {
    // Invariant: a ParamsLiteral (integers, vectors, enums) always serializes to JSON.
    let body = serde_json::to_vec(literal).unwrap_or_default();
    encode_container(Kind::ParamsLiteral, [0; 32], &body)
}

/// Loads a parameter literal (unchecked: build `Params` from it).
pub fn params_literal_from_bytes(bytes: &[u8]) -> Result<ParamsLiteral, SerializeError> {
    let (body, _) = open_container(bytes, Kind::ParamsLiteral, 1 << 20)?;
    serde_json::from_slice(body).map_err(|e| SerializeError::Malformed {
        what: "parameter literal",
        reason: e.to_string(),
    })
}

/// A public key as a file (b, and the seed of a).
pub fn public_key_to_bytes(key: &PublicKey) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.security(key.security);
    w.bytes(&key.seed);
    w.poly(&key.b);
    encode_container(Kind::PublicKey, key.params_hash, &w.0)
}

/// Loads a public key for `params`.
pub fn public_key_from_bytes(params: &Params, bytes: &[u8]) -> Result<PublicKey, SerializeError> {
    let (body, hash) = open_container(bytes, Kind::PublicKey, DEFAULT_MAX_BODY)?;
    check_params(params, hash, "public key")?;
    let mut r = Reader {
        bytes: body,
        what: "public key",
    };
    let security = r.security()?;
    let seed = r.seed()?;
    let q_limbs = params.max_level() + 1;
    let b = r.poly(params, q_limbs, false)?;
    r.finish()?;
    let a = RnsPoly::uniform_from_seed(
        params.ring(),
        &seed,
        q_limbs,
        false,
        Representation::Evaluation,
    );
    Ok(PublicKey {
        b,
        a,
        seed,
        params_hash: hash,
        security,
    })
}

fn write_switching_key(w: &mut Writer, key: &SwitchingKey) {
    w.bytes(&key.seed);
    w.u32(key.b.len() as u32);
    for b in &key.b {
        w.poly(b);
    }
}

fn read_switching_key(r: &mut Reader<'_>, params: &Params) -> Result<SwitchingKey, SerializeError> {
    let seed = r.seed()?;
    let digits = r.u32()? as usize;
    // A key may be truncated to a level below the top (its polynomials say which); the
    // digit count must be that level's.
    let q_limbs = r.peek_q_limbs()?;
    if q_limbs == 0 || q_limbs > params.max_level() + 1 {
        return Err(r.malformed(format!(
            "a switching key with {q_limbs} Q limbs (the chain has {})",
            params.max_level() + 1
        )));
    }
    let level = q_limbs - 1;
    let expected = params.ring().digits_at_level(level);
    if digits != expected {
        return Err(r.malformed(format!(
            "{digits} key digits, the parameters have {expected} at level {level}"
        )));
    }
    let b = (0..digits)
        .map(|_| r.poly(params, q_limbs, true))
        .collect::<Result<Vec<_>, _>>()?;
    let a = SwitchingKey::expand_a_at(params, &seed, digits, level);
    Ok(SwitchingKey { seed, b, a })
}

/// Evaluation keys as a file (each switching key as its seed and b parts).
pub fn evaluation_keys_to_bytes(keys: &EvaluationKeys) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.security(keys.security);
    match &keys.relin {
        Some(k) => {
            w.u8(1);
            write_switching_key(&mut w, k);
        }
        None => w.u8(0),
    }
    w.u32(keys.galois.len() as u32);
    for (&g, k) in &keys.galois {
        w.u64(g);
        write_switching_key(&mut w, k);
    }
    // Optional trailing section: the bootstrapping encapsulation keys.
    if let Some(e) = &keys.encapsulation {
        w.u8(1);
        w.u32(e.hamming_weight);
        write_switching_key(&mut w, &e.to_sparse);
        write_switching_key(&mut w, &e.to_dense);
    }
    encode_container(Kind::EvaluationKeys, keys.params_hash, &w.0)
}

/// Loads evaluation keys for `params`.
pub fn evaluation_keys_from_bytes(
    params: &Params,
    bytes: &[u8],
) -> Result<EvaluationKeys, SerializeError> {
    let (body, hash) = open_container(bytes, Kind::EvaluationKeys, DEFAULT_MAX_BODY)?;
    check_params(params, hash, "evaluation keys")?;
    let mut r = Reader {
        bytes: body,
        what: "evaluation keys",
    };
    let security = r.security()?;
    let relin = match r.u8()? {
        0 => None,
        1 => Some(read_switching_key(&mut r, params)?),
        v => return Err(r.malformed(format!("relinearization flag {v}"))),
    };
    let count = r.u32()? as usize;
    let mut galois = BTreeMap::new();
    for _ in 0..count {
        let g = r.u64()?;
        if params.ring().galois_element(g).is_err() || g == 1 {
            return Err(r.malformed(format!("invalid Galois element {g}")));
        }
        let key = read_switching_key(&mut r, params)?;
        if galois.insert(g, key).is_some() {
            return Err(r.malformed(format!("Galois element {g} appears twice")));
        }
    }
    let encapsulation = if r.bytes.is_empty() {
        None
    } else {
        match r.u8()? {
            1 => {
                let hamming_weight = r.u32()?;
                let small = sparse_ring(params).map_err(|e| r.malformed(e.to_string()))?;
                let seed = r.seed()?;
                if r.u32()? != 1 {
                    return Err(r.malformed("the dense-to-sparse key has one digit"));
                }
                let (q_limbs, special) = (r.u32()?, r.u8()?);
                if (q_limbs, special) != (1, 1) {
                    return Err(r.malformed(format!(
                        "dense-to-sparse key polynomial with {q_limbs} Q limbs (P: {special}), \
                         expected q_0 and p_0"
                    )));
                }
                let raw = r.take(2 * small.n() * 8)?;
                let data: Vec<u64> = raw
                    .chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        u64::from_le_bytes(a)
                    })
                    .collect();
                let b = RnsPoly::from_limbs(&small, data, 1, true, Representation::Evaluation)
                    .map_err(|e| r.malformed(e.to_string()))?;
                let a = expand_sparse_a(&small, &seed);
                let to_dense = read_switching_key(&mut r, params)?;
                Some(EncapsulationKeys {
                    hamming_weight,
                    sparse_ring: small,
                    to_sparse: SwitchingKey {
                        seed,
                        b: vec![b],
                        a: vec![a],
                    },
                    to_dense,
                })
            }
            v => return Err(r.malformed(format!("encapsulation flag {v}"))),
        }
    };
    r.finish()?;
    Ok(EvaluationKeys {
        params_hash: hash,
        security,
        relin,
        galois,
        encapsulation,
    })
}

/// A ciphertext as a file: c0 and c1, or c0 and the seed of c1 when `compress_seeded`
/// and the ciphertext is a fresh symmetric encryption (half the size).
pub fn ciphertext_to_bytes(params: &Params, ct: &Ciphertext, compress_seeded: bool) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    // The marker travels with the file (the hash already ties it to the parameters).
    w.security(params.security());
    w.u32(ct.level as u32);
    w.u64(ct.scale.to_bits());
    w.u64(ct.slots as u64);
    w.poly(&ct.c0);
    match (compress_seeded, ct.c1_seed) {
        (true, Some(seed)) => {
            w.u8(1);
            w.bytes(&seed);
        }
        _ => {
            w.u8(0);
            w.poly(&ct.c1);
        }
    }
    encode_container(Kind::Ciphertext, ct.params_hash, &w.0)
}

/// Loads a ciphertext for `params`.
pub fn ciphertext_from_bytes(params: &Params, bytes: &[u8]) -> Result<Ciphertext, SerializeError> {
    let (body, hash) = open_container(bytes, Kind::Ciphertext, DEFAULT_MAX_BODY)?;
    check_params(params, hash, "ciphertext")?;
    let mut r = Reader {
        bytes: body,
        what: "ciphertext",
    };
    let security = r.security()?;
    if security != params.security() {
        return Err(r.malformed(format!(
            "security marker {:?} differs from the parameters' {:?}",
            security,
            params.security()
        )));
    }
    let level = r.u32()? as usize;
    if level > params.max_level() {
        return Err(r.malformed(format!(
            "level {level} above the top level {}",
            params.max_level()
        )));
    }
    let scale = f64::from_bits(r.u64()?);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(r.malformed(format!("scale {scale}")));
    }
    let slots = r.u64()?;
    if !(slots.is_power_of_two() && slots <= params.max_slots() as u64) {
        return Err(r.malformed(format!("slot count {slots}")));
    }
    let c0 = r.poly(params, level + 1, false)?;
    let (c1, c1_seed) = match r.u8()? {
        0 => (r.poly(params, level + 1, false)?, None),
        1 => {
            let seed = r.seed()?;
            let c1 = RnsPoly::uniform_from_seed(
                params.ring(),
                &seed,
                level + 1,
                false,
                Representation::Evaluation,
            );
            (c1, Some(seed))
        }
        v => return Err(r.malformed(format!("c1 mode {v}"))),
    };
    r.finish()?;
    let mut ct = Ciphertext::from_parts(c0, c1, scale, slots as usize, hash);
    ct.c1_seed = c1_seed;
    Ok(ct)
}

/// A secret key as a file: its ternary coefficients, 2 bits each.
#[cfg(feature = "serialize-secret")]
pub fn secret_key_to_bytes(key: &SecretKey) -> zeroize::Zeroizing<Vec<u8>> {
    let mut body = zeroize::Zeroizing::new(vec![0u8; key.coeffs.len().div_ceil(4)]);
    for (i, &c) in key.coeffs.iter().enumerate() {
        let code = match c {
            0 => 0u8,
            1 => 1,
            _ => 2,
        };
        body[i / 4] |= code << (2 * (i % 4));
    }
    zeroize::Zeroizing::new(encode_container(Kind::SecretKey, key.params_hash, &body))
}

/// Loads a secret key for `params`.
#[cfg(feature = "serialize-secret")]
pub fn secret_key_from_bytes(params: &Params, bytes: &[u8]) -> Result<SecretKey, SerializeError> {
    let (body, hash) = open_container(bytes, Kind::SecretKey, 1 << 20)?;
    check_params(params, hash, "secret key")?;
    let n = params.n();
    if body.len() != n.div_ceil(4) {
        return Err(SerializeError::Malformed {
            what: "secret key",
            reason: format!("{} bytes, expected {}", body.len(), n.div_ceil(4)),
        });
    }
    let mut coeffs = Vec::with_capacity(n);
    for i in 0..n {
        coeffs.push(match (body[i / 4] >> (2 * (i % 4))) & 3 {
            0 => 0i8,
            1 => 1,
            2 => -1,
            _ => {
                return Err(SerializeError::Malformed {
                    what: "secret key",
                    reason: format!("coefficient {i} has the invalid code 3"),
                });
            }
        });
    }
    SecretKey::from_coeffs(params, coeffs).map_err(|e| SerializeError::Malformed {
        what: "secret key",
        reason: e.to_string(),
    })
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, with `mode`
/// permissions on Unix (0o600 for secret keys), so a failure never leaves half a file.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SerializeError> {
    let io = |e: std::io::Error| SerializeError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Reads a file whose body may be at most `limit` bytes: the size is checked before
/// anything is read.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, SerializeError> {
    let io = |e: std::io::Error| SerializeError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let max = limit.saturating_add(HEADER_LEN as u64);
    if size > max {
        return Err(SerializeError::TooLarge {
            size: size.saturating_sub(HEADER_LEN as u64),
            limit,
        });
    }
    std::fs::read(path).map_err(io)
}

/// Writes a secret key file readable by its owner only (0600).
#[cfg(feature = "serialize-secret")]
pub fn save_secret_key(path: &Path, key: &SecretKey) -> Result<(), SerializeError> {
    write_file(path, &secret_key_to_bytes(key), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::scheme::params::{TEST_INSECURE_N10, TEST_INSECURE_N11};
    use crate::ckks::scheme::{Encryptor, KeyGenerator};

    fn fixture() -> (Params, KeyGenerator) {
        let params = TEST_INSECURE_N10.params().unwrap_or_else(|e| panic!("{e}"));
        let keygen = KeyGenerator::from_seed(&params, [3; 32]).unwrap_or_else(|e| panic!("{e}"));
        (params, keygen)
    }

    #[test]
    fn round_trips() {
        let (params, mut keygen) = fixture();
        let lit = params.literal().clone();
        assert_eq!(
            params_literal_from_bytes(&params_literal_to_bytes(&lit)),
            Ok(lit)
        );
        let pk = keygen.public_key();
        assert!(public_key_from_bytes(&params, &public_key_to_bytes(&pk)) == Ok(pk));
        let keys = keygen
            .evaluation_keys(&[1, -2], true)
            .unwrap_or_else(|e| panic!("{e}"));
        let bytes = evaluation_keys_to_bytes(&keys);
        // Seed compression: the b parts only, about half of the key material.
        assert!((bytes.len() as f64) < 0.55 * keys.size_bytes() as f64);
        assert!(evaluation_keys_from_bytes(&params, &bytes) == Ok(keys));
        let mut enc = Encryptor::with_secret_key(&params, keygen.secret_key())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_seed([1; 32]);
        let ct = enc
            .encrypt_real_top(&[0.5; 16])
            .unwrap_or_else(|e| panic!("{e}"));
        let full = ciphertext_to_bytes(&params, &ct, false);
        let seeded = ciphertext_to_bytes(&params, &ct, true);
        assert!(seeded.len() < full.len() / 2 + 100);
        assert_eq!(
            ciphertext_from_bytes(&params, &full),
            Ok(ct.clone()).map(|mut c: Ciphertext| {
                c.c1_seed = None;
                c
            })
        );
        assert_eq!(ciphertext_from_bytes(&params, &seeded), Ok(ct));
    }

    #[test]
    fn loader_errors_are_clear() {
        let (params, mut keygen) = fixture();
        let pk = keygen.public_key();
        let bytes = public_key_to_bytes(&pk);
        let err = |r: Result<PublicKey, SerializeError>| r.map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            err(public_key_from_bytes(&params, &bytes[..bytes.len() - 5])),
            Err(format!(
                "truncated file: {} bytes needed, {} present",
                bytes.len(),
                bytes.len() - 5
            ))
        );
        assert_eq!(
            err(public_key_from_bytes(&params, &bytes[..20])),
            Err(format!(
                "truncated file: {HEADER_LEN} bytes needed, 20 present"
            ))
        );
        let mut corrupted = bytes.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 1;
        assert_eq!(
            err(public_key_from_bytes(&params, &corrupted)),
            Err("checksum mismatch: the file is corrupted".into())
        );
        let other = TEST_INSECURE_N11.params().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            err(public_key_from_bytes(&other, &bytes)),
            Err(format!(
                "parameter mismatch: the public key file was made for parameters {}, expected {}",
                params.short_hash(),
                other.short_hash()
            ))
        );
        assert_eq!(
            ciphertext_from_bytes(&params, &bytes)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("expected a ciphertext file, found kind public key".into())
        );
        let mut wrong_version = bytes.clone();
        wrong_version[9] = 9;
        assert_eq!(
            err(public_key_from_bytes(&params, &wrong_version)),
            Err("unsupported file version 9 (this build reads version 1)".into())
        );
        assert_eq!(
            err(public_key_from_bytes(&params, b"NOTENSI!......")),
            Err("not an ensi CKKS file (bad magic)".into())
        );
        let huge = encode_container(Kind::PublicKey, params.hash(), &[]);
        let mut huge = huge;
        huge[44..52].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            err(public_key_from_bytes(&params, &huge)),
            Err(format!(
                "file body of {} bytes exceeds the limit of {DEFAULT_MAX_BODY} bytes",
                u64::MAX
            ))
        );
        // A valid container around a bad body.
        let bad = encode_container(Kind::PublicKey, params.hash(), &[0, 1, 2]);
        assert_eq!(
            err(public_key_from_bytes(&params, &bad)),
            Err("malformed public key: body ends 30 bytes early".into())
        );
    }

    #[test]
    fn files_are_written_atomically() {
        let (params, mut keygen) = fixture();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("pk.bin");
        let pk = keygen.public_key();
        write_file(&path, &public_key_to_bytes(&pk), 0o644).unwrap_or_else(|e| panic!("{e}"));
        let back = read_file(&path, DEFAULT_MAX_BODY).unwrap_or_else(|e| panic!("{e}"));
        assert!(public_key_from_bytes(&params, &back) == Ok(pk));
        assert!(matches!(
            read_file(&path, 10),
            Err(SerializeError::TooLarge { .. })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(0),
            1,
            "no temporary left"
        );
    }

    #[cfg(feature = "serialize-secret")]
    #[test]
    fn secret_keys_round_trip_with_owner_only_files() {
        let (params, keygen) = fixture();
        let sk = keygen.secret_key();
        let back = secret_key_from_bytes(&params, &secret_key_to_bytes(sk))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.coeffs, sk.coeffs);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sk.bin");
        save_secret_key(&path, sk).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
