//! What [`crate::compile`] needs between its stages: options, the ring, the approximation step, the placement call, the level pass, the plan's provenance, and the error of the whole pipeline.

use std::collections::BTreeMap;
use std::fmt::Write;

use ensi_checkpoint::{Checkpoint, Config};
use ensi_runtime::plan::{ModelRef, Plan};

use crate::approx::{self, ApproxError, ApproxOptions, ApproxTable, ErrorPrediction};
use crate::calibrate::{CalibrateError, Calibration, CalibrationOptions, Inputs};
use crate::cost::{BootstrapEstimate, CostError, CostModel, RingShape, Threads};
use crate::emit::{Context, EmitError};
use crate::estimate::Estimator;
use crate::forward::Function;
use crate::frontend::{self, FrontendError};
use crate::ir::{AttentionKind, Graph, GraphInfo, VerifyError};
use crate::keys::{KeySet, LinearCache};
use crate::lower::encoding::{EncodingChoice, EncodingPolicy, Target};
use crate::lower::levels::{Assignment, Chain, LevelError};
use crate::lower::{HeGraph, HeOp, LowerError, Shapes, layout_label, levels, placement};
use crate::params::{self, BootstrapLevels, Chosen, ParamsError};
use crate::place::{BootstrapCosts, Exactness, GraphError, PlaceError, Placement, Policy};
use crate::report::Report;
use crate::rewrite::{RewriteError, RewriteOptions, RewriteReport};

/// Where bootstraps go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlacementPolicy {
    /// Bootstrap when levels run out (the baseline).
    Greedy,
    /// ENSI: bootstrap at RMSNorms.
    RmsNorm,
    /// The cheapest placement under the cost model.
    Optimal,
}

impl PlacementPolicy {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PlacementPolicy::Greedy => "greedy",
            PlacementPolicy::RmsNorm => "rmsnorm",
            PlacementPolicy::Optimal => "optimal",
        }
    }
}

/// Everything `compile` can be told.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    /// Tokens per inference (T).
    pub tokens: usize,
    /// Sigmoid (the HE-friendly form) or softmax attention (the baseline).
    pub attention: AttentionKind,
    /// Bootstrap placement.
    pub policy: PlacementPolicy,
    /// Rewrite limits.
    pub rewrite: RewriteOptions,
    /// Calibration inputs and margin.
    pub calibration: CalibrationOptions,
    /// Precision target and approximation limits (its `extra_inputs` join the prediction).
    pub approx: ApproxOptions,
    /// Per-class tolerances to fit at without the end-to-end prediction (large models, see
    /// [`approx::fit_at`]); `None` runs the prediction.
    pub tolerances: Option<BTreeMap<Function, f64>>,
    /// Encoding of the layers.
    pub encoding: EncodingPolicy,
    /// Small insecure rings for tests, marked everywhere.
    pub insecure: bool,
    /// Memory of the machine the plan runs on, for ciphertexts.
    pub memory_bytes: u64,
}

/// Memory of the target machine: 24 GiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 24 << 30;

impl CompileOptions {
    /// Secure defaults for `tokens` tokens: sigmoid attention, the `rmsnorm` policy, the
    /// default precision, automatic encodings.
    pub fn new(tokens: usize) -> Self {
        Self {
            tokens,
            attention: AttentionKind::Sigmoid,
            policy: PlacementPolicy::RmsNorm,
            rewrite: RewriteOptions::default(),
            calibration: CalibrationOptions::default(),
            approx: ApproxOptions::default(),
            tolerances: None,
            encoding: EncodingPolicy::Auto,
            insecure: false,
            memory_bytes: DEFAULT_MEMORY_BYTES,
        }
    }

    /// [`Self::new`] on an insecure test ring.
    pub fn insecure_test(tokens: usize) -> Self {
        Self {
            insecure: true,
            ..Self::new(tokens)
        }
    }

