//! Elimination orders: min-degree, min-fill (ties by table size or by topological position) and the frontier order simulated on the variables' interaction graph; the one that builds the fewest table entries in total wins.
//!
//! The order decides only the cost of the exact elimination, never its result. No single
//! greedy rule is best everywhere: min-degree keeps series–parallel steps at three
//! variables but, on a chain of accumulations fed by shared values (attention summed by
//! binary adds), lets the chain swallow the shared values and builds one variable more per
//! step than the frontier order along the nodes does. Simulating is cheap next to the
//! tables.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Fewest neighbours, then smallest table.
    Degree,
    /// Fewest missing edges among the neighbours, then smallest table.
    Fill,
    /// Fewest missing edges, then topological position (a branch before the accumulator
    /// it feeds).
    FillInOrder,
}

/// The interaction graph: variables sharing a factor are neighbours.
fn adjacency(n: usize, scopes: &[Vec<u32>]) -> Vec<HashSet<u32>> {
    let mut adj = vec![HashSet::new(); n];
    for scope in scopes {
        for &a in scope {
            for &b in scope {
                if a != b {
                    adj[a as usize].insert(b);
                }
            }
        }
    }
    adj
}

fn fill(adj: &[HashSet<u32>], v: u32) -> u64 {
    let neighbours: Vec<u32> = adj[v as usize].iter().copied().collect();
    let mut missing = 0u64;
    for (i, &a) in neighbours.iter().enumerate() {
        for &b in &neighbours[i + 1..] {
            missing += u64::from(!adj[a as usize].contains(&b));
        }
    }
    missing
}

/// Eliminates every non-kept variable by `rule`; returns the order and its total work.
fn simulate(rule: Rule, sizes: &[u32], scopes: &[Vec<u32>], kept: &[bool]) -> (Vec<u32>, u64) {
    let n = sizes.len();
    let mut adj = adjacency(n, scopes);
    let mut done = vec![false; n];
    let work_of = |adj: &[HashSet<u32>], v: u32| {
        adj[v as usize]
            .iter()
            .chain(std::iter::once(&v))
            .map(|&u| u64::from(sizes[u as usize]))
            .fold(1u64, u64::saturating_mul)
    };
    let priority = |adj: &[HashSet<u32>], v: u32| -> (u64, u64) {
        match rule {
            Rule::Degree => (adj[v as usize].len() as u64, work_of(adj, v)),
            Rule::Fill => (fill(adj, v), work_of(adj, v)),
            Rule::FillInOrder => (fill(adj, v), 0),
        }
    };
    let mut stamp = vec![(0u64, 0u64); n];
    let mut heap = BinaryHeap::new();
    for v in (0..n as u32).filter(|&v| !kept[v as usize]) {
        stamp[v as usize] = priority(&adj, v);
        heap.push(Reverse((stamp[v as usize], v)));
    }
    let mut order = Vec::with_capacity(n);
    let mut total = 0u64;
    while let Some(Reverse((p, v))) = heap.pop() {
        if done[v as usize] || stamp[v as usize] != p {
            continue;
        }
        let neighbours: Vec<u32> = adj[v as usize].iter().copied().collect();
        total = total.saturating_add(work_of(&adj, v));
        order.push(v);
        done[v as usize] = true;
        for &a in &neighbours {
            adj[a as usize].remove(&v);
            for &b in &neighbours {
                if a != b {
                    adj[a as usize].insert(b);
                }
            }
        }
        // Priorities change for the neighbours and, for min-fill, their neighbours.
        let mut touched: HashSet<u32> = neighbours.iter().copied().collect();
        if rule != Rule::Degree {
            for &a in &neighbours {
                touched.extend(adj[a as usize].iter().copied());
            }
        }
        let mut touched: Vec<u32> = touched.into_iter().collect();
        touched.sort_unstable();
        for u in touched {
            if !done[u as usize] && !kept[u as usize] {
                stamp[u as usize] = priority(&adj, u);
                heap.push(Reverse((stamp[u as usize], u)));
            }
        }
    }
    (order, total)
}

