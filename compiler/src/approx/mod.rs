//! Polynomial approximations of every nonlinearity, chosen from a precision target: calibrated graph in, an [`ApproxTable`] and the [`ErrorPrediction`] of the approximate forward out.
//!
//! Each site (a node and one of its functions, see [`Site`]) gets the shallowest form that
//! meets a common per-site tolerance on its calibrated interval (module `fit`): a Chebyshev
//! interpolant (sigmoid, SiLU, `e^(x − c)`), a Remez minimax polynomial for ReLU² (measured
//! against `x²(1 + p(x))/2` with `p ≈ sign`, which is recorded as the alternative), and a
//! relative-minimax initial guess refined by Newton steps for `1/√x` and `1/x`. Depth counts
//! `⌈log2(d + 1)⌉` for a degree-`d` baby-step giant-step evaluation and 2 per Newton step.
//!
//! The end-to-end prediction runs the approximate forward ([`forward()`]: the same graph with
//! every nonlinearity replaced by its approximation) against the exact one on the
//! calibration sequences and on any extra inputs (such as the user's own tokens), and takes
//! the largest `max |approx − exact| / max |exact|` of the output (default `hidden`). It also
//! measures each function class's contribution (only that class approximated). Every class
//! starts with the target itself as its per-site tolerance; while the prediction exceeds
//! the target `2^−precision_bits`, each class whose contribution exceeds its share of the
//! target has its tolerance scaled down in proportion (by 1/2 to 1/64 a round), and a class
//! that reaches the degree and Newton limits keeps its best fit while the others share the
//! rest of the target. The default, 12 bits, targets 2.4e-4: a quarter of the 1e-3 budget
//! of an encrypted run, leaving the rest to CKKS noise.
//!
//! [`select`] runs the forward about `rounds × (2 + classes)` times per input, which is
//! seconds on the fixtures and minutes on the 2B shapes; [`fit_at`] fits at given per-class
//! tolerances (from a measured run) without any forward pass.

mod fit;

use std::collections::BTreeMap;

use ensi_checkpoint::Checkpoint;
use ensi_runtime::ckks::numerics::chebyshev::ChebyshevSeries;
use rayon::prelude::*;
use serde::Serialize;

pub use fit::{Form, poly_depth};

use crate::calibrate::{Calibration, Interval, Site};
use crate::forward::{self, Exact, ForwardError, Function, Nonlinear, Outputs};
use crate::frontend::HIDDEN;
use crate::ir::{AttentionKind, Graph, GraphInfo, Handle, Node, Op};
use fit::{Fitter, Limits, Target};

/// What to approximate how precisely.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxOptions {
    /// The target: `max |approx − exact| / max |exact|` of `output` at most
    /// `2^−precision_bits` on every prediction input.
    pub precision_bits: u32,
    /// The output the target is about.
    pub output: String,
    /// Deepest polynomial (degree at most `2^max_poly_depth − 1`).
    pub max_poly_depth: u32,
    /// Most Newton steps of `1/√x` and `1/x`.
    pub max_newton_steps: usize,
    /// How many calibration sequences the prediction runs on (`None`: all of them).
    pub prediction_sequences: Option<usize>,
    /// Further token sequences the prediction runs on (such as the user's own input).
    pub extra_inputs: Vec<Vec<u32>>,
    /// Most tolerance-halving rounds before giving up.
    pub max_rounds: usize,
}

/// Default precision: 12 bits, a target of 2.4e-4 relative error.
pub const DEFAULT_PRECISION_BITS: u32 = 12;

impl Default for ApproxOptions {
    /// 12 bits on `hidden`; polynomials up to degree 255 (depth 8); up to 4 Newton steps;
    /// every calibration sequence; 12 rounds.
    fn default() -> Self {
        Self {
            precision_bits: DEFAULT_PRECISION_BITS,
            output: HIDDEN.to_owned(),
            max_poly_depth: 8,
            max_newton_steps: 4,
            prediction_sequences: None,
            extra_inputs: Vec::new(),
            max_rounds: 12,
        }
    }
}

