//! Min-plus factor tables over level variables and exact variable elimination with decoding (the engine behind the `optimal` and `rmsnorm` policies).
//!
//! A factor is a dense table of costs over a few variables, each ranging over a contiguous
//! set of levels. Eliminating a variable replaces the factors that mention it by one factor
//! over their other variables: for every assignment of those, the minimum over the
//! variable of the sum (min-plus). On a chain this is the min-plus matrix product, on
//! parallel branches it is the element-wise sum at the join: series–parallel reduction is
//! the special case of a width-2 elimination order. An argmin table per step decodes an
//! optimal assignment afterwards, in reverse order.

use std::cmp::Reverse;
use std::fmt::Debug;

use crate::cost::Latency;

/// A cost the dynamic program minimizes: a totally ordered monoid whose addition is
/// monotone (`a ≤ b ⇒ a + c ≤ b + c`), so that minimizing sums part by part is exact.
pub(crate) trait PathCost: Copy + Ord + Send + Sync + Debug + 'static {
    /// The neutral element.
    const ZERO: Self;
    /// The cost of an illegal choice; absorbing.
    const INFINITY: Self;
    /// Saturating addition.
    fn plus(self, other: Self) -> Self;
    /// Words identifying the value (for structural keys).
    fn key(self, out: &mut Vec<u64>);
    /// The cost of one node: its op and, if bootstrapped, the bootstrap of `bootstraps`
    /// values (a folded node stands for several).
    fn node(op: Latency, bootstrap: Option<(Latency, u64)>) -> Self;
}

impl PathCost for Latency {
    const ZERO: Latency = Latency::ZERO;
    const INFINITY: Latency = Latency::INFINITE;
    fn plus(self, other: Latency) -> Latency {
        self + other
    }
    fn key(self, out: &mut Vec<u64>) {
        out.push(self.as_nanos());
    }
    fn node(op: Latency, bootstrap: Option<(Latency, u64)>) -> Latency {
        op + bootstrap.map_or(Latency::ZERO, |(cost, _)| cost)
    }
}

/// The `rmsnorm` policy's objective: fewest bootstraps first, then latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FewestBootstraps {
    pub bootstraps: u64,
    pub latency: Latency,
}

impl PathCost for FewestBootstraps {
    const ZERO: FewestBootstraps = FewestBootstraps {
        bootstraps: 0,
        latency: Latency::ZERO,
    };
    const INFINITY: FewestBootstraps = FewestBootstraps {
        bootstraps: u64::MAX,
        latency: Latency::INFINITE,
    };
    fn plus(self, other: FewestBootstraps) -> FewestBootstraps {
        let latency = self.latency + other.latency;
        if latency.is_infinite() || self.bootstraps == u64::MAX || other.bootstraps == u64::MAX {
            return FewestBootstraps::INFINITY;
        }
        FewestBootstraps {
            bootstraps: self.bootstraps.saturating_add(other.bootstraps),
            latency,
        }
    }
    fn key(self, out: &mut Vec<u64>) {
        out.push(self.bootstraps);
        out.push(self.latency.as_nanos());
    }
    fn node(op: Latency, bootstrap: Option<(Latency, u64)>) -> FewestBootstraps {
        let (cost, bootstraps) = bootstrap.unwrap_or((Latency::ZERO, 0));
        FewestBootstraps::ZERO.plus(FewestBootstraps {
            bootstraps,
            latency: op + cost,
        })
    }
}

/// A variable's values: `lo .. lo + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Domain {
    pub lo: u32,
    pub size: u32,
}

/// A dense table over `vars` (ascending), row-major with the last variable fastest.
#[derive(Debug, Clone)]
pub(crate) struct Factor<C> {
    pub vars: Vec<u32>,
    pub data: Vec<C>,
}

/// One elimination, kept to decode: the variable and, for every assignment of the scope
/// it was eliminated against, the index of its best value.
#[derive(Debug)]
enum Step {
    Eliminated {
        var: u32,
        scope: Vec<u32>,
        best: Vec<u8>,
    },
    Clamped {
        var: u32,
        value: u32,
    },
}

/// Why an elimination stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The next step's table exceeds the work limit and no reference value can shrink it.
    TooWide { work: u64 },
}

