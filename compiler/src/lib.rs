//! The ensi compiler: BitNet checkpoint -> model IR -> HE dataflow graph -> plan + reports.
//!
//! Built so far: the [`frontend`] (checkpoint -> [`ir::Graph`]), the model [`ir`] itself,
//! and the plaintext reference [`forward`] pass. The HE stages (calibrate, rewrite, lower,
//! place, params, plan) come in later issues.

pub mod cost;
pub mod forward;
pub mod frontend;
pub mod ir;
pub mod place;
