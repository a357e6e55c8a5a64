//! The exact placement: twin lanes folded, the graph cut into segments at single-value separators, each distinct segment solved once by variable elimination, segments chained by min-plus vector–matrix products, then decoded.

mod absorb;
mod factor;
mod order;
mod twins;

use std::collections::HashMap;

use super::graph::{Level, LevelGraph};
use super::{NodePlacement, PlaceError, PlaceOptions, Policy, SolveStats};

pub(crate) use factor::{FewestBootstraps, PathCost};

use factor::{Domain, Eliminator, Factor, Stop};
use twins::Folded;

/// An exact (or, past the work limit, best-found) placement.
#[derive(Debug)]
pub(crate) struct Solved<C> {
    /// Per graph node: execution level and available level (after a bootstrap, if any).
    pub levels: Vec<NodePlacement>,
    /// The objective's value the dynamic program computed.
    pub value: C,
    /// Whether variables were clamped to the reference (not proven optimal).
    pub clamped: bool,
    pub stats: SolveStats,
}

/// Where a segment node's operand comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Entry,
    Local(u32),
}

/// A segment: the nodes after one separator up to and including the next, with the
/// first separator as its entry (none for the first segment).
#[derive(Debug)]
struct Segment {
    entry: Option<u32>,
    /// Folded ids, ascending; the last is the exit.
    nodes: Vec<u32>,
}

/// Per folded node: `cost[e * levels + s]` of running at `e` and leaving `s` available.
struct NodeCosts<C> {
    depth: u32,
    /// Highest execution level for an input.
    cap: Option<Level>,
    table: Vec<C>,
}

fn node_costs<C: PathCost>(
    graph: &LevelGraph,
    folded: &Folded,
    q: usize,
    policy: Policy,
) -> NodeCosts<C> {
    let rep = folded.members[q][0];
    let node = graph.node(rep);
    let lanes = u64::from(folded.multiplicity(q));
    let levels = graph.max_level() + 1;
    let depth = node.depth();
    let cap = node
        .is_input()
        .then(|| node.input_level().unwrap_or(graph.max_level()));
    let may_bootstrap = node.site().allows(policy);
    let mut table = vec![C::INFINITY; (levels * levels) as usize];
    for e in depth..levels {
        if cap.is_some_and(|cap| e > cap) {
            continue;
        }
        let op = node.op_cost(e).times(lanes);
        if op.is_infinite() {
            continue;
        }
        let output = e - depth;
        for s in 0..levels {
            let cost = if s == output {
                C::node(op, None)
            } else if may_bootstrap && (policy != Policy::RmsNorm || s == graph.max_level()) {
                let boot = graph.bootstrap_cost(rep, output, s).times(lanes);
                if boot.is_infinite() {
                    continue;
                }
                C::node(op, Some((boot, lanes)))
            } else {
                continue;
            };
            table[(e * levels + s) as usize] = cost;
        }
    }
    NodeCosts { depth, cap, table }
}

/// Separator positions: `p` such that no edge jumps over it.
fn separators(folded: &Folded) -> Vec<u32> {
    let n = folded.members.len();
    let mut reach: Vec<u32> = (0..n as u32).collect();
    for (v, ops) in folded.operands.iter().enumerate() {
        for &u in ops {
            reach[u as usize] = reach[u as usize].max(v as u32);
        }
    }
    let mut seps = Vec::new();
    let mut furthest = 0u32;
    for p in 0..n as u32 {
        if furthest <= p {
            seps.push(p);
        }
        furthest = furthest.max(reach[p as usize]);
    }
    seps
}

fn segments(folded: &Folded, split: bool) -> Vec<Segment> {
    let n = folded.members.len() as u32;
    if !split {
        return vec![Segment {
            entry: None,
            nodes: (0..n).collect(),
        }];
    }
    let mut out = Vec::new();
    let mut entry = None;
    let mut start = 0;
    for p in separators(folded) {
        out.push(Segment {
            entry,
            nodes: (start..=p).collect(),
        });
        entry = Some(p);
        start = p + 1;
    }
    out
}

/// One segment's local problem in the numbering of the elimination.
struct Local<'a, C> {
    segment: &'a Segment,
    /// Per local node: distinct operand sources.
    operands: Vec<Vec<Source>>,
    costs: Vec<&'a NodeCosts<C>>,
}