/// Variable elimination over a set of factors; `kept` variables stay (the segment's
/// boundary levels).
#[derive(Debug)]
pub(crate) struct Eliminator<C> {
    domains: Vec<Domain>,
    factors: Vec<Option<Factor<C>>>,
    var_factors: Vec<Vec<usize>>,
    done: Vec<bool>,
    kept: Vec<bool>,
    steps: Vec<Step>,
    constant: C,
    pub largest_work: u64,
    pub clamped: usize,
    mark: Vec<u32>,
    generation: u32,
}

impl<C: PathCost> Eliminator<C> {
    pub fn new(domains: Vec<Domain>) -> Eliminator<C> {
        let n = domains.len();
        Eliminator {
            domains,
            factors: Vec::new(),
            var_factors: vec![Vec::new(); n],
            done: vec![false; n],
            kept: vec![false; n],
            steps: Vec::new(),
            constant: C::ZERO,
            largest_work: 0,
            clamped: 0,
            mark: vec![0; n],
            generation: 0,
        }
    }

    pub fn keep(&mut self, var: u32) {
        self.kept[var as usize] = true;
    }

    /// Adds a factor; `vars` must be ascending and `data` their row-major table.
    pub fn add(&mut self, factor: Factor<C>) {
        debug_assert!(factor.vars.windows(2).all(|w| w[0] < w[1]));
        debug_assert_eq!(
            factor.data.len(),
            factor
                .vars
                .iter()
                .map(|&v| self.domains[v as usize].size as usize)
                .product::<usize>()
        );
        if factor.vars.is_empty() {
            self.constant = self.constant.plus(factor.data[0]);
            return;
        }
        let id = self.factors.len();
        for &v in &factor.vars {
            self.var_factors[v as usize].push(id);
        }
        self.factors.push(Some(factor));
    }

