//! One module per subcommand.

mod bench;
mod dlq;
mod generations;
mod origins;
mod parse;
mod publish;
mod search;
mod serve;
mod status;
mod worker;

use crate::cli::{Cli, Command, ModeArg};
use anyhow::Context as _;
use docpipe_core::{PipelineConfig, TenantId};
use docpipe_search::Mode;
use std::process::ExitCode;

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = PipelineConfig::load(&cli.pipeline)?;
    match cli.command {
        Command::Worker => worker::run(&config).await,
        Command::Publish(args) => publish::publish(&config, args).await,
        Command::Backfill(args) => publish::backfill(&config, args).await,
        Command::Reindex(args) => generations::reindex(&config, args).await,
        Command::Generations(args) => generations::list(&config, args).await,
        Command::Rollback => generations::rollback(&config).await,
        Command::Gc(args) => generations::gc(&config, args).await,
        Command::Parse(args) => parse::run(&config, args),
        Command::Search(args) => search::search(&config, args).await,
        Command::Eval(args) => search::eval(&config, args).await,
        Command::Status(args) => status::run(&config, args).await,
        Command::Dlq(command) => dlq::run(&config, command).await,
        Command::Serve(args) => serve::run(&config, args).await,
        Command::Keys(command) => serve::keys(command),
        Command::Bench(args) => bench::run(&config, &cli.pipeline, args).await,
    }
}

fn tenant(value: &str) -> anyhow::Result<TenantId> {
    TenantId::new(value).context("invalid --tenant")
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Hybrid => Mode::Hybrid,
            ModeArg::Dense => Mode::Dense,
            ModeArg::Bm25 => Mode::Bm25,
        }
    }
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("reports always serialize")
    );
}
