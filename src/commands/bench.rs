//! `docpipe bench`.

use super::print_json;
use crate::cli::BenchArgs;
use docpipe_bench::BenchOptions;
use docpipe_core::PipelineConfig;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(
    config: &PipelineConfig,
    pipeline: &Path,
    args: BenchArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(documents) = args.memory_run {
        print_json(&docpipe_bench::memory_run(config, documents).await?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.serve {
        let options = docpipe_bench::ServeBenchOptions {
            chunks: args.chunks,
            distinct: args.distinct_chunks,
            clients: args.clients,
            seconds: args.seconds,
            rate: args.rate,
            docpipe: std::env::current_exe()?.into_os_string(),
        };
        let report = docpipe_bench::serve_latency(config, &options).await?;
        if args.json {
            print_json(&report);
        } else {
            print!("{}", report.table());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(workers) = args.workers {
        let binary = std::env::current_exe()?.into_os_string();
        let report =
            docpipe_bench::compare_workers(config, usize::from(workers), args.documents, &binary)
                .await?;
        if args.json {
            print_json(&report);
        } else {
            print!("{}", report.table());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let int8_model = args.int8_model.unwrap_or_else(|| {
        let mut dir = config.model.dir.clone().into_os_string();
        dir.push("-int8");
        dir.into()
    });
    let options = BenchOptions {
        documents: args.documents,
        int8_model: Some(int8_model),
        scale: args.scale,
        memory_runs: usize::from(args.memory_runs),
        long_pdf_pages: args.long_pdf_pages,
        rounds: usize::from(args.rounds),
        fresh_process: vec![
            std::env::current_exe()?.into(),
            "--pipeline".into(),
            pipeline.into(),
            "bench".into(),
            "--memory-run".into(),
        ],
    };
    let report = docpipe_bench::run(config, &options).await?;
    if args.json {
        print_json(&report);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