impl<C: PathCost> Local<'_, C> {
    fn key(&self) -> Vec<u64> {
        let mut key = vec![
            u64::from(self.segment.entry.is_some()),
            self.operands.len() as u64,
        ];
        for (ops, costs) in self.operands.iter().zip(&self.costs) {
            key.push(ops.len() as u64);
            key.extend(ops.iter().map(|s| match s {
                Source::Entry => 0,
                Source::Local(i) => u64::from(*i) + 1,
            }));
            key.push(u64::from(costs.depth));
            key.push(costs.cap.map_or(u64::MAX, u64::from));
            for c in &costs.table {
                c.key(&mut key);
            }
        }
        key
    }
}

/// Variables of a local problem: `S` (available level) of the entry and of every node,
/// `E` (execution level) of nodes with two or more distinct operands. Operands get smaller
/// numbers than their users, so factor variable lists are ascending.
struct Vars {
    entry: Option<u32>,
    s: Vec<u32>,
    e: Vec<Option<u32>>,
    domains: Vec<Domain>,
}

fn finite_range<C: PathCost>(values: impl Iterator<Item = (u32, C)>) -> Option<Domain> {
    let finite: Vec<u32> = values
        .filter(|(_, c)| *c != C::INFINITY)
        .map(|(l, _)| l)
        .collect();
    let (lo, hi) = (*finite.iter().min()?, *finite.iter().max()?);
    Some(Domain {
        lo,
        size: hi - lo + 1,
    })
}

fn variables<C: PathCost>(local: &Local<'_, C>, levels: u32) -> Vars {
    let mut domains = Vec::new();
    let full = Domain {
        lo: 0,
        size: levels,
    };
    let entry = local.segment.entry.map(|_| {
        domains.push(full);
        0
    });
    let mut s = Vec::new();
    let mut e = Vec::new();
    for (ops, costs) in local.operands.iter().zip(&local.costs) {
        let table = &costs.table;
        if ops.len() >= 2 {
            let range = finite_range((0..levels).map(|ev| {
                let best = (0..levels)
                    .map(|sv| table[(ev * levels + sv) as usize])
                    .min()
                    .unwrap_or(C::INFINITY);
                (ev, best)
            }));
            e.push(Some(domains.len() as u32));
            domains.push(range.unwrap_or(Domain { lo: 0, size: 1 }));
        } else {
            e.push(None);
        }
        let range = finite_range((0..levels).map(|sv| {
            let best = (0..levels)
                .map(|ev| table[(ev * levels + sv) as usize])
                .min()
                .unwrap_or(C::INFINITY);
            (sv, best)
        }));
        s.push(domains.len() as u32);
        domains.push(range.unwrap_or(Domain { lo: 0, size: 1 }));
    }
    // The exit's available level is the segment's output: it keeps every level.
    if let Some(&exit) = s.last() {
        domains[exit as usize] = full;
    }
    Vars {
        entry,
        s,
        e,
        domains,
    }
}

fn build<C: PathCost>(local: &Local<'_, C>, vars: &Vars, levels: u32) -> Eliminator<C> {
    let mut elim = Eliminator::new(vars.domains.clone());
    let var_of = |src: Source| match src {
        Source::Entry => vars.entry.unwrap_or(0),
        Source::Local(i) => vars.s[i as usize],
    };
    for (i, (ops, costs)) in local.operands.iter().zip(&local.costs).enumerate() {
        let table = &costs.table;
        let s_var = vars.s[i];
        let sd = vars.domains[s_var as usize];
        let cost = |e: u32, s: u32| table[(e * levels + s) as usize];
        // Nodes with two or more operands have an execution variable (see `variables`).
        match (ops.first(), vars.e[i]) {
            (None, _) => {
                let data = (sd.lo..sd.lo + sd.size)
                    .map(|s| (0..levels).map(|e| cost(e, s)).min().unwrap_or(C::INFINITY))
                    .collect();
                elim.add(Factor {
                    vars: vec![s_var],
                    data,
                });
            }
            (Some(only), None) => {
                // min over e ≤ u of cost(e, s): a prefix minimum as u grows.
                let u_var = var_of(*only);
                let ud = vars.domains[u_var as usize];
                let mut data = Vec::with_capacity((ud.size * sd.size) as usize);
                for u in ud.lo..ud.lo + ud.size {
                    for s in sd.lo..sd.lo + sd.size {
                        let best = (0..=u.min(levels - 1))
                            .map(|e| cost(e, s))
                            .min()
                            .unwrap_or(C::INFINITY);
                        data.push(best);
                    }
                }
                elim.add(Factor {
                    vars: vec![u_var, s_var],
                    data,
                });
            }
            (Some(_), Some(e_var)) => {
                let ed = vars.domains[e_var as usize];
                let data = (ed.lo..ed.lo + ed.size)
                    .flat_map(|e| (sd.lo..sd.lo + sd.size).map(move |s| (e, s)))
                    .map(|(e, s)| cost(e, s))
                    .collect();
                elim.add(Factor {
                    vars: vec![e_var, s_var],
                    data,
                });
                for &op in ops.iter() {
                    let u_var = var_of(op);
                    let ud = vars.domains[u_var as usize];
                    let data = (ud.lo..ud.lo + ud.size)
                        .flat_map(|u| (ed.lo..ed.lo + ed.size).map(move |e| (u, e)))
                        .map(|(u, e)| if e <= u { C::ZERO } else { C::INFINITY })
                        .collect();
                    elim.add(Factor {
                        vars: vec![u_var, e_var],
                        data,
                    });
                }
            }
        }
    }
    if let Some(entry) = vars.entry {
        elim.keep(entry);
    }
    if let Some(&exit) = vars.s.last() {
        elim.keep(exit);
    }
    elim
}

