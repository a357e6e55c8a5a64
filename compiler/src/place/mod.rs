//! Bootstrap and level placement: a [`LevelGraph`] (values with depths, counts and op costs by level) and a [`Policy`] -> a [`Placement`] (every node's level, every bootstrap with its target, the cost and its breakdown).
//!
//! # The problem
//!
//! Each node of a [`LevelGraph`] is a vector of `count` ciphertexts with `slots` slots. Its
//! op runs at an *execution level* `e` no higher than the minimum of its operands'
//! available levels (dropping levels is free; an input runs at most at its input level),
//! at least its `depth`, and its result is at `e − depth`. A bootstrap may refresh the
//! result to a *target* `t ≤ max_level` (L_max) if the node's [`BootstrapSite`] allows the
//! policy; every consumer then reads level `t`. The objective is the total latency:
//! `Σ op_cost(e)` (each table covers all of a node's ciphertexts) `+ Σ count ×
//! bootstrap(slots, e − depth, t)`, with [`Latency::INFINITE`](crate::cost::Latency) for
//! illegal choices. [`evaluate`] checks and prices any assignment; every policy's result
//! goes through it.
//!
//! # Policies
//!
//! - [`Policy::Greedy`] (HEIR's waterline): topological walk; when an op would run out of
//!   levels, its low operands are bootstrapped to L_max.
//! - [`Policy::RmsNorm`] (ENSI): bootstraps only at [`BootstrapSite::Norm`] values, each to
//!   L_max; the fewest bootstraps, ties broken by latency, exactly.
//! - [`Policy::Optimal`]: the exact minimum latency over every allowed site and target
//!   level and every execution level. Its search space contains both others', so it never
//!   costs more than either.
//!
//! # The exact algorithm (`optimal`, `rmsnorm`)
//!
//! A level-state dynamic program. Variables are levels: for every node its available level
//! `S` (after any bootstrap) and, for a node with two or more operands, its execution level
//! `E`; a node's local cost table `c(e, s)` holds its op at `e` plus, when `s ≠ e − depth`,
//! the bootstrap to `s`. Factors: `min_{e ≤ u} c(e, s)` over (operand `S`, node `S`) for one
//! operand (the prefix minimum folds the free level drop), `c` over (`E`, `S`) and `[E ≤ S_u]`
//! per operand otherwise. Eliminating a variable (the minimum over it of the sum of the
//! factors that mention it) is exact in any order; the order only sets the table sizes,
//! `(L+1)^(w+1)` entries for a variable with `w` neighbours. Orion's level digraph
//! (he-compilers.md §2.2) is this on a chain. Here:
//!
//! 1. **Series–parallel structure.** Eliminating a variable of a chain is the min-plus
//!    product of two (L+1)×(L+1) level-transfer matrices; branches meeting at a join add
//!    element-wise in the join's `E` factors. This is exact on reconvergent branches too,
//!    where Orion's per-path sums double-count shared nodes.
//! 2. **Shared values with fan-out** (q, k, v into every attention shift, the norm
//!    statistic into both Newton steps): such a value's `S` stays in the tables of the
//!    branches that read it until they are all eliminated: the program is conditioned on
//!    its level, exactly; each live cut value multiplies table sizes by (L+1).
//! 3. **Order.** Min-degree, min-fill and the frontier order along the nodes are simulated
//!    on the interaction graph and the one with the least total table work is run. On a
//!    series–parallel segment min-degree builds at most (L+1)³ entries per step, and the
//!    chosen order never does more total work; an order conditioning on `c` cut values
//!    builds at most (L+1)^(c+3).
//! 4. **Absorption.** A depth-0 node no policy may bootstrap, with one consumer and a
//!    nondecreasing cost table, runs at its consumer's level in some optimum, so it is
//!    merged into it: a chain of partial sums becomes one n-ary sum.
//! 5. **Twin lanes.** Identical copies hanging off the same values and read alike by the
//!    same consumers (the T shifted products of attention summed into one output) fold
//!    into one node of multiplicity k: copying the cheapest lane into all lanes keeps
//!    every constraint, so some optimum is symmetric. T then drops out of planning time.
//! 6. **Identical layers** (HALO's loop reuse). The graph is cut at *separators*, single
//!    values every later edge goes through (the residual stream between layers). Each
//!    distinct segment is solved once into an entry×exit transfer matrix; the chain of
//!    segments is one min-plus vector–matrix product per segment, so 30 layers cost one
//!    layer's elimination plus 30 (L+1)² products.
//!
//! Decoding walks back through the chain and the per-step argmin tables; identical
//! segments with identical boundary levels decode once.
//!
//! **Exactness.** The result is the exact optimum of the policy's objective, for every
//! graph, unless an elimination step exceeds [`PlaceOptions::work_limit`] entries (2^27 by
//! default: at L_max = 14 a step may carry four variables beyond three series–parallel
//! ones, 15^7 = 1.7·10^8 entries, does not fit). Past the limit, the busiest neighbour of
//! the step is clamped to its level in a reference placement (greedy for `optimal`, every
//! norm site refreshed for `rmsnorm`) until the step fits; the result is feasible (the
//! reference's levels, copied across twin lanes, remain in the search space) but not
//! proven optimal, and [`Placement::exactness`] says so ([`Exactness::BestFound`]). If the
//! reference fails too, [`PlaceError::TooWide`].
//!
//! **Complexity.** Absorbing, folding and cutting are O(V + E) (folding repeats when a
//! class splits); ordering simulates three eliminations symbolically; each distinct
//! segment costs its tables times the factors per step; the chain is O(segments · (L+1)²).
//! The BitNet 2B-4T shape at T = 128 (30 layers, about 25,000 nodes, L_max = 14) places in
//! tens of milliseconds per policy on this machine (`compiler/tests/place_examples.rs`).
//!
//! # Building a graph (the lowering's side)
//!
//! One node per HE value, in topological order; costs come from [`crate::cost`]:
//!
//! ```
//! use ensi_compiler::cost::{CostModel, HeOp, RingShape, Threads};
//! use ensi_compiler::place::{self, BootstrapCosts, BootstrapSite, LevelGraph, NodeSpec, Policy};
//!
//! let model = CostModel::new(RingShape::N16_L14, Threads::One).unwrap();
//! let mut graph = LevelGraph::new(BootstrapCosts::from_model(&model));
//! let norm = graph.region("layer0.norm");
//! let x = graph
//!     .add(NodeSpec::from_op(&model, "x", &HeOp::Input, vec![], 20, 1 << 15).site(BootstrapSite::Norm))
//!     .unwrap();
//! let sq = graph.add(NodeSpec::from_op(&model, "sq", &HeOp::Square, vec![x], 20, 1 << 15).region(norm)).unwrap();
//! let stat = graph
//!     .add(NodeSpec::from_op(&model, "stat", &HeOp::SumCiphertexts { group: 20 }, vec![sq], 1, 1 << 15))
//!     .unwrap();
//! let inv = graph
//!     .add(NodeSpec::from_op(&model, "inv", &HeOp::Poly { degree: 63 }, vec![stat], 1, 1 << 15).site(BootstrapSite::Norm))
//!     .unwrap();
//! let mut y = inv;
//! for i in 0..4 {
//!     y = graph.add(NodeSpec::from_op(&model, format!("newton{i}"), &HeOp::NewtonInvSqrt, vec![y, stat], 1, 1 << 15)).unwrap();
//! }
//! graph.add(NodeSpec::from_op(&model, "y", &HeOp::MulCt, vec![x, y], 20, 1 << 15)).unwrap();
//!
//! let optimal = place::place(&graph, Policy::Optimal).unwrap();
//! let ensi = place::place(&graph, Policy::RmsNorm).unwrap();
//! assert!(optimal.total() <= ensi.total());
//! // 16 levels on the statistic's path: one bootstrap, of a one-ciphertext value, not of x.
//! assert_eq!((optimal.cost.bootstrap_count, optimal.cost.bootstrapped_ciphertexts), (1, 1));
//! println!("{}", place::report(&graph, &optimal));
//! ```

