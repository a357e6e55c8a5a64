//! Slot layouts: where each (column, token) of a `[T, d]` activation sits in a vector of ciphertexts.
//!
//! Column-block packing generalises ENSI's column packing. Each ciphertext has `slots`
//! slots split into blocks of `block` slots; block `k` of ciphertext `c` holds logical
//! column `(c · B + k) / group` (with `B = slots / block` blocks per ciphertext), tokens at
//! offsets `0..tokens` and padding after them. `B = 1` (one column per ciphertext, sparse
//! slots) is ENSI's column packing; `B > 1` packs many columns densely. `group > 1` repeats
//! each column over `group` consecutive blocks: a per-token statistic replicated in every
//! block, or per-head attention scores replicated over the head's columns.

use serde::{Deserialize, Serialize};

/// Where each (column, token) of an activation sits in the slots of its ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    /// Slots per ciphertext (a power of two, at most N/2).
    pub slots: u32,
    /// Slots per column block (a power of two, at least `tokens`).
    pub block: u32,
    /// Valid tokens per block (T); offsets `tokens..block` are padding.
    pub tokens: u32,
    /// Logical columns (d).
    pub columns: u32,
    /// Consecutive blocks that repeat the same column (1 for plain packing).
    pub group: u32,
}

/// A slot position: ciphertext index and slot index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotPosition {
    /// Index of the ciphertext in the value's vector.
    pub ciphertext: u32,
    /// Slot within that ciphertext.
    pub slot: u32,
}

/// Why a [`Layout`] is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// `slots` or `block` is not a power of two.
    #[error("layout {layout}: slots ({}) and block ({}) must be powers of two", layout.slots, layout.block)]
    NotPowerOfTwo {
        /// The offending layout.
        layout: Layout,
    },
    /// `block` exceeds `slots`, or `tokens` exceeds `block`, or a count is zero.
    #[error("layout {layout}: needs 1 <= tokens <= block <= slots, columns >= 1 and group >= 1")]
    Inconsistent {
        /// The offending layout.
        layout: Layout,
    },
    /// A column group does not fit the blocks of one ciphertext, or does not divide them.
    #[error("layout {layout}: group {} must divide the {} blocks of a ciphertext", layout.group, layout.blocks_per_ciphertext())]
    GroupDoesNotDivide {
        /// The offending layout.
        layout: Layout,
    },
}

impl Layout {
    /// ENSI's column packing: one column per ciphertext, `block` slots each.
    pub fn columns_packed(tokens: u32, columns: u32, block: u32) -> Self {
        Layout {
            slots: block,
            block,
            tokens,
            columns,
            group: 1,
        }
    }

