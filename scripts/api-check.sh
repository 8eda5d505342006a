#!/usr/bin/env bash
# The OpenAPI conformance check of `docpipe serve`, with schemathesis from
# PyPI in a venv of its own (tests only).
#   scripts/api-check.sh install
#   scripts/api-check.sh run BASE_URL API_KEY    (exit status: schemathesis')
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECK_HOME="$DOCPIPE_HOME/api-check"
REQUIREMENTS="$REPO_ROOT/scripts/api-check-requirements.txt"

cmd_install() {
  if [[ -x "$CHECK_HOME/bin/schemathesis" ]] && cmp -s "$REQUIREMENTS" "$CHECK_HOME/requirements.txt"; then
    return
  fi
  log "installing schemathesis (OpenAPI conformance checks) from PyPI into $CHECK_HOME"
  python3 -m venv "$CHECK_HOME"
  "$CHECK_HOME/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$CHECK_HOME/requirements.txt"
}

cmd_run() {
  local base="$1" key="$2"
  cmd_install
  # schemathesis keeps replay files in its working directory: not in the repo.
  local work
  work="$(mktemp -d)"
  cd "$work"
  # Deterministic, bounded: the same requests every run, a few per operation.
  "$CHECK_HOME/bin/schemathesis" --config-file "$REPO_ROOT/scripts/api-check.toml" \
    run "$base/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks all \
    --max-examples 20 \
    --generation-deterministic \
    --workers 1 \
    --no-shrink \
    --report-dir "$work/report"
}

case "${1:-}" in
  install) cmd_install ;;
  run) shift; [[ $# -eq 2 ]] || die "usage: scripts/api-check.sh run BASE_URL API_KEY"; cmd_run "$@" ;;
  *) echo "usage: scripts/api-check.sh <install|run BASE_URL API_KEY>" >&2; exit 2 ;;
esac
