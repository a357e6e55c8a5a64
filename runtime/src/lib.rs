//! The ensi runtime: RNS-CKKS (arithmetic -> scheme -> circuits), plans, executors.
#![doc = include_str!("../README.md")]

pub mod ckks;
pub mod exec;
pub mod plan;
