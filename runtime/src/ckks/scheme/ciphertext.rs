//! Plaintexts and ciphertexts: NTT-domain RNS polynomials with level, exact scale, slot count and the parameters' hash.

use crate::ckks::arith::RnsPoly;

/// An encoded message: m(X) with m ~ scale * (slots' preimage), NTT domain, at a level.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    pub(crate) poly: RnsPoly,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
    pub(crate) params_hash: [u8; 32],
}

impl Plaintext {
    /// The polynomial (Evaluation domain; Q limbs of the level, plus P if encoded over Q*P).
    pub fn poly(&self) -> &RnsPoly {
        &self.poly
    }

    /// The level.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The exact scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Slot count (power of two up to N/2).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Whether the plaintext also carries the P limbs (for products kept over Q*P).
    pub fn has_special(&self) -> bool {
        self.poly.has_special()
    }

    /// Hash of the parameters it was encoded for.
    pub fn params_hash(&self) -> [u8; 32] {
        self.params_hash
    }
}

/// A CKKS ciphertext (c0, c1) with c0 + c1*s ~ m, both in the NTT domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    pub(crate) c0: RnsPoly,
    pub(crate) c1: RnsPoly,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) slots: usize,
    pub(crate) params_hash: [u8; 32],
    /// The seed c1 was expanded from, while c1 is still that fresh uniform polynomial (a
    /// symmetric encryption): files then ship the seed instead of c1.
    pub(crate) c1_seed: Option<[u8; 32]>,
}

impl Ciphertext {
    /// c0 (Evaluation domain, Q limbs of the level).
    pub fn c0(&self) -> &RnsPoly {
        &self.c0
    }

    /// c1 (Evaluation domain, Q limbs of the level).
    pub fn c1(&self) -> &RnsPoly {
        &self.c1
    }

    /// The level (Q limbs minus one).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The exact scale (FLEXIBLEAUTO bookkeeping).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Relabels the scale without touching the polynomials: the encrypted slot values are
    /// divided by `scale / self.scale()`. For circuits that fold a constant into the scale.
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// Slot count.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Reads the same ciphertext in `slots` slots (a power of two up to N/2): a sparse
    /// ciphertext of `n` slots viewed in `2^k n` slots holds its slots repeated (periodic
    /// extension); a vector periodic with period `slots` is read as its first `slots`. For
    /// repacking between layouts with different slot counts.
    pub(crate) fn set_slots(&mut self, slots: usize) {
        self.slots = slots;
    }

    /// Hash of the parameters it was made under.
    pub fn params_hash(&self) -> [u8; 32] {
        self.params_hash
    }

    /// The seed of c1 if c1 is still the fresh seed-expanded polynomial of a symmetric
    /// encryption (so a file can ship 32 bytes instead of c1).
    pub fn c1_seed(&self) -> Option<[u8; 32]> {
        self.c1_seed
    }

    /// Size of the polynomials in bytes.
    pub fn size_bytes(&self) -> usize {
        8 * (self.c0.as_slice().len() + self.c1.as_slice().len())
    }

    pub(crate) fn from_parts(
        c0: RnsPoly,
        c1: RnsPoly,
        scale: f64,
        slots: usize,
        params_hash: [u8; 32],
    ) -> Self {
        let level = c0.level();
        Self {
            c0,
            c1,
            level,
            scale,
            slots,
            params_hash,
            c1_seed: None,
        }
    }
}

/// The degree-2 result of a tensor product, (c0, c1, c2) with c0 + c1 s + c2 s^2 ~ m,
/// before relinearization (sums of products can be relinearized once).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCiphertext {
    pub(crate) c: [RnsPoly; 3],
    pub(crate) scale: f64,
    pub(crate) slots: usize,
    pub(crate) params_hash: [u8; 32],
}

impl TensorCiphertext {
    /// The level.
    pub fn level(&self) -> usize {
        self.c[0].level()
    }

    /// The exact scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Slot count.
    pub fn slots(&self) -> usize {
        self.slots
    }
}
