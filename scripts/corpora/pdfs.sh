#!/usr/bin/env bash
# The real-PDF comparison, in one command: builds or reuses the corpus
# (pdfs.py, kept in $DOCPIPE_HOME/corpora/pdfs), then compares pdftotext,
# mutool and docpipe's PDF text extraction on it. Without --docpipe or
# --candidate it builds and compares the release binary.
#   scripts/corpora/pdfs.sh [pdfs.py options]
#   scripts/corpora/pdfs.sh --candidate pdf-extract=target/release/docpipe:DOCPIPE_PDF_ENGINE=pdf-extract \
#                           --candidate pdfium=target/release/docpipe:DOCPIPE_PDF_ENGINE=pdfium
# Needs Debian's poppler-utils, mupdf-tools and time; pdfs.py needs only
# Python's standard library.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

for tool in pdftotext pdfinfo mutool; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install -y poppler-utils mupdf-tools"
done
[[ -x /usr/bin/time ]] || die "GNU time is missing: apt-get install -y time"

if [[ " $* " != *" --docpipe"* && " $* " != *" --candidate"* && " $* " != *" --corpus-only "* ]]; then
  log "building the release binary"
  cargo build --quiet --release --bin docpipe
fi
exec python3 scripts/corpora/pdfs.py "$@"
