#!/usr/bin/env python3
"""Builds a corpus of real PDFs from Debian documentation packages (made by
other people with pdfTeX, LuaTeX, XeTeX, Ghostscript, Acrobat Distiller, FOP,
cairo, LibreOffice, groff, ...) and compares docpipe's PDF text extraction
with poppler's pdftotext (the reference) and MuPDF's mutool on it, in one run.

    scripts/corpora/pdfs.py --corpus-only
    scripts/corpora/pdfs.py                 # pdftotext, mutool and target/release/docpipe
    scripts/corpora/pdfs.py --docpipe target/release/docpipe --engine-env DOCPIPE_PDF_ENGINE=pdfium
    scripts/corpora/pdfs.py \\
        --candidate pdf-extract=target/release/docpipe:DOCPIPE_PDF_ENGINE=pdf-extract \\
        --candidate pdfium=target/release/docpipe:DOCPIPE_PDF_ENGINE=pdfium

Corpus: each of PACKAGES is fetched once with `apt-get download` (nothing is
installed), its *.pdf and *.pdf.gz files are unpacked (gunzipped) under
OUT/files/PACKAGE/ and described (pdfinfo, sha256) in OUT/files/PACKAGE.jsonl,
so a re-run downloads nothing. OUT defaults to $DOCPIPE_HOME/corpora/pdfs.
Files over 20 MB or 300 pages and duplicates are left out. The choice is
deterministic: each package's files are ordered round-robin over their
producer families (each family in sha256 order), then packages are taken
round-robin, at most --per-package files each, up to --count files. It is
written to OUT/manifest.jsonl (path, package, producer, pages, bytes, sha256).

Docpipe candidates: `--docpipe PATH` (default target/release/docpipe) is one
candidate, "docpipe"; `--candidate LABEL=PATH[:KEY=VALUE...]` (repeatable)
names candidates instead, each with its own environment variables, e.g. two
engines of one binary. `--engine-env KEY=VALUE` (repeatable) is set for every
candidate. Each runs as `PATH parse --json FILE` in the repository (where
its default pipelines/default.toml is).

Each tool runs once per file with a timeout, at most --jobs files at a time;
CPU time (user+sys) and peak RSS come from wait4 (see run_tool). Words are
NFKC-normalised, lower-cased \\w+ tokens. A file has text when pdftotext
finds at least 20 words in it. Table columns, per engine, over all files:

  correct%     the right outcome: text (20+ words) where the file has text;
               otherwise no text: docpipe's no_text error, or fewer than 20
               words (docpipe succeeding with no block at all is wrong)
  failures     reported errors other than no_text (exit 1: docpipe's
               corrupt_pdf, encrypted_pdf, ... or pdftotext/mutool errors)
               and docpipe output that is not the JSON promised
  panic/TO     timeouts, signals, exit codes other than 0 and 1, parser_crashed
  maxRSS MiB   peak RSS of any one run (runs over 1 GiB are listed in details)
  recall       words in common with pdftotext (as multisets) / pdftotext's
               words, median and p10 over the files that have text (0 for a
               run that failed). docpipe leaves running headers and footers
               out of what it indexes and names them (`furniture`); its
               recall is measured on pdftotext's text without those lines,
               and `all-text` gives the median against all of it
  order        share of pdftotext's word 4-grams (as a multiset) also in the
               engine's, median and p10 likewise
  pages/CPU-s  pages of the files with the right outcome / CPU seconds of all runs

Below the table: docpipe titles that look like junk (empty, a file name, a
path). Per-file rows go to OUT/results.jsonl; wrong outcomes, crashes, big
runs and junk titles to OUT/details.txt.

Needs apt-get and dpkg-deb, poppler-utils (pdftotext, pdfinfo), mupdf-tools
(mutool) and GNU time (Debian `time`, for the peak RSS).
"""

import argparse
import collections
import concurrent.futures
import contextlib
import gzip
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unicodedata

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCPIPE_HOME = pathlib.Path(os.environ.get("DOCPIPE_HOME", REPO_ROOT / ".docpipe"))

