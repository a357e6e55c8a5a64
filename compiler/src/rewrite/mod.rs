//! Equality saturation on the model IR (egg): graph in, the cheapest equivalent graph under encryption out, with a [`RewriteReport`] of the run.
//!
//! The rules (`rules/`, one file per [`Family`]) fold every projection's weight scale into a
//! place where it is free under encryption: a norm's `eps` (scale invariance) or
//! `gain_scale`, attention's `score_scale`, SiLU's `input_scale`. Extraction (`extract.rs`)
//! minimizes the [`Cost`]: standalone scalings first (each costs a multiplicative level),
//! then kernels, then ciphertext multiplications, counting shared values once.
//!
//! The run has iteration, e-node and time limits; the stop reason is recorded. Output is
//! deterministic: the e-graph (egg's `deterministic` feature), the rule order, extraction
//! ties and the node order of the result are all fixed; only hitting the time limit (a
//! safety net far above the fixtures' and the 2B model's needs) depends on the machine.

mod convert;
mod extract;
mod language;
mod rules;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::ir::{self, Graph, VerifyError};

pub use extract::Cost;
pub use rules::Family;

/// Limits of one equality-saturation run.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteOptions {
    /// Most rule-application rounds.
    pub iteration_limit: usize,
    /// Most e-nodes.
    pub node_limit: usize,
    /// Most wall-clock time (a safety net; hitting it makes the result machine-dependent).
    pub time_limit: Duration,
}

impl Default for RewriteOptions {
    /// 64 iterations, 500 000 e-nodes, 60 s. The fixtures saturate in under 10 iterations
    /// with a few hundred e-nodes.
    fn default() -> Self {
        Self {
            iteration_limit: 64,
            node_limit: 500_000,
            time_limit: Duration::from_secs(60),
        }
    }
}

/// Why the run stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum StopReason {
    /// No rule could add anything new: every equivalent form the rules know is in the e-graph.
    Saturated,
    /// The iteration limit was reached.
    IterationLimit {
        /// The limit.
        limit: usize,
    },
    /// The e-node limit was reached.
    NodeLimit {
        /// The limit.
        limit: usize,
    },
    /// The time limit was reached.
    TimeLimit {
        /// The limit in seconds.
        seconds: f64,
    },
    /// Something else stopped the run.
    Other {
        /// egg's message.
        message: String,
    },
}

impl From<egg::StopReason> for StopReason {
    fn from(reason: egg::StopReason) -> Self {
        match reason {
            egg::StopReason::Saturated => Self::Saturated,
            egg::StopReason::IterationLimit(limit) => Self::IterationLimit { limit },
            egg::StopReason::NodeLimit(limit) => Self::NodeLimit { limit },
            egg::StopReason::TimeLimit(seconds) => Self::TimeLimit { seconds },
            egg::StopReason::Other(message) => Self::Other { message },
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Saturated => f.write_str("saturated"),
            Self::IterationLimit { limit } => write!(f, "iteration limit ({limit})"),
            Self::NodeLimit { limit } => write!(f, "e-node limit ({limit})"),
            Self::TimeLimit { seconds } => write!(f, "time limit ({seconds} s)"),
            Self::Other { message } => write!(f, "stopped: {message}"),
        }
    }
}

/// How often one rule fired over the whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule's name.
    pub rule: String,
    /// Its family.
    pub family: Family,
    /// Applications that changed the e-graph, summed over the iterations.
    pub applied: usize,
}

/// What one [`optimize`] run did: the plan stores it, the report prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewriteReport {
    /// Why equality saturation stopped.
    pub stop_reason: StopReason,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub egraph_nodes: usize,
    /// E-classes at the end.
    pub egraph_classes: usize,
    /// Every rule, in rule order, with how often it fired.
    pub rules: Vec<RuleCount>,
    /// The cost of the input graph under the extraction cost model.
    pub cost_before: Cost,
    /// The cost of the output graph.
    pub cost_after: Cost,
}

/// Why a graph could not be rewritten.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The input graph does not verify.
    #[error("the input graph is invalid: {0}")]
    Invalid(#[source] VerifyError),
    /// A rule merged values of different shapes (a bug in a rule).
    #[error("a rewrite merged a {left} value with a {right} value")]
    ShapeConflict {
        /// The type of one value.
        left: ir::Type,
        /// The type of the other.
        right: ir::Type,
    },
    /// The extracted graph does not verify (a bug in a rule or in extraction).
    #[error("the rewritten graph is invalid: {0}")]
    Unsound(#[source] VerifyError),
    /// Extraction found no term for a value (a bug: every input value has one).
    #[error("no term could be extracted for {what}")]
    Unextractable {
        /// What could not be extracted.
        what: String,
    },
}

/// Every rule's family and name, in the order they run.
pub fn rules() -> Vec<(Family, String)> {
    rules::catalog()
        .into_iter()
        .map(|(family, rule)| (family, rule.name.to_string()))
        .collect()
}

/// Rewrites `graph` with every rule family and returns the cheapest equivalent graph under
/// encryption (by [`Cost`]) with the report of the run.
///
/// The result computes the same outputs (in exact arithmetic; in f64 they agree to rounding,
/// about 1e-15 relative), has the same output names, and never costs more than the input
/// (if extraction finds nothing cheaper, the input is returned as it is). Nodes are numbered in the order of
/// the input graph where they correspond to an input node, and before their first user
/// otherwise.
pub fn optimize(
    graph: &Graph,
    options: &RewriteOptions,
) -> Result<(Graph, RewriteReport), RewriteError> {
    ir::verify(graph).map_err(RewriteError::Invalid)?;
    let start = convert::to_egraph(graph);
    let cost_before = convert::graph_cost(graph);
    let catalog = rules::catalog();
    let runner = egg::Runner::default()
        .with_egraph(start.egraph)
        .with_iter_limit(options.iteration_limit)
        .with_node_limit(options.node_limit)
        .with_time_limit(options.time_limit)
        .with_scheduler(egg::SimpleScheduler)
        .run(catalog.iter().map(|(_, rule)| rule));

    if let Some(conflict) = runner.egraph.analysis.conflicts.first() {
        return Err(RewriteError::ShapeConflict {
            left: conflict.left,
            right: conflict.right,
        });
    }
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    for iteration in &runner.iterations {
        for (rule, count) in &iteration.applied {
            *applied.entry(rule.as_str()).or_default() += count;
        }
    }
    let rules = catalog
        .iter()
        .map(|(family, rule)| RuleCount {
            rule: rule.name.as_str().to_owned(),
            family: *family,
            applied: applied.get(rule.name.as_str()).copied().unwrap_or(0),
        })
        .collect();

    let (mut output, mut cost_after) = convert::from_egraph(&runner.egraph, &start.classes, graph)?;
    ir::verify(&output).map_err(RewriteError::Unsound)?;
    if cost_after > cost_before {
        // Extraction is a heuristic; never hand back something costlier than the input.
        (output, cost_after) = (graph.clone(), cost_before);
    }
    let report = RewriteReport {
        stop_reason: runner.stop_reason.clone().map_or(
            StopReason::Other {
                message: "did not run".to_owned(),
            },
            Into::into,
        ),
        iterations: runner.iterations.len(),
        egraph_nodes: runner.egraph.total_number_of_nodes(),
        egraph_classes: runner.egraph.number_of_classes(),
        rules,
        cost_before,
        cost_after,
    };
    Ok((output, report))
}