/// A solved segment: its transfer matrix and what decodes it.
struct SegmentSolution<C> {
    /// `matrix[entry * levels + exit]` (one row without an entry).
    matrix: Vec<C>,
    vars: Vars,
    elim: Eliminator<C>,
}

fn solve_segment<C: PathCost>(
    local: &Local<'_, C>,
    levels: u32,
    work_limit: u64,
    reference: Option<&dyn Fn(u32) -> u32>,
) -> Result<SegmentSolution<C>, Stop> {
    let vars = variables(local, levels);
    let mut elim = build(local, &vars, levels);
    elim.run(work_limit, reference)?;
    let mut kept: Vec<u32> = vars.entry.into_iter().collect();
    kept.extend(vars.s.last());
    let table = elim.remaining(&kept);
    let rows = if vars.entry.is_some() { levels } else { 1 };
    // `table` is over the kept variables' domains (the entry's and exit's are full).
    debug_assert_eq!(table.len(), (rows * levels) as usize);
    Ok(SegmentSolution {
        matrix: table,
        vars,
        elim,
    })
}

/// Execution and available levels of every local node, given the boundary levels.
fn decode<C: PathCost>(
    local: &Local<'_, C>,
    solution: &SegmentSolution<C>,
    entry: Level,
    exit: Level,
    levels: u32,
) -> Vec<(Level, Level)> {
    let vars = &solution.vars;
    let mut values = vec![0u32; vars.domains.len()];
    if let Some(v) = vars.entry {
        values[v as usize] = entry;
    }
    if let Some(&v) = vars.s.last() {
        values[v as usize] = exit;
    }
    solution.elim.decode(&mut values);
    let var_level = |src: Source| match src {
        Source::Entry => entry,
        Source::Local(i) => values[vars.s[i as usize] as usize],
    };
    (0..local.operands.len())
        .map(|i| {
            let s = values[vars.s[i] as usize];
            let costs = local.costs[i];
            let e = match vars.e[i] {
                Some(e_var) => values[e_var as usize],
                None => {
                    let ceiling = local.operands[i]
                        .first()
                        .map_or(costs.cap.unwrap_or(levels - 1), |&src| var_level(src));
                    // The cheapest execution level; on ties no bootstrap, then the highest.
                    (0..=ceiling.min(levels - 1))
                        .rev()
                        .min_by_key(|&e| {
                            let bootstraps = e.checked_sub(costs.depth) != Some(s);
                            (costs.table[(e * levels + s) as usize], bootstraps)
                        })
                        .unwrap_or(0)
                }
            };
            (e, s)
        })
        .collect()
}

