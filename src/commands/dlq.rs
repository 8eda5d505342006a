//! `docpipe dlq list|show|replay`.

use super::print_json;
use crate::cli::DlqCommand;
use anyhow::bail;
use docpipe_core::PipelineConfig;
use docpipe_queue::{Broker, DeadLetter};
use std::process::ExitCode;

pub async fn run(config: &PipelineConfig, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let result = match command {
        DlqCommand::List { limit, json } => list(&broker, limit, json).await,
        DlqCommand::Show { id } => show(&broker, &id).await,
        DlqCommand::Replay { id, all } => replay(&broker, id.as_deref(), all).await,
    };
    broker.close().await;
    result
}

async fn list(broker: &Broker, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let letters = broker.dead_letters(limit).await?;
    if json {
        print_json(&letters.iter().map(DeadLetter::summary).collect::<Vec<_>>());
        return Ok(ExitCode::SUCCESS);
    }
    if letters.is_empty() {
        println!("no dead letters");
    }
    for letter in &letters {
        let document = letter
            .document_id
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string);
        let tenant = letter.tenant.as_ref().map_or("?", |tenant| tenant.as_str());
        println!(
            "{}  {:<22} {tenant}/{document}  after {} attempt(s): {}",
            letter.id, letter.error_code, letter.history.attempts, letter.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(broker: &Broker, id: &str) -> anyhow::Result<ExitCode> {
    let letters = broker.dead_letters(usize::MAX).await?;
    let Some(letter) = letters.iter().find(|letter| letter.id == id) else {
        bail!("no dead letter with id {id}; `docpipe dlq list` shows the ids");
    };
    print_json(&letter.detail());
    Ok(ExitCode::SUCCESS)
}

async fn replay(broker: &Broker, id: Option<&str>, all: bool) -> anyhow::Result<ExitCode> {
    let replayed = broker
        .replay_dead_letters(|letter| all || Some(letter.id.as_str()) == id)
        .await?;
    if let (Some(id), true) = (id, replayed.is_empty()) {
        bail!("no dead letter with id {id}; `docpipe dlq list` shows the ids");
    }
    for letter in &replayed {
        println!("replayed {} ({})", letter.id, letter.error_code);
    }
    println!("{} dead letter(s) published again", replayed.len());
    Ok(ExitCode::SUCCESS)
}