/// The approximation of one site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approximation {
    /// Where it is evaluated.
    pub site: Site,
    /// How the value is computed from the series.
    pub form: Form,
    /// The interval the series is fitted on (the calibrated one).
    pub interval: Interval,
    /// The shift `c` of softmax attention's `e^(x − c)` (on its `exp` and its `inverse`
    /// site; 0 for every other function).
    pub shift: f64,
    /// Degree of the series.
    pub degree: usize,
    /// Multiplicative depth of the whole form.
    pub depth: u32,
    /// Chebyshev coefficients on `interval` (`coefficients[k]` multiplies `T_k`).
    #[serde(serialize_with = "serialize_coefficients")]
    pub series: ChebyshevSeries,
    /// Max error on the interval, in the site's measure (see [`Approximation::measure`]).
    pub max_error: f64,
    /// Max error on the calibration data's arguments, same measure (`None` from [`fit_at`],
    /// which runs no forward pass).
    pub calibration_error: Option<f64>,
    /// The other form measured at the same depth (ReLU²: the sign-damped form).
    pub alternative: Option<Alternative>,
}

fn serialize_coefficients<S: serde::Serializer>(
    series: &ChebyshevSeries,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(series.coeffs())
}

/// A form measured but not chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Alternative {
    /// The form.
    pub form: Form,
    /// Its degree.
    pub degree: usize,
    /// Its depth.
    pub depth: u32,
    /// Its max error on the interval.
    pub max_error: f64,
}

impl Approximation {
    /// The approximate value at `x` (outside the interval the polynomial is extrapolated,
    /// as an encrypted evaluation would).
    pub fn evaluate(&self, x: f64) -> f64 {
        self.form.evaluate(&self.series, x)
    }

    /// How errors are measured for this site's function.
    pub fn measure(&self) -> &'static str {
        match self.site.function {
            Function::Sigmoid | Function::Exp => "absolute",
            Function::Relu2 | Function::Silu => "absolute / max|f| on the interval",
            Function::InvSqrt | Function::Inverse => "relative",
        }
    }

    fn target(&self) -> Target {
        Target {
            function: self.site.function,
            interval: self.interval,
            shift: self.shift,
        }
    }
}

/// The approximation of every site of a graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproxTable {
    /// Serialized as the list of approximations (each names its site).
    #[serde(serialize_with = "serialize_entries")]
    entries: BTreeMap<Site, Approximation>,
}

fn serialize_entries<S: serde::Serializer>(
    entries: &BTreeMap<Site, Approximation>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(entries.values())
}

impl ApproxTable {
    /// The approximation of `site`.
    pub fn get(&self, site: Site) -> Option<&Approximation> {
        self.entries.get(&site)
    }

    /// Every approximation, in node order.
    pub fn iter(&self) -> impl Iterator<Item = &Approximation> {
        self.entries.values()
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the graph has no nonlinearity.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The table with only the sites of `function` (the others evaluate exactly).
    pub fn only(&self, function: Function) -> ApproxTable {
        let entries = self
            .entries
            .iter()
            .filter(|(site, _)| site.function == function)
            .map(|(site, approximation)| (*site, approximation.clone()))
            .collect();
        ApproxTable { entries }
    }

    /// The nonlinearities evaluated by these approximations, for [`forward::run_with`].
    pub fn nonlinear(&self) -> Approximate<'_> {
        Approximate { table: self }
    }
}

/// The end-to-end error the approximations are predicted to cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorPrediction {
    /// The output measured.
    pub output: String,
    /// `2^−precision_bits`.
    pub target: f64,
    /// The prediction: the largest relative error over every input below.
    pub predicted: f64,
    /// The largest relative error over the calibration sequences used.
    pub calibration: f64,
    /// Calibration sequences used.
    pub calibration_sequences: usize,
    /// The relative error on each extra input.
    pub extra: Vec<f64>,
    /// The end-to-end error with only one function class approximated (the others exact):
    /// where the error budget goes.
    pub contributions: BTreeMap<Function, f64>,
    /// The per-site tolerance of each function class in the final round.
    pub tolerances: BTreeMap<Function, f64>,
    /// Rounds needed.
    pub rounds: usize,
    /// The deepest approximation.
    pub max_depth: u32,
}

