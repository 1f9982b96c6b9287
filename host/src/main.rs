//! `inbox-webhooks`: glue only. Parse the arguments, run, exit.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = inbox_webhooks::cli::Cli::parse();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let status = inbox_webhooks::run(&cli, &mut stdin.lock(), &mut out);
    let flushed = std::io::Write::flush(&mut out);
    match (status, flushed) {
        (Ok(code), Ok(())) => ExitCode::from(code),
        (Err(error), _) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
        (Ok(_), Err(error)) => {
            eprintln!("error: writing output: {error}");
            ExitCode::from(2)
        }
    }
}
