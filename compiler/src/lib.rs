//! The ensi compiler: BitNet checkpoint -> model IR -> HE dataflow graph -> plan + reports.
//!
//! Built so far: the [`frontend`] (checkpoint -> [`ir::Graph`]), the model [`ir`] itself,
//! the plaintext reference [`forward`] pass, and the model-level middle: [`rewrite`] (egg
//! rewrites that fold every weight scale away), [`calibrate`] (argument ranges of every
//! nonlinearity) and [`approx`] (polynomial approximations chosen from a precision target,
//! with an end-to-end error prediction). The HE stages (lower, place, params, plan) come
//! next.
//!
//! The stages run in this order; each side table is keyed by the handles of the rewritten
//! graph, so calibration and approximation must see that graph:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ensi_checkpoint::Checkpoint;
//! use ensi_compiler::{approx, calibrate, frontend, ir, rewrite};
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/dev-h32");
//! let checkpoint = Checkpoint::open(dir)?;
//! let graph = frontend::build(&checkpoint, &frontend::Options::encrypted(4))?;
//! let (graph, rewrites) = rewrite::optimize(&graph, &rewrite::RewriteOptions::default())?;
//! let info = ir::verify(&graph)?;
//! let calibration = calibrate::run(&graph, &info, &checkpoint, &Default::default())?;
//! let (table, prediction) =
//!     approx::select(&graph, &info, &checkpoint, &calibration, &Default::default())?;
//! assert_eq!(rewrites.cost_after.scalings, 0);
//! assert!(prediction.predicted <= prediction.target);
//! let tokens = [3, 1, 4, 1];
//! let hidden = approx::forward(&graph, &info, &checkpoint, &tokens, &table)?;
//! assert!(hidden.get("hidden").is_some());
//! # Ok(())
//! # }
//! ```

pub mod approx;
pub mod calibrate;
pub mod cost;
pub mod forward;
pub mod frontend;
pub mod ir;
pub mod place;
pub mod rewrite;
