//! Calibration: a verified graph run exactly (f64) on calibration token sequences; out come the argument range of every nonlinearity and the magnitude of every value, widened by a stated margin, in a side table keyed by node.
//!
//! Inputs are `N` random token sequences of the graph's length `T` (uniform over the
//! vocabulary, from a stated seed; default 16 sequences, seed 0) or user-supplied sequences
//! ([`read_token_file`]: one sequence per line). Recorded per node:
//!
//! - the argument of each nonlinearity, exactly as a polynomial would receive it: the input
//!   of `relu2`, `input_scale · x` of `silu`, `score − ln T` of sigmoid attention (after
//!   `score_scale`), the scores of softmax attention (for `e^s`) and their row sums (for
//!   `1/x`, after the shift below), and `mean(x²) + eps` of each `rms_norm` (for `1/√m`);
//! - the largest `|value|` of every tensor node (for bootstrapping-range checks).
//!
//! The lm head is not run: the client applies it to the decrypted hidden state, so no range
//! of it is needed (its magnitude reads 0, like the token ids').
//!
//! Margins: a signed interval `[lo, hi]` is widened by `margin · (hi − lo)` on each side;
//! the positive arguments of `1/√m` and `1/x` are widened by the factor `1 + margin`
//! (`[lo / (1 + margin), hi · (1 + margin)]`). Because the HE lowering also evaluates the
//! polynomials on zero padding, the intervals of `relu2` and `silu` always contain 0, and
//! the sigmoid interval contains `−ln T` (the argument at a zero score).
//!
//! Softmax (the baseline) is evaluated as `e^(s − c) / Σ e^(s − c)` with a constant shift
//! `c` per node, the upper end of its widened score interval, so every exponential is at
//! most 1 and the row sums lie in `(0, T]`; the `1/x` interval is that of these sums.

use std::collections::BTreeMap;
use std::path::Path;

use ensi_checkpoint::Checkpoint;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::forward::{self, Exact, ForwardError, Function, Nonlinear};
use crate::ir::{Graph, GraphInfo, Handle, Node, Op};

/// A closed interval `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// `[lo, hi]`.
    pub fn new(lo: f64, hi: f64) -> Self {
        Self { lo, hi }
    }

    /// `hi − lo`.
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }

    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// The smallest interval holding this one and `x`.
    pub fn including(self, x: f64) -> Self {
        Self::new(self.lo.min(x), self.hi.max(x))
    }

    /// Widened by `margin · width` on each side (a point widens by `margin · max(|x|, 1)`).
    pub fn widened(self, margin: f64) -> Self {
        let pad = margin
            * if self.width() > 0.0 {
                self.width()
            } else {
                self.lo.abs().max(1.0)
            };
        Self::new(self.lo - pad, self.hi + pad)
    }

    /// A positive interval widened by the factor `1 + margin` at both ends.
    pub fn widened_ratio(self, margin: f64) -> Self {
        Self::new(self.lo / (1.0 + margin), self.hi * (1.0 + margin))
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:.6e}, {:.6e}]", self.lo, self.hi)
    }
}

/// Where a nonlinearity is evaluated: a node and one of its functions (a softmax node has
/// two, `exp` and `inverse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Site {
    /// The node.
    pub node: Handle<Node>,
    /// The function.
    pub function: Function,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.function, self.node)
    }
}

/// The calibrated argument range of one site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Range {
    /// Smallest and largest argument seen.
    pub observed: Interval,
    /// The interval a polynomial must cover: `observed` widened by the margin (and holding
    /// the padding arguments).
    pub interval: Interval,
    /// How many arguments were seen.
    pub samples: u64,
}

/// Where the calibration inputs came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// Uniformly random token ids.
    Random {
        /// Number of sequences.
        sequences: usize,
        /// Seed of the ChaCha8 generator.
        seed: u64,
    },
    /// Sequences given by the user.
    Supplied {
        /// Number of sequences.
        sequences: usize,
    },
}

/// Which inputs to calibrate on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    /// `sequences` sequences of uniformly random ids below the vocabulary size, from a
    /// ChaCha8 generator seeded with `seed`.
    Random {
        /// Number of sequences.
        sequences: usize,
        /// The seed.
        seed: u64,
    },
    /// These sequences (each of the graph's length `T`).
    Sequences(Vec<Vec<u32>>),
}

