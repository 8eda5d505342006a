#!/usr/bin/env bash
# Installs and runs milvus-lite 3.2.2, the Milvus project's own pure-Python
# server with full-text search (BM25 functions, sparse vectors), hybrid
# search and aliases: the only Milvus with BM25 that runs on this machine
# (the PyPI `milvus` wheel stops at 2.3.5). The `milvus` index backend is
# tested against it; never take performance figures from it.
#
#   scripts/milvus-lite.sh install   pip-install the pinned packages (idempotent)
#   scripts/milvus-lite.sh start     start in the background (installs first)
#   scripts/milvus-lite.sh stop      SIGTERM the server started by `start`
#   scripts/milvus-lite.sh status    exit 0 if it answers, 3 if not
#   scripts/milvus-lite.sh reset     stop it and delete its data
#
# Everything lives in $DOCPIPE_HOME/milvus-lite (venv/, data/, server.log,
# server.pid). gRPC on 127.0.0.1:19541 only. Versions are pinned in
# scripts/milvus-lite-requirements.txt.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LITE_HOME="$DOCPIPE_HOME/milvus-lite"
LITE_VENV="$LITE_HOME/venv"
LITE_REQUIREMENTS="$REPO_ROOT/scripts/milvus-lite-requirements.txt"
LITE_PIDFILE="$LITE_HOME/server.pid"
LITE_LOG="$LITE_HOME/server.log"
LITE_PORT=19541

lite_up() { (exec 3<>"/dev/tcp/127.0.0.1/$LITE_PORT") 2>/dev/null; }

cmd_install() {
  local want
  want="$(sha256sum "$LITE_REQUIREMENTS" | cut -d' ' -f1)"
  if [[ -x "$LITE_VENV/bin/milvus-lite" && "$(cat "$LITE_HOME/.installed" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  mkdir -p "$LITE_HOME"
  log "installing milvus-lite 3.2.2 into $LITE_VENV (PyPI, ~150 MB with faiss and pyarrow)"
  python3 -m venv "$LITE_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$LITE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$LITE_REQUIREMENTS" >&2 \
    || die "pip could not install milvus-lite (is PyPI reachable?)"
  echo "$want" >"$LITE_HOME/.installed"
}

cmd_start() {
  if lite_up; then
    log "milvus-lite is already answering on 127.0.0.1:$LITE_PORT"
    return 0
  fi
  cmd_install
  mkdir -p "$LITE_HOME/data"
  log "starting milvus-lite on 127.0.0.1:$LITE_PORT (log: $LITE_LOG)"
  setsid nohup "$LITE_VENV/bin/milvus-lite" server --data-dir "$LITE_HOME/data" \
    --host 127.0.0.1 --port "$LITE_PORT" </dev/null >"$LITE_LOG" 2>&1 &
  echo $! >"$LITE_PIDFILE"
  for _ in $(seq 1 120); do
    lite_up && break
    kill -0 "$(cat "$LITE_PIDFILE")" 2>/dev/null || { tail -20 "$LITE_LOG" >&2; die "milvus-lite exited during start-up"; }
    sleep 0.5
  done
  lite_up || die "milvus-lite did not answer on 127.0.0.1:$LITE_PORT within 60 s; see $LITE_LOG"
  log "milvus-lite is up: http://127.0.0.1:$LITE_PORT"
}

cmd_stop() { stop_by_pidfile milvus-lite "$LITE_PIDFILE"; }

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  reset) cmd_stop; rm -rf "$LITE_HOME/data" ;;
  status) if lite_up; then echo "milvus-lite answers on 127.0.0.1:$LITE_PORT"; else echo "milvus-lite is not running"; exit 3; fi ;;
  *) echo "usage: scripts/milvus-lite.sh <install|start|stop|status|reset>" >&2; exit 2 ;;
esac
