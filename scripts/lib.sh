# Shared helpers for the set-up scripts. Source it; do not run it.
# Everything the project installs lives under DOCPIPE_HOME (default: .docpipe
# in the repository), so a clean clone starts from nothing and `rm -rf .docpipe`
# resets it.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCPIPE_HOME="${DOCPIPE_HOME:-$REPO_ROOT/.docpipe}"
VENV="$DOCPIPE_HOME/venv"
PY="$VENV/bin/python"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Installs Debian packages ($2...) with apt-get, as root or through sudo;
# $1 says what needs them, for the error on systems without apt-get.
apt_install() {
  local purpose="$1"
  shift
  command -v apt-get >/dev/null || die "$purpose: this is not a Debian-like system; install $* by other means"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  log "installing from Debian's packages: $* ($purpose)"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Creates the tools venv once; re-running is cheap when requirements are unchanged.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$REPO_ROOT/scripts/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "creating Python tools venv in $VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip >/dev/null
  "$PY" -m pip install --quiet -r "$REPO_ROOT/scripts/requirements.txt"
  echo "$want" >"$stamp"
}

# Starts `$1 worker` (a docpipe binary) in the background with its log in $2
# and waits until it is ready; `stop_worker` stops it with SIGTERM, and so
# does leaving the calling script, however it ends.
start_worker() {
  local binary="$1"
  WORKER_LOG="$2"
  mkdir -p "$(dirname "$WORKER_LOG")"
  "$binary" worker >"$WORKER_LOG" 2>&1 &
  WORKER_PID=$!
  trap stop_worker EXIT
  for _ in $(seq 1 120); do
    grep -q "worker ready" "$WORKER_LOG" && break
    kill -0 "$WORKER_PID" 2>/dev/null || { cat "$WORKER_LOG" >&2; die "the worker failed to start"; }
    sleep 0.5
  done
  grep -q "worker ready" "$WORKER_LOG" || { cat "$WORKER_LOG" >&2; die "the worker did not become ready in 60 s"; }
  log "worker ready (log: $WORKER_LOG)"
}

stop_worker() {
  if [[ -n "${WORKER_PID:-}" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID"
    wait "$WORKER_PID" || die "the worker did not exit cleanly; see $WORKER_LOG"
    log "worker stopped cleanly"
  fi
  trap - EXIT
}

# Stops the server whose pid is in $2 (SIGTERM, then SIGKILL after 10 s) and
# removes the pid file; $1 names it in messages.
stop_by_pidfile() {
  local name="$1" pidfile="$2" pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "$name stopped"
  else
    log "$name is not running from this checkout"
  fi
  rm -f "$pidfile"
}
