#!/usr/bin/env bash
# Installs the ONNX Runtime shared library the embedder loads at run time
# (ort's load-dynamic): the one inside the pinned PyPI onnxruntime wheel,
# linked as $DOCPIPE_HOME/lib/libonnxruntime.so.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
library="$("$PY" - <<'PY'
import glob, os, onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
found = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so.*")))
print(found[-1] if found else "")
PY
)"
[[ -n "$library" ]] || die "the onnxruntime wheel has no libonnxruntime.so.* under onnxruntime/capi"
mkdir -p "$DOCPIPE_HOME/lib"
ln -sfn "$library" "$DOCPIPE_HOME/lib/libonnxruntime.so"
log "ONNX Runtime: $DOCPIPE_HOME/lib/libonnxruntime.so -> $library"
