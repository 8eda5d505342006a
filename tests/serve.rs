//! `docpipe serve` as a RAG application calls it: a real worker indexes
//! the fixtures corpus for one tenant and a private document for another,
//! then a server process answers over HTTP with API keys from a keys file.

mod common;

use common::run;
use common::serve::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retrieval_api_searches_within_the_keys_tenant_and_explains_documents() {
    let scenario = Scenario::start("serve", |_| {}, &[]).await;
    let (server, keys, pipeline) = (&scenario.server, &scenario.keys, &scenario.pipeline);

    // Every mode finds the document of a gold query, with stage timings.
    let (query, expected) = QUERY;
    for mode in ["hybrid", "dense", "bm25"] {
        let body = json!({ "query": query, "mode": mode, "top_k": 3 });
        let (status, answer) = server.search(Some(&keys.acme), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(document_ids(&answer)[0], expected, "{mode}: {answer}");
        assert_eq!(answer["tenant"], "acme");
        let hit = &answer["documents"][0];
        assert!(!hit["chunk"]["text"].as_str().unwrap().is_empty());
        let timings = &answer["timings"];
        assert!(timings["total_ms"].as_f64().unwrap() >= timings["retrieve_ms"].as_f64().unwrap());
    }
    // The second hybrid search of the same query reuses its embedding.
    let (_, again) = server
        .search(Some(&keys.acme), &json!({ "query": query }))
        .await;
    assert_eq!(again["timings"]["embedding_cached"], true, "{again}");

    // A filter keeps the search to the documents it names.
    let only = server
        .found(
            &keys.acme,
            json!({ "query": query, "filter": { "document_ids": ["beekeeping-seasons"] } }),
        )
        .await;
    assert_eq!(only, ["beekeeping-seasons"]);

    // Hits carry the headings above their chunk.
    let winter = json!({
        "query": "the winter cluster",
        "mode": "bm25",
        "filter": { "document_ids": ["beekeeping-seasons"] },
    });
    let (_, answer) = server.search(Some(&keys.acme), &winter).await;
    let headings = answer["documents"][0]["chunk"]["heading_path"]
        .as_array()
        .unwrap();
    assert_eq!(headings.last().unwrap(), "Winter: the cluster", "{answer}");

    // Tenancy comes from the key, whatever the request says.
    let secret = json!({ "query": SECRET_WORD, "mode": "bm25" });
    assert!(server.found(&keys.acme, secret.clone()).await.is_empty());
    assert_eq!(
        server.found(&keys.globex, secret.clone()).await,
        ["secret-plan"]
    );
    let (status, refused) = server
        .search(
            Some(&keys.acme),
            &json!({ "query": SECRET_WORD, "tenant": "globex" }),
        )
        .await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, _) = server
        .get(&keys.acme, "/v1/documents/secret-plan?tenant=globex")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.get(&keys.acme, "/v1/documents/secret-plan").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "acme has no such document");
    let as_admin = json!({ "query": SECRET_WORD, "mode": "bm25", "tenant": "globex" });
    assert_eq!(server.found(&keys.admin, as_admin).await, ["secret-plan"]);
    let (status, answer) = server.search(Some(&keys.admin), &secret).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "admin keys name the tenant: {answer}"
    );

    // Without a valid key, nothing; the key never reaches the log.
    let (status, answer) = server.search(None, &json!({ "query": query })).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "missing_api_key")
    );
    let (status, answer) = server
        .search(Some("dpk_not_a_key"), &json!({ "query": query }))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );

    // Bounds: the query, the body, the request's own fields.
    let long_query = "word ".repeat(1000);
    let (status, answer) = server
        .search(Some(&keys.acme), &json!({ "query": long_query }))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let ids: Vec<String> = (0..8000).map(|n| format!("document-{n}")).collect();
    let huge = json!({ "query": query, "filter": { "document_ids": ids } });
    let (status, _) = server.search(Some(&keys.acme), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for (body, complaint) in [
        (json!({ "query": query, "top_k": 0 }), "top_k"),
        (json!({ "query": "   " }), "empty"),
        (json!({ "query": query, "colour": "blue" }), "unknown field"),
        (
            json!({ "query": query, "mode": "psychic" }),
            "unknown variant",
        ),
    ] {
        let (status, answer) = server.search(Some(&keys.acme), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(complaint), "{message}");
    }

    // Document status: indexed, failed (dead-lettered) and unknown.
    let (status, indexed) = server
        .get(&keys.acme, &format!("/v1/documents/{expected}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{indexed}");
    assert_eq!(indexed["searchable"], true);
    let holding = &indexed["generations"][0];
    assert_eq!(holding["state"], "live");
    let chunks = &holding["chunks"];
    assert!(chunks["milvus"].as_u64().unwrap() > 0, "{indexed}");
    assert_eq!(chunks["milvus"], chunks["tantivy"], "{indexed}");
    assert!(holding["content_hash"].as_str().unwrap().len() > 10);

    let mut publish = docpipe(pipeline);
    publish
        .args(["publish", "--tenant", "acme", "--id", "broken"])
        .arg(common::fixtures().join("bad/truncated.pdf"));
    assert!(run(publish).await.status.success());
    let failed = wait_for_document(server, &keys.acme, "broken", |status| {
        !status["dead_letter"].is_null() && !status["last_event"].is_null()
    })
    .await;
    assert_eq!(failed["searchable"], false, "{failed}");
    assert_eq!(
        failed["dead_letter"]["error_code"], "corrupt_pdf",
        "{failed}"
    );
    assert_eq!(failed["last_event"]["event"], "document.failed", "{failed}");

    // Metadata given at publication narrows searches.
    let mut publish = docpipe(pipeline);
    publish
        .args(["publish", "--tenant", "acme", "--id", "tagged"])
        .args(["--metadata", "lang=fr", "--metadata", "year=2024"])
        .arg(common::fixtures().join("corpus/beekeeping-seasons.html"));
    assert!(run(publish).await.status.success());
    wait_for_document(server, &keys.acme, "tagged", |status| {
        status["searchable"] == true
    })
    .await;
    let winter = |metadata: Value| json!({ "query": "the winter cluster", "filter": { "metadata": metadata } });
    let tagged = server
        .found(
            &keys.acme,
            winter(json!({"lang": "fr", "year": [2023, 2024]})),
        )
        .await;
    assert_eq!(tagged, ["tagged"]);
    // Types count; a key outside the filterable alphabet matches nothing.
    for unmatched in [json!({"year": "2024"}), json!({"la ng": "fr"})] {
        assert!(server.found(&keys.acme, winter(unmatched)).await.is_empty());
    }
    let (status, refused) = server
        .search(Some(&keys.acme), &winter(json!({"lang": {"in": ["fr"]}})))
        .await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    let (status, unknown) = server
        .get(&keys.acme, "/v1/documents/never-published")
        .await;
    assert_eq!(
        (status, error_code(&unknown)),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // Status is for operators.
    let (status, _) = server.get(&keys.acme, "/v1/status").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, report) = server.get(&keys.admin, "/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["tantivy"]["documents"], 10, "{report}");
    for path in ["/v1/generations", "/v1/activity"] {
        let (status, _) = server.get(&keys.acme, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (_, generations) = server.get(&keys.admin, "/v1/generations").await;
    let live = &generations["generations"][0];
    assert_eq!(
        (&live["state"], &live["tantivy"]["documents"]),
        (&json!("live"), &json!(10)),
        "{generations}"
    );
    let (_, activity) = server.get(&keys.admin, "/v1/activity").await;
    assert_eq!(activity["buckets"].as_array().map(Vec::len), Some(60));
    // The worker says what it handles every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let workers = loop {
        let (_, activity) = server.get(&keys.admin, "/v1/activity").await;
        let workers = activity["workers"].as_array().cloned().unwrap_or_default();
        if !workers.is_empty() || Instant::now() > deadline {
            break workers;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(workers[0]["in_flight"].is_array(), "{workers:?}");
    // A rollback names the generation it replaces, and needs one to go back to.
    let rollback = |key: &str, live: &Value| {
        server
            .http
            .post(server.url("/v1/generations/rollback"))
            .bearer_auth(key)
            .json(&json!({ "live": live }))
            .send()
    };
    let refused = rollback(&keys.acme, &live["version"]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    for confirmed in [&live["version"], &json!("default@000000000000")] {
        let (status, refusal) =
            common::serve::answer(rollback(&keys.admin, confirmed).await.unwrap()).await;
        assert_eq!(
            (status, error_code(&refusal)),
            (StatusCode::CONFLICT, "conflict"),
            "{refusal}"
        );
    }
    let (_, whoami) = server.get(&keys.acme, "/v1/whoami").await;
    assert_eq!(
        whoami,
        json!({"name": "acme-app", "role": "tenant", "tenant": "acme"})
    );

    // Latency by mode and outcome, for Prometheus.
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"docpipe_search_duration_seconds_count{mode="hybrid",outcome="ok"}"#,
        r#"docpipe_search_duration_seconds_count{mode="hybrid",outcome="forbidden"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }

    // The OpenAPI document describes what the server does.
    let check = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/api-check.sh"))
        .args(["run", &server.base, &keys.acme])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "schemathesis found the server and crates/serve/openapi.json disagree:\n{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let keys = [&keys.acme, &keys.globex, &keys.admin].map(String::clone);
    let log_text = scenario.finish().await;
    assert!(log_text.contains("server stopped cleanly"), "{log_text}");
    for key in keys {
        assert!(!log_text.contains(&key), "a key was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_at_capacity_answers_429_instead_of_queueing() {
    let scenario = Scenario::start("serve_429", |_| {}, &["--max-in-flight", "1"]).await;
    let (server, keys) = (&scenario.server, &scenario.keys);

    // Forty different queries at once (none cached) against room for one.
    let searches = (0..40).map(|n| {
        let body = json!({ "query": format!("queues and bees, question {n}") });
        let (server, key) = (&server, keys.acme.as_str());
        async move {
            let response = server
                .http
                .post(server.url("/v1/search"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            (response.status(), retry_after)
        }
    });
    let outcomes = futures::future::join_all(searches).await;
    let served = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(served + refused.len(), outcomes.len(), "{outcomes:?}");
    assert!(served >= 1 && !refused.is_empty(), "{outcomes:?}");
    assert!(refused.iter().all(|(_, retry)| retry.is_some()));
    scenario.finish().await;
}

/// The `milvus` backend: the server keeps nothing on its disk, and answers
/// the same way (any number of replicas can run on other machines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_milvus_backend_the_server_keeps_no_local_state() {
    let scenario = Scenario::start("serve_milvus", common::on_milvus_full_text_search, &[]).await;
    let (server, keys, config) = (&scenario.server, &scenario.keys, &scenario.config);

    let (query, expected) = QUERY;
    for mode in ["hybrid", "dense", "bm25"] {
        let found = server
            .found(&keys.acme, json!({ "query": query, "mode": mode }))
            .await;
        assert_eq!(found[0], expected, "{mode}");
    }
    let secret = json!({ "query": SECRET_WORD, "mode": "hybrid" });
    assert!(
        !server
            .found(&keys.acme, secret.clone())
            .await
            .contains(&"secret-plan".to_owned())
    );
    assert_eq!(server.found(&keys.globex, secret).await[0], "secret-plan");
    let (status, document) = server
        .get(&keys.acme, &format!("/v1/documents/{expected}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert!(
        document["generations"][0]["chunks"]["milvus"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        !config.bm25.index_dir.exists(),
        "nothing was written to the local index directory"
    );
    scenario.finish().await;
}
