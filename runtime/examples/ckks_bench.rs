//! Prints the CKKS benchmark table (`ensi bench ckks` will call the same library function).
//!
//! `cargo run -p ensi-runtime --release --example ckks_bench -- N16_QP1165_PEERS 1 10 [--json]`
//! (set, threads, repetitions).

use ensi_runtime::ckks::scheme::NamedSet;
use ensi_runtime::ckks::scheme::bench::{BenchConfig, peer_ratios, run_bench, text_table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before any thread exists, so every thread shares the one arena.
    ensi_runtime::ckks::scheme::bench::retain_freed_memory();
    let set_name = args.first().map_or("N14_QP401_PEERS", String::as_str);
    let threads: Vec<usize> = args
        .get(1)
        .map_or("1", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let reps = args.get(2).map_or(Ok(10), |r| r.parse())?;
    let json = args.iter().any(|a| a == "--json");
    let set = NamedSet::by_name(set_name).ok_or(format!("unknown set {set_name}"))?;
    let mut reports = Vec::new();
    for t in threads {
        reports.push(run_bench(&BenchConfig {
            set,
            threads: t,
            reps,
        })?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", text_table(&reports));
        if set.log_n == 16 {
            for r in reports.iter().filter(|r| r.threads == 1) {
                println!("\npeer / ensi (1 thread, wall):");
                for (peer, op, ms, ratio) in peer_ratios(r) {
                    println!("  {peer:<15} {op:<10} {ms:>8.2} ms  x{ratio:.2}");
                }
            }
        }
    }
    Ok(())
}
