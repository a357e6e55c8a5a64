//! Criterion bench of the special FFT (canonical embedding) at N = 2^14..2^16, both directions.

fn main() {}
