#!/usr/bin/env python3
"""The retrieval a user would try before docpipe, on a known-item gold set
made by manpages.py: Recall@1, Recall@10 and MRR@10 of

  * bm25:  rank_bm25 (BM25Okapi) over each whole document, words lower-cased;
  * dense: all-MiniLM-L6-v2 over each document's first 256 words (the model
           reads at most 256 tokens of them), cosine;
  * rrf:   Reciprocal Rank Fusion (k = 60) of those two rankings.

    baselines.py --corpus /tmp/manpages --model .docpipe/models/all-MiniLM-L6-v2 [--json]

Documents are read from CORPUS/text (the plain text of each page, with its
summary held out as in the rendered files), queries from CORPUS/queries.jsonl.
"""

import argparse
import json
import pathlib
import re
import sys

import numpy as np
from rank_bm25 import BM25Okapi

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "model"))
from verify import OnnxEmbedder, load_tokenizer  # noqa: E402

K = 10
RRF_K = 60
CANDIDATES = 100
FIRST_WORDS = 256
BATCH = 32
WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def metrics(rankings: list[list[str]], expected: list[str]) -> dict:
    hits_at_1 = hits_at_k = reciprocal = 0.0
    for ranking, want in zip(rankings, expected):
        top = ranking[:K]
        if top and top[0] == want:
            hits_at_1 += 1
        if want in top:
            hits_at_k += 1
            reciprocal += 1.0 / (top.index(want) + 1)
    count = len(expected)
    return {
        "recall_at_1": hits_at_1 / count,
        f"recall_at_{K}": hits_at_k / count,
        f"mrr_at_{K}": reciprocal / count,
    }


def fuse(*rankings: list[str]) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores, key=lambda doc: -scores[doc])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, type=pathlib.Path)
    parser.add_argument("--model", required=True, type=pathlib.Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    text_root = args.corpus / "text"
    ids, texts = [], []
    for path in sorted(text_root.rglob("*.txt")):
        ids.append(str(path.relative_to(text_root).with_suffix("")))
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    gold = [json.loads(line) for line in open(args.corpus / "queries.jsonl", encoding="utf-8")]
    queries = [entry["query"] for entry in gold]
    expected = [entry["doc_id"] for entry in gold]
    missing = sorted(set(expected) - set(ids))
    if missing:
        print(f"{len(missing)} gold documents have no text in {text_root}: {missing[:3]}", file=sys.stderr)
        return 1

    bm25 = BM25Okapi([words(text) for text in texts])
    bm25_rankings = []
    for query in queries:
        scores = bm25.get_scores(words(query))
        best = np.argsort(-scores)[:CANDIDATES]
        bm25_rankings.append([ids[i] for i in best])

    tokenizer = load_tokenizer(args.model, 256)
    model = OnnxEmbedder(args.model / "model.onnx")

    def embed(batch_texts: list[str]) -> np.ndarray:
        return np.vstack([model.embed(tokenizer, batch_texts[i : i + BATCH]) for i in range(0, len(batch_texts), BATCH)])

    documents = embed([" ".join(text.split()[:FIRST_WORDS]) for text in texts])
    questions = embed(queries)
    similarities = questions @ documents.T
    dense_rankings = [[ids[i] for i in np.argsort(-row)[:CANDIDATES]] for row in similarities]
    rrf_rankings = [fuse(a, b) for a, b in zip(bm25_rankings, dense_rankings)]

    report = {
        "documents": len(ids),
        "queries": len(gold),
        "modes": {
            "bm25 (rank_bm25, whole document)": metrics(bm25_rankings, expected),
            f"dense (MiniLM, first {FIRST_WORDS} words)": metrics(dense_rankings, expected),
            "rrf of the two": metrics(rrf_rankings, expected),
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['queries']} queries over {report['documents']} documents")
        print(f"{'baseline':<36} {'Recall@1':>9} {'Recall@10':>10} {'MRR@10':>8}")
        for name, row in report["modes"].items():
            print(f"{name:<36} {row['recall_at_1']:>9.3f} {row['recall_at_10']:>10.3f} {row['mrr_at_10']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
