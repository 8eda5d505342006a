//! The documentation stays true to the code: every configuration key is in
//! docs/configuration.md, every link between the documents leads to a file
//! that exists, and every metric the Grafana dashboard queries is exported.

use docpipe_core::PipelineConfig;
use std::path::{Path, PathBuf};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Dotted paths of every key under `value` (`chunking.max_tokens`, ...).
fn keys(prefix: &str, value: &serde_json::Value, found: &mut Vec<String>) {
    match value.as_object() {
        Some(table) => {
            for (key, value) in table {
                let path = match prefix {
                    "" => key.clone(),
                    prefix => format!("{prefix}.{key}"),
                };
                keys(&path, value, found);
            }
        }
        None => found.push(prefix.to_owned()),
    }
}

#[test]
fn every_configuration_key_is_documented() {
    let text = std::fs::read_to_string(repository().join("pipelines/default.toml")).unwrap();
    let config = PipelineConfig::from_toml(&text).unwrap();
    let mut found = Vec::new();
    keys("", &serde_json::to_value(&config).unwrap(), &mut found);
    assert!(found.len() > 30, "{found:?}");
    let reference = std::fs::read_to_string(repository().join("docs/configuration.md")).unwrap();
    let missing: Vec<&String> = found
        .iter()
        .filter(|key| !reference.contains(&format!("| `{key}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys without a row in docs/configuration.md: {missing:?}"
    );
}

/// The Markdown documents: the README and everything in docs/.
fn documents() -> Vec<PathBuf> {
    let mut documents = vec![repository().join("README.md")];
    for entry in std::fs::read_dir(repository().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "md") {
            documents.push(path);
        }
    }
    documents
}

/// The targets of `[text](target)` links that are not web addresses or
/// anchors within the same document.
fn relative_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_owned())
        .filter(|target| !target.is_empty() && !target.contains("://"))
        .collect()
}

#[test]
fn links_between_documents_lead_to_files_that_exist() {
    let mut broken = Vec::new();
    for document in documents() {
        let markdown = std::fs::read_to_string(&document).unwrap();
        let directory = document.parent().unwrap();
        for target in relative_links(&markdown) {
            if !directory.join(&target).exists() {
                broken.push(format!("{}: {target}", document.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

/// Metric names in the dashboard's queries, as the worker's exposition
/// names their families (`_total`, `_bucket`, `_sum`, `_count` removed).
fn dashboard_metrics() -> Vec<String> {
    let path = repository().join("deploy/grafana/dashboards/docpipe.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("docpipe_") {
                let name: String = expr[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(family(&name).to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn family(sample: &str) -> &str {
    ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| sample.strip_suffix(suffix))
        .unwrap_or(sample)
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    // A labelled family appears on /metrics once it has a sample: record
    // one of each, as the worker does.
    let metrics = docpipe_telemetry::metrics::metrics();
    metrics.stage("parse", std::time::Duration::from_millis(3));
    metrics.outcome("indexed");
    metrics.failure(false, "transient", "store_unavailable");
    metrics.failure(true, "permanent", "corrupt_pdf");
    metrics
        .queue_depth
        .get_or_create(&docpipe_telemetry::metrics::QueueLabels {
            queue: "uploads".into(),
        })
        .set(0);
    let exported: Vec<String> = metrics
        .encode()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| family(name).to_owned())
        .collect();
    let queried = dashboard_metrics();
    assert!(queried.len() >= 8, "{queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|name| !exported.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the worker does not export: {missing:?} (exported: {exported:?})"
    );
}