mod evaluate;
pub(crate) mod exact;
mod graph;
mod greedy;
mod report;
pub mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::cost::Latency;

pub use evaluate::evaluate;
pub use graph::{
    BootstrapCosts, BootstrapSite, Level, LevelGraph, LevelNode, NodeId, NodeSpec, RegionId,
};
pub use report::report;

use exact::FewestBootstraps;

/// Where bootstraps may go and what is minimized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Bootstrap an operand to L_max when its consumer runs out of levels (baseline).
    Greedy,
    /// ENSI: bootstrap only norm candidates, each to L_max, as few as possible.
    RmsNorm,
    /// The minimum estimated latency over all allowed sites and targets.
    Optimal,
}

impl Policy {
    /// Every policy, in report order.
    pub const ALL: [Policy; 3] = [Policy::Greedy, Policy::RmsNorm, Policy::Optimal];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Greedy => "greedy",
            Policy::RmsNorm => "rmsnorm",
            Policy::Optimal => "optimal",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown placement policy `{s}` (greedy, rmsnorm, optimal)"))
    }
}

/// Why a [`LevelGraph`] node cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// An operand is not an earlier node.
    #[error("`{node}`: operand {operand} is not an earlier node")]
    ForwardOperand {
        /// The node.
        node: String,
        /// The offending operand.
        operand: NodeId,
    },
    /// The op alone needs more levels than a bootstrap can give.
    #[error(
        "`{node}` consumes {depth} levels but at most {max_level} are available after a bootstrap (L_max)"
    )]
    TooDeep {
        /// The node.
        node: String,
        /// Its depth.
        depth: u32,
        /// The budget.
        max_level: Level,
    },
    /// The op-cost table does not have one entry per level.
    #[error("`{node}`: op-cost table has {len} entries, expected {expected} (levels 0..=L_max)")]
    CostTableSize {
        /// The node.
        node: String,
        /// Entries given.
        len: usize,
        /// Entries expected.
        expected: usize,
    },
    /// Zero ciphertexts or slots.
    #[error("`{node}`: a value needs at least one ciphertext and one slot")]
    Empty {
        /// The node.
        node: String,
    },
    /// An input level on a node with operands, or above the budget.
    #[error("`{node}`: input level {level} is only for inputs, at most {max_level}")]
    BadInputLevel {
        /// The node.
        node: String,
        /// The level given.
        level: Level,
        /// The budget.
        max_level: Level,
    },
    /// A region id that was not created.
    #[error("`{node}`: unknown region {region}")]
    UnknownRegion {
        /// The node.
        node: String,
        /// The region id.
        region: u32,
    },
    /// A bootstrappable node whose slot count has no bootstrap cost.
    #[error("`{node}`: no bootstrap cost for {slots}-slot ciphertexts")]
    NoBootstrapTable {
        /// The node.
        node: String,
        /// Its slot count.
        slots: u32,
    },
    /// A bootstrap table of the wrong size.
    #[error("bootstrap table has {len} entries, expected {expected} ((L_max + 1)²)")]
    BootstrapTableSize {
        /// Entries given.
        len: usize,
        /// Entries expected.
        expected: usize,
    },
}