/// Calibration settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationOptions {
    /// The inputs.
    pub inputs: Inputs,
    /// Relative widening of every interval (see the module docs).
    pub margin: f64,
}

/// Default number of random calibration sequences.
pub const DEFAULT_SEQUENCES: usize = 16;
/// Default margin: each interval grows by a quarter of its width on each side.
pub const DEFAULT_MARGIN: f64 = 0.25;

impl Default for CalibrationOptions {
    /// [`DEFAULT_SEQUENCES`] random sequences from seed 0, margin [`DEFAULT_MARGIN`].
    fn default() -> Self {
        Self {
            inputs: Inputs::Random {
                sequences: DEFAULT_SEQUENCES,
                seed: 0,
            },
            margin: DEFAULT_MARGIN,
        }
    }
}

/// Why calibration failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// There are no calibration sequences.
    #[error("calibration needs at least one token sequence")]
    NoInputs,
    /// The margin is negative or not finite.
    #[error("the calibration margin must be finite and non-negative, found {margin}")]
    Margin {
        /// The margin given.
        margin: f64,
    },
    /// A supplied sequence has the wrong length.
    #[error("calibration sequence {sequence} has {found} tokens, the graph takes {expected}")]
    SequenceLength {
        /// 1-based index of the sequence.
        sequence: usize,
        /// The graph's `T`.
        expected: usize,
        /// Its length.
        found: usize,
    },
    /// A token file could not be read.
    #[error("cannot read token file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// A token file line is not a sequence of token ids.
    #[error("{path}, line {line}: `{word}` is not a token id")]
    TokenSyntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The offending word.
        word: String,
    },
    /// The forward pass failed on a calibration sequence.
    #[error("calibration sequence {sequence}: {source}")]
    Forward {
        /// 1-based index of the sequence.
        sequence: usize,
        /// The forward pass's error.
        source: ForwardError,
    },
}

/// Reads token sequences from text: one sequence per line, ids separated by whitespace;
/// blank lines and lines starting with `#` are skipped. `path` names the text in errors.
pub fn parse_token_sequences(text: &str, path: &str) -> Result<Vec<Vec<u32>>, CalibrateError> {
    let mut sequences = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sequence = line
            .split_whitespace()
            .map(|word| {
                word.parse::<u32>()
                    .map_err(|_| CalibrateError::TokenSyntax {
                        path: path.to_owned(),
                        line: index + 1,
                        word: word.to_owned(),
                    })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        sequences.push(sequence);
    }
    Ok(sequences)
}

/// Reads a token file (see [`parse_token_sequences`]).
pub fn read_token_file(path: &Path) -> Result<Vec<Vec<u32>>, CalibrateError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| CalibrateError::Read {
        path: shown.clone(),
        message: error.to_string(),
    })?;
    parse_token_sequences(&text, &shown)
}

/// The calibration of one graph: argument ranges per site, magnitudes per node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Where the inputs came from.
    pub source: Source,
    /// The token count `T` of every sequence.
    pub tokens: usize,
    /// The margin the intervals were widened by.
    pub margin: f64,
    /// Serialized as a list of `{site, range}` (JSON keys must be strings).
    #[serde(serialize_with = "serialize_sites")]
    sites: BTreeMap<Site, Range>,
    shifts: BTreeMap<Handle<Node>, f64>,
    magnitudes: Vec<f64>,
    /// The calibration sequences themselves (later stages measure errors on them).
    #[serde(skip)]
    sequences: Vec<Vec<u32>>,
}

impl Calibration {
    /// The range of `site`, if the graph has it.
    pub fn range(&self, site: Site) -> Option<&Range> {
        self.sites.get(&site)
    }

    /// Every site with its range, in node order.
    pub fn sites(&self) -> impl Iterator<Item = (Site, &Range)> {
        self.sites.iter().map(|(site, range)| (*site, range))
    }

    /// The shift `c` of a softmax attention node (`e^(s − c)`; see the module docs).
    pub fn softmax_shift(&self, node: Handle<Node>) -> Option<f64> {
        self.shifts.get(&node).copied()
    }

