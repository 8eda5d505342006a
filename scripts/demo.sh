#!/usr/bin/env bash
# The demo: start Milvus (left running) and a worker, publish fixtures/corpus
# through RabbitMQ as an upload service would, wait until it is indexed, then
# search it (from the CLI and through `docpipe serve`) and evaluate the gold set, re-index it with the int8 model and
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

heading "docpipe backfill fixtures/formats: Word, PowerPoint, Excel, OpenDocument, EPUB, Markdown, RTF, text, CSV"
"$docpipe" backfill fixtures/formats --tenant formats --wait --timeout-secs 300
heading "docpipe search: the slide deck whose speaker notes answer the question"
"$docpipe" search "what does a closed anemone feel like to touch" --tenant formats --top-k 2
heading "docpipe eval fixtures/formats/queries.jsonl"
"$docpipe" eval fixtures/formats/queries.jsonl --tenant formats

heading "docpipe serve: the retrieval API, with a key for tenant $TENANT"
keys="$DOCPIPE_HOME/demo-keys.toml"
rm -f "$keys"
key="$("$docpipe" keys add demo-app --tenant "$TENANT" --file "$keys" 2>/dev/null)"
port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$docpipe" serve --listen "127.0.0.1:$port" --keys "$keys" 2>"$DOCPIPE_HOME/logs/demo-serve.log" &
serve_pid=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.5
done
echo "curl -X POST localhost:$port/v1/search -H 'Authorization: Bearer dpk_…' -d '{\"query\": \"how do tides work\", \"top_k\": 2}'"
curl -sf "http://127.0.0.1:$port/v1/search" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"query": "how do tides work", "top_k": 2}' \
  | "$PY" -c 'import json, sys; answer = json.load(sys.stdin); print(json.dumps({"documents": [(hit["document_id"], round(hit["score"], 4)) for hit in answer["documents"]], "timings": answer["timings"]}, indent=1))' \
  || { kill "$serve_pid"; die "the search API did not answer; see $DOCPIPE_HOME/logs/demo-serve.log"; }
echo "curl localhost:$port/v1/documents/guides/rabbitmq-operations -H 'Authorization: Bearer dpk_…'"
curl -sf "http://127.0.0.1:$port/v1/documents/guides/rabbitmq-operations" -H "Authorization: Bearer $key" \
  | "$PY" -c 'import json, sys; answer = json.load(sys.stdin); print(json.dumps({key: answer[key] for key in ("searchable", "generations")}, indent=1))' \
  || { kill "$serve_pid"; die "the document API did not answer; see $DOCPIPE_HOME/logs/demo-serve.log"; }
echo "the console: http://127.0.0.1:$port/ (docpipe serve serves it; enter an API key)"
curl -sf "http://127.0.0.1:$port/" | grep -q "<title>docpipe console</title>" \
  || { kill "$serve_pid"; die "the console was not served; see $DOCPIPE_HOME/logs/demo-serve.log"; }
kill -TERM "$serve_pid"
wait "$serve_pid" || die "the server did not stop cleanly; see $DOCPIPE_HOME/logs/demo-serve.log"

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