/// Why a placement fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaceError {
    /// No placement exists under the policy.
    #[error(
        "{policy}: `{node}` needs level {needed} but at most {available} can reach it (no value it depends on may be bootstrapped there under this policy)"
    )]
    Infeasible {
        /// The policy.
        policy: Policy,
        /// The first node that cannot run.
        node: String,
        /// The lowest level it can run at.
        needed: Level,
        /// The most its operands can give.
        available: Level,
    },
    /// The greedy walk needs to bootstrap a value it may not.
    #[error(
        "greedy: `{node}` needs level {needed} but its operand `{operand}` is at {available} and may not be bootstrapped"
    )]
    GreedyStuck {
        /// The node that ran out of levels.
        node: String,
        /// The operand that would need a bootstrap.
        operand: String,
        /// The level the node needs.
        needed: Level,
        /// The operand's level.
        available: Level,
    },
    /// An assignment breaks a rule of the model.
    #[error("invalid placement: `{node}` {what}")]
    Invalid {
        /// The offending node (empty for the whole graph).
        node: String,
        /// What is wrong.
        what: String,
    },
    /// A segment is too wide to solve exactly and no reference placement exists.
    #[error(
        "{policy}: segment {segment} needs {work} table entries per step (over the work limit) and has no reference placement to fall back on"
    )]
    TooWide {
        /// The policy.
        policy: Policy,
        /// The segment's first and last node.
        segment: String,
        /// Table entries of the cheapest next step.
        work: u64,
        /// Why the reference placement failed, if it did.
        cause: Option<Box<PlaceError>>,
    },
    /// A bug: the solver disagrees with the objective.
    #[error("internal placement error: {what}")]
    Internal {
        /// What disagreed.
        what: String,
    },
}

