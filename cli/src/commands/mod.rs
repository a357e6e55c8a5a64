//! The subcommands, one module each.

pub mod bench;
pub mod compile;
pub mod decrypt;
pub mod encrypt;
pub mod eval;
pub mod forward;
pub mod keygen;
pub mod report;
pub mod run;
pub mod session;
