#!/usr/bin/env bash
# Runs the examples in examples/ as `make test` does: two need no worker
# (one no service at all), the third publishes to a worker started here and
# waits for its event, as an upload service would.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

cargo build --quiet --bin docpipe --examples
cargo run --quiet --example embed_a_file -- fixtures/corpus/man-ls.1.html
cargo run --quiet --example index_and_search
start_worker target/debug/docpipe "$DOCPIPE_HOME/logs/examples-worker.log"
cargo run --quiet --example publish_and_wait -- fixtures/corpus/guides/rabbitmq-operations.pdf
stop_worker
