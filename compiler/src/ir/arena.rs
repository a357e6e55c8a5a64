//! Typed arenas: values live in a `Vec`, and a `Handle<T>` is a 32-bit index that cannot be mixed up with another arena's.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Index;

/// An index into an [`Arena<T>`].
///
/// Handles are plain indices: cheap to copy, ordered by creation, and printed as `%index`.
/// The phantom type keeps handles of different arenas apart at compile time.
pub struct Handle<T> {
    index: u32,
    marker: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    /// The handle of the item at `index`; it may dangle (the verifier checks handles).
    ///
    /// # Panics
    ///
    /// If `index` does not fit in 32 bits.
    pub(crate) fn from_index(index: usize) -> Self {
        let index =
            u32::try_from(index).unwrap_or_else(|_| panic!("arena index {index} exceeds u32"));
        Self {
            index,
            marker: PhantomData,
        }
    }

    /// The item's position in its arena (creation order).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

// Manual impls: derives would require `T: Clone` etc., which handles do not need.
impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

impl<T> Eq for Handle<T> {}

impl<T> PartialOrd for Handle<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Handle<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index.cmp(&other.index)
    }
}

impl<T> Hash for Handle<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.index.hash(state);
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.index)
    }
}

impl<T> fmt::Display for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.index)
    }
}

/// Handles serialize as their text form, `"%3"` (side tables keyed by handle stay readable).
impl<T> serde::Serialize for Handle<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An append-only store of `T`s addressed by [`Handle<T>`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arena<T> {
    items: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> Arena<T> {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `item` and returns its handle.
    ///
    /// # Panics
    ///
    /// If the arena already holds `u32::MAX + 1` items.
    pub fn append(&mut self, item: T) -> Handle<T> {
        let handle = Handle::from_index(self.items.len());
        self.items.push(item);
        handle
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the arena is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item of `handle`, if the handle is in range.
    pub fn get(&self, handle: Handle<T>) -> Option<&T> {
        self.items.get(handle.index())
    }

    /// Items with their handles, in creation order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Handle<T>, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(index, item)| (Handle::from_index(index), item))
    }
}

impl<T> Index<Handle<T>> for Arena<T> {
    type Output = T;

    /// # Panics
    ///
    /// If `handle` is out of range (a dangling handle; verified graphs have none).
    fn index(&self, handle: Handle<T>) -> &T {
        &self.items[handle.index()]
    }
}
