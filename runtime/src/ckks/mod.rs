//! The CKKS engine, layered like Lattigo: arithmetic, scheme, circuits, over pure-f64 numerics.
pub mod arith;
pub mod circuits;
pub mod numerics;
pub mod scheme;
