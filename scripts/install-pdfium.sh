#!/usr/bin/env bash
# Installs the PDFium shared library the PDF parser loads at run time: the
# one inside the pinned PyPI pypdfium2 wheel (pypdfium2_raw), linked as
# $DOCPIPE_HOME/lib/libpdfium.so.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
library="$("$PY" - <<'PY'
import os, pypdfium2_raw
path = os.path.join(os.path.dirname(pypdfium2_raw.__file__), "libpdfium.so")
print(path if os.path.isfile(path) else "")
PY
)"
[[ -n "$library" ]] || die "the pypdfium2 wheel has no pypdfium2_raw/libpdfium.so"
mkdir -p "$DOCPIPE_HOME/lib"
ln -sfn "$library" "$DOCPIPE_HOME/lib/libpdfium.so"
log "PDFium: $DOCPIPE_HOME/lib/libpdfium.so -> $library"
