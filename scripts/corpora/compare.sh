#!/usr/bin/env bash
# The manual-page gold set, in one command: builds the corpus (manpages.py;
# kept in OUT between runs), indexes it with a release build on a
# collection and index of its own, evaluates docpipe in every mode, and
# runs the baselines a user would try first (baselines.py) on the same
# documents and queries. Hybrid search is evaluated as configured, by
# Reciprocal Rank Fusion of chunks and of documents, with BM25 ranking
# the text alone (no title field), and without the opening ranking.
#   scripts/corpora/compare.sh [OUT (default /tmp/manpages)] [COUNT (default 3000)]
# Needs groff (Debian `groff`) and Milvus (scripts/milvus.sh start).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

OUT="${1:-/tmp/manpages}"
COUNT="${2:-3000}"
groff -Thtml </dev/null >/dev/null 2>&1 && groff -Tpdf </dev/null >/dev/null 2>&1 \
  || die "groff cannot render HTML and PDF: apt-get install groff (groff-base is not enough)"
ensure_venv
bash scripts/milvus.sh start

if [[ ! -f "$OUT/queries.jsonl" || ! -d "$OUT/text" ]]; then
  log "rendering $COUNT manual pages into $OUT"
  "$PY" scripts/corpora/manpages.py --out "$OUT" --count "$COUNT"
fi

cargo build --quiet --release --bin docpipe
docpipe="$REPO_ROOT/target/release/docpipe"
export DOCPIPE_MILVUS_COLLECTION="mangold_$(basename "$OUT" | tr -c 'a-zA-Z0-9_\n' _)"
export DOCPIPE_INDEX_DIR="$OUT/index"
export DOCPIPE_ALLOWED_ROOTS="$OUT/docs"

start_worker "$docpipe" "$OUT/worker.log"
"$docpipe" backfill "$OUT/docs" --tenant man --wait --timeout-secs 600 >&2
stop_worker

echo "docpipe (all-MiniLM-L6-v2, $(grep -c . "$OUT/queries.jsonl") queries), hybrid fusing scores (the default):"
"$docpipe" eval "$OUT/queries.jsonl" --tenant man --k 10
# The same index with one query-time setting changed: hybrid fusing by
# rank (of chunks, of documents), BM25 ranking the text alone (no title
# field), and no opening ranking.
variant() { # NAME SED-PROGRAM DESCRIPTION
  sed "$2" pipelines/default.toml > "$OUT/$1.toml"
  cmp -s pipelines/default.toml "$OUT/$1.toml" && die "pipelines/default.toml has no line for $1 to vary"
  echo
  echo "docpipe $3:"
  "$docpipe" --pipeline "$OUT/$1.toml" eval "$OUT/queries.jsonl" --tenant man --k 10 --mode hybrid
}
variant chunk-rrf 's/^fusion = "score"/fusion = "chunk"/' "hybrid, Reciprocal Rank Fusion of chunks"
variant document-rrf 's/^fusion = "score"/fusion = "document"/' "hybrid, Reciprocal Rank Fusion of documents"
variant text-only 's/^context_boost = .*/context_boost = 0/' "hybrid, BM25 on the text alone (context_boost = 0)"
variant no-openings 's/^opening_weight = .*/opening_weight = 0/' "hybrid without the opening ranking (opening_weight = 0)"
echo
"$PY" scripts/corpora/baselines.py --corpus "$OUT" --model "$DOCPIPE_HOME/models/all-MiniLM-L6-v2"
