#!/usr/bin/env python3
"""Prove that MODEL_DIR/model.onnx is a correct sentence-embedding model.

Usage:
    verify.py MODEL_DIR [--weights model.safetensors] [--onnx model.onnx]
              [--max-tokens 256] [--compare-int8 model-int8.onnx]

Tokenises with the `tokenizers` package from MODEL_DIR/tokenizer.json
(truncation to --max-tokens, padding to the longest in the batch), runs the
graph with onnxruntime, mean-pools over the attention mask and L2-normalises,
then checks:
  * the graph's inputs/outputs are the documented names, dtypes and ranks;
  * (a) cosine("A man is eating food.", "A man is eating a piece of bread.")
        is 0.755 +- 0.005 (the sentence-transformers reference value);
  * (b) every ONNX embedding, computed both alone and inside one padded
        batch of mixed lengths, agrees with an independent float64 numpy
        forward pass (reference_forward.py) with cosine > 0.9999;
  * with --compare-int8: fp32 vs int8 embeddings have cosine >= 0.99.
Exits 1 with a message naming the failed check.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_forward import NumpyBert  # noqa: E402

PAIR = ("A man is eating food.", "A man is eating a piece of bread.")
PAIR_EXPECTED, PAIR_TOL = 0.755, 0.005
REF_MIN_COS = 0.9999
INT8_MIN_COS = 0.99
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"

_LONG = (
    "Document ingestion pipelines split PDFs, HTML pages and office files into passages, "
    "embed every passage with a small transformer encoder, and store the vectors next to the "
    "text so that a later query can be answered by nearest-neighbour search. "
)
SENTENCES = [
    PAIR[0],
    PAIR[1],
    "Hi",
    "Thanks!",
    "The quick brown fox jumps over the lazy dog.",
    "Zürich's café served crème brûlée; 東京 and naïve façades, too!",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    _LONG * 4,   # ~210 tokens: longer than the 128 the shipped tokenizer.json truncates to
    _LONG * 10,  # > 256 tokens: must be truncated to exactly --max-tokens
]


class Fail(Exception):
    pass


def load_tokenizer(model_dir: Path, max_tokens: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    shipped = tok.padding or {}
    pad_token = shipped.get("pad_token", "[PAD]")
    pad_id = shipped.get("pad_id", tok.token_to_id(pad_token))
    # Override whatever the file ships (all-MiniLM-L6-v2 ships Fixed(128) padding and
    # 128-token truncation): pad to the longest in the batch, truncate at max_tokens.
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=pad_id, pad_token=pad_token, pad_type_id=shipped.get("pad_type_id", 0))
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    summed = (hidden.astype(np.float64) * m).sum(1)
    pooled = summed / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class OnnxEmbedder:
    def __init__(self, path: Path):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.path = path
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def check_io(self) -> str:
        ins = {i.name: i for i in self.sess.get_inputs()}
        outs = self.sess.get_outputs()
        if sorted(ins) != sorted(INPUTS):
            raise Fail(f"graph inputs are {sorted(ins)}, expected {sorted(INPUTS)}")
        for name in INPUTS:
            i = ins[name]
            if i.type != "tensor(int64)" or len(i.shape) != 2 or any(isinstance(d, int) for d in i.shape):
                raise Fail(f"input {name}: {i.type} {i.shape}, expected tensor(int64) with 2 dynamic dims")
        if len(outs) != 1 or outs[0].name != OUTPUT or outs[0].type != "tensor(float)" or len(outs[0].shape) != 3:
            raise Fail(f"graph outputs are {[(o.name, o.type, o.shape) for o in outs]}, expected {OUTPUT} float [b, s, hidden]")
        parts = [f"{i.name} {i.type} {i.shape}" for i in self.sess.get_inputs()]
        parts.append(f"-> {outs[0].name} {outs[0].type} {outs[0].shape}")
        return "; ".join(parts)

    def hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.sess.run([OUTPUT], feeds)[0]

    def embed(self, tok: Tokenizer, texts: list[str]) -> np.ndarray:
        feeds = encode(tok, texts)
        return mean_pool_normalise(self.hidden(feeds), feeds["attention_mask"])


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(args: argparse.Namespace) -> None:
    model_dir: Path = args.model_dir
    onnx_path = args.onnx or model_dir / "model.onnx"
    weights = args.weights or model_dir / "model.safetensors"
    for p, what in ((onnx_path, "model.onnx"), (model_dir / "tokenizer.json", "tokenizer.json"), (model_dir / "config.json", "config.json")):
        if not p.is_file():
            raise Fail(f"{what} not found at {p}")
    if not weights.is_file():
        raise Fail(f"safetensors weights for the numpy reference not found at {weights} (pass --weights)")

    tok = load_tokenizer(model_dir, args.max_tokens)
    model = OnnxEmbedder(onnx_path)
    print(f"verify: graph I/O: {model.check_io()}")

    # (a) the known sentence-transformers similarity
    e = model.embed(tok, list(PAIR))
    pair = cos(e[0], e[1])
    ok_a = abs(pair - PAIR_EXPECTED) <= PAIR_TOL
    print(f"verify: (a) cosine({PAIR[0]!r}, {PAIR[1]!r}) = {pair:.4f} "
          f"(expected {PAIR_EXPECTED} +- {PAIR_TOL}) {'OK' if ok_a else 'FAIL'}")
    if not ok_a:
        raise Fail(f"pair cosine {pair:.4f} is outside {PAIR_EXPECTED} +- {PAIR_TOL}")

    # (b) agreement with the independent numpy forward pass
    feeds = encode(tok, SENTENCES)
    lengths = feeds["attention_mask"].sum(1)
    print(f"verify: (b) batch of {len(SENTENCES)} padded to {feeds['input_ids'].shape[1]} tokens; "
          f"real lengths {lengths.tolist()}")
    if lengths.max() != args.max_tokens:
        raise Fail(f"the longest test text should be truncated to {args.max_tokens} tokens, got {lengths.max()}")
    batch_hidden = model.hidden(feeds)
    batch_emb = mean_pool_normalise(batch_hidden, feeds["attention_mask"])
    ref = NumpyBert(model_dir / "config.json", weights)
    t0 = time.time()
    worst = 1.0
    worst_abs = 0.0
    for i, text in enumerate(SENTENCES):
        n = int(lengths[i])
        ids = feeds["input_ids"][i, :n].tolist()
        types = feeds["token_type_ids"][i, :n].tolist()
        ref_hidden = ref.hidden_states(ids, types)
        r = ref_hidden.mean(0)
        r = r / np.linalg.norm(r)
        single = {k: v[i : i + 1, :n] for k, v in feeds.items()}
        alone_emb = mean_pool_normalise(model.hidden(single), single["attention_mask"])[0]
        c_batch, c_alone = cos(batch_emb[i], r), cos(alone_emb, r)
        max_abs = float(np.abs(batch_hidden[i, :n] - ref_hidden).max())
        worst = min(worst, c_batch, c_alone)
        worst_abs = max(worst_abs, max_abs)
        print(f"verify:     [{n:3d} tok] cos(onnx batched, numpy)={c_batch:.9f}  cos(onnx alone, numpy)={c_alone:.9f}  "
              f"max|hidden diff|={max_abs:.2e}  {text[:40]!r}")
    ok_b = worst > REF_MIN_COS
    print(f"verify: (b) min agreement with numpy reference = {worst:.9f} (need > {REF_MIN_COS}), "
          f"max |last_hidden_state diff| = {worst_abs:.2e}, reference took {time.time() - t0:.1f}s  {'OK' if ok_b else 'FAIL'}")
    if not ok_b:
        raise Fail(f"ONNX and numpy reference disagree: min cosine {worst:.7f} <= {REF_MIN_COS}")

    if args.compare_int8:
        q = OnnxEmbedder(args.compare_int8)
        q.check_io()
        # Dynamic quantisation picks activation ranges per tensor, i.e. per batch, so an
        # int8 embedding depends a little on its batch-mates: check both ways.
        q_batch = mean_pool_normalise(q.hidden(feeds), feeds["attention_mask"])
        per = []
        for i, text in enumerate(SENTENCES):
            n = int(lengths[i])
            single = {k: v[i : i + 1, :n] for k, v in feeds.items()}
            q_alone = mean_pool_normalise(q.hidden(single), single["attention_mask"])[0]
            c_batch, c_alone = cos(batch_emb[i], q_batch[i]), cos(batch_emb[i], q_alone)
            per.append(min(c_batch, c_alone))
            print(f"verify:     [{n:3d} tok] cos(fp32, int8 batched)={c_batch:.5f}  cos(fp32, int8 alone)={c_alone:.5f}  {text[:40]!r}")
        q_pair = q.embed(tok, list(PAIR))
        q_pair_cos = cos(q_pair[0], q_pair[1])
        size_mb = Path(args.compare_int8).stat().st_size / 1e6
        ok_q = min(per) >= args.int8_min_cos
        print(f"verify: int8 {args.compare_int8} ({size_mb:.1f} MB): cos(fp32, int8) min={min(per):.5f} "
              f"mean={np.mean(per):.5f} (need >= {args.int8_min_cos}); int8 pair cosine = {q_pair_cos:.4f}  "
              f"{'OK' if ok_q else 'FAIL'}")
        if not ok_q:
            low = [t[:20] for t, c in zip(SENTENCES, per) if c < args.int8_min_cos]
            raise Fail(f"int8 model disagrees with fp32: min cosine {min(per):.5f} < {args.int8_min_cos} (on {low})")

    print(f"verify: PASS ({onnx_path})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--onnx", type=Path, help="graph to check (default MODEL_DIR/model.onnx)")
    ap.add_argument("--weights", type=Path, help="safetensors for the numpy reference (default MODEL_DIR/model.safetensors)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--compare-int8", type=Path, metavar="PATH", help="also compare an int8 model against fp32")
    ap.add_argument("--int8-min-cos", type=float, default=INT8_MIN_COS, help="pass mark for --compare-int8 (default %(default)s)")
    args = ap.parse_args(argv)
    try:
        run(args)
    except Fail as exc:
        print(f"verify: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
