#!/usr/bin/env bash
# Installs and runs a real Milvus standalone server on this machine, without
# Docker. The server comes from the PyPI wheel `milvus==2.3.5` (the
# "milvus-lite" package), which bundles the standalone binary with embedded
# etcd, rocksmq and local storage. Nothing else is needed on the machine.
#
#   scripts/milvus.sh install   download + unpack + render config (idempotent)
#   scripts/milvus.sh start     start in the background, wait until healthy
#   scripts/milvus.sh stop      SIGTERM (then SIGKILL after $MILVUS_STOP_TIMEOUT, default 30 s)
#   scripts/milvus.sh status    exit 0 if healthy, 1 if up but unhealthy, 3 if not running
#   scripts/milvus.sh reset     stop and delete all Milvus data
#
# MILVUS_AUTHORIZATION=true at `start` turns on Milvus's user authentication
# (sign in as root / Milvus, the server's default, to create other users);
# a start without it turns it off again. tests/faults.rs uses it to check
# that docpipe signs in.
#
# Everything lives in $DOCPIPE_HOME/milvus:
#   bin/            the milvus binary and its shared libraries
#   share/          the config template shipped in the wheel
#   configs/        the rendered milvus.yaml (Milvus reads ./configs/)
#   data/           etcd metadata, rocksmq log, segment files
#   logs/           milvus.out (the server log: stdout+stderr, rotated to
#                   milvus.out.1 at each start), etcd.log, milvus.*.INFO (C++)
#   milvus.pid      pid of the server started by `start`
#
# Endpoints: gRPC 127.0.0.1:19530, health/metrics http://127.0.0.1:9091/healthz.
#
# Known limits of this Milvus build (not configurable in 2.3.5):
# - Only the embedded etcd (2379/2380) binds to loopback. The gRPC ports and
#   9091 listen on all interfaces; the `ip:` settings only choose the address
#   the components advertise to each other (we pin it to 127.0.0.1).
# - It keeps a lock file in /run/milvus/standalone.pid (or /tmp/milvus if /run
#   is not writable) and a session file /tmp/milvus/server_id_<pid>; `stop`
#   removes the latter. So one Milvus per machine, which the fixed ports
#   imply anyway.
# - On SIGTERM it stops in ~6 s and then prints a harmless
#   "panic: context canceled" with a goroutine dump while closing embedded
#   etcd; all components have shut down cleanly by then.
# - SIGTERM within a few seconds of dropping a loaded collection hangs the
#   shutdown (QueryCoord never finishes stopping), so `stop` ends in SIGKILL.
#   Data survives that (etcd and rocksmq are write-ahead logged).
# - After a restart, healthz is OK before the server is usable; `start` waits
#   for the previous run's sessions to expire (see stale_sessions).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MILVUS_VERSION="2.3.5"
# sha256 of milvus-2.3.5-py3-none-manylinux2014_x86_64.whl as published on PyPI.
MILVUS_WHEEL_SHA256="69515a0630ce29fd10e101fa442afea8ca1387b93a456cd9bd41fdf3deb93d04"

MILVUS_HOME="$DOCPIPE_HOME/milvus"
MILVUS_BIN_DIR="$MILVUS_HOME/bin"
MILVUS_BIN="$MILVUS_BIN_DIR/milvus"
MILVUS_SHARE="$MILVUS_HOME/share"
MILVUS_CONF_DIR="$MILVUS_HOME/configs"
MILVUS_DATA="$MILVUS_HOME/data"
MILVUS_LOGS="$MILVUS_HOME/logs"
MILVUS_OUT="$MILVUS_LOGS/milvus.out"
MILVUS_PIDFILE="$MILVUS_HOME/milvus.pid"
MILVUS_STAMP="$MILVUS_HOME/.installed"