/// Why no approximation table was produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproxError {
    /// An op has no polynomial form (activation quantization is not computed under encryption).
    #[error("{node} ({op}) cannot be evaluated under encryption")]
    Unsupported {
        /// The node.
        node: Handle<Node>,
        /// Its op's mnemonic.
        op: &'static str,
    },
    /// The calibration has no range for a site of the graph.
    #[error("{site} was not calibrated (calibrate the graph that is approximated)")]
    Uncalibrated {
        /// The site.
        site: Site,
    },
    /// The graph has no such output.
    #[error("the graph has no output `{output}`")]
    NoOutput {
        /// The name asked for.
        output: String,
    },
    /// A precision of 0 or above 52 bits.
    #[error("precision_bits must be in 1..=52, found {bits}")]
    PrecisionBits {
        /// The value given.
        bits: u32,
    },
    /// A polynomial depth limit of 0 or above [`MAX_POLY_DEPTH`].
    #[error("max_poly_depth must be in 1..=12, found {depth}")]
    PolyDepth {
        /// The value given.
        depth: u32,
    },
    /// One site cannot reach the tolerance the target needs within the degree and Newton limits.
    #[error(
        "cannot meet the precision target of {bits} bits ({target:.2e} relative error of `{output}`): \
         {function} at {node} on {interval} needs error {needed:.2e}, \
         the best within degree {max_degree} and {max_steps} Newton steps is {best}"
    )]
    Unreachable {
        /// The target's bits.
        bits: u32,
        /// `2^−bits`.
        target: f64,
        /// The output.
        output: String,
        /// The site's function.
        function: Function,
        /// The site's node.
        node: Handle<Node>,
        /// The site's interval.
        interval: Interval,
        /// The tolerance it needed.
        needed: f64,
        /// The best it reached, described (`1.2e-5 (polynomial, degree 255, depth 8)`).
        best: String,
        /// The degree limit.
        max_degree: usize,
        /// The Newton-step limit.
        max_steps: usize,
    },
    /// Every site met its tolerance in every round, but the prediction stayed above target.
    #[error(
        "cannot meet the precision target of {bits} bits ({target:.2e} relative error of `{output}`): \
         after {rounds} rounds the predicted error is still {predicted:.2e}"
    )]
    PredictionNotMet {
        /// The target's bits.
        bits: u32,
        /// `2^−bits`.
        target: f64,
        /// The output.
        output: String,
        /// Rounds run.
        rounds: usize,
        /// The last prediction.
        predicted: f64,
    },
    /// The prediction would run on no input at all.
    #[error(
        "the error prediction needs at least one input (no calibration sequence is used and \
         there are no extra inputs); approx::fit_at fits without a prediction"
    )]
    NoPredictionInputs,
    /// The forward pass failed.
    #[error(transparent)]
    Forward(#[from] ForwardError),
}

/// The sites of `graph`: every nonlinearity a polynomial has to compute.
pub fn sites(graph: &Graph) -> Result<Vec<Site>, ApproxError> {
    let mut sites = Vec::new();
    for (node, entry) in graph.nodes().iter() {
        let mut add = |function| sites.push(Site { node, function });
        match &entry.op {
            Op::Relu2 { .. } => add(Function::Relu2),
            Op::Silu { .. } => add(Function::Silu),
            Op::RmsNorm { .. } => add(Function::InvSqrt),
            Op::Attention {
                kind: AttentionKind::Sigmoid,
                ..
            } => add(Function::Sigmoid),
            Op::Attention {
                kind: AttentionKind::Softmax,
                ..
            } => {
                add(Function::Exp);
                add(Function::Inverse);
            }
            Op::ActQuant { .. } => {
                return Err(ApproxError::Unsupported {
                    node,
                    op: "act_quant",
                });
            }
            _ => {}
        }
    }
    Ok(sites)
}

/// The target error `2^−precision_bits` of valid options.
fn check(options: &ApproxOptions) -> Result<f64, ApproxError> {
    if !(1..=52).contains(&options.precision_bits) {
        return Err(ApproxError::PrecisionBits {
            bits: options.precision_bits,
        });
    }
    if !(1..=MAX_POLY_DEPTH).contains(&options.max_poly_depth) {
        return Err(ApproxError::PolyDepth {
            depth: options.max_poly_depth,
        });
    }
    Ok((-f64::from(options.precision_bits)).exp2())
}

