//! Rotation keys: the leveled HE graph (and the ternary weights its block-diagonal layers read) in, the exact set of Galois elements the plan rotates by, plus conjugation when it bootstraps, and the memory of its evaluation keys out.
//!
//! Every rotation comes from the schedules the executors follow (`runtime::plan::schedule`
//! and the exec module's `DiagonalPattern` and `Repacking`), so the key set matches what runs.

use std::collections::{BTreeMap, BTreeSet};

use ensi_checkpoint::Checkpoint;
use ensi_runtime::exec::{DiagonalPattern, Repacking};
use ensi_runtime::plan::schedule::{
    conjugation_galois_element, rot_sum_rotations, rotation_galois_element,
};
use ensi_runtime::plan::{Layout, LinearMethod, PlanParams, SignedRow};
use rayon::prelude::*;
use serde::Serialize;

use crate::lower::{HeGraph, HeOp, Value};

/// What a ternary layer costs, counted on its weights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinearStats {
    /// Ciphertext additions of the column method (one fewer than the nonzeros of each row).
    pub additions: u64,
    /// Nonzero block diagonals (plaintext products of the diagonal method).
    pub nonzero_diagonals: u64,
    /// Key-switched rotations of the diagonal method.
    pub rotations: u64,
    /// Left-rotation steps the diagonal method uses (baby and giant steps with nonzero terms).
    pub steps: Vec<i32>,
}

/// The identity of a ternary layer for statistics: weight, row map, layouts and method.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinearKey {
    /// Weight name.
    pub weight: String,
    /// BLAKE3 of the row map.
    pub rows: [u8; 32],
    /// Input layout (slots, block, tokens, columns).
    pub input: (u32, u32, u32, u32),
    /// Output layout.
    pub output: (u32, u32, u32, u32),
    /// Baby steps (0 for the column method).
    pub baby: u32,
}

fn layout_key(layout: &Layout) -> (u32, u32, u32, u32) {
    (layout.slots, layout.block, layout.tokens, layout.columns)
}

fn rows_digest(rows: &[SignedRow]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for row in rows {
        hasher.update(&row.row.to_le_bytes());
        hasher.update(&[u8::from(row.negate)]);
    }
    *hasher.finalize().as_bytes()
}

/// Statistics of every ternary layer computed so far, shared by lowerings of one model.
#[derive(Debug, Clone, Default)]
pub struct LinearCache {
    stats: BTreeMap<LinearKey, LinearStats>,
}

impl LinearCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of the ternary layer `value` of `graph` (None for other ops).
    pub fn key(graph: &HeGraph, value: Value) -> Option<LinearKey> {
        let HeOp::TernaryLinear {
            weight,
            rows,
            method,
            ..
        } = &graph.node(value).op
        else {
            return None;
        };
        let input = graph.node(graph.operands(value)[0]).ty.layout;
        Some(LinearKey {
            weight: graph.weights[weight.0 as usize].name.clone(),
            rows: rows_digest(rows),
            input: layout_key(&input),
            output: layout_key(&graph.node(value).ty.layout),
            baby: match method {
                LinearMethod::Columns => 0,
                LinearMethod::Diagonals { baby_steps } => *baby_steps,
            },
        })
    }

    /// Counts every ternary layer of `graph` not yet in the cache (in parallel, reading the
    /// weights from `checkpoint`; a weight missing from it counts as empty).
    pub fn fill(&mut self, graph: &HeGraph, checkpoint: &Checkpoint) {
        let mut todo: BTreeMap<LinearKey, Value> = BTreeMap::new();
        for value in graph.values() {
            if let Some(key) = Self::key(graph, value)
                && !self.stats.contains_key(&key)
            {
                todo.entry(key).or_insert(value);
            }
        }
        let todo: Vec<(LinearKey, Value)> = todo.into_iter().collect();
        let computed: Vec<(LinearKey, LinearStats)> = todo
            .into_par_iter()
            .map(|(key, value)| {
                let stats = count(graph, value, checkpoint);
                (key, stats)
            })
            .collect();
        self.stats.extend(computed);
    }

    /// The statistics of the ternary layer `value` (after [`Self::fill`]).
    pub fn get(&self, graph: &HeGraph, value: Value) -> Option<&LinearStats> {
        Self::key(graph, value).and_then(|key| self.stats.get(&key))
    }
}

/// Counts one ternary layer on its weights.
fn count(graph: &HeGraph, value: Value, checkpoint: &Checkpoint) -> LinearStats {
    let HeOp::TernaryLinear {
        weight,
        rows,
        method,
        ..
    } = &graph.node(value).op
    else {
        return LinearStats::default();
    };
    let Some(matrix) = checkpoint.ternary(&graph.weights[weight.0 as usize].name) else {
        return LinearStats::default();
    };
    match method {
        LinearMethod::Columns => {
            let additions = rows
                .iter()
                .map(|row| (matrix.row_nonzeros(row.row as usize) as u64).saturating_sub(1))
                .sum();
            LinearStats {
                additions,
                ..LinearStats::default()
            }
        }
        LinearMethod::Diagonals { baby_steps } => {
            let input = graph.node(graph.operands(value)[0]).ty.layout;
            let output = graph.node(value).ty.layout;
            let diagonals = DiagonalPattern::new(matrix, rows, &input, &output, *baby_steps);
            let schedule = diagonals.schedule().clone();
            let mut steps = BTreeSet::new();
            for o in 0..diagonals.output_ciphertexts() {
                for g in 0..schedule.giant {
                    let mut any = false;
                    for (_, baby) in diagonals.giant_step_terms(o, g) {
                        any = true;
                        if baby > 0 {
                            steps.insert((baby * schedule.block) as i32);
                        }
                    }
                    if any && g > 0 {
                        steps.insert((g * schedule.baby * schedule.block) as i32);
                    }
                }
            }
            LinearStats {
                additions: 0,
                nonzero_diagonals: diagonals.nonzero_diagonals() as u64,
                rotations: diagonals.rotations() as u64,
                steps: steps.into_iter().collect(),
            }
        }
    }
}

