//! Shared helpers of the CKKS fuzz targets: a tiny insecure parameter set and its keys.

use ensi_runtime::ckks::scheme::serialize::{Kind, encode_container};
use ensi_runtime::ckks::scheme::{Params, ParamsLiteral, SecretDistribution};

/// N = 2^4, Q = 60 + 2x40, P = 61, one prime per digit: files of a few hundred bytes.
pub fn tiny_params() -> Params {
    let literal = ParamsLiteral {
        log_n: 4,
        log_q: vec![60, 40, 40],
        log_p: vec![61],
        log_scale: 40,
        digit_primes: 1,
        secret: SecretDistribution::UniformTernary,
    };
    Params::insecure_for_testing(&literal).expect("tiny parameters")
}

/// The bytes a loader sees: byte 0 even -> the rest as a file; odd -> the rest as the body
/// of a well-formed container of `kind` for `params` (reaches the body decoder).
pub fn file_bytes(input: &[u8], kind: Kind, params: &Params) -> Option<Vec<u8>> {
    let (&selector, rest) = input.split_first()?;
    Some(if selector % 2 == 0 {
        rest.to_vec()
    } else {
        encode_container(kind, params.hash(), rest)
    })
}
