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
apt_install "the amqps test's TLS terminator (stunnel)" stunnel4
command -v stunnel >/dev/null || command -v stunnel4 >/dev/null || die "stunnel4 was installed but no stunnel program is on PATH"
log "stunnel: $( (stunnel -version 2>&1 || true) | grep -m1 -i "^stunnel")"
