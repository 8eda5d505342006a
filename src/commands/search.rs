//! `docpipe search` and `docpipe eval`.

use super::{print_json, tenant};
use crate::cli::{EvalArgs, SearchArgs};
use docpipe_core::PipelineConfig;
use docpipe_search::{Mode, Searcher, evaluate, read_gold_set};
use std::process::ExitCode;

/// Characters of chunk text shown per hit.
const SNIPPET_CHARS: usize = 200;

pub async fn search(config: &PipelineConfig, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let tenant = tenant(&args.tenant)?;
    let searcher = Searcher::open(config).await?;
    let mode = Mode::from(args.mode);
    let hits = searcher
        .search(&tenant, &args.query, mode, args.top_k)
        .await?;
    if args.json {
        print_json(&hits);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} results for {:?} ({}, tenant {tenant})",
        hits.len(),
        args.query,
        mode.as_str()
    );
    for (rank, hit) in hits.iter().enumerate() {
        let page = hit
            .chunk
            .page
            .map(|page| format!(", page {page}"))
            .unwrap_or_default();
        println!(
            "{:>3}. {}  score {:.4}  (chunk {}{page})",
            rank + 1,
            hit.document_id,
            hit.score,
            hit.chunk.ordinal
        );
        if !hit.chunk.heading_path.is_empty() {
            println!("     {}", hit.chunk.heading_path.join(" › "));
        }
        println!("     {}", snippet(&hit.chunk.text));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn eval(config: &PipelineConfig, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let tenant = tenant(&args.tenant)?;
    let gold = read_gold_set(&args.queries)?;
    let searcher = Searcher::open(config).await?;
    let modes = match args.mode {
        Some(mode) => vec![Mode::from(mode)],
        None => Mode::ALL.to_vec(),
    };
    let reports = evaluate(&searcher, &tenant, &gold, args.k, &modes).await?;
    if args.json {
        print_json(&reports);
    } else {
        println!(
            "{} queries from {}, tenant {tenant}",
            gold.len(),
            args.queries.display()
        );
        println!(
            "{:<7} {:>9} {:>10} {:>8} {:>8} {:>8}",
            "mode",
            "Recall@1",
            format!("Recall@{}", args.k),
            format!("MRR@{}", args.k),
            "p50 ms",
            "p95 ms"
        );
        for report in &reports {
            println!(
                "{:<7} {:>9.3} {:>10.3} {:>8.3} {:>8.1} {:>8.1}",
                report.mode.as_str(),
                report.recall_at_1,
                report.recall_at_k,
                report.mrr_at_k,
                report.latency_p50_ms,
                report.latency_p95_ms
            );
            if !report.misses.is_empty() {
                println!("        missed: {}", report.misses.join(", "));
            }
        }
    }
    if let Some(minimum) = args.min_recall {
        let below: Vec<&str> = reports
            .iter()
            .filter(|report| report.recall_at_k < minimum)
            .map(|report| report.mode.as_str())
            .collect();
        if !below.is_empty() {
            eprintln!(
                "Recall@{} below {minimum} for: {}",
                args.k,
                below.join(", ")
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The chunk's first words on one line, cut at a character boundary.
fn snippet(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