/// Left-rotation steps of one leveled value, with the slot count they act in.
pub fn rotation_steps(graph: &HeGraph, value: Value, linear: &LinearCache) -> Vec<(u32, i64)> {
    let node = graph.node(value);
    let operand_layout = || graph.node(graph.operands(value)[0]).ty.layout;
    match &node.op {
        HeOp::Rotate { steps } => vec![(node.ty.layout.slots, i64::from(*steps))],
        HeOp::RotSum { step, count } => rot_sum_rotations(*step, *count)
            .map(|s| (node.ty.layout.slots, i64::from(s)))
            .collect(),
        HeOp::TernaryLinear { .. } => linear
            .get(graph, value)
            .map(|stats| {
                stats
                    .steps
                    .iter()
                    .map(|&s| (node.ty.layout.slots, i64::from(s)))
                    .collect()
            })
            .unwrap_or_default(),
        HeOp::Repack { .. } => {
            let from = operand_layout();
            let repacking = Repacking::new(&from, &node.ty.layout);
            let width = repacking.width() as u32;
            repacking
                .moves()
                .iter()
                .filter(|m| i64::from(m.rotation).rem_euclid(i64::from(width)) != 0)
                .map(|m| (width, i64::from(m.rotation)))
                .chain(repacking.fold_rotations().map(|s| (width, i64::from(s))))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The evaluation keys a plan needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySet {
    /// Galois elements of the plan's rotations (and conjugation when it bootstraps), sorted.
    pub galois_elements: Vec<u64>,
    /// Whether a relinearization key is needed.
    pub relinearization: bool,
    /// Whether the plan bootstraps (the bootstrapper's own keys come on top).
    pub bootstrapping: bool,
    /// Bytes of one switching key: `dnum` digits of two polynomials over Q·P.
    pub key_bytes: u64,
    /// Bytes of all the plan's switching keys (rotations, relinearization, conjugation).
    pub total_bytes: u64,
}

/// The key set of the leveled `graph` under `params`.
pub fn collect(graph: &HeGraph, params: &PlanParams, linear: &LinearCache) -> KeySet {
    let log_n = params.literal.log_n;
    let mut elements = BTreeSet::new();
    let mut relinearization = false;
    let mut bootstrapping = false;
    for value in graph.values() {
        let op = &graph.node(value).op;
        relinearization |= matches!(op, HeOp::MulCt | HeOp::Square);
        bootstrapping |= matches!(op, HeOp::Bootstrap { .. });
        for (slots, steps) in rotation_steps(graph, value, linear) {
            let element = rotation_galois_element(log_n, slots, steps);
            if element != 1 {
                elements.insert(element);
            }
        }
    }
    // The runtime generates the rotation keys truncated to the highest level a value sits
    // at; relinearization and conjugation (both used by bootstrapping) span the chain.
    let top = graph
        .values()
        .filter_map(|v| graph.node(v).ty.level)
        .max()
        .unwrap_or(0) as usize;
    let rotations = elements.len() as u64;
    if bootstrapping {
        elements.insert(conjugation_galois_element(log_n));
    }
    let key_bytes = switching_key_bytes(params);
    let full_keys = u64::from(relinearization) + u64::from(bootstrapping);
    KeySet {
        galois_elements: elements.into_iter().collect(),
        relinearization,
        bootstrapping,
        key_bytes,
        total_bytes: rotations * switching_key_bytes_at(params, top) + full_keys * key_bytes,
    }
}

/// Bytes of one switching key in memory: `dnum` digits, each two polynomials of `N`
/// coefficients over the `L + 1 + k` primes of Q·P, eight bytes a coefficient.
pub fn switching_key_bytes(params: &PlanParams) -> u64 {
    switching_key_bytes_at(params, params.literal.log_q.len().saturating_sub(1))
}

/// Bytes of one switching key truncated to `level`: the digits covering Q limbs 0..=level,
/// each two polynomials over those limbs and P.
pub fn switching_key_bytes_at(params: &PlanParams, level: usize) -> u64 {
    let literal = &params.literal;
    let level = level.min(literal.log_q.len().saturating_sub(1));
    let digits = (level + 1).div_ceil(literal.digit_primes.max(1) as usize) as u64;
    let limbs = (level + 1 + literal.log_p.len()) as u64;
    digits * 2 * limbs * (1u64 << literal.log_n) * 8
}
