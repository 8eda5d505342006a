//! The worker's HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the
//! process answers) and `/readyz` (it can reach the broker and Milvus).

use crate::metrics::{CONTENT_TYPE, metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `/readyz` reports; the worker keeps it current.
#[derive(Debug, Default)]
pub struct Readiness {
    broker: AtomicBool,
    milvus: AtomicBool,
}

impl Readiness {
    /// Records whether the worker is connected to the broker and consuming.
    pub fn set_broker(&self, up: bool) {
        self.broker.store(up, Ordering::SeqCst);
    }

    /// Records whether Milvus answered the last probe.
    pub fn set_milvus(&self, up: bool) {
        self.milvus.store(up, Ordering::SeqCst);
    }

    fn report(&self) -> (bool, serde_json::Value) {
        let (broker, milvus) = (
            self.broker.load(Ordering::SeqCst),
            self.milvus.load(Ordering::SeqCst),
        );
        (
            broker && milvus,
            serde_json::json!({ "broker": broker, "milvus": milvus }),
        )
    }
}

/// Binds `address` (port 0 picks a free one) and serves the endpoints in
/// the background; returns the bound address.
pub async fn serve(
    address: SocketAddr,
    readiness: Arc<Readiness>,
) -> Result<SocketAddr, std::io::Error> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

/// The `/metrics` handler: the process's metrics in Prometheus text format.
pub async fn metrics_text() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics().encode())
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let (ready, report) = readiness.report();
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_string(),
    )
}
