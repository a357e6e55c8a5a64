//! Fuzzes `params_literal_from_bytes` and the checked constructor on what loads.
#![no_main]

use ensi_fuzz::tiny_params;
use ensi_runtime::ckks::scheme::Params;
use ensi_runtime::ckks::scheme::serialize::{Kind, encode_container, params_literal_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let bytes = if selector % 2 == 0 {
        rest.to_vec()
    } else {
        encode_container(Kind::ParamsLiteral, [0; 32], rest)
    };
    let Ok(literal) = params_literal_from_bytes(&bytes) else { return };
    // Prime generation is bounded only for small rings and chains; keep the run fast.
    if literal.log_n <= 12 && literal.log_q.len() + literal.log_p.len() <= 16 {
        let _ = Params::new(&literal);
        let _ = Params::insecure_for_testing(&literal);
    }
    let _ = tiny_params();
});
