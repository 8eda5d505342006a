//! `docpipe`: the command-line front of the docpipe ingestion pipeline.
//!
//! Thin by design: argument parsing, output formatting and exit codes live
//! here; everything else is in the `crates/` libraries.

mod cli;
mod commands;
mod memory;

use clap::Parser;
use std::process::ExitCode;

// Parsing, chunking and the store clients allocate many small, short-lived
// buffers on threads that come and go; mimalloc spends less CPU on them than
// glibc's malloc, CPU the embedder wants, and returns freed memory sooner.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    memory::configure();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Logs go to stderr so stdout stays clean for results (and `--json`);
    // `RUST_LOG` overrides the command's default level. The OTLP exporter
    // is built inside the runtime, which its gRPC transport needs.
    let telemetry = {
        let _inside = runtime.enter();
        docpipe_telemetry::init(
            "docpipe",
            cli.log_format.into(),
            cli.command.default_log_level(),
        )
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    };
    // Spans still buffered are exported before the process exits.
    telemetry.shutdown();
    code
}

/// The error and its causes, each once: docpipe's errors name their cause
/// in their own message, which anyhow's `{:#}` would print again.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let error = anyhow::Error::new(docpipe_serve::KeysError::Io {
            path: "keys.toml".into(),
            source: io,
        });
        assert_eq!(
            error_chain(&error),
            "cannot use the API keys file keys.toml: No such file"
        );
        let error = anyhow::anyhow!("No such file").context("starting the worker");
        assert_eq!(error_chain(&error), "starting the worker: No such file");
    }
}
