//! Placement of the BitNet-layer examples (ir-examples/*.levels) under every policy: text-report snapshots and the 30-layer T=128 planning run.

use std::time::Instant;

use ensi_compiler::place::{self, Policy, text};

fn example(name: &str) -> String {
    let path = format!("{}/../ir-examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn scratch() {
    for file in ["bitnet-layers-t8.levels", "bitnet-layers-t128.levels"] {
        let parsed = text::parse(&example(file)).unwrap();
        for policy in Policy::ALL {
            let t = Instant::now();
            let p = place::place(&parsed.graph, policy).unwrap();
            eprintln!("{file} {policy}: {:?}", t.elapsed());
            eprintln!("{} {} {:?}", p.total(), p.cost.bootstrap_count, p.stats);
        }
    }
}
