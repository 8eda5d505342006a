#!/usr/bin/env python3
"""Builds a corpus of real documents and a known-item gold set from the
manual pages installed on this machine (written by other people, rendered
by groff): half HTML, half PDF, and each page's plain text (for the
baselines of scripts/corpora/baselines.py, which read text, not files).

Each page's one-line summary (the text after "name \\-" in its NAME section)
becomes its query and is removed from the rendered page, so a query never
matches its page word for word. Pages are picked deterministically (sorted,
then evenly spaced), so the same machine gives the same corpus.

    scripts/corpora/manpages.py --out /tmp/manpages --count 1000
    docpipe backfill /tmp/manpages/docs --tenant man --wait
    docpipe eval /tmp/manpages/queries.jsonl --tenant man

Needs groff (Debian `groff`: `-Thtml` and `-Tpdf`).
"""

import argparse
import concurrent.futures
import gzip
import json
import pathlib
import re
import subprocess
import sys
import tempfile

SECTIONS = ("man1", "man8")
MAX_SOURCE_BYTES = 200_000
NAME_LINE = re.compile(r"^(?P<names>.+?)\s*\\-\s*(?P<summary>.+)$")


def summary_of(source: str):
    """(line index, names, summary) of the NAME section's first line."""
    lines = source.splitlines()
    for index, line in enumerate(lines):
        if re.match(r'^\.S[Hh]\s+"?NAME"?\s*$', line):
            for offset in range(index + 1, min(index + 4, len(lines))):
                match = NAME_LINE.match(lines[offset])
                if match:
                    return offset, match["names"], match["summary"]
            return None
    return None


def clean_summary(summary: str) -> str:
    """The summary as a person would type it: no roff escapes or fonts."""
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[^]]*\]", "", summary)
    text = re.sub(r"\\\(..|\\\[[^]]*\]", " ", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\ ", " ")
    text = re.sub(r"\\.", "", text)
    return " ".join(text.split())


def render(source: str, device: str) -> bytes:
    # For text: no bold, underline or overstrike, only the characters.
    plain = ["-P-cbou"] if device == "utf8" else []
    # grohtml writes the images of tables and equations into its working
    # directory; they are not part of the page's text.
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["groff", "-man", f"-T{device}", "-Wall", *plain],
            input=source.encode("utf-8", "replace"),
            capture_output=True,
            timeout=60,
            check=False,
            cwd=scratch,
        )
    return result.stdout if result.returncode == 0 else b""


def render_page(job) -> bool:
    """Renders one held-out page into its document and its plain text;
    whether it rendered (pages rendered by an earlier run are kept)."""
    held_out, device, target, text = job
    if not target.exists():
        rendered = render(held_out, device)
        if not rendered:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendered)
    if not text.exists():
        text.parent.mkdir(parents=True, exist_ok=True)
        text.write_bytes(render(held_out, "utf8"))
    return True


def candidates(root: pathlib.Path):
    for section in SECTIONS:
        directory = root / section
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.is_symlink() or not path.name.endswith(".gz"):
                continue
            yield path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--man-root", type=pathlib.Path, default=pathlib.Path("/usr/share/man"))
    args = parser.parse_args()

    pages = []
    seen_summaries = set()
    for path in candidates(args.man_root):
        raw = gzip.open(path).read()
        if len(raw) > MAX_SOURCE_BYTES:
            continue
        source = raw.decode("utf-8", "replace")
        if source.lstrip().startswith(".so "):
            continue
        found = summary_of(source)
        if not found:
            continue
        line, names, summary = found
        query = clean_summary(summary)
        if len(query.split()) < 3 or query.lower() in seen_summaries:
            continue
        seen_summaries.add(query.lower())
        pages.append((path, source, line, names, query))
    if len(pages) < args.count:
        print(f"only {len(pages)} usable pages under {args.man_root}", file=sys.stderr)
        return 1
    step = len(pages) / args.count
    chosen = [pages[int(i * step)] for i in range(args.count)]

    docs = args.out / "docs"
    jobs = []
    for number, (path, source, line, names, query) in enumerate(chosen):
        lines = source.splitlines()
        lines[line] = names  # the summary is held out
        held_out = "\n".join(lines) + "\n"
        device, extension = ("html", "html") if number % 2 == 0 else ("pdf", "pdf")
        name = path.name[: -len(".gz")]
        target = docs / device / f"{name}.{extension}"
        text = args.out / "text" / device / f"{name}.txt"
        jobs.append((held_out, device, target, text))
    # groff runs one page at a time; render pages side by side.
    with concurrent.futures.ProcessPoolExecutor() as pool:
        rendered = list(pool.map(render_page, jobs, chunksize=8))
    queries = [
        {"qid": f"man-{number:04d}", "query": query, "doc_id": f"{device}/{target.stem}"}
        for number, ((_, _, _, _, query), (_, device, target, _), ok) in enumerate(zip(chosen, jobs, rendered))
        if ok
    ]
    if len(queries) < 0.9 * args.count:
        print(f"groff rendered only {len(queries)} of {args.count} pages (is Debian's groff installed?)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "queries.jsonl", "w", encoding="utf-8") as gold:
        for query in queries:
            gold.write(json.dumps(query) + "\n")
    print(f"{len(queries)} documents in {docs}, gold set {args.out / 'queries.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
