#!/usr/bin/env python3
"""Writes reference embeddings from the independent numpy forward pass.

The Rust embedder's tests compare their vectors against this file, so the
whole Rust path (tokenizer, ONNX Runtime, pooling, normalisation) is checked
against a forward pass that shares no code with it.

usage: write_reference.py MODEL_DIR WEIGHTS OUT.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_forward import NumpyBert  # noqa: E402

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "Dead-letter exchanges catch messages that were rejected or expired.",
    "HNSW builds a layered proximity graph for approximate nearest neighbour search.",
    "Hi",
]


def main() -> int:
    model_dir, weights, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    bert = NumpyBert(model_dir / "config.json", weights)
    rows = []
    for sentence in SENTENCES:
        encoding = tokenizer.encode(sentence)
        vector = bert.embed(encoding.ids, encoding.type_ids)
        rows.append({"text": sentence, "vector": [float(x) for x in vector]})
    out.write_text(json.dumps({"source": "numpy float64 forward pass (reference_forward.py)", "embeddings": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