    /// Checks the invariants every executor relies on.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if !self.slots.is_power_of_two() || !self.block.is_power_of_two() {
            return Err(LayoutError::NotPowerOfTwo { layout: *self });
        }
        if self.tokens == 0
            || self.tokens > self.block
            || self.block > self.slots
            || self.columns == 0
            || self.group == 0
        {
            return Err(LayoutError::Inconsistent { layout: *self });
        }
        if self.group > self.blocks_per_ciphertext()
            || !self.blocks_per_ciphertext().is_multiple_of(self.group)
        {
            return Err(LayoutError::GroupDoesNotDivide { layout: *self });
        }
        Ok(())
    }

    /// Blocks per ciphertext (`B = slots / block`).
    pub fn blocks_per_ciphertext(&self) -> u32 {
        self.slots / self.block
    }

    /// Distinct logical columns per ciphertext (`B / group`).
    pub fn columns_per_ciphertext(&self) -> u32 {
        self.blocks_per_ciphertext() / self.group
    }

    /// Ciphertexts needed to hold every column.
    pub fn ciphertexts(&self) -> u32 {
        self.columns.div_ceil(self.columns_per_ciphertext())
    }

    /// Every slot position holding (column, token), one per repetition of the column's group.
    pub fn positions(&self, column: u32, token: u32) -> impl Iterator<Item = SlotPosition> + '_ {
        let per_ct = self.columns_per_ciphertext();
        let ciphertext = column / per_ct;
        let first_block = (column % per_ct) * self.group;
        (0..self.group).map(move |repeat| SlotPosition {
            ciphertext,
            slot: (first_block + repeat) * self.block + token,
        })
    }

    /// The first slot position of (column, token).
    pub fn position(&self, column: u32, token: u32) -> SlotPosition {
        let per_ct = self.columns_per_ciphertext();
        SlotPosition {
            ciphertext: column / per_ct,
            slot: (column % per_ct) * self.group * self.block + token,
        }
    }

    /// The (column, token) a slot holds, or `None` for padding and unused blocks.
    pub fn content(&self, position: SlotPosition) -> Option<(u32, u32)> {
        let block = position.slot / self.block;
        let token = position.slot % self.block;
        let column = position.ciphertext * self.columns_per_ciphertext() + block / self.group;
        (token < self.tokens && column < self.columns && position.slot < self.slots)
            .then_some((column, token))
    }

    /// The same layout with `columns` logical columns (e.g. a projection's output width).
    pub fn with_columns(&self, columns: u32) -> Self {
        Layout { columns, ..*self }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "blocks(slots={}, block={}, tokens={}, columns={}, group={})",
            self.slots, self.block, self.tokens, self.columns, self.group
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_packing_has_one_column_per_ciphertext() {
        let layout = Layout::columns_packed(8, 64, 16);
        layout.validate().unwrap();
        assert_eq!(layout.ciphertexts(), 64);
        assert_eq!(
            layout.position(5, 3),
            SlotPosition {
                ciphertext: 5,
                slot: 3
            }
        );
        assert_eq!(
            layout.content(SlotPosition {
                ciphertext: 5,
                slot: 3
            }),
            Some((5, 3))
        );
        assert_eq!(
            layout.content(SlotPosition {
                ciphertext: 5,
                slot: 9
            }),
            None
        );
    }

    #[test]
    fn dense_packing_round_trips_every_slot() {
        let layout = Layout {
            slots: 256,
            block: 16,
            tokens: 8,
            columns: 40,
            group: 1,
        };
        layout.validate().unwrap();
        assert_eq!(layout.ciphertexts(), 3);
        for column in 0..40 {
            for token in 0..8 {
                let position = layout.position(column, token);
                assert_eq!(layout.content(position), Some((column, token)));
            }
        }
        // The last ciphertext holds columns 32..40 in its first 8 blocks; the rest is empty.
        assert_eq!(
            layout.content(SlotPosition {
                ciphertext: 2,
                slot: 8 * 16
            }),
            None
        );
    }

    #[test]
    fn grouped_columns_repeat_over_their_blocks() {
        // Per-head scores: 4 heads of 8 columns each, replicated over the head's blocks.
        let layout = Layout {
            slots: 512,
            block: 16,
            tokens: 8,
            columns: 4,
            group: 8,
        };
        layout.validate().unwrap();
        assert_eq!(layout.ciphertexts(), 1);
        let positions: Vec<_> = layout.positions(2, 1).collect();
        assert_eq!(positions.len(), 8);
        for position in positions {
            assert_eq!(layout.content(position), Some((2, 1)));
        }
    }

    #[test]
    fn malformed_layouts_are_rejected_with_their_reason() {
        let bad = Layout {
            slots: 100,
            block: 16,
            tokens: 8,
            columns: 4,
            group: 1,
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "layout blocks(slots=100, block=16, tokens=8, columns=4, group=1): slots (100) and block (16) must be powers of two"
        );
        let bad = Layout {
            slots: 64,
            block: 16,
            tokens: 8,
            columns: 4,
            group: 3,
        };
        assert!(matches!(
            bad.validate(),
            Err(LayoutError::GroupDoesNotDivide { .. })
        ));
    }
}