/// The exact placement of `graph` under `policy` with objective `C`. `reference` gives a
/// feasible placement in the policy's space, asked for only if a segment needs clamping.
pub(crate) fn solve<C: PathCost>(
    graph: &LevelGraph,
    policy: Policy,
    options: &PlaceOptions,
    reference: &mut dyn FnMut() -> Result<Vec<NodePlacement>, PlaceError>,
) -> Result<Solved<C>, PlaceError> {
    let Some(absorbed) = options
        .absorb_nodes
        .then(|| absorb::absorb(graph))
        .flatten()
    else {
        return solve_graph(graph, policy, options, reference);
    };
    let mut project = || -> Result<Vec<NodePlacement>, PlaceError> {
        let levels = reference()?;
        Ok(absorbed.origin.iter().map(|o| levels[o.index()]).collect())
    };
    let mut solved = solve_graph::<C>(&absorbed.graph, policy, options, &mut project)?;
    let levels = absorbed
        .home
        .iter()
        .map(|&(home, merged)| {
            let p = solved.levels[home.index()];
            if merged {
                // Runs at its consumer's level, depth 0, never bootstrapped.
                NodePlacement {
                    level: p.level,
                    output: p.level,
                    bootstrap: None,
                }
            } else {
                p
            }
        })
        .collect();
    solved.levels = levels;
    solved.stats.nodes = graph.len();
    solved.stats.absorbed_nodes = graph.len() - absorbed.graph.len();
    Ok(solved)
}

fn solve_graph<C: PathCost>(
    graph: &LevelGraph,
    policy: Policy,
    options: &PlaceOptions,
    reference: &mut dyn FnMut() -> Result<Vec<NodePlacement>, PlaceError>,
) -> Result<Solved<C>, PlaceError> {
    let levels = graph.max_level() + 1;
    let folded = if options.merge_twins {
        twins::fold(graph)
    } else {
        Folded::identity(graph)
    };
    let costs: Vec<NodeCosts<C>> = (0..folded.members.len())
        .map(|q| node_costs(graph, &folded, q, policy))
        .collect();
    let segments = segments(&folded, options.split_segments);
    let mut stats = SolveStats {
        nodes: graph.len(),
        folded_nodes: folded.members.len(),
        segments: segments.len(),
        ..SolveStats::default()
    };
    let locals: Vec<Local<'_, C>> = segments
        .iter()
        .map(|segment| {
            let first = segment.nodes.first().copied().unwrap_or(0);
            let source = |u: u32| {
                if Some(u) == segment.entry {
                    Source::Entry
                } else {
                    Source::Local(u - first)
                }
            };
            Local {
                segment,
                operands: segment
                    .nodes
                    .iter()
                    .map(|&q| {
                        folded.operands[q as usize]
                            .iter()
                            .map(|&u| source(u))
                            .collect()
                    })
                    .collect(),
                costs: segment.nodes.iter().map(|&q| &costs[q as usize]).collect(),
            }
        })
        .collect();
    let mut solutions: Vec<SegmentSolution<C>> = Vec::new();
    let mut memo: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut solution_of = Vec::with_capacity(locals.len());
    let mut reference_levels: Option<Vec<NodePlacement>> = None;
    for local in &locals {
        let key = options.reuse_segments.then(|| local.key());
        if let Some(&i) = key.as_ref().and_then(|k| memo.get(k)) {
            solution_of.push(i);
            continue;
        }
        let solution = match solve_segment(local, levels, options.work_limit, None) {
            Ok(solution) => {
                if let Some(key) = key {
                    memo.insert(key, solutions.len());
                }
                solution
            }
            Err(Stop::TooWide { work }) => {
                if reference_levels.is_none() {
                    reference_levels = Some(reference().map_err(|cause| PlaceError::TooWide {
                        policy,
                        segment: segment_name(graph, &folded, local.segment),
                        work,
                        cause: Some(Box::new(cause)),
                    })?);
                }
                let reference = reference_levels.as_deref().unwrap_or_default();
                let vars = variables(local, levels);
                let at =
                    |var: u32| -> u32 { reference_level(&vars, local, &folded, reference, var) };
                stats.clamped_segments += 1;
                solve_segment(local, levels, options.work_limit, Some(&at)).map_err(
                    |Stop::TooWide { work }| PlaceError::TooWide {
                        policy,
                        segment: segment_name(graph, &folded, local.segment),
                        work,
                        cause: None,
                    },
                )?
            }
        };
        stats.largest_table = stats.largest_table.max(solution.elim.largest_work);
        solution_of.push(solutions.len());
        solutions.push(solution);
    }
    stats.distinct_segments = solutions.len();

    // Chain: vector × matrix per segment, keeping every vector to walk back.
    let mut vectors: Vec<Vec<C>> = Vec::with_capacity(locals.len());
    for (k, &sol) in solution_of.iter().enumerate() {
        let matrix = &solutions[sol].matrix;
        let next: Vec<C> = if k == 0 {
            matrix.clone()
        } else {
            let prev = &vectors[k - 1];
            (0..levels as usize)
                .map(|exit| {
                    (0..levels as usize)
                        .map(|entry| prev[entry].plus(matrix[entry * levels as usize + exit]))
                        .min()
                        .unwrap_or(C::INFINITY)
                })
                .collect()
        };
        vectors.push(next);
    }
    let Some(last) = vectors.last() else {
        return Ok(Solved {
            levels: Vec::new(),
            value: C::ZERO,
            clamped: false,
            stats,
        });
    };
    let (mut exit, value) = argmin(last);
    if value == C::INFINITY {
        return Err(PlaceError::Internal {
            what: format!(
                "{policy}: the dynamic program found no placement, but a feasible one exists"
            ),
        });
    }
    // Walk back: each segment's entry is the previous one's exit.
    let mut boundaries = vec![(0u32, 0u32); locals.len()];
    for k in (0..locals.len()).rev() {
        let entry = if k == 0 {
            0
        } else {
            let matrix = &solutions[solution_of[k]].matrix;
            let column: Vec<C> = (0..levels as usize)
                .map(|entry| {
                    vectors[k - 1][entry].plus(matrix[entry * levels as usize + exit as usize])
                })
                .collect();
            argmin(&column).0
        };
        boundaries[k] = (entry, exit);
        exit = entry;
    }
    // Decode every segment (identical segments with identical boundaries decode once).
    let mut decoded: HashMap<(usize, u32, u32), Vec<(Level, Level)>> = HashMap::new();
    let mut folded_levels = vec![(0u32, 0u32); folded.members.len()];
    for (k, local) in locals.iter().enumerate() {
        let (entry, exit) = boundaries[k];
        let sol = solution_of[k];
        let assignment = decoded
            .entry((sol, entry, exit))
            .or_insert_with(|| decode(local, &solutions[sol], entry, exit, levels));
        for (&q, &levels) in local.segment.nodes.iter().zip(assignment.iter()) {
            folded_levels[q as usize] = levels;
        }
    }
    let mut placements = vec![
        NodePlacement {
            level: 0,
            output: 0,
            bootstrap: None,
        };
        graph.len()
    ];
    for (q, members) in folded.members.iter().enumerate() {
        let (e, s) = folded_levels[q];
        let depth = graph.node(members[0]).depth();
        for m in members {
            placements[m.index()] = NodePlacement {
                level: e,
                output: e.saturating_sub(depth),
                bootstrap: (e.checked_sub(depth) != Some(s)).then_some(s),
            };
        }
    }
    Ok(Solved {
        levels: placements,
        value,
        clamped: stats.clamped_segments > 0,
        stats,
    })
}