    /// The frontend options: the encrypted form (no activation quantization).
    pub fn frontend(&self) -> frontend::Options {
        frontend::Options {
            attention: self.attention,
            ..frontend::Options::encrypted(self.tokens)
        }
    }
}

/// A compiled plan and its report.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The checked plan.
    pub plan: Plan,
    /// Its report.
    pub report: Report,
}

/// Why compilation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The model IR could not be built.
    #[error(transparent)]
    Frontend(#[from] FrontendError),
    /// The rewrites failed.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// The rewritten graph does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Calibration failed.
    #[error(transparent)]
    Calibrate(#[from] CalibrateError),
    /// No approximation meets the precision target.
    #[error(transparent)]
    Approx(#[from] ApproxError),
    /// The model cannot be lowered (or a graph is malformed).
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// Levels cannot be realized.
    #[error(transparent)]
    Levels(#[from] LevelError),
    /// One op needs more levels than a bootstrap gives, or the placement problem is malformed.
    #[error("{0} (a lower --precision-bits chooses cheaper approximations)")]
    LevelBudget(#[from] GraphError),
    /// No placement exists under the policy.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// The cost model cannot be built.
    #[error(transparent)]
    Cost(#[from] CostError),
    /// No parameter set fits.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The plan cannot be emitted.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// The ring a plan is compiled for and the slot geometry it allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ring {
    /// log2 N.
    pub log_n: u32,
    /// Block and dense geometry.
    pub shapes: Shapes,
    /// Hidden size (the residual stream's columns).
    pub hidden: u32,
    /// The bootstrapping circuit levels are reserved for.
    pub circuit: BootstrapLevels,
    /// Most levels a value may use between bootstraps: the secure ring's budget under
    /// [`params::bootstrapper`], for insecure test rings too.
    pub max_level: u32,
}

impl Ring {
    /// The ring for `config` under `options`: N = 2^16 for secure plans; for insecure ones the
    /// smallest of 2^11..2^13 whose slots hold a dense ciphertext of whole heads.
    pub fn for_model(config: &Config, options: &CompileOptions) -> Result<Self, LowerError> {
        let tokens = options.tokens as u32;
        let head_dim = config.head_dim as u32;
        let circuit = params::bootstrapper();
        let log_n = if options.insecure {
            let block = (2 * tokens.max(1) - 1).next_power_of_two();
            let head_blocks = 1u32 << head_dim.max(1).trailing_zeros();
            let slots = u64::from(block) * u64::from(head_blocks);
            let wanted = (2 * slots).next_power_of_two().trailing_zeros();
            wanted.clamp(
                *params::INSECURE_LOG_N.start(),
                *params::INSECURE_LOG_N.end(),
            )
        } else {
            params::SECURE_LOG_N
        };
        let shapes = Shapes::new(tokens, head_dim, 1 << (log_n - 1))?;
        // Insecure rings keep the secure plan's level budget between bootstraps, so tests
        // run the same placement (and its bootstraps) on small rings.
        let max_level = params::max_user_levels(params::SECURE_LOG_N, circuit);
        Ok(Self {
            log_n,
            shapes,
            hidden: config.hidden_size as u32,
            circuit,
            max_level,
        })
    }

    /// What the encoding choice costs against: this ring's latencies at the levels of the
    /// secure chain (insecure rings are costed as if their values ran there too) and the
    /// machine's memory.
    pub fn target(&self, options: &CompileOptions) -> Target {
        let level_cap = params::max_user_levels(params::SECURE_LOG_N, self.circuit);
        let chain = params::bootstrap_literal(self.log_n, level_cap, self.circuit);
        let limbs = chain.log_q.len() as u64;
        Target {
            estimator: Estimator::new(self.log_n, chain.log_p.len() as u32),
            level_cap,
            ciphertext_bytes: 2 * (1u64 << self.log_n) * limbs * 8,
            memory_bytes: options.memory_bytes,
        }
    }
}

/// The approximation table: chosen against the precision target with the end-to-end
/// prediction, or fitted at given tolerances (no prediction) for large models.
pub(crate) fn approximate(
    graph: &Graph,
    info: &GraphInfo,
    checkpoint: &Checkpoint,
    calibration: &Calibration,
    options: &CompileOptions,
) -> Result<(ApproxTable, Option<ErrorPrediction>), ApproxError> {
    match &options.tolerances {
        Some(tolerances) => Ok((
            approx::fit_at(graph, calibration, tolerances, &options.approx)?,
            None,
        )),
        None => {
            let (table, prediction) =
                approx::select(graph, info, checkpoint, calibration, &options.approx)?;
            Ok((table, Some(prediction)))
        }
    }
}

/// `graph`, verified in debug and test builds (the verifier after every pass).
pub(crate) fn checked(graph: HeGraph) -> Result<HeGraph, LowerError> {
    if cfg!(debug_assertions) {
        crate::lower::verify(&graph)?;
    }
    Ok(graph)
}

/// A placement of the logical graph: the level pass's assignment, the range of every value
/// that may be bootstrapped, and the placement itself (cost, bootstraps) for the report.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// Levels and bootstraps of every logical value.
    pub assignment: Assignment,
    /// `max |x|` over every slot of the values that may be bootstrapped (NaN elsewhere).
    pub bounds: Vec<f64>,
    /// The placement pass's result.
    pub placement: Placement,
}

impl PlacementPolicy {
    fn policy(self) -> Policy {
        match self {
            PlacementPolicy::Greedy => Policy::Greedy,
            PlacementPolicy::RmsNorm => Policy::RmsNorm,
            PlacementPolicy::Optimal => Policy::Optimal,
        }
    }
}

/// The cost model placement prices bootstraps with: the secure ring, `ring.max_level` levels
/// between bootstraps, the bootstrapper's circuit, ensi's bootstrap target.
pub(crate) fn cost_model(ring: &Ring) -> Result<CostModel, CompileError> {
    let literal = params::bootstrap_literal(params::SECURE_LOG_N, ring.max_level, ring.circuit);
    let shape = RingShape {
        log_n: params::SECURE_LOG_N,
        max_level: ring.max_level,
        special_primes: literal.log_p.len() as u32,
        dnum: literal.dnum() as u32,
    };
    Ok(CostModel::with_bootstrap(
        shape,
        Threads::One,
        ring.circuit.cost_circuit(),
        BootstrapEstimate::ENSI_TARGET,
    )?)
}

/// Places levels and bootstraps on the logical graph under `options.policy` (the placement
/// pass on the graph's [`placement::problem`]).
pub(crate) fn place(
    graph: &HeGraph,
    ring: &Ring,
    options: &CompileOptions,
    linear: &LinearCache,
    calibration: &Calibration,
) -> Result<Placed, CompileError> {
    let model = cost_model(ring)?;
    // Op latencies at the secure ring whatever the plan's ring: insecure test plans get the
    // placement their secure twins get (the bootstrap costs are the secure ring's too).
    let estimator = Estimator::new(params::SECURE_LOG_N, model.ring().special_primes);
    let problem = placement::problem(
        graph,
        linear,
        &estimator,
        BootstrapCosts::from_model(&model),
        calibration,
    )?;
    let placement = crate::place::place(&problem.graph, options.policy.policy())?;
    Ok(Placed {
        assignment: placement::assignment(&problem, &placement),
        bounds: problem.bounds,
        placement,
    })
}

/// The leveled graph (`placed` realized on the chain of `chosen`, verified) and why each of
/// its bootstraps is there, keyed by the bootstrap's value (the plan's instruction).
pub(crate) fn realize(
    graph: &HeGraph,
    placed: &Placed,
    chosen: &Chosen,
) -> Result<(HeGraph, BTreeMap<usize, String>), crate::CompileError> {
    // Values live at the user levels; the bootstrapping primes above are the circuit's own.
    let user = &chosen.params.q[..=chosen.user_top as usize];
    let chain = Chain::new(user.to_vec(), chosen.params.literal.log_scale);
    let (leveled, holders) = levels::realize(graph, &placed.assignment, &chain, &placed.bounds)?;
    // The placement explains logical values; the plan and its report number the leveled
    // graph's values, where a bootstrap is its own instruction.
    let reasons = placed
        .assignment
        .reasons
        .iter()
        .filter_map(|(&value, reason)| {
            let holder = holders.get(value).copied().flatten()?;
            let bootstrap = levels::bootstrap_of(&leveled, holder).unwrap_or(holder);
            Some((bootstrap.index(), reason.clone()))
        })
        .collect();
    Ok((checked(leveled)?, reasons))
}

fn calibration_source(options: &CalibrationOptions) -> String {
    let source = match &options.inputs {
        Inputs::Random { sequences, seed } => format!("{sequences} random sequences (seed {seed})"),
        Inputs::Sequences(sequences) => format!("{} supplied sequences", sequences.len()),
    };
    format!("{source}, margin {}", options.margin)
}

fn gib(bytes: u64) -> String {
    format!("{:.3} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The plan's model reference, parameters, keys and provenance.
#[allow(
    clippy::too_many_arguments,
    reason = "every stage's facts end up in the plan"
)]
pub(crate) fn context(
    checkpoint: &Checkpoint,
    model: &str,
    options: &CompileOptions,
    rewrites: &RewriteReport,
    prediction: &Option<ErrorPrediction>,
    choice: &EncodingChoice,
    placed: &Placed,
    reasons: &BTreeMap<usize, String>,
    chosen: &Chosen,
    keys: &KeySet,
    leveled: &HeGraph,
    linear: &LinearCache,
) -> Context {
    let config = checkpoint.config();
    let mut provenance: Vec<(String, String)> = Vec::new();
    let mut add = |key: &str, value: String| provenance.push((key.to_owned(), value));
    add("options.tokens", options.tokens.to_string());
    add("options.attention", options.attention.name().to_owned());
    add("options.policy", options.policy.name().to_owned());
    add(
        "options.precision_bits",
        options.approx.precision_bits.to_string(),
    );
    add(
        "options.encoding",
        match options.encoding {
            EncodingPolicy::Auto => "auto".to_owned(),
            EncodingPolicy::Fixed(e) => e.name().to_owned(),
        },
    );
    add("options.insecure_test_params", options.insecure.to_string());
    add("calibration", calibration_source(&options.calibration));
    add("rewrite.stop_reason", rewrites.stop_reason.to_string());
    add("rewrite.iterations", rewrites.iterations.to_string());
    add(
        "rewrite.egraph",
        format!(
            "{} e-nodes, {} e-classes",
            rewrites.egraph_nodes, rewrites.egraph_classes
        ),
    );
    add(
        "rewrite.scalings",
        format!(
            "{} -> {}",
            rewrites.cost_before.scalings, rewrites.cost_after.scalings
        ),
    );
    add(
        "approx.target",
        format!("{:e}", (-f64::from(options.approx.precision_bits)).exp2()),
    );
    match prediction {
        Some(p) => {
            add("approx.predicted_error", format!("{:e}", p.predicted));
            let mut text = format!(
                "{:.3e} on {} calibration sequences",
                p.calibration, p.calibration_sequences
            );
            for (i, e) in p.extra.iter().enumerate() {
                let _ = write!(text, "; {e:.3e} on extra input {i}");
            }
            add("approx.prediction", text);
            add("approx.rounds", p.rounds.to_string());
            let contributions: Vec<String> = p
                .contributions
                .iter()
                .map(|(f, c)| format!("{f} {c:.3e}"))
                .collect();
            add("approx.contributions", contributions.join(", "));
        }
        None => add(
            "approx.prediction",
            "none: fitted at given per-class tolerances (no end-to-end prediction)".to_owned(),
        ),
    }
    let layers: Vec<&str> = choice.encodings.iter().map(|e| e.name()).collect();
    add("encoding.layers", layers.join(" "));
    add("encoding.reason", choice.reason.clone());
    for alternative in &choice.alternatives {
        add(
            &format!("encoding.cost.{}", alternative.name),
            format!(
                "{:.6e} s, peak {}, {}",
                alternative.seconds,
                gib(alternative.peak_bytes),
                if alternative.feasible {
                    "fits"
                } else {
                    "does not fit"
                }
            ),
        );
    }
    add(
        "encoding.memory",
        format!("{} for ciphertexts", gib(options.memory_bytes)),
    );
    let placement = &placed.placement;
    add(
        "placement",
        format!(
            "{}: {} bootstraps of {} ciphertexts, {} levels between bootstraps, est. ops {:.3} s + bootstraps {:.3} s ({:.2}% bootstrapping), {}",
            placement.policy,
            placement.cost.bootstrap_count,
            placement.cost.bootstrapped_ciphertexts,
            placed.assignment.max_level(),
            placement.cost.ops.as_secs(),
            placement.cost.bootstraps.as_secs(),
            100.0 * placement.bootstrap_share(),
            match placement.exactness {
                Exactness::Optimal => "exact optimum of the policy".to_owned(),
                Exactness::Heuristic => "heuristic".to_owned(),
                Exactness::BestFound { clamped_segments } =>
                    format!("best found ({clamped_segments} segments clamped)"),
            }
        ),
    );
    add(
        "placement.cost_ns",
        placement.total().as_nanos().to_string(),
    );
    for (value, reason) in reasons {
        add(&format!("bootstrap.reason.v{value}"), reason.clone());
    }
    let literal = &chosen.params.literal;
    add(
        "params.chain",
        format!(
            "q0 {} bits + {} x {} bits ({} for bootstrapping), P {} x {} bits, dnum {}",
            literal.log_q[0],
            literal.log_q.len() - 1,
            params::SCALE_BITS,
            chosen.bootstrap_levels,
            literal.log_p.len(),
            params::SPECIAL_PRIME_BITS,
            literal.dnum()
        ),
    );
    add("params.log_qp", format!("{:.3}", chosen.log_qp));
    add(
        "params.bound",
        match (chosen.bound, options.insecure) {
            (_, true) => "none: insecure test parameters".to_owned(),
            (Some(bound), false) => format!("{bound} bits (128-bit, uniform ternary secret)"),
            (None, false) => "none".to_owned(),
        },
    );
    add("params.user_top", chosen.user_top.to_string());
    add("keys.switching_key_bytes", keys.key_bytes.to_string());
    add("keys.total_bytes", keys.total_bytes.to_string());
    for value in leveled.values() {
        if matches!(leveled.node(value).op, HeOp::TernaryLinear { .. })
            && let Some(stats) = linear.get(leveled, value)
        {
            add(
                &format!("ternary.v{}", value.index()),
                format!(
                    "additions={};diagonals={};rotations={}",
                    stats.additions, stats.nonzero_diagonals, stats.rotations
                ),
            );
        }
    }
    for input in &leveled.inputs {
        add(
            &format!("input.{}", input.name),
            layout_label(&leveled.node(input.value).ty.layout),
        );
    }
    Context {
        model: ModelRef {
            name: model.to_owned(),
            config_digest: config.digest(),
            tokens: options.tokens as u32,
            hidden: config.hidden_size as u32,
            vocab: config.vocab_size as u32,
        },
        params: chosen.params.clone(),
        galois_elements: keys.galois_elements.clone(),
        provenance,
    }
}
