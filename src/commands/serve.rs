//! `docpipe serve` and `docpipe keys`.

use super::tenant;
use super::worker::shutdown_signal;
use crate::cli::{KeysCommand, ServeArgs};
use anyhow::Context as _;
use docpipe_core::PipelineConfig;
use docpipe_serve::{ApiKeys, Limits, Role, Server};
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(config: &PipelineConfig, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let keys = ApiKeys::load(&args.keys).context("`docpipe keys add` makes a keys file")?;
    if keys.is_empty() {
        tracing::warn!(file = %args.keys.display(), "no API keys: every /v1 request will be refused");
    }
    let limits = Limits {
        max_in_flight: args.max_in_flight.max(1),
        request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        ..Limits::default()
    };
    let server = Server::open(config, keys, limits).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using it?",
                args.listen
            )
        })?;
    tracing::info!(
        address = %listener.local_addr()?,
        backend = config.index.backend.as_str(),
        collection = %config.milvus.collection,
        "serving the retrieval API"
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("server stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

pub fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Add {
        name,
        tenant: tenant_name,
        admin,
        file,
    } = command;
    let role = match (admin, tenant_name) {
        (true, _) => Role::Admin,
        (false, Some(name)) => Role::Tenant(tenant(&name)?),
        (false, None) => anyhow::bail!("name a tenant (--tenant) or make an admin key (--admin)"),
    };
    let key = docpipe_serve::keys::add_key(&file, &name, &role)?;
    eprintln!(
        "added key {name:?} to {}; it is shown once, store it as a secret:",
        file.display()
    );
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}