    fn live_factors(&self, var: u32) -> impl Iterator<Item = usize> + '_ {
        self.var_factors[var as usize]
            .iter()
            .copied()
            .filter(|&f| self.factors[f].is_some())
    }

    /// The variables sharing a factor with `var` (ascending, without `var`).
    fn scope(&mut self, var: u32) -> Vec<u32> {
        self.generation += 1;
        let generation = self.generation;
        self.mark[var as usize] = generation;
        let mut scope = Vec::new();
        let ids: Vec<usize> = self.live_factors(var).collect();
        for f in ids {
            if let Some(factor) = &self.factors[f] {
                for &v in &factor.vars {
                    if self.mark[v as usize] != generation {
                        self.mark[v as usize] = generation;
                        scope.push(v);
                    }
                }
            }
        }
        scope.sort_unstable();
        scope
    }

    /// Eliminating `var` now: its number of neighbours and the table entries it touches.
    fn priority(&mut self, var: u32) -> (usize, u64) {
        let scope = self.scope(var);
        let work = scope
            .iter()
            .chain(std::iter::once(&var))
            .map(|&v| u64::from(self.domains[v as usize].size))
            .fold(1u64, u64::saturating_mul);
        (scope.len(), work)
    }

    /// Eliminates every variable that is not kept, in the cheapest simulated order
    /// ([`super::order::plan`]). A step over `work_limit` entries first clamps its busiest
    /// neighbours to `reference(var)`, if a reference is given, until it fits.
    pub fn run(
        &mut self,
        work_limit: u64,
        reference: Option<&dyn Fn(u32) -> u32>,
    ) -> Result<(), Stop> {
        let sizes: Vec<u32> = self.domains.iter().map(|d| d.size).collect();
        let scopes: Vec<Vec<u32>> = self
            .factors
            .iter()
            .flatten()
            .map(|f| f.vars.clone())
            .collect();
        let order = super::order::plan(&sizes, &scopes, &self.kept);
        for var in order {
            loop {
                if self.done[var as usize] {
                    break;
                }
                let (_, work) = self.priority(var);
                if work <= work_limit {
                    self.largest_work = self.largest_work.max(work);
                    self.eliminate(var);
                    break;
                }
                let Some(reference) = reference else {
                    return Err(Stop::TooWide { work });
                };
                // Clamp the neighbour in most factors (a cut value shared by many
                // branches), or the variable itself if only boundary levels remain.
                let target = self
                    .scope(var)
                    .into_iter()
                    .filter(|&v| !self.kept[v as usize])
                    .max_by_key(|&v| (self.live_factors(v).count(), Reverse(v)))
                    .unwrap_or(var);
                self.clamp(target, reference(target));
            }
        }
        Ok(())
    }

    /// Fixes `var` to `value` (clamped into its domain): every factor keeps the slice.
    fn clamp(&mut self, var: u32, value: u32) {
        let d = self.domains[var as usize];
        let value = value.clamp(d.lo, d.lo + d.size - 1);
        let ids: Vec<usize> = self.live_factors(var).collect();
        for f in ids {
            let Some(factor) = self.factors[f].take() else {
                continue;
            };
            let pos = factor.vars.iter().position(|&v| v == var).unwrap_or(0);
            let inner: usize = factor.vars[pos + 1..]
                .iter()
                .map(|&v| self.domains[v as usize].size as usize)
                .product();
            let size = d.size as usize;
            let offset = (value - d.lo) as usize;
            let data: Vec<C> = factor
                .data
                .chunks(inner * size)
                .flat_map(|block| block[offset * inner..(offset + 1) * inner].iter().copied())
                .collect();
            let mut vars = factor.vars;
            vars.remove(pos);
            self.add(Factor { vars, data });
        }
        self.done[var as usize] = true;
        self.clamped += 1;
        self.steps.push(Step::Clamped { var, value });
    }

    /// Eliminates `var`: one new factor over its scope, one decode step. Returns the scope.
    fn eliminate(&mut self, var: u32) -> Vec<u32> {
        let ids: Vec<usize> = self.live_factors(var).collect();
        let inputs: Vec<Factor<C>> = ids.iter().filter_map(|&f| self.factors[f].take()).collect();
        let mut scope: Vec<u32> = inputs.iter().flat_map(|f| f.vars.iter().copied()).collect();
        scope.sort_unstable();
        scope.dedup();
        scope.retain(|&v| v != var);
        let sizes: Vec<usize> = scope
            .iter()
            .map(|&v| self.domains[v as usize].size as usize)
            .collect();
        let x_size = self.domains[var as usize].size as usize;
        // Per input factor: its stride along each scope variable and along `var`.
        let strides: Vec<(Vec<usize>, usize)> = inputs
            .iter()
            .map(|f| {
                let mut along = vec![0usize; scope.len()];
                let mut x_stride = 0;
                let mut stride = 1usize;
                for &v in f.vars.iter().rev() {
                    if v == var {
                        x_stride = stride;
                    } else if let Ok(i) = scope.binary_search(&v) {
                        along[i] = stride;
                    }
                    stride *= self.domains[v as usize].size as usize;
                }
                (along, x_stride)
            })
            .collect();
        let total: usize = sizes.iter().product();
        let mut data = Vec::with_capacity(total);
        let mut best = Vec::with_capacity(total);
        let mut index = vec![0usize; scope.len()];
        let mut offsets = vec![0usize; inputs.len()];
        let mut sums = vec![C::ZERO; x_size];
        for _ in 0..total {
            sums.iter_mut().for_each(|s| *s = C::ZERO);
            for (f, input) in inputs.iter().enumerate() {
                let (base, x_stride) = (offsets[f], strides[f].1);
                for (x, sum) in sums.iter_mut().enumerate() {
                    *sum = sum.plus(input.data[base + x * x_stride]);
                }
            }
            let (arg, min) =
                sums.iter()
                    .enumerate()
                    .fold((0usize, C::INFINITY), |(ba, bm), (a, &m)| {
                        if m < bm { (a, m) } else { (ba, bm) }
                    });
            data.push(min);
            best.push(arg as u8);
            // Odometer over the scope, last variable fastest.
            for d in (0..scope.len()).rev() {
                index[d] += 1;
                for (f, (along, _)) in strides.iter().enumerate() {
                    offsets[f] += along[d];
                }
                if index[d] < sizes[d] {
                    break;
                }
                for (f, (along, _)) in strides.iter().enumerate() {
                    offsets[f] -= along[d] * sizes[d];
                }
                index[d] = 0;
            }
        }
        self.done[var as usize] = true;
        self.steps.push(Step::Eliminated {
            var,
            scope: scope.clone(),
            best,
        });
        self.add(Factor {
            vars: scope.clone(),
            data,
        });
        scope
    }

    /// After [`Eliminator::run`]: the sum of what remains as a table over the kept
    /// variables `kept` (ascending), row-major.
    pub fn remaining(&self, kept: &[u32]) -> Vec<C> {
        let sizes: Vec<usize> = kept
            .iter()
            .map(|&v| self.domains[v as usize].size as usize)
            .collect();
        let total: usize = sizes.iter().product();
        let mut out = vec![self.constant; total];
        for factor in self.factors.iter().flatten() {
            let along: Vec<usize> = {
                let mut along = vec![0usize; kept.len()];
                let mut stride = 1usize;
                for &v in factor.vars.iter().rev() {
                    if let Some(i) = kept.iter().position(|&k| k == v) {
                        along[i] = stride;
                    }
                    stride *= self.domains[v as usize].size as usize;
                }
                along
            };
            let mut index = vec![0usize; kept.len()];
            for slot in out.iter_mut() {
                let offset: usize = index.iter().zip(&along).map(|(i, s)| i * s).sum();
                *slot = slot.plus(factor.data[offset]);
                for d in (0..kept.len()).rev() {
                    index[d] += 1;
                    if index[d] < sizes[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
        }
        out
    }

    /// An optimal assignment of every variable, given the kept ones (`values[v]` for kept
    /// `v`; other entries are overwritten).
    pub fn decode(&self, values: &mut [u32]) {
        for step in self.steps.iter().rev() {
            match step {
                Step::Clamped { var, value } => values[*var as usize] = *value,
                Step::Eliminated { var, scope, best } => {
                    let mut offset = 0usize;
                    for &v in scope {
                        let d = self.domains[v as usize];
                        offset = offset * d.size as usize + (values[v as usize] - d.lo) as usize;
                    }
                    let d = self.domains[*var as usize];
                    values[*var as usize] = d.lo + u32::from(best[offset]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(v: u64) -> Latency {
        Latency::from_nanos(v)
    }

    #[test]
    fn chain_elimination_is_the_min_plus_product() {
        // a - b - c with pairwise factors: eliminating b is (A ⊗ B)[a][c].
        let domains = vec![Domain { lo: 0, size: 3 }; 3];
        let mut e = Eliminator::<Latency>::new(domains);
        let ab: Vec<u64> = vec![4, 1, 7, 2, 8, 3, 5, 5, 0];
        let bc: Vec<u64> = vec![1, 9, 2, 6, 0, 4, 3, 3, 3];
        e.add(Factor {
            vars: vec![0, 1],
            data: ab.iter().map(|&v| lat(v)).collect(),
        });
        e.add(Factor {
            vars: vec![1, 2],
            data: bc.iter().map(|&v| lat(v)).collect(),
        });
        e.keep(0);
        e.keep(2);
        e.run(u64::MAX, None).unwrap();
        let m = e.remaining(&[0, 2]);
        for a in 0..3 {
            for c in 0..3 {
                let want = (0..3).map(|b| ab[a * 3 + b] + bc[b * 3 + c]).min().unwrap();
                assert_eq!(m[a * 3 + c], lat(want), "a={a} c={c}");
                let mut values = vec![a as u32, 0, c as u32];
                e.decode(&mut values);
                let b = values[1] as usize;
                assert_eq!(ab[a * 3 + b] + bc[b * 3 + c], want);
            }
        }
    }

    #[test]
    fn clamping_keeps_the_slice_and_decodes_it() {
        let domains = vec![Domain { lo: 1, size: 2 }, Domain { lo: 0, size: 3 }];
        let mut e = Eliminator::<Latency>::new(domains);
        e.add(Factor {
            vars: vec![0, 1],
            data: [5, 1, 9, 0, 2, 7].iter().map(|&v| lat(v)).collect(),
        });
        e.keep(1);
        e.run(1, Some(&|_| 2)).unwrap();
        assert_eq!(e.clamped, 1);
        assert_eq!(e.remaining(&[1]), vec![lat(0), lat(2), lat(7)]);
        let mut values = vec![0, 1];
        e.decode(&mut values);
        assert_eq!(values, vec![2, 1]);
        let mut e = Eliminator::<Latency>::new(vec![Domain { lo: 0, size: 4 }; 2]);
        e.add(Factor {
            vars: vec![0, 1],
            data: vec![lat(1); 16],
        });
        e.keep(1);
        assert_eq!(e.run(2, None), Err(Stop::TooWide { work: 16 }));
    }

    #[test]
    fn fewest_bootstraps_orders_count_first() {
        let a = FewestBootstraps {
            bootstraps: 1,
            latency: lat(5),
        };
        let b = FewestBootstraps {
            bootstraps: 2,
            latency: lat(1),
        };
        assert!(a < b);
        assert_eq!(
            a.plus(FewestBootstraps::INFINITY),
            FewestBootstraps::INFINITY
        );
        assert_eq!(a.plus(b).bootstraps, 3);
    }
}