# Debian bookworm packages with many PDFs from varied producers (~0.8 GB of .debs).
PACKAGES = (
    "asymptote-doc", "auto-multiple-choice-doc-pdf", "bacula-doc", "camlidl-doc",
    "context", "cups-filters", "dblatex-doc", "docbook-xsl-doc-pdf",
    "fonts-sil-abyssinica", "fonts-sil-andika", "fonts-sil-charis", "fonts-sil-padauk",
    "fonts-sil-scheherazade", "fonts-texgyre", "fop-doc", "freefem-doc", "gap-doc",
    "ghostscript-doc", "glpk-doc", "gprolog-doc", "graphviz-doc", "gri-pdf-doc", "groff",
    "lilypond-doc-pdf", "maxima-doc", "octave-doc", "pari-doc", "python-reportlab-doc",
    "r-cran-matrix", "r-cran-zoo", "r-doc-pdf", "ruby-prawn-doc",
    "texlive-bibtex-extra", "texlive-font-utils",
    "texlive-fonts-recommended-doc", "texlive-formats-extra", "texlive-games",
    "texlive-humanities-doc", "texlive-lang-arabic", "texlive-lang-cjk",
    "texlive-lang-german", "texlive-lang-other", "texlive-lang-polish",
    "texlive-latex-base-doc", "texlive-latex-recommended-doc", "texlive-luatex",
    "texlive-metapost-doc", "texlive-music", "texlive-science-doc", "texlive-xetex",
    "why3-doc-pdf", "xorg-docs",
)
MAX_BYTES = 20_000_000
MAX_PAGES = 300
TEXT_WORDS = 20
# Most lines pdftotext splits one running header or footer into.
FURNITURE_PARTS = 4
NGRAM = 4
BIG_RSS_KIB = 1 << 20
WORD = re.compile(r"\w+")
# A file name or a path ("full.dvi", "C:\Documents and Settings\...",
# "/tmp/x"), not a slash inside words ("Pari/GP", an URL).
JUNK_TITLE = re.compile(r"\.(dvi|tex|indd|docx?|pdf|ps)\s*$|\\|^[a-z]:/|^/\S*$", re.IGNORECASE)
# Producer families, first match wins (e.g. "dvips + GPL Ghostscript" is Ghostscript).
FAMILIES = (
    ("Ghostscript", r"ghostscript"), ("XeTeX", r"xetex|xelatex|xdvipdfmx"),
    ("dvipdfm(x)", r"dvipdfm"), ("LuaTeX", r"luatex|luahbtex|luametatex|lualatex"),
    ("pdfTeX", r"pdfe?tex|pdflatex"), ("Acrobat/Adobe", r"acrobat|adobe"),
    ("cairo", r"cairo"), ("LibreOffice", r"libreoffice|openoffice"), ("FOP", r"\bfop\b"),
    ("groff", r"gropdf|groff"), ("macOS Quartz", r"quartz"), ("Microsoft", r"microsoft"),
    ("ImageMagick", r"imagemagick|graphicsmagick"), ("iText", r"itext"),
    ("ReportLab", r"reportlab"), ("Prawn", r"prawn"), ("PARI", r"\bpari\b"),
)
PLAIN_OUTCOMES = {"text", "no_text", "little_text", "empty"}


def die(message: str) -> None:
    print(f"\033[31m[pdfs] error:\033[0m {message}", file=sys.stderr)
    sys.exit(1)


def log(message: str) -> None:
    print(f"\033[1m[pdfs]\033[0m {message}", file=sys.stderr, flush=True)


def family(producer: str) -> str:
    for name, pattern in FAMILIES:
        if re.search(pattern, producer, re.IGNORECASE):
            return name
    return "other" if producer.strip() and producer.strip() != "null" else "unknown"


