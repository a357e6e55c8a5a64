//! `ensi bench`: benchmarks of the runtime, one subcommand per component (`ensi bench ckks`: the CKKS operations at a named set -> a table with the peers' ratios, or the peers' JSON keys).

use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use ensi_runtime::ckks::scheme::NamedSet;
use ensi_runtime::ckks::scheme::bench::{
    BenchConfig, BenchReport, peer_ratios, retain_freed_memory, run_bench, text_table,
};
use ensi_runtime::ckks::scheme::params::NAMED_SETS;

use crate::exit::{Code, Failure};

/// Arguments of `ensi bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[command(subcommand)]
    pub target: Target,
}

/// The components `ensi bench` measures.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// CKKS operations (encrypt, multiply + relinearize, rescale, rotate, ...): median wall
    /// and CPU milliseconds, precision and memory, as shared/peers/ckks_peers.py measures
    /// the other libraries.
    Ckks(CkksArgs),
}

/// Arguments of `ensi bench ckks`.
#[derive(Debug, clap::Args)]
pub struct CkksArgs {
    /// Named parameter set (the TEST_INSECURE_* sets are small, insecure rings for tests).
    #[arg(long, default_value = "N16_QP1165_PEERS", value_parser = set_names())]
    pub set: String,

    /// Thread counts, comma separated: one run in a dedicated pool of each size.
    #[arg(long, value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Vec<u16>,

    /// Timed repetitions per operation, after one warm-up (the median is reported).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub reps: u32,

    /// Print the reports as JSON (a list, one per thread count; the peers' keys `times_ms`,
    /// `prec_enc`, `prec_mul`, `params`, `mem_mib`, `keygen_s`, plus ensi's own).
    #[arg(long)]
    pub json: bool,
}

fn set_names() -> PossibleValuesParser {
    PossibleValuesParser::new(NAMED_SETS.iter().map(|s| s.name))
}

/// Runs `ensi bench`.
pub fn run(args: &Args) -> Result<(), Failure> {
    match &args.target {
        Target::Ckks(ckks) => run_ckks(ckks),
    }
}

fn run_ckks(args: &CkksArgs) -> Result<(), Failure> {
    // Before any worker thread exists, so that every thread shares the one arena.
    retain_freed_memory();
    // The parser only lets the named sets through.
    let set = NamedSet::by_name(&args.set).ok_or_else(|| {
        Failure::new(
            Code::Software,
            anyhow::anyhow!("unknown set {} passed the parser", args.set),
        )
    })?;
    if set.insecure {
        eprintln!(
            "warning: {} is an INSECURE set for testing only; its timings say nothing about \
             a 128-bit set",
            set.name
        );
    }
    let mut reports: Vec<BenchReport> = Vec::new();
    for &threads in &args.threads {
        let config = BenchConfig {
            set,
            threads: usize::from(threads),
            reps: args.reps as usize,
        };
        let report = run_bench(&config).map_err(|error| {
            Failure::new(
                Code::Software,
                anyhow::Error::new(error)
                    .context(format!("benchmark of {} with {threads} thread(s)", set.name)),
            )
        })?;
        reports.push(report);
    }
    if args.json {
        let text = serde_json::to_string_pretty(&reports)
            .map_err(|error| Failure::new(Code::Software, error))?;
        println!("{text}");
        return Ok(());
    }
    print!("{}", render(set, args.reps, &reports));
    Ok(())
}

/// The table, the parameters, and for N = 2^16 one thread the peers' times and ratios.
fn render(set: NamedSet, reps: u32, reports: &[BenchReport]) -> String {
    let mut out = format!(
        "ensi bench ckks: {}, medians of {reps} repetitions after one warm-up (ms)\n\n",
        set.name
    );
    out.push_str(&text_table(reports));
    if let Some(first) = reports.first() {
        let params: Vec<String> = first
            .params
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => format!("{key}={s}"),
                other => format!("{key}={other}"),
            })
            .collect();
        out.push_str(&format!("\nparameters: {}\n", params.join(", ")));
    }
    if set.log_n == 16 {
        for report in reports.iter().filter(|r| r.threads == 1) {
            out.push_str(
                "\npeer / ensi, 1 thread, wall (> 1: ensi is faster; peers from \
                 shared/peers/RESULTS.md):\n",
            );
            for (peer, op, ms, ratio) in peer_ratios(report) {
                out.push_str(&format!("  {peer:<15} {op:<10} {ms:>8.2} ms  x{ratio:.2}\n"));
            }
        }
    }
    out
}
