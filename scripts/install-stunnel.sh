#!/usr/bin/env bash
# Installs stunnel from Debian's packages (stunnel4) when it is missing:
# `make test` puts it on loopback in front of the local RabbitMQ as a TLS
# terminator, so that a worker is tested consuming through amqps://. Only
# the tests need it; docpipe itself speaks TLS (rustls).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v stunnel >/dev/null || command -v stunnel4 >/dev/null; then
  log "stunnel: $( (stunnel -version 2>&1 || stunnel4 -version 2>&1) | grep -m1 -i "^stunnel")"
  exit 0
fi
command -v apt-get >/dev/null || die "stunnel is missing and this is not a Debian-like system: install stunnel (the amqps test needs it)"
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
log "installing stunnel from Debian's packages: stunnel4 (the amqps test's TLS terminator)"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq stunnel4 >/dev/null
command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || die "stunnel4 was installed but no stunnel program is on PATH"
log "stunnel: $( (stunnel -version 2>&1 || true) | grep -m1 -i "^stunnel")"
