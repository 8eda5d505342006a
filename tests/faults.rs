//! Fault tests against the real services: a worker killed with SIGKILL
//! again and again, Milvus stopped mid-run, the broker closing the worker's
//! connection. Each ends with every document indexed exactly once.
//!
//! They stop shared services, so they are ignored by a plain `cargo test`
//! and run one at a time by `make test-faults` (which `make test` runs).

mod common;

use common::scenario::Scenario;
use std::path::Path;
use std::time::Duration;

fn milvus_script(command: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/milvus.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(command)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/milvus.sh {command} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn a_worker_killed_again_and_again_loses_and_duplicates_nothing() {
    let scenario = Scenario::new("kill9", 200, |_| {}).await;
    scenario.publish_all().await;
    // Kill the worker at varying points mid-run, five times.
    for (run, lifetime_ms) in [2_500u64, 4_000, 3_000, 5_000, 3_500]
        .into_iter()
        .enumerate()
    {
        let mut worker = scenario.worker(run);
        tokio::time::sleep(Duration::from_millis(lifetime_ms)).await;
        worker.kill();
    }
    let mut worker = scenario.worker(99);
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate(), "the last worker exits cleanly");
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn milvus_stopped_for_twenty_seconds_mid_run_loses_nothing() {
    // Enough delivery attempts (delays 1, 2, 4, ... s) to outlast the outage.
    let scenario = Scenario::new("milvus_down", 60, |config| config.retry.max_attempts = 10).await;
    let mut worker = scenario.worker(0);
    scenario.publish_all().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    milvus_script("stop");
    tokio::time::sleep(Duration::from_secs(20)).await;
    milvus_script("start");
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate());
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn the_worker_reconnects_when_the_broker_closes_its_connection() {
    let scenario = Scenario::new("broker_close", 100, |_| {}).await;
    let log = scenario.scratch.path().join("worker-0.log");
    let mut worker = scenario.worker(0);
    scenario.publish_all().await;
    // Mid-run: after the first document, long before the last.
    scenario.wait_until_some_indexed().await;
    let closed = std::process::Command::new("rabbitmqctl")
        .args([
            "close_all_connections",
            "docpipe fault test: broker-side close",
        ])
        .status()
        .expect("rabbitmqctl is installed with the broker");
    assert!(closed.success());
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate());
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("reconnecting"),
        "the worker noticed and reconnected:\n{log}"
    );
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}
