#!/usr/bin/env bash
# Installs what the console's browser tests (tests/console.rs) need:
# Chromium from Debian's packages and Playwright's driver library
# (playwright-core, no browser download) from the npm registry, at the
# versions tests/console/package-lock.json pins, into
# $DOCPIPE_HOME/console-tests. Only the tests need them: the console itself
# is plain HTML and JavaScript inside the docpipe binary.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v chromium >/dev/null; then
  apt_install "the console's browser tests (headless Chromium)" chromium
fi
command -v chromium >/dev/null || die "chromium was installed but is not on PATH"
command -v npm >/dev/null || die "npm (Node.js) is needed for the console's browser tests; install Debian's nodejs and npm"

target="$DOCPIPE_HOME/console-tests"
lock="$REPO_ROOT/tests/console/package-lock.json"
if [[ -d "$target/node_modules/playwright-core" ]] && cmp -s "$lock" "$target/package-lock.json"; then
  log "console tests: $(chromium --version 2>/dev/null), playwright-core in $target"
  exit 0
fi
log "installing playwright-core from the npm registry into $target"
mkdir -p "$target"
cp "$REPO_ROOT/tests/console/package.json" "$lock" "$target/"
(cd "$target" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
log "console tests: $(chromium --version 2>/dev/null), playwright-core in $target"