def describe(path: pathlib.Path, out: pathlib.Path, package: str) -> dict:
    """One manifest entry: pdfinfo's producer and page count, size and sha256."""
    info = subprocess.run(["pdfinfo", "-enc", "UTF-8", str(path)], capture_output=True, timeout=60, check=False)
    fields = dict(
        line.split(":", 1) for line in info.stdout.decode("utf-8", "replace").splitlines() if ":" in line
    )
    pages = fields.get("Pages", "").strip()
    data = path.read_bytes()
    return {
        "path": str(path.relative_to(out)),
        "package": package,
        "producer": fields.get("Producer", "").strip(),
        "pages": int(pages) if pages.isdigit() else None,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def fetch_package(out: pathlib.Path, package: str) -> list[dict]:
    """The PDFs of one package, downloaded, unpacked and described on the
    first call; later calls read OUT/files/PACKAGE.jsonl."""
    index = out / "files" / f"{package}.jsonl"
    if index.exists():
        return [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines()]
    root = out / "files" / package
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log(f"downloading {package}")
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        got = subprocess.run(["apt-get", "download", package], cwd=scratch, capture_output=True, text=True, check=False)
        debs = list(pathlib.Path(scratch).glob("*.deb"))
        if got.returncode != 0 or not debs:
            die(f"apt-get download {package} failed (try apt-get update):\n{got.stderr}")
        unpack = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as tar:
            for member in tar:
                name = pathlib.PurePosixPath(member.name)
                if not member.isfile() or ".." in name.parts or not re.search(r"\.pdf(\.gz)?$", name.name, re.I):
                    continue
                data = tar.extractfile(member).read()
                if name.suffix.lower() == ".gz":
                    try:
                        data, name = gzip.decompress(data), name.with_suffix("")
                    except (OSError, EOFError):
                        continue
                target = root / name.relative_to(name.anchor) if name.anchor else root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        if unpack.wait() != 0:
            die(f"dpkg-deb could not unpack {debs[0].name}")
    paths = sorted(path for path in root.rglob("*") if path.is_file())
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        entries = list(pool.map(lambda path: describe(path, out, package), paths))
    partial = index.with_suffix(".partial")
    partial.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")
    partial.rename(index)
    return entries


def select(entries: list[dict], count: int, per_package: int) -> list[dict]:
    """Deterministic choice: small enough, no duplicates, varied producers,
    packages taken round-robin."""
    seen, queues = set(), collections.defaultdict(lambda: collections.defaultdict(list))
    for entry in sorted(entries, key=lambda e: (e["package"], e["path"])):
        if entry["bytes"] > MAX_BYTES or (entry["pages"] or 0) > MAX_PAGES or entry["sha256"] in seen:
            continue
        seen.add(entry["sha256"])
        queues[entry["package"]][family(entry["producer"])].append(entry)
    ordered = {}
    for package, families in queues.items():
        groups = [sorted(group, key=lambda e: e["sha256"]) for _, group in sorted(families.items())]
        ordered[package] = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
    chosen = []
    for level in range(per_package):
        for package in sorted(ordered):
            if level < len(ordered[package]) and len(chosen) < count:
                chosen.append(ordered[package][level])
    return chosen


def build_corpus(out: pathlib.Path, count: int, per_package: int) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    entries = [entry for package in PACKAGES for entry in fetch_package(out, package)]
    chosen = select(entries, count, per_package)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for entry in chosen:
            manifest.write(json.dumps(entry) + "\n")
    log(f"{len(chosen)} of {len(entries)} PDFs chosen, listed in {out / 'manifest.jsonl'}")
    if len(chosen) < count:
        log(f"warning: fewer than --count {count} PDFs; add packages to PACKAGES or raise --per-package")
    return chosen


def run_tool(argv: list[str], timeout: float, env: dict | None = None) -> dict:
    """Runs one tool to its end or the timeout: its output, exit code (-N
    for signal N), CPU seconds (user+sys, from wait4) and peak RSS in KiB.
    The RSS is ru_maxrss as GNU time's wait4 reports it: our own wait4 would
    give this Python process's peak, which a child forked from it keeps as
    its high-water mark across exec."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        proc = subprocess.Popen(
            ["time", "-f", "%M", "-o", rss.name, *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=REPO_ROOT, start_new_session=True,
        )
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        report = rss.read()
        signalled = re.search(r"terminated by signal (\d+)", report)
        last = report.strip().rsplit("\n", 1)[-1]
        out.seek(0)
        err.seek(0)
        return {
            "code": -int(signalled[1]) if signalled else proc.returncode,
            "timed_out": expired.is_set(),
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss_kib": int(last) if last.isdigit() else 0,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }


def words(text: str) -> list[str]:
    return WORD.findall(unicodedata.normalize("NFKC", text).lower())


def interpret(is_docpipe: bool, run: dict) -> dict:
    """The run's outcome (text, no_text, little_text, empty, an error code,
    timeout, signal:NAME, exit:N), words, message and (docpipe) title."""
    result = {"words": [], "message": "", "title": None, "furniture": set()}
    if run["timed_out"]:
        return {**result, "outcome": "timeout"}
    if run["code"] < 0:
        try:
            name = signal.Signals(-run["code"]).name
        except ValueError:
            name = str(-run["code"])
        return {**result, "outcome": f"signal:{name}"}
    if run["code"] not in (0, 1):
        return {**result, "outcome": f"exit:{run['code']}", "message": run["stderr"].strip()[-300:]}
    if not is_docpipe:
        if run["code"] == 1:
            return {**result, "outcome": "error", "message": run["stderr"].strip()[-300:]}
        found = words(run["stdout"])
        return {**result, "words": found, "outcome": "text" if len(found) >= TEXT_WORDS else "no_text"}
    try:
        answer = json.loads(run["stdout"])
        if run["code"] == 1:
            error = answer["error"]
            return {**result, "outcome": str(error["code"]), "message": str(error.get("message", ""))}
        found = words("\n".join(block["text"] for block in answer["blocks"]))
        title = answer.get("title")
        furniture = {" ".join(line.split()) for line in answer.get("furniture", [])}
    except (ValueError, KeyError, TypeError):
        return {**result, "outcome": "bad_json", "message": (run["stdout"] + run["stderr"]).strip()[-300:]}
    outcome = "text" if len(found) >= TEXT_WORDS else "little_text" if found else "empty"
    return {**result, "words": found, "outcome": outcome, "title": title, "furniture": furniture}


def without_furniture(text: str, furniture: set[str]) -> list[str]:
    """The words of text without its lines that are, numbers masked, running
    headers or footers. pdftotext may put the parts of one such line (a
    header's left, centre and right, a footer's page number) on lines of
    their own: up to FURNITURE_PARTS consecutive lines that make one
    together go too."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    shapes = [re.sub(r"[0-9]+", "#", line) for line in lines]
    kept, index = [], 0
    while index < len(lines):
        most = min(FURNITURE_PARTS, len(lines) - index)
        parts = next((n for n in range(1, most + 1) if " ".join(shapes[index:index + n]) in furniture), 0)
        if parts:
            index += parts
        else:
            kept.append(lines[index])
            index += 1
    return words("\n".join(kept))