GRPC_PORT=19530
METRICS_PORT=9091
HEALTHZ_URL="http://127.0.0.1:$METRICS_PORT/healthz"
ETCD_URL="http://127.0.0.1:2379"   # the embedded etcd (loopback only)
SESSION_TTL=10                     # common.session.ttl in the rendered config
# Every port the standalone server opens (checked with ss): proxy, proxy
# internal, metrics/healthz, embedded etcd client+peer, rootcoord, querycoord,
# querynode, indexnode, datacoord, datanode. (indexCoord's 22930 is unused:
# in 2.3 it runs inside datacoord.)
MILVUS_PORTS=(19530 19529 9091 2379 2380 53100 19531 21123 21121 13333 21124)

START_TIMEOUT=90   # seconds to wait for /healthz after starting
STOP_TIMEOUT="${MILVUS_STOP_TIMEOUT:-30}"  # seconds to wait after SIGTERM before SIGKILL

# ---------------------------------------------------------------- helpers ---

usage() {
  cat >&2 <<EOF
usage: scripts/milvus.sh <install|start|stop|status|reset>

  install   download Milvus $MILVUS_VERSION into $MILVUS_HOME (idempotent)
  start     start Milvus in the background (installs first if needed)
  stop      stop the Milvus started by 'start'
  status    report whether Milvus is running (exit 0 healthy, 1 unhealthy, 3 not running)
  reset     stop Milvus and delete its data directory
EOF
}

have() { command -v "$1" >/dev/null 2>&1; }

# Serialises install/start/stop/reset of this checkout. The lock fd is closed
# for the server process so a running Milvus never holds it.
take_lock() {
  mkdir -p "$MILVUS_HOME"
  have flock || return 0
  exec 9>"$MILVUS_HOME/.lock"
  flock -w 120 9 || die "another 'scripts/milvus.sh' is still running (lock $MILVUS_HOME/.lock)"
}

# True when the health endpoint answers OK.
healthz_ok() {
  local body
  if have curl; then
    body="$(curl -fsS --max-time 2 "$HEALTHZ_URL" 2>/dev/null)" || return 1
  else
    body="$(python3 - "$HEALTHZ_URL" 2>/dev/null <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    print(r.read().decode("utf-8", "replace"))
PY
)" || return 1
  fi
  [[ "$body" == *OK* ]]
}

# True when $1 is a live process running this checkout's milvus binary.
is_our_milvus() {
  local pid="$1" exe
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  exe="${exe% (deleted)}"
  [[ "$exe" == "$MILVUS_BIN" ]]
}

# Pid of the running server of this checkout, or nothing. Uses the pid file,
# falling back to a scan for processes executing exactly $MILVUS_BIN (covers a
# lost pid file).
our_pid() {
  local pid exe p
  if [[ -f "$MILVUS_PIDFILE" ]]; then
    pid="$(tr -dc '0-9' <"$MILVUS_PIDFILE")"
    if is_our_milvus "$pid"; then echo "$pid"; return 0; fi
  fi
  for p in /proc/[0-9]*; do
    exe="$(readlink "$p/exe" 2>/dev/null || true)"
    if [[ "${exe% (deleted)}" == "$MILVUS_BIN" ]]; then echo "${p#/proc/}"; return 0; fi
  done
  return 0
}

rss_of() { awk '/^VmRSS:/ {printf "%d MB", $2/1024}' "/proc/$1/status" 2>/dev/null || true; }

# Number of sessions in the embedded etcd left by a previous run of the
# server (a lower ServerID than the newest). Until they expire, Milvus 2.3.5
# accepts connections but blocks queries and inserts. 0 if etcd is unreachable.
stale_sessions() {
  local n
  n="$(python3 - "$ETCD_URL" 2>/dev/null <<'PY' || true
import base64, json, sys, urllib.request
b64 = lambda s: base64.b64encode(s.encode()).decode()
body = json.dumps({"key": b64("by-dev/meta/session/"), "range_end": b64("by-dev/meta/session0")})
req = urllib.request.Request(sys.argv[1] + "/v3/kv/range", data=body.encode(), method="POST")
with urllib.request.urlopen(req, timeout=2) as r:
    kvs = json.load(r).get("kvs", [])
ids = []
for kv in kvs:
    try:
        ids.append(int(json.loads(base64.b64decode(kv["value"]))["ServerID"]))
    except (ValueError, KeyError, TypeError):
        pass  # e.g. the "id" counter key
print(sum(1 for i in ids if i < max(ids)) if ids else 0)
PY
)"
  [[ "$n" =~ ^[0-9]+$ ]] && echo "$n" || echo 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log_tail() {
  if [[ -f "$MILVUS_OUT" ]]; then
    printf '\n----- last 40 lines of %s -----\n' "$MILVUS_OUT" >&2
    tail -n 40 "$MILVUS_OUT" >&2
    printf -- '-----\n' >&2
  fi
}

