//! The `lifted` command line: parses arguments ([`args`]), calls the library, prints the
//! result as text or JSON.
//!
//! It holds no logic of its own. Exit codes: 0 success, 1 failure, 2 usage error (from
//! clap). A closed standard output (`lifted … | head`) counts as success.

mod args;
mod commands;
mod hints;

use args::{Cli, Command};
use clap::Parser;
use std::io::Write;

fn main() {
    let result = match Cli::parse().command {
        Command::PrepareData(a) => commands::prepare_data(a),
        Command::Split(a) => commands::split(a),
        Command::Pack(a) => commands::pack(a),
        Command::Verify(a) => commands::verify(a),
        Command::Inspect(a) => commands::inspect(a),
        Command::Stream(a) => commands::stream_batches(a),
        Command::Train(a) => commands::train(*a),
        Command::Eval(a) => commands::eval(a),
        Command::Plot(a) => commands::plot(a),
        Command::Weights(a) => commands::weights(a),
    };
    if let Err(err) = result {
        let broken_pipe = err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("error: {err:#}");
        if let Some(hint) = hints::hint(&err) {
            eprintln!("{hint}");
        }
        std::process::exit(1);
    }
}

/// Prints a result as text or JSON on standard output.
pub(crate) fn print<T: std::fmt::Display + serde::Serialize>(
    value: &T,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        write!(out, "{value}")?;
    }
    out.flush()?;
    Ok(())
}
