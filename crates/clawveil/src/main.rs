//! `clawveil`: the command line. Parses arguments, loads the configuration, wires the
//! library crates together and handles signals. No proxy logic lives here.

mod cert;
mod cli;
mod doctor;
mod redact;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    install_panic_hook();
    let cli = cli::Cli::parse();
    match cli.command() {
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Check(args) => run::check(&args),
        cli::Command::Redact(args) => redact::redact(&args),
        cli::Command::Cert(cmd) => cert::cert(cmd),
        cli::Command::Doctor(args) => doctor::doctor(&args),
    }
}

/// A panic prints where it happened, never its message: a message may carry request data.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown location".into());
        let trace_id = clawveil_proxy::current_trace_id().unwrap_or_else(|| "-".into());
        eprintln!("{{\"level\":\"ERROR\",\"message\":\"internal error (panic); the message is withheld because it may contain request data\",\"location\":\"{location}\",\"trace_id\":\"{trace_id}\"}}");
    }));
}