/// Where one node runs and what consumers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodePlacement {
    /// Execution level: its operands are dropped to this level (free) before the op; for
    /// an input, the level the client encrypts at.
    pub level: Level,
    /// Level of the op's result: `level − depth`.
    pub output: Level,
    /// Target of a bootstrap of the result, if any.
    pub bootstrap: Option<Level>,
}

impl NodePlacement {
    /// The level consumers read: the bootstrap target, or the result's level.
    pub fn available(&self) -> Level {
        self.bootstrap.unwrap_or(self.output)
    }
}

/// Estimated time, split into ops and bootstraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CostBreakdown {
    /// All ops at their levels.
    pub ops: Latency,
    /// All bootstraps.
    pub bootstraps: Latency,
    /// Bootstrapped values (bootstrap ops in the plan).
    pub bootstrap_count: u32,
    /// Ciphertexts bootstrapped.
    pub bootstrapped_ciphertexts: u64,
}

impl CostBreakdown {
    /// Ops plus bootstraps.
    pub fn total(&self) -> Latency {
        self.ops + self.bootstraps
    }

    /// The share of estimated time spent bootstrapping (ENSI reports ~1%), in `[0, 1]`.
    pub fn bootstrap_share(&self) -> f64 {
        let total = self.total().as_nanos();
        if total == 0 {
            0.0
        } else {
            self.bootstraps.as_nanos() as f64 / total as f64
        }
    }
}

/// One bootstrap of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapDecision {
    /// The bootstrapped value.
    pub node: NodeId,
    /// Level of the value when bootstrapped.
    pub input_level: Level,
    /// Level after.
    pub target: Level,
    /// Ciphertexts.
    pub count: u32,
    /// Slots per ciphertext.
    pub slots: u32,
    /// Latency of the bootstrap (all ciphertexts).
    pub cost: Latency,
    /// Why, in words.
    pub reason: String,
}

/// How far a placement is from the policy's optimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exactness {
    /// The exact optimum of the policy's objective over its search space.
    Optimal,
    /// A heuristic (the greedy baseline): no claim.
    Heuristic,
    /// Segments too wide for the work limit were solved with values clamped to a
    /// reference placement's levels: feasible, not proven optimal.
    BestFound {
        /// Segments solved with clamped values.
        clamped_segments: usize,
    },
}

/// Sizes of the exact solver's work, for reports and performance tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SolveStats {
    /// Graph nodes.
    pub nodes: usize,
    /// Nodes merged into their consumers by absorption.
    pub absorbed_nodes: usize,
    /// Nodes after absorption and folding of twin lanes.
    pub folded_nodes: usize,
    /// Segments between separators.
    pub segments: usize,
    /// Segments solved (the others reused an identical one).
    pub distinct_segments: usize,
    /// Largest table of one elimination step, in entries.
    pub largest_table: u64,
    /// Segments solved with clamped values.
    pub clamped_segments: usize,
}

/// The result of a policy: levels of every node, its bootstraps, and the cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The policy that produced it.
    pub policy: Policy,
    /// Per node, by [`NodeId`].
    pub nodes: Vec<NodePlacement>,
    /// Bootstraps in node order.
    pub bootstraps: Vec<BootstrapDecision>,
    /// Estimated time.
    pub cost: CostBreakdown,
    /// Optimality of the result.
    pub exactness: Exactness,
    /// Solver statistics (zero for greedy).
    pub stats: SolveStats,
}

impl Placement {
    /// Ops plus bootstraps.
    pub fn total(&self) -> Latency {
        self.cost.total()
    }

    /// The share of estimated time spent bootstrapping.
    pub fn bootstrap_share(&self) -> f64 {
        self.cost.bootstrap_share()
    }
}

