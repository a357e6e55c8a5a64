//! `cargo run --release -p ensi-runtime --example bootstrap_bench -- [SET] [SLOTS,..] [THREADS,..] [REPS] [--json]`:
//! the bootstrapping table (the body of `ensi bench bootstrap`). SET is one of
//! BOOT_N16 (default), BOOT_N15, BOOT_TEST_N12, BOOT_TEST_N10; SLOTS defaults to N/2.

use ensi_runtime::ckks::circuits::bootstrap::bench::{
    BootstrapBenchConfig, bootstrap_table, run_bootstrap_bench,
};
use ensi_runtime::ckks::circuits::bootstrap::{BOOT_N15, BOOT_N16, BOOT_TEST_N10, BOOT_TEST_N12};

fn list(arg: Option<&String>, default: Vec<usize>) -> Result<Vec<usize>, std::num::ParseIntError> {
    match arg {
        None => Ok(default),
        Some(s) => s.split(',').map(str::parse).collect(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let args: Vec<String> = args.into_iter().filter(|a| a != "--json").collect();
    let set = match args.first().map(String::as_str) {
        None | Some("BOOT_N16") => BOOT_N16,
        Some("BOOT_N15") => BOOT_N15,
        Some("BOOT_TEST_N12") => BOOT_TEST_N12,
        Some("BOOT_TEST_N10") => BOOT_TEST_N10,
        Some(other) => return Err(format!("unknown set {other}").into()),
    };
    let max_slots = 1usize << (set.params.log_n - 1);
    let config = BootstrapBenchConfig {
        set,
        slots: list(args.get(1), vec![max_slots])?,
        threads: list(args.get(2), vec![1])?,
        reps: args.get(3).map(|r| r.parse()).transpose()?.unwrap_or(1),
    };
    let rows = run_bootstrap_bench(&config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", bootstrap_table(&rows));
    }
    Ok(())
}
