//! The ensi runtime: RNS-CKKS (arithmetic -> scheme -> circuits), plans, executors.

pub mod ckks;
pub mod exec;
pub mod plan;
