#!/usr/bin/env bash
# Installs everything docpipe needs beyond the Rust toolchain, idempotently:
# the Python tools venv, the ONNX Runtime and PDFium libraries, Tesseract
# (Debian's tesseract-ocr, for OCR of scanned PDFs), the embedding model
# (converted to ONNX and verified), the Milvus standalone server and SeaweedFS
# (S3 object storage for parsed copies shared between machines). Then
# checks that RabbitMQ answers, starting the local broker if it is installed
# but stopped. Re-running skips whatever is already in place.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
bash "$REPO_ROOT/scripts/install-onnxruntime.sh"
bash "$REPO_ROOT/scripts/install-pdfium.sh"
bash "$REPO_ROOT/scripts/install-tesseract.sh"
bash "$REPO_ROOT/scripts/install-model.sh" >/dev/null
bash "$REPO_ROOT/scripts/milvus.sh" install
bash "$REPO_ROOT/scripts/milvus-lite.sh" install
bash "$REPO_ROOT/scripts/seaweedfs.sh" install

amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if [[ -n "${DOCPIPE_AMQP_URL:-}" ]]; then
  log "RabbitMQ: using DOCPIPE_AMQP_URL"
elif amqp_up; then
  log "RabbitMQ: answering on 127.0.0.1:5672"
elif command -v rabbitmq-server >/dev/null; then
  log "RabbitMQ is not answering on 127.0.0.1:5672; starting the local broker"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do amqp_up && break; sleep 1; done
  amqp_up || die "RabbitMQ did not come up on 127.0.0.1:5672 within 60 s"
else
  die "no RabbitMQ on 127.0.0.1:5672; start one (see docker-compose.yml) or set DOCPIPE_AMQP_URL"
fi
log "set-up complete"