/// Largest `max_poly_depth` accepted (degree 4095; Remez is quadratic in the degree).
pub const MAX_POLY_DEPTH: u32 = 12;

/// The site targets of `graph`: every site with its calibrated interval (and softmax shift).
fn targets(graph: &Graph, calibration: &Calibration) -> Result<Vec<(Site, Target)>, ApproxError> {
    let mut targets = Vec::new();
    for site in sites(graph)? {
        let range = calibration
            .range(site)
            .ok_or(ApproxError::Uncalibrated { site })?;
        // e^(s − c) and the 1/x of its row sums both carry the node's shift c.
        let shift = if matches!(site.function, Function::Exp | Function::Inverse) {
            calibration
                .softmax_shift(site.node)
                .ok_or(ApproxError::Uncalibrated { site })?
        } else {
            0.0
        };
        targets.push((
            site,
            Target {
                function: site.function,
                interval: range.interval,
                shift,
            },
        ));
    }
    Ok(targets)
}

/// Fits every site of `graph` at the given per-class tolerances, without any forward pass:
/// for models too large to run the end-to-end prediction at compile time (the 2B shapes).
///
/// The tolerances should come from a measured run ([`ErrorPrediction::tolerances`] of
/// [`select`] on a smaller model of the same architecture, or an earlier compile); a class
/// missing from `tolerances` gets `2^−precision_bits`. Nothing here predicts the end-to-end
/// error, and the table's calibration errors are `None`. A site that cannot meet its
/// tolerance is an [`ApproxError::Unreachable`].
pub fn fit_at(
    graph: &Graph,
    calibration: &Calibration,
    tolerances: &BTreeMap<Function, f64>,
    options: &ApproxOptions,
) -> Result<ApproxTable, ApproxError> {
    let target_error = check(options)?;
    let targets = targets(graph, calibration)?;
    let limits = Limits {
        max_poly_depth: options.max_poly_depth,
        max_newton_steps: options.max_newton_steps,
    };
    let mut fitters: Vec<Fitter> = targets.iter().map(|_| Fitter::default()).collect();
    let (table, limited) = fit_all(
        &mut fitters,
        &targets,
        tolerances,
        limits,
        options,
        target_error,
    )?;
    match limited.into_values().next() {
        Some(error) => Err(error),
        None => Ok(table),
    }
}

