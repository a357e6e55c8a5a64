//! The ensi compiler: BitNet checkpoint -> model IR -> HE dataflow graph -> plan + reports.
//!
//! [`compile`] runs the stages in order: the [`frontend`] builds the model IR, [`rewrite`]
//! folds every weight scale away, [`calibrate`] and [`approx`] bound and approximate every
//! nonlinearity, [`lower`] chooses each layer's encoding and turns the model into the typed
//! HE graph, the placement assigns levels (and bootstraps), [`params`] picks the ring and
//! chain, [`lower::levels`] makes rescales and scales exact, [`keys`] collects the rotation
//! keys, [`emit`] writes the plan and [`report`] describes it.
//!
//! Side tables of the middle stages are keyed by the handles of the rewritten graph, so
//! calibration and approximation must see that graph:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ensi_checkpoint::Checkpoint;
//! use ensi_compiler::{CompileOptions, compile};
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/dev-h32");
//! let checkpoint = Checkpoint::open(dir)?;
//! let compiled = compile(&checkpoint, "dev-h32", &CompileOptions::insecure_test(4))?;
//! assert_eq!(compiled.plan.outputs[0].name, "hidden");
//! assert!(compiled.report.summary.predicted_error <= 1e-3);
//! # Ok(())
//! # }
//! ```

pub mod approx;
pub mod calibrate;
pub mod cost;
pub mod emit;
pub mod estimate;
pub mod forward;
pub mod frontend;
pub mod ir;
pub mod keys;
pub mod lower;
pub mod params;
pub mod place;
pub mod report;
pub mod rewrite;

mod driver;

use ensi_checkpoint::Checkpoint;

pub use driver::{CompileError, CompileOptions, Compiled, PlacementPolicy, Ring};

/// The lowered model: everything [`compile`] computes before placement.
struct Lowered {
    rewrites: rewrite::RewriteReport,
    prediction: Option<approx::ErrorPrediction>,
    calibration: calibrate::Calibration,
    ring: Ring,
    linear: keys::LinearCache,
    choice: lower::encoding::EncodingChoice,
    he: lower::HeGraph,
}

/// Prints the time since the last call with `ENSI_COMPILE_TIMINGS` set (stage profiling; the
/// plan never holds times, so it stays byte-stable).
fn lap(clock: &mut std::time::Instant, stage: &str) {
    if std::env::var_os("ENSI_COMPILE_TIMINGS").is_some() {
        eprintln!("compile stage {stage}: {:.2?}", clock.elapsed());
    }
    *clock = std::time::Instant::now();
}

fn lowered(checkpoint: &Checkpoint, options: &CompileOptions) -> Result<Lowered, CompileError> {
    let clock = &mut std::time::Instant::now();
    // The ring first: a sequence longer than its slots hold is refused before any work.
    let ring = Ring::for_model(checkpoint.config(), options)?;
    let graph = frontend::build(checkpoint, &options.frontend())?;
    let (graph, rewrites) = rewrite::optimize(&graph, &options.rewrite)?;
    let info = ir::verify(&graph)?;
    lap(clock, "frontend + rewrite");
    let calibration = calibrate::run(&graph, &info, checkpoint, &options.calibration)?;
    lap(clock, "calibrate");
    let (table, prediction) =
        driver::approximate(&graph, &info, checkpoint, &calibration, options)?;
    lap(clock, "approximate");
    let mut linear = keys::LinearCache::new();
    let choice = lower::encoding::choose(
        &graph,
        checkpoint,
        &table,
        ring.shapes,
        ring.hidden,
        options.encoding,
        &ring.target(options),
        &mut linear,
    )?;
    lap(clock, "encoding choice");
    let he = driver::checked(lower::lower(
        &graph,
        checkpoint,
        &table,
        ring.shapes,
        &choice.encodings,
    )?)?;
    linear.fill(&he, checkpoint);
    lap(clock, "lower");
    Ok(Lowered {
        rewrites,
        prediction,
        calibration,
        ring,
        linear,
        choice,
        he,
    })
}

/// Compiles `checkpoint` (a model called `model`) into a checked plan and its report.
pub fn compile(
    checkpoint: &Checkpoint,
    model: &str,
    options: &CompileOptions,
) -> Result<Compiled, CompileError> {
    Ok(stages(checkpoint, model, options)?.compiled)
}

/// What [`stages`] returns: the HE graph after each stage and the compiled plan.
#[derive(Debug, Clone)]
pub struct Stages {
    /// The logical HE graph (after lowering).
    pub logical: lower::HeGraph,
    /// The leveled HE graph (after placement and the level pass).
    pub leveled: lower::HeGraph,
    /// The plan and its report.
    pub compiled: Compiled,
}

/// [`compile`], keeping the HE graph of each stage (for snapshots and inspection).
pub fn stages(
    checkpoint: &Checkpoint,
    model: &str,
    options: &CompileOptions,
) -> Result<Stages, CompileError> {
    let Lowered {
        rewrites,
        prediction,
        calibration,
        ring,
        mut linear,
        choice,
        he,
    } = lowered(checkpoint, options)?;
    let clock = &mut std::time::Instant::now();
    let placed = driver::place(&he, &ring, options, &linear, &calibration)?;
    lap(clock, "place");
    let chosen = params::choose(
        ring.log_n,
        placed.assignment.max_level(),
        placed.assignment.bootstraps() > 0,
        options.insecure,
        ring.circuit,
    )?;
    let (leveled, reasons) = driver::realize(&he, &placed, &chosen)?;
    lap(clock, "params + levels");
    linear.fill(&leveled, checkpoint);
    let keys = keys::collect(&leveled, &chosen.params, &linear);
    lap(clock, "keys");
    let context = driver::context(
        checkpoint,
        model,
        options,
        &rewrites,
        &prediction,
        &choice,
        &placed,
        &reasons,
        &chosen,
        &keys,
        &leveled,
        &linear,
    );
    let plan = emit::emit(&leveled, checkpoint, context)?;
    lap(clock, "emit");
    Ok(Stages {
        logical: he,
        leveled,
        compiled: Compiled {
            report: report::Report::from_plan(&plan),
            plan,
        },
    })
}

/// A policy and its placement (or why it has none).
pub type PolicyPlacement = (PlacementPolicy, Result<place::Placement, CompileError>);

/// The placement of `checkpoint`'s HE graph under each of `policies` (the model stages run
/// once): the comparison `ensi compile` makes for one policy.
pub fn placements(
    checkpoint: &Checkpoint,
    options: &CompileOptions,
    policies: &[PlacementPolicy],
) -> Result<Vec<PolicyPlacement>, CompileError> {
    let lowered = lowered(checkpoint, options)?;
    Ok(policies
        .iter()
        .map(|&policy| {
            let options = CompileOptions {
                policy,
                ..options.clone()
            };
            let placed = driver::place(
                &lowered.he,
                &lowered.ring,
                &options,
                &lowered.linear,
                &lowered.calibration,
            );
            (policy, placed.map(|p| p.placement))
        })
        .collect())
}