# ---------------------------------------------------------------- install ---

pip_cmd() {
  if [[ -x "$PY" ]] && "$PY" -m pip --version >/dev/null 2>&1; then
    echo "$PY"
  elif have python3 && python3 -m pip --version >/dev/null 2>&1; then
    echo python3
  else
    ensure_venv
    echo "$PY"
  fi
}

download_wheel() {
  local dest="$1" py req
  py="$(pip_cmd)"
  req="$dest/requirements.txt"
  printf 'milvus==%s --hash=sha256:%s\n' "$MILVUS_VERSION" "$MILVUS_WHEEL_SHA256" >"$req"
  log "downloading milvus==$MILVUS_VERSION from PyPI (~58 MB)"
  "$py" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    -r "$req" -d "$dest" >&2 \
    || die "pip could not download milvus==$MILVUS_VERSION (is PyPI reachable?)"
  local wheels=("$dest"/milvus-"$MILVUS_VERSION"-*.whl)
  if [[ -f "${wheels[0]}" ]]; then echo "${wheels[0]}"; fi
}

unpack_wheel() {
  local wheel="$1" dest="$2" f name
  mkdir -p "$dest/wheel" "$dest/bin" "$dest/share"
  if have unzip; then
    unzip -q -o "$wheel" 'milvus/data/*' -d "$dest/wheel"
  else
    python3 -m zipfile -e "$wheel" "$dest/wheel"
  fi
  local src="$dest/wheel/milvus/data"
  [[ -f "$src/bin/milvus.lzma" && -f "$src/config.yaml.template" ]] \
    || die "unexpected wheel layout: $src/bin/milvus.lzma or config.yaml.template missing"
  log "decompressing the Milvus binary and libraries"
  for f in "$src"/bin/*.lzma; do
    name="$(basename "$f" .lzma)"
    if have xz; then
      xz -dc "$f" >"$dest/bin/$name"
    else
      python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' \
        "$f" "$dest/bin/$name"
    fi
    chmod 755 "$dest/bin/$name"
  done
  cp "$src/config.yaml.template" "$src/glog.conf" "$dest/share/"
  rm -rf "$dest/wheel"
}

install_binaries() {
  if [[ -f "$MILVUS_STAMP" && "$(cat "$MILVUS_STAMP")" == "$MILVUS_VERSION $MILVUS_WHEEL_SHA256" \
        && -x "$MILVUS_BIN" && -f "$MILVUS_SHARE/config.yaml.template" ]]; then
    return 0
  fi
  [[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] \
    || die "the milvus $MILVUS_VERSION wheel only ships a Linux x86_64 binary (this is $(uname -s)/$(uname -m))"
  if [[ -n "$(our_pid)" ]]; then
    die "a Milvus from $MILVUS_BIN is running; run 'scripts/milvus.sh stop' before reinstalling"
  fi
  local stage="$MILVUS_HOME/.staging" wheel
  rm -rf "$stage"
  mkdir -p "$stage"
  wheel="$(download_wheel "$stage")"
  [[ -n "$wheel" ]] || die "pip reported success but no wheel is in $stage"
  unpack_wheel "$wheel" "$stage"
  rm -rf "$MILVUS_BIN_DIR" "$MILVUS_SHARE"
  mv "$stage/bin" "$MILVUS_BIN_DIR"
  mv "$stage/share" "$MILVUS_SHARE"
  rm -rf "$stage"
  echo "$MILVUS_VERSION $MILVUS_WHEEL_SHA256" >"$MILVUS_STAMP"
  log "Milvus $MILVUS_VERSION unpacked into $MILVUS_BIN_DIR ($(du -sh "$MILVUS_BIN_DIR" | cut -f1))"
}

# Renders share/config.yaml.template into configs/milvus.yaml the way the
# wheel's own launcher (milvus/__init__.py) does: `{{ name(type): default }}`
# placeholders get either our value or their default. Then pins the settings
# this project cares about. Rewrites the file only when the result changes.
render_config() {
  mkdir -p "$MILVUS_CONF_DIR" "$MILVUS_DATA" "$MILVUS_LOGS"
  local out="$MILVUS_CONF_DIR/milvus.yaml"
  python3 - "$MILVUS_SHARE/config.yaml.template" "$out.tmp" "$MILVUS_HOME" "$GRPC_PORT" "$SESSION_TTL" "${MILVUS_AUTHORIZATION:-false}" <<'PY' \
    || die "could not render $out"
import json, re, sys

template, out, home, grpc_port, session_ttl, authorization = sys.argv[1:7]
if authorization not in ("true", "false"):
    sys.exit(f"MILVUS_AUTHORIZATION must be true or false, not {authorization!r}")
text = open(template, encoding="utf-8").read()
q = json.dumps  # a JSON string is a valid double-quoted YAML scalar

values = {
    # where __init__.py's resolve_storage() puts things, relative to our home
    "etcd_log_path": q(f"{home}/logs/etcd.log"),
    # The wheel sets this to its logs dir, but then every line is written
    # twice (log.stdout stays true) and the file rotates up to 20 x 300 MB.
    # Empty = log to stdout only, i.e. to logs/milvus.out, one log per run.
    "system_log_path": q(""),
    "etcd_data_dir": q(f"{home}/data/etcd.data"),
    "local_storage_dir": q(f"{home}/data"),
    "rocksmq_data_dir": q(f"{home}/data/rocksmq"),
    "proxy_port": grpc_port,
    "authorization_enabled": authorization,
    # every other placeholder (ports, tls, log level) keeps its default
}

def fill(m):
    inner = m.group(1).strip()
    key, _, default = inner.partition(":")
    key = key.split("(")[0].strip()
    if key in values:
        return str(values[key])
    default = default.strip()
    if not default:
        sys.exit(f"template placeholder '{key}' has no default and no value")
    return default

text = re.sub(r"\{\{(.*?)\}\}", fill, text)
if "{{" in text or "}}" in text:
    sys.exit("unrendered placeholder left in the template")

def pin(pattern, repl, expect=None):
    global text
    text, n = re.subn(pattern, repl, text, flags=re.M)
    if n == 0 or (expect is not None and n != expect):
        sys.exit(f"config template changed: pattern {pattern!r} matched {n} times")

# SIGTERM otherwise waits up to 30 minutes for a graceful stop.
pin(r"^(  gracefulStopTimeout:) \d+", r"\1 5", expect=1)
# After a restart, the previous run's sessions (only rootcoord revokes its
# own on SIGTERM) stay in the embedded etcd for one session TTL, and queries
# block until they expire: ~30 s with the default TTL of 30. 10 keeps that
# short while leaving room for pauses under load (a component whose session
# expires kills the server).
pin(r"^(    ttl:) 30 ", rf"\1 {session_ttl} ", expect=1)
# Components advertise this address to each other. (It does not restrict
# which interface they bind: 2.3.5 listens on all of them.)
pin(r"^(  ip:)(\s*#)", r"\1 127.0.0.1\2", expect=7)
pin(r"^(  endpoints: )localhost:(\d+)$", r"\g<1>127.0.0.1:\2", expect=1)
# natsmq is not used (mq.type is rocksmq) but keep its paths inside our home.
pin(r"^(    storeDir:) /var/lib/milvus/nats", lambda m: f"{m.group(1)} {q(home + '/data/nats')}", expect=1)
pin(r"^(      logFile:) /tmp/milvus/logs/nats.log", lambda m: f"{m.group(1)} {q(home + '/logs/nats.log')}", expect=1)
# Assert the message queue is the embedded rocksmq (no Pulsar/Kafka needed).
pin(r"^(  type:) rocksmq$", r"\1 rocksmq", expect=1)

header = ("# Generated by scripts/milvus.sh from share/config.yaml.template"
          " (milvus wheel). Do not edit; edit the script.\n")
with open(out, "w", encoding="utf-8") as f:
    f.write(header + text)
PY
  if [[ -f "$out" ]] && cmp -s "$out.tmp" "$out"; then
    rm -f "$out.tmp"
  else
    mv "$out.tmp" "$out"
    log "rendered $out"
  fi
  cp "$MILVUS_SHARE/glog.conf" "$MILVUS_CONF_DIR/glog.conf"
}

cmd_install() {
  take_lock
  install_binaries
  render_config
  log "Milvus $MILVUS_VERSION is installed in $MILVUS_HOME"
}

# ------------------------------------------------------------ start/stop ---

# True when the running server's configuration has authentication set as
# MILVUS_AUTHORIZATION asks.
authorization_as_asked() {
  grep -q "^    authorizationEnabled: ${MILVUS_AUTHORIZATION:-false}\$" "$MILVUS_CONF_DIR/milvus.yaml" 2>/dev/null
}

cmd_start() {
  if healthz_ok && [[ -n "$(our_pid)" ]] && ! authorization_as_asked; then
    log "restarting Milvus to turn authentication $([[ "${MILVUS_AUTHORIZATION:-false}" == true ]] && echo on || echo off)"
    cmd_stop
  fi
  if healthz_ok; then
    local pid
    pid="$(our_pid)"
    if [[ -n "$pid" ]]; then
      log "Milvus is already running (pid $pid, $HEALTHZ_URL OK, gRPC 127.0.0.1:$GRPC_PORT)"
    else
      log "Milvus is already running at 127.0.0.1:$GRPC_PORT ($HEALTHZ_URL OK), started outside this checkout; reusing it"
    fi
    return 0
  fi
  take_lock
  install_binaries
  render_config

  local pid t0
  t0="$(date +%s.%N)"
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    log "Milvus (pid $pid) is running but not healthy yet; waiting for it"
  else
    rm -f "$MILVUS_PIDFILE"
    local p busy=()
    for p in "${MILVUS_PORTS[@]}"; do
      if port_in_use "$p"; then busy+=("$p"); fi
    done
    if ((${#busy[@]})); then
      die "port(s) ${busy[*]} on 127.0.0.1 are already in use by another program (check with: ss -ltnp); Milvus $MILVUS_VERSION needs ${MILVUS_PORTS[*]}"
    fi
    [[ -f "$MILVUS_OUT" ]] && mv -f "$MILVUS_OUT" "$MILVUS_OUT.1"
    # The C++ side (glog) starts two small files per run; drop week-old ones.
    find "$MILVUS_LOGS" -maxdepth 1 -type f -name 'milvus.*.log.*' -mtime +7 -delete 2>/dev/null || true
    log "starting Milvus $MILVUS_VERSION standalone (logs: $MILVUS_OUT)"
    # bash writes its own pid, then execs milvus in place, so the pid file
    # holds the server's pid. setsid+nohup detach it from this terminal and
    # session; fd 9 (our lock) is closed for it.
    # shellcheck disable=SC2016  # $$ and $1.. are for the inner bash
    DEPLOY_MODE=STANDALONE \
    METRICS_PORT="$METRICS_PORT" \
    LD_LIBRARY_PATH="$MILVUS_BIN_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      setsid nohup bash -c 'echo $$ >"$1" && cd "$2" && exec "$3" run standalone' \
        milvus-launch "$MILVUS_PIDFILE" "$MILVUS_HOME" "$MILVUS_BIN" \
        </dev/null >>"$MILVUS_OUT" 2>&1 9>&- &
    local waited=0
    while [[ ! -s "$MILVUS_PIDFILE" ]] && ((waited < 50)); do sleep 0.1; waited=$((waited + 1)); done
    pid="$(tr -dc '0-9' <"$MILVUS_PIDFILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] || { show_log_tail; die "Milvus did not start (no pid written to $MILVUS_PIDFILE)"; }
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until healthz_ok; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$MILVUS_PIDFILE"
      show_log_tail
      die "Milvus (pid $pid) exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail
      die "Milvus (pid $pid) did not answer $HEALTHZ_URL within ${START_TIMEOUT}s; it is still running, stop it with: scripts/milvus.sh stop"
    fi
    sleep 0.25
  done
  # healthz is OK before the server is usable after a restart; see stale_sessions.
  local stale
  stale="$(stale_sessions)"
  if ((stale > 0)); then
    log "waiting for $stale session(s) of the previous run to expire (up to ${SESSION_TTL}s + a few)"
    deadline=$((SECONDS + SESSION_TTL + 30))
    while ((stale > 0)) && ((SECONDS < deadline)); do
      sleep 0.5
      stale="$(stale_sessions)"
    done
    ((stale == 0)) || log "warning: $stale stale session(s) still registered; the first requests may block for a while"
  fi
  local took
  took="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
  log "Milvus is up after ${took}s: pid $pid, gRPC 127.0.0.1:$GRPC_PORT, health $HEALTHZ_URL, RSS $(rss_of "$pid")"
  log "data: $MILVUS_DATA   logs: $MILVUS_LOGS"
  log "stop it with: scripts/milvus.sh stop"
}

stop_server() {
  local pid
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$MILVUS_PIDFILE"
    if healthz_ok; then
      log "Milvus at 127.0.0.1:$GRPC_PORT was not started from this checkout ($MILVUS_BIN); leaving it running"
    else
      log "Milvus is not running"
    fi
    return 0
  fi
  log "stopping Milvus (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "Milvus did not exit within ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && die "Milvus (pid $pid) survived SIGKILL"
  fi
  rm -f "$MILVUS_PIDFILE"
  # Session file Milvus leaves behind because it panics on exit (see top).
  rm -f "/tmp/milvus/server_id_$pid"
  log "Milvus stopped"
}

cmd_stop() {
  take_lock
  stop_server
}

cmd_status() {
  local pid healthy=no
  pid="$(our_pid)"
  healthz_ok && healthy=yes
  if [[ -n "$pid" && "$healthy" == yes ]]; then
    echo "Milvus is running: pid $pid, RSS $(rss_of "$pid"), gRPC 127.0.0.1:$GRPC_PORT, $HEALTHZ_URL OK"
  elif [[ -n "$pid" ]]; then
    echo "Milvus process pid $pid is running but $HEALTHZ_URL does not answer OK (starting, or unhealthy; see $MILVUS_OUT)"
    return 1
  elif [[ "$healthy" == yes ]]; then
    echo "Milvus is running at 127.0.0.1:$GRPC_PORT ($HEALTHZ_URL OK), but not from this checkout"
  else
    echo "Milvus is not running"
    [[ -f "$MILVUS_PIDFILE" ]] && echo "(stale pid file $MILVUS_PIDFILE)"
    return 3
  fi
}

cmd_reset() {
  take_lock
  stop_server
  case "$MILVUS_DATA" in
    */milvus/data) ;;
    *) die "refusing to delete unexpected data path '$MILVUS_DATA'" ;;
  esac
  rm -rf "$MILVUS_DATA"
  mkdir -p "$MILVUS_DATA"
  log "deleted Milvus data in $MILVUS_DATA (start again with: scripts/milvus.sh start)"
}

# -------------------------------------------------------------------- main ---

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