/// Chooses the approximation of every nonlinearity of `graph` (calibrated by `calibration`)
/// and predicts the end-to-end error; see the module docs for the procedure.
pub fn select(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    calibration: &Calibration,
    options: &ApproxOptions,
) -> Result<(ApproxTable, ErrorPrediction), ApproxError> {
    let target_error = check(options)?;
    if graph.output(&options.output).is_none() {
        return Err(ApproxError::NoOutput {
            output: options.output.clone(),
        });
    }
    let targets = targets(graph, calibration)?;

    let calibration_inputs: Vec<&[u32]> = calibration
        .sequences()
        .iter()
        .take(options.prediction_sequences.unwrap_or(usize::MAX))
        .map(Vec::as_slice)
        .collect();
    let extra_inputs: Vec<&[u32]> = options.extra_inputs.iter().map(Vec::as_slice).collect();
    let all_inputs: Vec<&[u32]> = calibration_inputs
        .iter()
        .chain(&extra_inputs)
        .copied()
        .collect();
    if all_inputs.is_empty() {
        return Err(ApproxError::NoPredictionInputs);
    }
    let exact: Vec<Outputs> = all_inputs
        .par_iter()
        .map(|tokens| forward::run(graph, info, checkpoint, tokens))
        .collect::<Result<_, _>>()?;

    let limits = Limits {
        max_poly_depth: options.max_poly_depth,
        max_newton_steps: options.max_newton_steps,
    };
    let functions: Vec<Function> = {
        let mut present: Vec<Function> = targets.iter().map(|(_, t)| t.function).collect();
        present.sort_unstable();
        present.dedup();
        present
    };
    // Every function class starts at the target itself and is tightened while its own
    // contribution exceeds its share of the target. A class whose sites cannot go further
    // (degree and Newton limits) keeps its best approximations and its contribution; the rest
    // of the target is shared by the others.
    let mut tolerances: BTreeMap<Function, f64> = functions
        .iter()
        .map(|&function| (function, target_error))
        .collect();
    // One cache per site: sites are fitted in parallel, and intervals differ between sites.
    let mut fitters: Vec<Fitter> = targets.iter().map(|_| Fitter::default()).collect();
    let mut predicted = f64::INFINITY;
    for round in 1..=options.max_rounds.max(1) {
        let (mut table, limited) = fit_all(
            &mut fitters,
            &targets,
            &tolerances,
            limits,
            options,
            target_error,
        )?;
        measure_on_calibration(graph, info, checkpoint, &calibration_inputs, &mut table)?;

        let errors = |table: &ApproxTable| -> Result<Vec<f64>, ApproxError> {
            all_inputs
                .par_iter()
                .zip(&exact)
                .map(|(tokens, exact)| {
                    // Partial tables (one class) leave the other sites exact on purpose.
                    let approximate =
                        forward::run_with(graph, info, checkpoint, tokens, &mut table.nonlinear())?;
                    Ok(relative_error(
                        approximate.get(&options.output),
                        exact.get(&options.output),
                    ))
                })
                .collect()
        };
        let max = |errors: &[f64]| errors.iter().copied().fold(0.0, f64::max);
        let all = errors(&table)?;
        predicted = max(&all);
        let mut contributions = BTreeMap::new();
        for &function in &functions {
            let alone = errors(&table.only(function))?;
            contributions.insert(function, max(&alone));
        }
        if predicted <= target_error {
            let (calibration_errors, extra) = all.split_at(calibration_inputs.len());
            let prediction = ErrorPrediction {
                output: options.output.clone(),
                target: target_error,
                predicted,
                calibration: max(calibration_errors),
                calibration_sequences: calibration_inputs.len(),
                extra: extra.to_vec(),
                contributions,
                tolerances,
                rounds: round,
                max_depth: table.iter().map(|a| a.depth).max().unwrap_or(0),
            };
            return Ok((table, prediction));
        }
        let fixed: f64 = limited.keys().map(|function| contributions[function]).sum();
        let free: Vec<Function> = functions
            .iter()
            .copied()
            .filter(|f| !limited.contains_key(f))
            .collect();
        let remaining = target_error - fixed;
        if free.is_empty() || remaining <= 0.0 {
            // Nothing left to tighten: the first class at its limit is why.
            if let Some(error) = limited.into_values().next() {
                return Err(error);
            }
            break;
        }
        // The output error grows about linearly with a class's tolerance: scale each class
        // over its share down in proportion (at least halving, at most 1/64 per round).
        let share = remaining / free.len() as f64;
        let mut tightened = false;
        for function in &free {
            let contribution = contributions[function];
            if contribution > share
                && let Some(tolerance) = tolerances.get_mut(function)
            {
                *tolerance *= (share / contribution).clamp(1.0 / 64.0, 0.5);
                tightened = true;
            }
        }
        if !tightened {
            // Each class is within its share, but together they are not: tighten all.
            for function in &free {
                if let Some(tolerance) = tolerances.get_mut(function) {
                    *tolerance *= 0.5;
                }
            }
        }
    }
    Err(ApproxError::PredictionNotMet {
        bits: options.precision_bits,
        target: target_error,
        output: options.output.clone(),
        rounds: options.max_rounds.max(1),
        predicted,
    })
}

