//! Encodings and their layouts: ENSI's column packing and dense column blocks, sized from the token count, the head dimension and the ring's slot count.

use ensi_runtime::plan::Layout;
use serde::Serialize;

use super::LowerError;

/// How a layer's activations are packed into ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// ENSI: one column per ciphertext (`block` slots, sparse); ternary layers are additions.
    Columns,
    /// Many columns per ciphertext; ternary layers by block diagonals (one level, rotations).
    Dense,
}

impl Encoding {
    /// Both encodings, in report order.
    pub const ALL: [Encoding; 2] = [Encoding::Columns, Encoding::Dense];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Columns => "columns",
            Encoding::Dense => "dense",
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The slot geometry every layout of a plan shares.
///
/// A block holds one column's `T` tokens and at least `T − 1` zero padding slots
/// (`block = 2^⌈log2(2T − 1)⌉`), so a right rotation by `r < T` pulls zeros into the first
/// `r` tokens: the causal shift of attention needs no mask. Dense ciphertexts hold
/// `blocks` column blocks, at most the ring's slots and at most the largest power of two
/// dividing the head dimension, so that every head fills whole ciphertexts and per-head
/// sums are cyclic all-reduces within them (no head interleaving needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shapes {
    /// Tokens T.
    pub tokens: u32,
    /// Slots per column block.
    pub block: u32,
    /// Column blocks per dense ciphertext (B).
    pub dense_blocks: u32,
    /// Largest slot count of the ring (N/2).
    pub max_slots: u32,
}

impl Shapes {
    /// The geometry for `tokens` tokens and heads of `head_dim` in a ring of `max_slots`.
    pub fn new(tokens: u32, head_dim: u32, max_slots: u32) -> Result<Self, LowerError> {
        let block = (2 * tokens.max(1) - 1).next_power_of_two();
        if tokens == 0 || block > max_slots {
            return Err(LowerError::TooManyTokens {
                tokens,
                block,
                max_slots,
            });
        }
        let head_blocks = 1u32 << head_dim.max(1).trailing_zeros();
        let dense_blocks = (max_slots / block).min(head_blocks).max(1);
        Ok(Self {
            tokens,
            block,
            dense_blocks,
            max_slots,
        })
    }

    /// Column blocks per ciphertext under `encoding`.
    pub fn blocks(&self, encoding: Encoding) -> u32 {
        match encoding {
            Encoding::Columns => 1,
            Encoding::Dense => self.dense_blocks,
        }
    }

    /// Slots per ciphertext under `encoding`.
    pub fn slots(&self, encoding: Encoding) -> u32 {
        self.block * self.blocks(encoding)
    }

    /// The layout of a `[T, columns]` activation.
    pub fn layout(&self, encoding: Encoding, columns: u32) -> Layout {
        Layout {
            slots: self.slots(encoding),
            block: self.block,
            tokens: self.tokens,
            columns,
            group: 1,
        }
    }

    /// The layout of `columns` values per token, each repeated over every block of its
    /// ciphertext (a per-token statistic, per-head attention weights).
    pub fn replicated(&self, encoding: Encoding, columns: u32) -> Layout {
        Layout {
            group: self.blocks(encoding),
            ..self.layout(encoding, columns)
        }
    }

    /// Ciphertexts per head of `head_dim` columns.
    pub fn per_head(&self, encoding: Encoding, head_dim: u32) -> u32 {
        head_dim.div_ceil(self.blocks(encoding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_leave_room_for_every_causal_shift() {
        for tokens in 1..40 {
            let shapes = Shapes::new(tokens, 16, 1 << 12).unwrap();
            assert!(shapes.block >= 2 * tokens - 1 && shapes.block.is_power_of_two());
            assert!(
                shapes.block < 4 * tokens,
                "the block is the smallest power of two"
            );
        }
    }

    #[test]
    fn dense_ciphertexts_hold_whole_heads() {
        // T = 8: blocks of 16; 1024 slots hold 64 blocks, but a head of 16 columns caps it.
        let shapes = Shapes::new(8, 16, 1024).unwrap();
        assert_eq!((shapes.block, shapes.dense_blocks), (16, 16));
        assert_eq!(shapes.layout(Encoding::Dense, 64).ciphertexts(), 4);
        assert_eq!(shapes.per_head(Encoding::Dense, 16), 1);
        assert_eq!(shapes.per_head(Encoding::Columns, 16), 16);
        // The 2B shapes at T = 128 in N = 2^16: one 128-column head per full ciphertext.
        let shapes = Shapes::new(128, 128, 1 << 15).unwrap();
        assert_eq!((shapes.block, shapes.dense_blocks), (256, 128));
        assert_eq!(shapes.slots(Encoding::Dense), 1 << 15);
        let stat = shapes.replicated(Encoding::Dense, 1);
        stat.validate().unwrap();
        assert_eq!(stat.ciphertexts(), 1);
    }

    #[test]
    fn a_sequence_longer_than_the_ring_is_refused() {
        assert_eq!(
            Shapes::new(3000, 16, 4096).unwrap_err().to_string(),
            "3000 tokens need column blocks of 8192 slots (2T − 1 rounded up to a power of two), \
             but the ring has at most 4096 slots"
        );
    }
}
