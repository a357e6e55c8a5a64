//! Per-thread reusable scratch buffers for the large temporaries of ModUp, ModDown and rescale.
//!
//! A fresh multi-megabyte `Vec` per call costs page faults (the allocator hands such blocks
//! back to the OS on free), which showed up as ~15% of a key switch at N = 2^16. Each
//! thread keeps the buffers it used, so a thread retains about the largest temporaries it
//! has needed (e.g. 11 MiB for a ModDown to 21 limbs at N = 2^16).

use std::cell::RefCell;

thread_local! {
    static POOL: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` words taken from this thread's pool. The contents are
/// stale (whatever an earlier user left): `f` must write every word before reading it.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    let mut buffer = POOL
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default();
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    let result = f(&mut buffer[..len]);
    POOL.with(|pool| pool.borrow_mut().push(buffer));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_scratch_buffers_are_distinct() {
        with_scratch(8, |outer| {
            outer.fill(1);
            with_scratch(4, |inner| {
                inner.fill(2);
            });
            assert!(outer.iter().all(|&v| v == 1));
        });
        with_scratch(16, |buffer| assert_eq!(buffer.len(), 16));
    }
}
