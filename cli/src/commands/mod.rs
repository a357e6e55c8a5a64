//! The subcommands, one module each.

pub mod bench;
pub mod compile;
pub mod forward;
pub mod report;
