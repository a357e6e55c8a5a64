//! `ensi`: one binary, one subcommand per step of encrypted BitNet inference.

mod commands;
mod exit;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Failure;

/// Encrypted inference of BitNet b1.58 models under CKKS.
#[derive(Debug, Parser)]
#[command(name = "ensi", version, after_long_help = exit::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the plaintext reference forward pass (f64) of a BitNet checkpoint.
    Forward(commands::forward::Args),
    /// Compile a BitNet checkpoint into an encrypted-inference plan (the report on stdout).
    Compile(commands::compile::Args),
    /// Describe a plan: levels, rescales, bootstraps, rotations, keys, estimated cost.
    Report(commands::report::Args),
    /// Client: a secret key (0600) and the evaluation keys a plan needs.
    Keygen(commands::keygen::Args),
    /// Client: token ids -> embeddings -> the plan's input ciphertexts.
    Encrypt(commands::encrypt::Args),
    /// Server: plan + evaluation keys + input ciphertexts -> output ciphertexts.
    Eval(commands::eval::Args),
    /// Client: output ciphertexts -> hidden state, logits, top-k tokens.
    Decrypt(commands::decrypt::Args),
    /// Compile, keygen, encrypt, eval and decrypt in one process, with precision and timing reports.
    Run(commands::run::Args),
    /// Benchmark a component of the runtime (`ensi bench ckks`).
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    // Usage errors exit with clap's code 2; `--help` and `--version` with 0.
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Forward(args) => commands::forward::run(args),
        Command::Compile(args) => commands::compile::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Encrypt(args) => commands::encrypt::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Decrypt(args) => commands::decrypt::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

/// Prints `failure` and its cause chain (no backtrace) and returns its exit code.
fn report(failure: &Failure) -> ExitCode {
    let mut message = format!("error: {}", failure.error);
    for cause in failure.error.chain().skip(1) {
        message.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{message}");
    ExitCode::from(failure.code as u8)
}
