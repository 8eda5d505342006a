#!/usr/bin/env bash
# Installs Tesseract with its English data from Debian's packages
# (tesseract-ocr, tesseract-ocr-eng) when it is missing: docpipe runs the
# `tesseract` program to read scanned PDF pages when a pipeline sets
# parse.ocr = true, and `make test` checks that path. Other languages:
# apt-get install tesseract-ocr-<code> (e.g. tesseract-ocr-deu).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; then
  log "Tesseract: $(tesseract --version 2>/dev/null | head -1) with eng"
  exit 0
fi
apt_install "OCR of scanned PDFs (Tesseract with its English data)" tesseract-ocr tesseract-ocr-eng
tesseract --list-langs 2>/dev/null | grep -qx eng || die "Tesseract was installed but has no eng data"
log "Tesseract: $(tesseract --version 2>/dev/null | head -1) with eng"