/// Knobs of the exact solver (the defaults are what the compiler uses; tests turn the
/// reuse off to compare against the unrolled program).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceOptions {
    /// Merge depth-0, never-bootstrapped, single-consumer nodes with monotone costs into
    /// their consumers (exact; chains of partial sums become n-ary sums).
    pub absorb_nodes: bool,
    /// Fold twin lanes.
    pub merge_twins: bool,
    /// Cut the graph at separators.
    pub split_segments: bool,
    /// Solve identical segments once.
    pub reuse_segments: bool,
    /// Largest table of one elimination step before clamping, in entries.
    pub work_limit: u64,
}

impl Default for PlaceOptions {
    fn default() -> PlaceOptions {
        PlaceOptions {
            absorb_nodes: true,
            merge_twins: true,
            split_segments: true,
            reuse_segments: true,
            work_limit: 1 << 27,
        }
    }
}

/// Places bootstraps on `graph` under `policy` with the default options.
///
/// # Errors
/// [`PlaceError::Infeasible`] (naming the first node no placement can run) when the policy
/// cannot place the graph at all; [`PlaceError::GreedyStuck`] when the greedy walk needs a
/// bootstrap it may not place.
pub fn place(graph: &LevelGraph, policy: Policy) -> Result<Placement, PlaceError> {
    place_with(graph, policy, &PlaceOptions::default())
}

/// [`place`] with explicit solver options.
///
/// # Errors
/// As [`place`]; also [`PlaceError::TooWide`] when a segment exceeds the work limit and
/// the reference placement fails.
pub fn place_with(
    graph: &LevelGraph,
    policy: Policy,
    options: &PlaceOptions,
) -> Result<Placement, PlaceError> {
    let (nodes, exactness, stats, value) = match policy {
        Policy::Greedy => (
            greedy::place(graph)?,
            Exactness::Heuristic,
            SolveStats::default(),
            None,
        ),
        Policy::RmsNorm | Policy::Optimal => {
            if let Some(error) = evaluate::infeasibility(graph, policy) {
                return Err(error);
            }
            let (levels, clamped, stats, value) = if policy == Policy::RmsNorm {
                let s = exact::solve::<FewestBootstraps>(graph, policy, options, &mut || {
                    greedy::every_norm_site(graph)
                })?;
                (
                    s.levels,
                    s.clamped,
                    s.stats,
                    Some((s.value.bootstraps, s.value.latency)),
                )
            } else {
                let s =
                    exact::solve::<Latency>(graph, policy, options, &mut || greedy::place(graph))?;
                (s.levels, s.clamped, s.stats, Some((u64::MAX, s.value)))
            };
            let exactness = if clamped {
                Exactness::BestFound {
                    clamped_segments: stats.clamped_segments,
                }
            } else {
                Exactness::Optimal
            };
            (levels, exactness, stats, value)
        }
    };
    let cost = evaluate(graph, &nodes)?;
    evaluate::check_policy(graph, &nodes, policy)?;
    if let Some((bootstraps, latency)) = value {
        let count_ok = bootstraps == u64::MAX || bootstraps == u64::from(cost.bootstrap_count);
        if !count_ok || latency != cost.total() {
            return Err(PlaceError::Internal {
                what: format!(
                    "{policy}: the dynamic program's value {latency} differs from the placement's cost {}",
                    cost.total()
                ),
            });
        }
    }
    let consumers = graph.consumers();
    let bootstraps = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let target = p.bootstrap?;
            let id = NodeId(i as u32);
            let node = graph.node(id);
            let binding = consumers[i]
                .iter()
                .max_by_key(|c| (nodes[c.index()].level, std::cmp::Reverse(c.0)));
            let mut reason = match binding {
                Some(&c) => format!(
                    "`{}` runs at level {} and the value is at {}",
                    graph.node(c).name(),
                    nodes[c.index()].level,
                    p.output
                ),
                None => format!("the value is at {} and nothing reads it", p.output),
            };
            if node.site() == BootstrapSite::Norm {
                reason.push_str("; norm site");
            }
            Some(BootstrapDecision {
                node: id,
                input_level: p.output,
                target,
                count: node.count(),
                slots: node.slots(),
                cost: graph.bootstrap_cost(id, p.output, target),
                reason,
            })
        })
        .collect();
    Ok(Placement {
        policy,
        nodes,
        bootstraps,
        cost,
        exactness,
        stats,
    })
}