def is_panic(outcome: str) -> bool:
    return outcome in ("timeout", "parser_crashed") or outcome.startswith(("signal:", "exit:"))


def shared(reference: collections.Counter, found: collections.Counter) -> float:
    total = sum(reference.values())
    return sum(min(n, found[item]) for item, n in reference.items()) / total if total else 0.0


def ngrams(tokens: list[str]) -> collections.Counter:
    return collections.Counter(zip(*(tokens[i:] for i in range(NGRAM))))


def compare_file(entry: dict, engines: list[dict], out: pathlib.Path, timeout: float) -> list[dict]:
    """Runs every engine on one file; one result row per engine (pdftotext first)."""
    path = str(out / entry["path"])
    runs = []
    for engine in engines:
        argv = [path if arg == "FILE" else arg for arg in engine["argv"]]
        run = run_tool(argv, timeout, engine["env"])
        runs.append((engine, run, interpret(engine["docpipe"], run)))
    reference = runs[0][2]["words"]
    has_text = len(reference) >= TEXT_WORDS
    reference_words = collections.Counter(reference)
    rows = []
    for engine, run, result in runs:
        outcome = result["outcome"]
        row = {
            "file": entry["path"], "package": entry["package"], "producer": entry["producer"],
            "pages": entry["pages"], "engine": engine["label"], "outcome": outcome,
            "has_text": has_text,
            "correct": outcome == "text" if has_text else outcome in ("no_text", "little_text"),
            "message": result["message"], "exit": run["code"], "cpu": round(run["cpu"], 3),
            "rss_kib": run["rss_kib"], "words": len(result["words"]),
        }
        if has_text:
            content = reference
            if result["furniture"]:
                content = without_furniture(runs[0][1]["stdout"], result["furniture"])
            found = collections.Counter(result["words"])
            row["recall"] = round(shared(collections.Counter(content), found), 4)
            row["recall_all"] = round(shared(reference_words, found), 4)
            row["order"] = round(shared(ngrams(content), ngrams(result["words"])), 4)
        if engine["docpipe"] and outcome in PLAIN_OUTCOMES:
            row["title"] = result["title"]
        rows.append(row)
    return rows


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (nan for no values)."""
    if not values:
        return float("nan")
    values = sorted(values)
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def junk_title(title) -> bool:
    return title is not None and (not title.strip() or bool(JUNK_TITLE.search(title.strip())))


def report(rows: list[dict], engines: list[dict], manifest: list[dict], out: pathlib.Path) -> None:
    """Prints the producer breakdown and the table; writes OUT/details.txt."""
    families = collections.Counter(family(entry["producer"]) for entry in manifest)
    print(f"corpus: {len(manifest)} PDFs from {len({e['package'] for e in manifest})} packages, "
          f"{sum(e['pages'] or 0 for e in manifest)} pages; producer families:")
    for name, n in families.most_common():
        print(f"  {name:<16}{n:>5}")
    header = (f"{'engine':<16}{'files':>6}{'correct%':>9}{'failures':>9}{'panic/TO':>9}{'maxRSS MiB':>11}"
              f"{'recall med':>11}{'recall p10':>11}{'all-text':>9}{'order med':>10}{'order p10':>10}"
              f"{'pages/CPU-s':>12}")
    print()
    print(header)
    print("-" * len(header))
    details, notes = [], []
    for engine in engines:
        mine = [row for row in rows if row["engine"] == engine["label"]]
        correct = [row for row in mine if row["correct"]]
        failures = [row for row in mine if row["outcome"] not in PLAIN_OUTCOMES and not is_panic(row["outcome"])]
        panics = [row for row in mine if is_panic(row["outcome"])]
        recall = [row["recall"] for row in mine if row["has_text"]]
        recall_all = [row["recall_all"] for row in mine if row["has_text"]]
        order = [row["order"] for row in mine if row["has_text"]]
        cpu = sum(row["cpu"] for row in mine)
        pages = sum(row["pages"] or 0 for row in correct)
        print(f"{engine['label']:<16}{len(mine):>6}{100 * len(correct) / max(len(mine), 1):>9.1f}{len(failures):>9}"
              f"{len(panics):>9}{max((r['rss_kib'] for r in mine), default=0) / 1024:>11.0f}"
              f"{quantile(recall, 0.5):>11.3f}{quantile(recall, 0.1):>11.3f}{quantile(recall_all, 0.5):>9.3f}"
              f"{quantile(order, 0.5):>10.3f}"
              f"{quantile(order, 0.1):>10.3f}{pages / cpu if cpu else float('nan'):>12.1f}")
        details.append(f"== {engine['label']}: {len(mine) - len(correct)} wrong outcomes (file, expected, outcome, message)")
        details += [f"{r['file']}\t{'text' if r['has_text'] else 'no_text'}\t{r['outcome']}\t{r['message'][:200]!r}"
                    for r in mine if not r["correct"]]
        big = [r for r in mine if r["rss_kib"] > BIG_RSS_KIB]
        details.append(f"== {engine['label']}: {len(big)} runs over 1 GiB RSS")
        if big:
            notes.append(f"{engine['label']}: {len(big)} runs over 1 GiB RSS (see details)")
        details += [f"{r['file']}\t{r['rss_kib'] // 1024} MiB" for r in big]
        if engine["docpipe"]:
            titled = [r for r in mine if "title" in r]
            junk = [r for r in titled if junk_title(r["title"])]
            untitled = sum(r["title"] is None for r in titled)
            notes.append(f"{engine['label']}: {len(junk)} junk titles, {untitled} without a title, "
                         f"of {len(titled)} parsed files")
            details.append(f"== {engine['label']}: {len(junk)} junk titles")
            details += [f"{r['file']}\t{r['title']!r}" for r in junk]
    for note in notes:
        print(note)
    (out / "details.txt").write_text("\n".join(details) + "\n", encoding="utf-8")


def candidates(args) -> list[dict]:
    """The docpipe engines to compare, from --candidate or --docpipe."""
    common = dict(pair.split("=", 1) for pair in args.engine_env)
    specs = args.candidate or [f"docpipe={args.docpipe}"]
    engines = []
    for spec in specs:
        label, _, rest = spec.partition("=")
        binary, *pairs = rest.split(":")
        if not label or not binary or any("=" not in pair for pair in pairs):
            die(f"--candidate {spec!r}: expected LABEL=PATH[:KEY=VALUE...]")
        binary = os.path.abspath(binary)
        if not os.access(binary, os.X_OK):
            die(f"{label}: {binary} is not an executable (cargo build --release --bin docpipe, or give --docpipe/--candidate)")
        env = {**os.environ, **common, **dict(pair.split("=", 1) for pair in pairs)}
        engines.append({"label": label, "docpipe": True, "argv": [binary, "parse", "--json", "FILE"], "env": env})
    return engines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DOCPIPE_HOME / "corpora" / "pdfs",
                        help="corpus cache and results (default $DOCPIPE_HOME/corpora/pdfs)")
    parser.add_argument("--count", type=int, default=320, help="files in the corpus")
    parser.add_argument("--per-package", type=int, default=25, help="at most this many files from one package")
    parser.add_argument("--corpus-only", action="store_true", help="build the corpus and stop")
    parser.add_argument("--limit", type=int, help="compare only the first LIMIT files of the corpus (a quick trial)")
    parser.add_argument("--docpipe", default=str(REPO_ROOT / "target" / "release" / "docpipe"),
                        help="the docpipe binary to compare (default target/release/docpipe)")
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for every docpipe candidate (repeatable)")
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL=PATH[:KEY=VALUE...]",
                        help="a docpipe to compare, instead of --docpipe (repeatable)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per tool and file")
    parser.add_argument("--jobs", type=int, default=2, help="files processed at once")
    args = parser.parse_args()

    for tool, package in (("apt-get", "apt"), ("dpkg-deb", "dpkg"), ("pdfinfo", "poppler-utils"),
                          ("pdftotext", "poppler-utils"), ("mutool", "mupdf-tools"), ("time", "time")):
        if not shutil.which(tool):
            die(f"{tool} is missing: apt-get install -y {package}")
    if any("=" not in pair for pair in args.engine_env):
        die("--engine-env takes KEY=VALUE")
    engines = [] if args.corpus_only else candidates(args)
    manifest = build_corpus(args.out.resolve(), args.count, args.per_package)
    if args.corpus_only:
        return 0
    engines = [
        {"label": "pdftotext", "docpipe": False, "argv": ["pdftotext", "-enc", "UTF-8", "FILE", "-"], "env": None},
        {"label": "mutool", "docpipe": False, "argv": ["mutool", "draw", "-q", "-F", "txt", "-o", "-", "FILE"], "env": None},
        *engines,
    ]
    files = manifest[: args.limit] if args.limit else manifest
    log(f"comparing {', '.join(e['label'] for e in engines)} on {len(files)} files, {args.jobs} at a time")
    started, rows = time.monotonic(), []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(compare_file, entry, engines, args.out.resolve(), args.timeout) for entry in files]
        for number, job in enumerate(jobs, start=1):
            rows += job.result()
            if number % 25 == 0 or number == len(jobs):
                log(f"{number}/{len(jobs)} files, {time.monotonic() - started:.0f} s")
    with open(args.out / "results.jsonl", "w", encoding="utf-8") as results:
        for row in rows:
            results.write(json.dumps(row, ensure_ascii=False) + "\n")
    report(rows, engines, files, args.out)
    cpu = collections.defaultdict(float)
    for row in rows:
        cpu[row["engine"]] += row["cpu"]
    print(f"\n{len(files)} files in {time.monotonic() - started:.0f} s wall; CPU s: "
          + ", ".join(f"{label} {seconds:.0f}" for label, seconds in cpu.items()))
    print(f"per-file rows: {args.out / 'results.jsonl'}; wrong outcomes and junk titles: {args.out / 'details.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