    /// The largest `|value|` seen at `node` (0 for the token ids and the lm head), not
    /// widened.
    pub fn magnitude(&self, node: Handle<Node>) -> f64 {
        self.magnitudes.get(node.index()).copied().unwrap_or(0.0)
    }

    /// The calibration token sequences.
    pub fn sequences(&self) -> &[Vec<u32>] {
        &self.sequences
    }

    /// [`Self::magnitude`] widened by the factor `1 + margin`.
    pub fn magnitude_bound(&self, node: Handle<Node>) -> f64 {
        self.magnitude(node) * (1.0 + self.margin)
    }
}

fn serialize_sites<S: serde::Serializer>(
    sites: &BTreeMap<Site, Range>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        site: &'a Site,
        range: &'a Range,
    }
    serializer.collect_seq(sites.iter().map(|(site, range)| Entry { site, range }))
}

/// Runs `graph` on the calibration inputs and returns its [`Calibration`].
///
/// Sequences run in parallel; the result does not depend on their order.
pub fn run(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    options: &CalibrationOptions,
) -> Result<Calibration, CalibrateError> {
    if !(options.margin.is_finite() && options.margin >= 0.0) {
        return Err(CalibrateError::Margin {
            margin: options.margin,
        });
    }
    let tokens = info.tokens();
    let (sequences, source) = inputs(&options.inputs, tokens, checkpoint.embedding().rows());
    if sequences.is_empty() {
        return Err(CalibrateError::NoInputs);
    }
    for (index, sequence) in sequences.iter().enumerate() {
        if sequence.len() != tokens {
            return Err(CalibrateError::SequenceLength {
                sequence: index + 1,
                expected: tokens,
                found: sequence.len(),
            });
        }
    }
    let encrypted: Vec<&str> = graph
        .outputs()
        .iter()
        .filter(|output| !matches!(graph.node(output.value).op, Op::LmHead { .. }))
        .map(|output| output.name.as_str())
        .collect();
    let recorders = sequences
        .par_iter()
        .enumerate()
        .map(|(index, sequence)| {
            let mut recorder = Recorder::new(graph.nodes().len());
            let mut magnitudes = vec![0.0f64; graph.nodes().len()];
            forward::run_with_observed(
                graph,
                info,
                checkpoint,
                sequence,
                &encrypted,
                &mut recorder,
                |node, value| {
                    let largest = value.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    magnitudes[node.index()] = largest;
                },
            )
            .map_err(|source| CalibrateError::Forward {
                sequence: index + 1,
                source,
            })?;
            Ok((recorder, magnitudes))
        })
        .collect::<Result<Vec<_>, CalibrateError>>()?;

    let mut total = Recorder::new(graph.nodes().len());
    let mut magnitudes = vec![0.0f64; graph.nodes().len()];
    for (recorder, seen) in &recorders {
        total.merge(recorder);
        for (largest, value) in magnitudes.iter_mut().zip(seen) {
            *largest = largest.max(*value);
        }
    }
    let mut calibration = total.finish(options.margin, tokens, source, magnitudes);
    calibration.sequences = sequences;
    Ok(calibration)
}

/// The sequences of `inputs` and their description.
fn inputs(inputs: &Inputs, tokens: usize, vocab: usize) -> (Vec<Vec<u32>>, Source) {
    match inputs {
        Inputs::Random { sequences, seed } => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            // The loader guarantees a non-empty embedding table that fits u32 ids.
            let vocab = u32::try_from(vocab).unwrap_or(u32::MAX).max(1);
            let drawn = (0..*sequences)
                .map(|_| (0..tokens).map(|_| rng.random_range(0..vocab)).collect())
                .collect();
            (
                drawn,
                Source::Random {
                    sequences: *sequences,
                    seed: *seed,
                },
            )
        }
        Inputs::Sequences(given) => (
            given.clone(),
            Source::Supplied {
                sequences: given.len(),
            },
        ),
    }
}

/// Running minimum, maximum and count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extremes {
    lo: f64,
    hi: f64,
    count: u64,
}

impl Default for Extremes {
    fn default() -> Self {
        Self {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            count: 0,
        }
    }
}

