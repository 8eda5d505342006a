#!/usr/bin/env bash
# The demo: start Milvus (left running) and a worker, publish fixtures/corpus
# through RabbitMQ as an upload service would, wait until it is indexed, then
# search it and evaluate the gold set, re-index it with the int8 model and
# roll back, as the README and docs/operations.md show. The worker is stopped with SIGTERM at
# the end (or on any failure), so only Milvus is left running.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TENANT=demo
bash scripts/milvus.sh start
cargo build --quiet --bin docpipe
docpipe=target/debug/docpipe

start_worker "$docpipe" "$DOCPIPE_HOME/logs/demo-worker.log"

heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

heading "docpipe backfill fixtures/corpus --tenant $TENANT --wait"
"$docpipe" backfill fixtures/corpus --tenant "$TENANT" --wait --timeout-secs 300

heading "docpipe search (hybrid): a paraphrase with no shared keywords"
"$docpipe" search "how do pollinating insects get through the cold months" --tenant "$TENANT" --top-k 3
heading "docpipe search --mode bm25: exact protocol vocabulary"
"$docpipe" search "x-dead-letter-exchange x-death" --mode bm25 --tenant "$TENANT" --top-k 3
heading "docpipe search --mode dense: a question"
"$docpipe" search "why does my bread starter have liquid on top" --mode dense --tenant "$TENANT" --top-k 3

heading "docpipe eval fixtures/queries.jsonl"
"$docpipe" eval fixtures/queries.jsonl --tenant "$TENANT"

heading "docpipe --pipeline pipelines/int8.toml reindex: the int8 model, without downtime"
"$docpipe" --pipeline pipelines/int8.toml reindex
heading "docpipe eval fixtures/queries.jsonl (int8 generation)"
"$docpipe" eval fixtures/queries.jsonl --tenant "$TENANT"
heading "docpipe rollback: the fp32 generation is live again"
"$docpipe" rollback

heading "docpipe status"
"$docpipe" status

heading "docpipe generations"
"$docpipe" generations

stop_worker
printf '\n'
log "demo complete. Milvus is still running (pid $(cat "$DOCPIPE_HOME/milvus/milvus.pid" 2>/dev/null || echo '?')); stop it with: scripts/milvus.sh stop"
