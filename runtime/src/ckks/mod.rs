//! The runtime's own RNS-CKKS engine, layered like Lattigo: arith -> scheme -> circuits.

pub mod arith;
