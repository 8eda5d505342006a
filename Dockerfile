# docpipe worker image: the `docpipe` binary, ONNX Runtime and the verified
# all-MiniLM-L6-v2 embedding model, running as a non-root user.
#
#   docker build -t docpipe .          # or: docker compose build
#   docker run --rm docpipe docpipe --help
#
# The default command is `docpipe worker`; any other subcommand is given as a
# full command (there is no ENTRYPOINT), e.g. `docpipe search "..."`. See
# docker-compose.yml for a complete setup with RabbitMQ and Milvus.
#
# Plain Dockerfile syntax only (no cache mounts or other BuildKit extras), so it
# builds with BuildKit and with the classic builder alike.

# --------------------------------------------------------------------------
# 1. Build the docpipe binary (workspace: edition 2024, rust-version 1.92).
# --------------------------------------------------------------------------
FROM rust:1.92-bookworm AS builder
WORKDIR /src
# The whole workspace (see .dockerignore: no target/, .docpipe/ or .git/).
# Every member crate must be present for cargo to load the workspace.
COPY . .
# --locked: build exactly the dependency versions in Cargo.lock.
RUN cargo build --release --locked --bin docpipe

# --------------------------------------------------------------------------
# 2. Install ONNX Runtime and the embedding model with the project's own
#    set-up scripts (a venv from scripts/requirements.txt, everything from
#    PyPI; the model is converted to ONNX and verified there). The Python
#    tools stay in this stage; the runtime image takes only the results.
# --------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS model
# ENV rather than a `DOCPIPE_HOME=... cmd1 && cmd2` prefix, which would only
# apply to cmd1: both scripts must install into the same place.
ENV DOCPIPE_HOME=/opt/docpipe \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# scripts/lib.sh takes the repository root to be the parent of scripts/.
COPY scripts/ scripts/
# install-onnxruntime.sh and install-pdfium.sh make $DOCPIPE_HOME/lib/*.so
# symlinks into the venv, which the runtime image does not have: stage the
# real files (cp -L) and the model directory for the next stage.
RUN bash scripts/install-onnxruntime.sh \
    && bash scripts/install-pdfium.sh \
    && bash scripts/install-model.sh \
    && mkdir -p /stage/lib /stage/models \
    && cp -L "$DOCPIPE_HOME/lib/libonnxruntime.so" /stage/lib/libonnxruntime.so \
    && cp -L "$DOCPIPE_HOME/lib/libpdfium.so" /stage/lib/libpdfium.so \
    && cp -R "$DOCPIPE_HOME/models/all-MiniLM-L6-v2" /stage/models/all-MiniLM-L6-v2 \
    && test -s /stage/models/all-MiniLM-L6-v2/model.onnx \
    && test -s /stage/models/all-MiniLM-L6-v2/docpipe-model.toml

# --------------------------------------------------------------------------
# 3. Runtime.
# --------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# libonnxruntime.so and libpdfium.so need only glibc, libstdc++ and libgcc_s (no libgomp);
# Tesseract with English reads scanned PDF pages when a pipeline sets parse.ocr;
# ca-certificates for TLS endpoints (e.g. a remote Milvus over https).
# Versions are not pinned: bookworm's security updates replace them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
        tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

# Non-root user. /var/lib/docpipe/index is created here, owned by that user,
# so a named volume mounted on it starts out writable by the worker.
# /srv/docs is the default allowed root (where uploaded files are mounted).
RUN groupadd --system --gid 10001 docpipe \
    && useradd --system --uid 10001 --gid docpipe --no-create-home \
        --home-dir /var/lib/docpipe --shell /usr/sbin/nologin docpipe \
    && mkdir -p /var/lib/docpipe/index /srv/docs \
    && chown -R docpipe:docpipe /var/lib/docpipe

COPY --from=model /stage/ /opt/docpipe/
COPY pipelines/ /etc/docpipe/pipelines/
COPY --from=builder /src/target/release/docpipe /usr/local/bin/docpipe

# The pipeline file's relative paths (.docpipe/..., fixtures) are overridden
# here; the queue and Milvus URLs are set by whoever runs the container
# (DOCPIPE_AMQP_URL, DOCPIPE_MILVUS_URL; see docker-compose.yml).
ENV DOCPIPE_HOME=/opt/docpipe \
    DOCPIPE_PIPELINE=/etc/docpipe/pipelines/default.toml \
    DOCPIPE_MODEL_DIR=/opt/docpipe/models/all-MiniLM-L6-v2 \
    ORT_DYLIB_PATH=/opt/docpipe/lib/libonnxruntime.so \
    DOCPIPE_PDFIUM_PATH=/opt/docpipe/lib/libpdfium.so \
    DOCPIPE_INDEX_DIR=/var/lib/docpipe/index/docpipe_chunks \
    DOCPIPE_ALLOWED_ROOTS=/srv/docs

WORKDIR /var/lib/docpipe
# Numeric, so runtimes can check it is not root without reading /etc/passwd.
USER 10001:10001

# On SIGTERM (docker stop) the worker finishes its in-flight documents before
# exiting: allow time for that (compose: stop_grace_period; plain Docker:
# `docker stop -t 120`), as the default 10 s may cut a document short.
CMD ["docpipe", "worker"]
