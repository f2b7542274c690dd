//! `locus compare BEFORE.json AFTER.json [--competitive FILE]`: the before/after table and the
//! regression gate. Exit 0 within limits, 1 on an internal regression, 2 on a competitive
//! regression, 3 when an input is unreadable or the results do not match.

use std::path::PathBuf;
use std::process::ExitCode;

use locus::loadtest::compare::{Limits, compare, read_competitive};
use locus::loadtest::output::read_result;

/// Arguments of `locus compare`.
#[derive(clap::Args)]
pub struct Args {
    /// The earlier `result.json`.
    before: PathBuf,
    /// The later `result.json`.
    after: PathBuf,
    /// Competitive baselines (JSON, schema `locus-competitive/1`, see docs/loadtest.md).
    #[arg(long, value_name = "FILE")]
    competitive: Option<PathBuf>,
}

/// Runs the subcommand and returns its exit status.
pub fn run(args: Args) -> ExitCode {
    let inputs = (|| {
        let before = read_result(&args.before)?;
        let after = read_result(&args.after)?;
        let competitive = args.competitive.as_deref().map(read_competitive).transpose()?;
        compare(&before, &after, competitive.as_ref(), Limits::default())
    })();
    match inputs {
        Ok(c) => {
            print!("{}", c.text());
            ExitCode::from(c.exit_code())
        }
        Err(e) => {
            eprintln!("locus compare: {e}");
            ExitCode::from(3)
        }
    }
}