fn argmin<C: PathCost>(values: &[C]) -> (u32, C) {
    values
        .iter()
        .enumerate()
        .fold((0u32, C::INFINITY), |(bi, bv), (i, &v)| {
            if v < bv { (i as u32, v) } else { (bi, bv) }
        })
}

/// The reference placement's value of an elimination variable.
fn reference_level<C>(
    vars: &Vars,
    local: &Local<'_, C>,
    folded: &Folded,
    reference: &[NodePlacement],
    var: u32,
) -> u32 {
    let at = |q: u32| reference.get(folded.members[q as usize][0].index());
    if Some(var) == vars.entry {
        return local
            .segment
            .entry
            .and_then(at)
            .map_or(0, NodePlacement::available);
    }
    let first = local.segment.nodes[0];
    for (i, (&s, &e)) in vars.s.iter().zip(&vars.e).enumerate() {
        let node = at(first + i as u32);
        if s == var {
            return node.map_or(0, NodePlacement::available);
        }
        if e == Some(var) {
            return node.map_or(0, |p| p.level);
        }
    }
    0
}

fn segment_name(graph: &LevelGraph, folded: &Folded, segment: &Segment) -> String {
    let name = |q: u32| graph.node(folded.members[q as usize][0]).name().to_string();
    match (segment.nodes.first(), segment.nodes.last()) {
        (Some(&a), Some(&b)) => format!("`{}` .. `{}`", name(a), name(b)),
        _ => String::from("(empty)"),
    }
}

/// The members of each folded node (for tests of the folding).
#[cfg(test)]
pub(crate) fn folded_members(graph: &LevelGraph) -> Vec<Vec<super::graph::NodeId>> {
    twins::fold(graph).members
}
