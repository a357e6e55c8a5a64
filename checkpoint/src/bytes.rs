//! Shared byte ranges: a window into a memory-mapped file or into a buffer the loader built.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use memmap2::Mmap;

/// What a [`Bytes`] window looks into.
enum Backing {
    /// A read-only mapping of a whole safetensors file.
    Mapped(Mmap),
    /// Bytes the loader produced itself (ternary weights packed from master weights).
    Owned(Vec<u8>),
}

/// A cheap-to-clone window into shared bytes; tensors hold one instead of a copy of their data.
#[derive(Clone)]
pub(crate) struct Bytes {
    backing: Arc<Backing>,
    start: usize,
    len: usize,
}

impl Bytes {
    /// The whole of a mapped file.
    pub(crate) fn mapped(map: Mmap) -> Self {
        let len = map.len();
        Self {
            backing: Arc::new(Backing::Mapped(map)),
            start: 0,
            len,
        }
    }

    /// The whole of a buffer.
    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        Self {
            backing: Arc::new(Backing::Owned(bytes)),
            start: 0,
            len,
        }
    }

    /// The bytes of the window.
    pub(crate) fn as_slice(&self) -> &[u8] {
        let all: &[u8] = match &*self.backing {
            Backing::Mapped(map) => map,
            Backing::Owned(bytes) => bytes,
        };
        // Invariant: `start + len <= all.len()`, checked by `slice` when the window was made.
        &all[self.start..self.start + self.len]
    }

    /// Number of bytes in the window.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A sub-window, or `None` if `range` does not fit inside this window.
    pub(crate) fn slice(&self, range: Range<usize>) -> Option<Self> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        Some(Self {
            backing: Arc::clone(&self.backing),
            start: self.start + range.start,
            len: range.end - range.start,
        })
    }

    /// Whether the bytes come straight from a memory-mapped file.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(*self.backing, Backing::Mapped(_))
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Bytes({kind}, {} bytes)", self.len)
    }
}
