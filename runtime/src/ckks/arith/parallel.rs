//! Limb-level parallelism: rayon over limbs when the work is large enough, sequential otherwise.
//!
//! Only rayon's work-stealing `for_each` is used (no locks, no blocking), so every caller
//! also runs inside a one-thread pool, e.g. `ThreadPoolBuilder::new().num_threads(1)`.

use rayon::prelude::*;

/// How much work one element costs; decides the parallel threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// A few instructions per element (add, pointwise mul): memory bound, needs many elements.
    Light,
    /// Tens of instructions per element (NTT, base conversion).
    Heavy,
}

impl Work {
    fn min_parallel_elements(self) -> usize {
        match self {
            Work::Light => 1 << 17,
            Work::Heavy => 1 << 13,
        }
    }
}

fn parallel(work: Work, elements: usize, n: usize) -> bool {
    elements >= work.min_parallel_elements() && elements / n > 1 && rayon::current_num_threads() > 1
}

/// Calls `f(limb_index, limb)` for every length-`n` limb of `data`.
pub(crate) fn for_each_limb<F>(work: Work, data: &mut [u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64]) + Send + Sync,
{
    if parallel(work, data.len(), n) {
        data.par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, limb)| f(i, limb));
    } else {
        data.chunks_mut(n)
            .enumerate()
            .for_each(|(i, limb)| f(i, limb));
    }
}

/// Calls `f(limb_index, limb, other_limb)` for matching limbs of `data` and `other`.
pub(crate) fn for_each_limb_with<F>(work: Work, data: &mut [u64], other: &[u64], n: usize, f: F)
where
    F: Fn(usize, &mut [u64], &[u64]) + Send + Sync,
{
    debug_assert!(other.len() >= data.len());
    if parallel(work, data.len(), n) {
        data.par_chunks_mut(n)
            .zip(other.par_chunks(n))
            .enumerate()
            .for_each(|(i, (limb, o))| f(i, limb, o));
    } else {
        data.chunks_mut(n)
            .zip(other.chunks(n))
            .enumerate()
            .for_each(|(i, (limb, o))| f(i, limb, o));
    }
}

/// Calls `f(limb_index, out_limb, a_limb, b_limb)` for matching limbs of a fresh output
/// buffer and two inputs.
pub(crate) fn for_each_limb_into<F>(
    work: Work,
    out: &mut [std::mem::MaybeUninit<u64>],
    a: &[u64],
    b: &[u64],
    n: usize,
    f: F,
) where
    F: Fn(usize, &mut [std::mem::MaybeUninit<u64>], &[u64], &[u64]) + Send + Sync,
{
    debug_assert!(a.len() >= out.len() && b.len() >= out.len());
    if parallel(work, out.len(), n) {
        out.par_chunks_mut(n)
            .zip(a.par_chunks(n))
            .zip(b.par_chunks(n))
            .enumerate()
            .for_each(|(i, ((o, a), b))| f(i, o, a, b));
    } else {
        out.chunks_mut(n)
            .zip(a.chunks(n))
            .zip(b.chunks(n))
            .enumerate()
            .for_each(|(i, ((o, a), b))| f(i, o, a, b));
    }
}

/// Calls `f(index, item)` on a small list of independent jobs (e.g. limbs picked from
/// several buffers), in parallel when each job is heavy and there are at least two.
pub(crate) fn for_each_job<T, F>(jobs: Vec<T>, job_elements: usize, f: F)
where
    T: Send,
    F: Fn(usize, T) + Send + Sync,
{
    let total = jobs.len() * job_elements;
    if jobs.len() > 1
        && total >= Work::Heavy.min_parallel_elements()
        && rayon::current_num_threads() > 1
    {
        jobs.into_par_iter()
            .enumerate()
            .for_each(|(i, job)| f(i, job));
    } else {
        jobs.into_iter().enumerate().for_each(|(i, job)| f(i, job));
    }
}

/// `for_each_job` with a scratch buffer of `scratch_len` words per job, taken from the
/// worker's pool (`scratch::with_scratch`: stale contents, so a limb-sized temporary is
/// reused from cache rather than allocated).
pub(crate) fn for_each_job_with_scratch<T, F>(
    jobs: Vec<T>,
    job_elements: usize,
    scratch_len: usize,
    f: F,
) where
    T: Send,
    F: Fn(usize, T, &mut [u64]) + Send + Sync,
{
    for_each_job(jobs, job_elements, |i, job| {
        super::scratch::with_scratch(scratch_len, |scratch| f(i, job, scratch))
    });
}
