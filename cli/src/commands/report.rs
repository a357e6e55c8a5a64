//! `ensi report`: a plan file -> its report (levels, rescales, bootstraps, keys, cost) as text, JSON or DOT.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use ensi_compiler::report::{Format, Report};
use ensi_runtime::plan::{MAX_PLAN_BYTES, PlanFileError, check, file};

use crate::exit::{Code, Failure};

/// Arguments of `ensi report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan written by `ensi compile`.
    pub plan: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Tables for people.
    Text,
    /// The report as JSON.
    Json,
    /// The dataflow as Graphviz DOT, values coloured by level.
    Dot,
}

/// Runs `ensi report`.
pub fn run(args: &Args) -> Result<(), Failure> {
    let plan = file::load(&args.plan, MAX_PLAN_BYTES).map_err(|error| {
        let code = match error {
            PlanFileError::Io { .. } => Code::NoInput,
            _ => Code::DataError,
        };
        Failure::new(code, error)
    })?;
    check::check(&plan)
        .with_context(|| format!("{}: the plan does not verify", args.plan.display()))
        .map_err(|error| Failure::new(Code::DataError, error))?;
    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Dot => Format::Dot,
    };
    print!("{}", Report::from_plan(&plan).render(&plan, format));
    Ok(())
}
