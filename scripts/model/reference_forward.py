#!/usr/bin/env python3
"""Independent pure-numpy BERT forward pass, used to check the ONNX graph.

This shares no code with convert_bert_to_onnx.py on purpose: it loads the
checkpoint with the `safetensors` package, runs one sequence at a time with
no padding at all (so no attention mask is involved), computes in float64
with the exact erf GELU (math.erf), and mean-pools + L2-normalises the
result the way sentence-transformers does.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

_erf = np.vectorize(math.erf, otypes=[np.float64])


class NumpyBert:
    def __init__(self, config_path: Path, weights_path: Path):
        cfg = json.loads(Path(config_path).read_text())
        self.hidden = cfg["hidden_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.act = cfg.get("hidden_act", "gelu")
        raw = load_file(str(weights_path))
        self.w: dict[str, np.ndarray] = {}
        for name, value in raw.items():
            key = name[5:] if name.startswith("bert.") else name
            key = key.replace(".gamma", ".weight").replace(".beta", ".bias")
            self.w[key] = value.astype(np.float64)

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _dense(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def _act(self, x: np.ndarray) -> np.ndarray:
        if self.act == "gelu":
            return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
        if self.act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
        raise ValueError(f"unsupported activation {self.act}")

    def hidden_states(self, ids: list[int], type_ids: list[int] | None = None) -> np.ndarray:
        """last_hidden_state [seq, hidden] for ONE unpadded sequence."""
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        tt = np.zeros(n, dtype=np.int64) if type_ids is None else np.asarray(type_ids, dtype=np.int64)
        x = self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:n]
        if "embeddings.token_type_embeddings.weight" in self.w:
            x = x + self.w["embeddings.token_type_embeddings.weight"][tt]
        x = self._ln(x, "embeddings.LayerNorm")
        d = self.hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = self._dense(x, p + "attention.self.query").reshape(n, self.heads, d).transpose(1, 0, 2)
            k = self._dense(x, p + "attention.self.key").reshape(n, self.heads, d).transpose(1, 0, 2)
            v = self._dense(x, p + "attention.self.value").reshape(n, self.heads, d).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s = s / s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, self.hidden)
            x = self._ln(self._dense(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = self._act(self._dense(x, p + "intermediate.dense"))
            x = self._ln(self._dense(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def embed(self, ids: list[int], type_ids: list[int] | None = None) -> np.ndarray:
        """Mean-pooled, L2-normalised sentence embedding [hidden]."""
        e = self.hidden_states(ids, type_ids).mean(0)
        return e / np.linalg.norm(e)
