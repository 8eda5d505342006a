//! Resident memory while ingesting, measured in fresh processes.

use crate::end_to_end::{EndToEnd, end_to_end};
use crate::{BenchError, corpus, failed};
use docpipe_core::PipelineConfig;
use std::ffi::OsString;

/// Resident memory of a process over an end-to-end run, MiB.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// With the worker started (models loaded), before the first document.
    pub at_start_mib: Option<f64>,
    /// The peak while ingesting.
    pub peak_mib: Option<f64>,
}

impl Memory {
    pub(crate) fn of(run: &EndToEnd) -> Self {
        Self {
            at_start_mib: run.rss_at_start_mib,
            peak_mib: run.peak_rss_mib,
        }
    }
}

/// Ingests a generated corpus of `documents` end to end through RabbitMQ
/// and returns this process's memory meanwhile. The bench runs it in fresh
/// processes (see [`BenchOptions::fresh_process`](crate::BenchOptions::fresh_process)).
pub async fn memory_run(config: &PipelineConfig, documents: usize) -> Result<Memory, BenchError> {
    let scratch = tempfile::tempdir().map_err(failed("creating a scratch directory"))?;
    let paths = corpus::write(&scratch.path().join("corpus"), documents)
        .map_err(failed("writing the corpus"))?;
    let measured = end_to_end(
        config,
        &scratch.path().join("end-to-end"),
        scratch.path(),
        &paths,
    )
    .await?;
    Ok(Memory::of(&measured))
}

/// Runs [`memory_run`] for `documents` in a new process started with
/// `command`.
pub(crate) async fn memory_in_fresh_process(
    command: &[OsString],
    documents: usize,
) -> Result<Memory, BenchError> {
    const STAGE: &str = "measuring memory in a fresh process";
    let (program, args) = command
        .split_first()
        .ok_or_else(|| failed(STAGE)("no command to start it with"))?;
    let output = tokio::process::Command::new(program)
        .args(args)
        .arg(documents.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(failed(STAGE))?;
    if !output.status.success() {
        return Err(failed(STAGE)(format!(
            "{} exited with {}",
            program.to_string_lossy(),
            output.status
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(failed(STAGE))
}

/// Resets the kernel's peak-RSS counter (VmHWM) for this process.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since the last reset, in MiB.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    memory_status("VmHWM:")
}

/// This process's resident memory now, in MiB.
pub(crate) fn rss_mib() -> Option<f64> {
    memory_status("VmRSS:")
}

pub(crate) fn memory_status(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