impl Extremes {
    fn record(&mut self, x: f64) {
        self.lo = self.lo.min(x);
        self.hi = self.hi.max(x);
        self.count += 1;
    }

    fn merge(&mut self, other: &Self) {
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
        self.count += other.count;
    }

    fn interval(&self) -> Interval {
        Interval::new(self.lo, self.hi)
    }
}

/// Slot of a site in a [`Recorder`]: one per node and function.
fn slot(node: Handle<Node>, function: Function) -> usize {
    let offset = Function::ALL
        .iter()
        .position(|&f| f == function)
        .unwrap_or(0);
    node.index() * Function::ALL.len() + offset
}

/// The exact functions, recording the extremes of every argument; for softmax also of the
/// log row sums `ln Σ e^s` (turned into row sums of `e^(s − c)` once `c` is known).
struct Recorder {
    extremes: Vec<Extremes>,
    log_row_sums: Vec<Extremes>,
}

impl Recorder {
    fn new(nodes: usize) -> Self {
        Self {
            extremes: vec![Extremes::default(); nodes * Function::ALL.len()],
            log_row_sums: vec![Extremes::default(); nodes],
        }
    }

    fn record(&mut self, node: Handle<Node>, function: Function, x: f64) {
        self.extremes[slot(node, function)].record(x);
    }

    fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.extremes.iter_mut().zip(&other.extremes) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.log_row_sums.iter_mut().zip(&other.log_row_sums) {
            mine.merge(theirs);
        }
    }

    fn finish(
        self,
        margin: f64,
        tokens: usize,
        source: Source,
        magnitudes: Vec<f64>,
    ) -> Calibration {
        let mut sites = BTreeMap::new();
        let mut shifts = BTreeMap::new();
        let padding_score = -(tokens as f64).ln();
        for (index, extremes) in self.extremes.iter().enumerate() {
            if extremes.count == 0 {
                continue;
            }
            let node = Handle::from_index(index / Function::ALL.len());
            let function = Function::ALL[index % Function::ALL.len()];
            let observed = extremes.interval();
            let interval = match function {
                Function::Relu2 | Function::Silu => observed.including(0.0).widened(margin),
                Function::Sigmoid => observed.including(padding_score).widened(margin),
                Function::Exp => observed.widened(margin),
                Function::InvSqrt | Function::Inverse => observed.widened_ratio(margin),
            };
            if function == Function::Exp {
                let shift = interval.hi;
                shifts.insert(node, shift);
                let sums = self.log_row_sums[node.index()];
                // Row sums of e^(s − c): e^(ln Σ e^s − c), monotone in the log sum.
                let observed = Interval::new((sums.lo - shift).exp(), (sums.hi - shift).exp());
                let range = Range {
                    observed,
                    interval: observed.widened_ratio(margin),
                    samples: sums.count,
                };
                sites.insert(
                    Site {
                        node,
                        function: Function::Inverse,
                    },
                    range,
                );
            }
            sites.insert(
                Site { node, function },
                Range {
                    observed,
                    interval,
                    samples: extremes.count,
                },
            );
        }
        Calibration {
            source,
            tokens,
            margin,
            sites,
            shifts,
            magnitudes,
            sequences: Vec::new(),
        }
    }
}

impl Nonlinear for Recorder {
    fn relu2(&mut self, node: Handle<Node>, x: f64) -> f64 {
        self.record(node, Function::Relu2, x);
        Exact.relu2(node, x)
    }

    fn silu(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.record(node, Function::Silu, z);
        Exact.silu(node, z)
    }

    fn sigmoid(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.record(node, Function::Sigmoid, z);
        Exact.sigmoid(node, z)
    }

    fn softmax(&mut self, node: Handle<Node>, scores: &mut [f64]) {
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
        self.log_row_sums[node.index()].record(max + sum.ln());
        for &score in scores.iter() {
            self.record(node, Function::Exp, score);
        }
        Exact.softmax(node, scores);
    }

    fn inv_sqrt(&mut self, node: Handle<Node>, m: f64) -> f64 {
        self.record(node, Function::InvSqrt, m);
        Exact.inv_sqrt(node, m)
    }
}