/// Fits every site at its class's tolerance, in parallel (`fitters[i]` caches site `i`).
/// A site that cannot meet its tolerance gets its best candidate, and its class is returned
/// with the error that names the first such site.
fn fit_all(
    fitters: &mut [Fitter],
    targets: &[(Site, Target)],
    tolerances: &BTreeMap<Function, f64>,
    limits: Limits,
    options: &ApproxOptions,
    target_error: f64,
) -> Result<(ApproxTable, BTreeMap<Function, ApproxError>), ApproxError> {
    let fitted: Vec<(Site, Approximation, Option<ApproxError>)> = fitters
        .par_iter_mut()
        .zip(targets)
        .map(|(fitter, (site, target))| {
            fit_site(
                fitter,
                *site,
                target,
                tolerances,
                limits,
                options,
                target_error,
            )
        })
        .collect::<Result<_, _>>()?;
    let mut limited = BTreeMap::new();
    let mut entries = BTreeMap::new();
    for (site, approximation, unreachable) in fitted {
        if let Some(error) = unreachable {
            limited.entry(site.function).or_insert(error);
        }
        entries.insert(site, approximation);
    }
    Ok((ApproxTable { entries }, limited))
}

/// Fits one site at its class's tolerance; if it cannot be met, the best candidate and the
/// error naming the site. Fails only if no candidate could be fitted at all.
fn fit_site(
    fitter: &mut Fitter,
    site: Site,
    target: &Target,
    tolerances: &BTreeMap<Function, f64>,
    limits: Limits,
    options: &ApproxOptions,
    target_error: f64,
) -> Result<(Site, Approximation, Option<ApproxError>), ApproxError> {
    let tolerance = tolerances
        .get(&site.function)
        .copied()
        .unwrap_or(target_error);
    let unreachable = |best: String| ApproxError::Unreachable {
        bits: options.precision_bits,
        target: target_error,
        output: options.output.clone(),
        function: site.function,
        node: site.node,
        interval: target.interval,
        needed: tolerance,
        best,
        max_degree: (1usize << options.max_poly_depth) - 1,
        max_steps: options.max_newton_steps,
    };
    let (chosen, alternative, limit) = match fitter.choose(target, tolerance, limits) {
        Ok(choice) => (choice.chosen, choice.alternative, None),
        Err(fit::Unreachable { best: None }) => {
            return Err(unreachable("none (no fit succeeded)".to_owned()));
        }
        Err(fit::Unreachable { best: Some(best) }) => {
            let described = format!(
                "{:.2e} ({}, degree {}, depth {})",
                best.error, best.form, best.degree, best.depth
            );
            (best, None, Some(unreachable(described)))
        }
    };
    let approximation = Approximation {
        site,
        form: chosen.form,
        interval: target.interval,
        shift: target.shift,
        degree: chosen.degree,
        depth: chosen.depth,
        series: chosen.series,
        max_error: chosen.error,
        calibration_error: None,
        alternative: alternative.map(|other| Alternative {
            form: other.form,
            degree: other.degree,
            depth: other.depth,
            max_error: other.error,
        }),
    };
    Ok((site, approximation, limit))
}

/// `max |a − b| / max |b|`; infinite if either is missing or not finite.
fn relative_error(approximate: Option<&forward::Matrix>, exact: Option<&forward::Matrix>) -> f64 {
    let (Some(approximate), Some(exact)) = (approximate, exact) else {
        return f64::INFINITY;
    };
    let error = approximate
        .data()
        .iter()
        .zip(exact.data())
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0,
            |m: f64, e| if e.is_nan() { f64::INFINITY } else { m.max(e) },
        );
    let scale = exact.data().iter().map(|b| b.abs()).fold(0.0, f64::max);
    if scale > 0.0 { error / scale } else { error }
}

/// The approximate forward: `graph` run with every nonlinearity replaced by its entry of
/// `table`. Fails if the table lacks a site of the graph.
pub fn forward(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    tokens: &[u32],
    table: &ApproxTable,
) -> Result<Outputs, ApproxError> {
    for site in sites(graph)? {
        if table.get(site).is_none() {
            return Err(ApproxError::Uncalibrated { site });
        }
    }
    Ok(forward::run_with(
        graph,
        info,
        checkpoint,
        tokens,
        &mut table.nonlinear(),
    )?)
}