/// Total table entries of eliminating in `order`.
fn work_of_order(order: &[u32], sizes: &[u32], scopes: &[Vec<u32>]) -> u64 {
    let mut adj = adjacency(sizes.len(), scopes);
    let mut total = 0u64;
    for &v in order {
        let neighbours: Vec<u32> = adj[v as usize].iter().copied().collect();
        let work = neighbours
            .iter()
            .chain(std::iter::once(&v))
            .map(|&u| u64::from(sizes[u as usize]))
            .fold(1u64, u64::saturating_mul);
        total = total.saturating_add(work);
        for &a in &neighbours {
            adj[a as usize].remove(&v);
            for &b in &neighbours {
                if a != b {
                    adj[a as usize].insert(b);
                }
            }
        }
    }
    total
}

/// The frontier order: variables are numbered in topological order of their nodes, and
/// each is eliminated as soon as the last factor that mentions it has been introduced (a
/// path decomposition along the lowering's own node order: an accumulation emitted right
/// after the branch it sums is folded before the next branch starts).
fn frontier(scopes: &[Vec<u32>], kept: &[bool]) -> Vec<u32> {
    let mut last = vec![0u32; kept.len()];
    for scope in scopes {
        let top = scope.iter().copied().max().unwrap_or(0);
        for &v in scope {
            last[v as usize] = last[v as usize].max(top);
        }
    }
    let mut order: Vec<u32> = (0..kept.len() as u32)
        .filter(|&v| !kept[v as usize])
        .collect();
    order.sort_by_key(|&v| (last[v as usize].max(v), v));
    order
}

/// The cheapest of the simulated orders for variables of `sizes` values, factors over
/// `scopes`, and `kept` variables left in place.
pub(crate) fn plan(sizes: &[u32], scopes: &[Vec<u32>], kept: &[bool]) -> Vec<u32> {
    let mut candidates: Vec<(Vec<u32>, u64)> = [Rule::Degree, Rule::Fill, Rule::FillInOrder]
        .into_iter()
        .map(|rule| simulate(rule, sizes, scopes, kept))
        .collect();
    let order = frontier(scopes, kept);
    let work = work_of_order(&order, sizes, scopes);
    candidates.push((order, work));
    candidates
        .into_iter()
        .min_by_key(|(_, work)| *work)
        .map(|(order, _)| order)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_eliminated_in_three_variable_steps() {
        // 0 - 1 - 2 - 3 - 4 with 0 and 4 kept.
        let scopes = vec![vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 4]];
        let kept = [true, false, false, false, true];
        for rule in [Rule::Degree, Rule::Fill, Rule::FillInOrder] {
            let (order, work) = simulate(rule, &[5; 5], &scopes, &kept);
            assert_eq!(order.len(), 3, "{rule:?}");
            assert_eq!(work, 3 * 125, "{rule:?}");
        }
    }

    #[test]
    fn the_frontier_folds_each_branch_into_its_accumulator() {
        // A hub 0 feeds branches b_i = 2i - 1, each summed into the chain a_i = 2i:
        // a_i's factors are (a_{i-1}, a_i) and (b_i, a_i), b_i's are (0, b_i).
        let mut scopes = Vec::new();
        for i in 1..=8u32 {
            scopes.push(vec![0, 2 * i - 1]);
            scopes.push(vec![2 * i - 1, 2 * i]);
            if i > 1 {
                scopes.push(vec![2 * i - 2, 2 * i]);
            }
        }
        let sizes = [4u32; 17];
        let kept = [false; 17];
        let order = frontier(&scopes, &kept);
        assert_eq!(order.len(), 17);
        // No step needs more than three variables (hub, accumulator, branch).
        assert!(work_of_order(&order, &sizes, &scopes) <= 17 * 4u64.pow(3));
        assert!(work_of_order(&plan(&sizes, &scopes, &kept), &sizes, &scopes) <= 17 * 4u64.pow(3));
    }

    #[test]
    fn the_cheapest_order_wins() {
        // A hub 0 tied to a path 1 - 2 - 3: any order works; the plan is a permutation.
        let scopes = vec![vec![0, 1], vec![0, 2], vec![0, 3], vec![1, 2], vec![2, 3]];
        let mut order = plan(&[4; 4], &scopes, &[false; 4]);
        order.sort_unstable();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }
}