/// Records each site's error on the arguments the exact forward produces on the calibration
/// sequences.
fn measure_on_calibration(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    inputs: &[&[u32]],
    table: &mut ApproxTable,
) -> Result<(), ApproxError> {
    let measured = inputs
        .par_iter()
        .map(|tokens| {
            let mut meter = Meter {
                table,
                errors: BTreeMap::new(),
            };
            forward::run_with(graph, info, checkpoint, tokens, &mut meter)?;
            Ok(meter.errors)
        })
        .collect::<Result<Vec<_>, ApproxError>>()?;
    for errors in measured {
        for (site, error) in errors {
            if let Some(entry) = table.entries.get_mut(&site) {
                entry.calibration_error = Some(entry.calibration_error.unwrap_or(0.0).max(error));
            }
        }
    }
    Ok(())
}

/// The nonlinearities of an [`ApproxTable`] (a site missing from the table is computed exactly;
/// [`forward()`] checks that none is).
#[derive(Debug, Clone, Copy)]
pub struct Approximate<'a> {
    table: &'a ApproxTable,
}

impl Approximate<'_> {
    fn value(&self, node: Handle<Node>, function: Function, x: f64) -> f64 {
        match self.table.get(Site { node, function }) {
            Some(approximation) => approximation.evaluate(x),
            None => function.exact(x),
        }
    }
}

impl Nonlinear for Approximate<'_> {
    fn relu2(&mut self, node: Handle<Node>, x: f64) -> f64 {
        self.value(node, Function::Relu2, x)
    }

    fn silu(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.value(node, Function::Silu, z)
    }

    fn sigmoid(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.value(node, Function::Sigmoid, z)
    }

    /// `e_j ≈ e^(s_j − c)`, `S = Σ e_j`, weights `e_j · (1/S)`, each part approximated if
    /// the table has it (the shift `c` is recorded on both parts).
    fn softmax(&mut self, node: Handle<Node>, scores: &mut [f64]) {
        let exp = self.table.get(Site {
            node,
            function: Function::Exp,
        });
        let inverse = self.table.get(Site {
            node,
            function: Function::Inverse,
        });
        let Some(shift) = exp.or(inverse).map(|approximation| approximation.shift) else {
            return Exact.softmax(node, scores);
        };
        for score in scores.iter_mut() {
            *score = match exp {
                Some(exp) => exp.evaluate(*score),
                None => (*score - shift).exp(),
            };
        }
        let sum: f64 = scores.iter().sum();
        let inverse = inverse.map_or(1.0 / sum, |inverse| inverse.evaluate(sum));
        scores.iter_mut().for_each(|weight| *weight *= inverse);
    }

    fn inv_sqrt(&mut self, node: Handle<Node>, m: f64) -> f64 {
        self.value(node, Function::InvSqrt, m)
    }
}

/// The exact functions, recording each site's approximation error on the way.
struct Meter<'a> {
    table: &'a ApproxTable,
    errors: BTreeMap<Site, f64>,
}

impl Meter<'_> {
    fn check(&mut self, node: Handle<Node>, function: Function, x: f64) {
        let site = Site { node, function };
        if let Some(approximation) = self.table.get(site) {
            let error = approximation.target().error(x, approximation.evaluate(x));
            let worst = self.errors.entry(site).or_insert(0.0);
            *worst = worst.max(error);
        }
    }
}

impl Nonlinear for Meter<'_> {
    fn relu2(&mut self, node: Handle<Node>, x: f64) -> f64 {
        self.check(node, Function::Relu2, x);
        Exact.relu2(node, x)
    }

    fn silu(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.check(node, Function::Silu, z);
        Exact.silu(node, z)
    }

    fn sigmoid(&mut self, node: Handle<Node>, z: f64) -> f64 {
        self.check(node, Function::Sigmoid, z);
        Exact.sigmoid(node, z)
    }

    fn softmax(&mut self, node: Handle<Node>, scores: &mut [f64]) {
        let shift = self
            .table
            .get(Site {
                node,
                function: Function::Exp,
            })
            .map_or(0.0, |a| a.shift);
        let sum: f64 = scores.iter().map(|s| (s - shift).exp()).sum();
        for &score in scores.iter() {
            self.check(node, Function::Exp, score);
        }
        self.check(node, Function::Inverse, sum);
        Exact.softmax(node, scores);
    }

    fn inv_sqrt(&mut self, node: Handle<Node>, m: f64) -> f64 {
        self.check(node, Function::InvSqrt, m);
        Exact.inv_sqrt(node, m)
    }
}
