#!/usr/bin/env python3
"""Build an ONNX graph of a BERT-family encoder from config.json + safetensors.

Usage:
    convert_bert_to_onnx.py --config config.json --weights model.safetensors --out model.onnx

The graph is written with the `onnx` package alone (no torch):

    inputs   input_ids       int64 [batch, sequence]
             attention_mask  int64 [batch, sequence]   1 = real token, 0 = padding
             token_type_ids  int64 [batch, sequence]
    output   last_hidden_state float32 [batch, sequence, hidden_size]

Pooling is deliberately NOT in the graph: the embedder pools (mean or CLS)
according to the model's docpipe-model.toml manifest. The graph is fp32,
opset 17 (LayerNormalization is a standard op there), exact erf GELU, and the
attention mask becomes an additive bias of float32-min on padded keys.

Weights are accepted with or without a leading `bert.` (or `model.`) prefix
and with either `LayerNorm.weight/bias` or the old `LayerNorm.gamma/beta`
names; the pooler and any task heads are ignored.
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
_PREFIXES = ("bert.", "model.", "encoder_model.")


# --------------------------------------------------------------------------
# safetensors reading (own small reader so that F16/BF16 checkpoints work too;
# numpy has no bfloat16, so safetensors.numpy cannot load those)
# --------------------------------------------------------------------------
def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = raw[base + start : base + end]
        dtype, shape = info["dtype"], info["shape"]
        if dtype == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype == "F64":
            arr = np.frombuffer(buf, dtype="<f8").astype(np.float32)
        elif dtype == "I64":
            arr = np.frombuffer(buf, dtype="<i8")
        else:  # tensors we never use (e.g. int buffers of task heads)
            continue
        out[name] = arr.reshape(shape)
    return out


class Weights:
    """Name-normalising view over the checkpoint tensors."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        norm: dict[str, np.ndarray] = {}
        for key, value in tensors.items():
            k = key
            for p in _PREFIXES:
                if k.startswith(p):
                    k = k[len(p) :]
                    break
            k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
            norm[k] = value
        self.t = norm
        self.used: set[str] = set()

    def __call__(self, key: str) -> np.ndarray:
        if key not in self.t:
            sample = ", ".join(sorted(self.t)[:8])
            raise SystemExit(f"convert: weight '{key}' not found in checkpoint (keys look like: {sample}, ...)")
        self.used.add(key)
        return np.ascontiguousarray(self.t[key], dtype=np.float32)

    def has(self, key: str) -> bool:
        return key in self.t


# --------------------------------------------------------------------------
# graph building
# --------------------------------------------------------------------------
class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const_i64(self, name: str, values) -> str:
        return self.init(name, np.asarray(values, dtype=np.int64))

    def const_f32(self, name: str, values) -> str:
        return self.init(name, np.asarray(values, dtype=np.float32))

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"{name}_{op_type}", **attrs))
        return name

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, prefix: str) -> str:
        # torch Linear stores [out, in]; y = x @ W^T + b
        w = self.init(f"{prefix}.weight_t", np.ascontiguousarray(weight.T))
        b = self.init(f"{prefix}.bias", bias)
        mm = self.op("MatMul", [x, w], f"{prefix}/matmul")
        return self.op("Add", [mm, b], f"{prefix}/out")

    def layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, eps: float, prefix: str) -> str:
        g = self.init(f"{prefix}.weight", gamma)
        b = self.init(f"{prefix}.bias", beta)
        return self.op("LayerNormalization", [x, g, b], f"{prefix}/out", axis=-1, epsilon=float(eps))

    def gelu(self, x: str, act: str, prefix: str) -> str:
        if act == "gelu":  # exact: 0.5 * x * (1 + erf(x / sqrt(2)))
            d = self.op("Div", [x, "const.sqrt2"], f"{prefix}/div")
            e = self.op("Erf", [d], f"{prefix}/erf")
            a = self.op("Add", [e, "const.one"], f"{prefix}/add")
            m = self.op("Mul", [x, a], f"{prefix}/mul")
            return self.op("Mul", [m, "const.half"], f"{prefix}/out")
        if act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
            x3 = self.op("Pow", [x, "const.three"], f"{prefix}/pow")
            c = self.op("Mul", [x3, "const.gelu_c"], f"{prefix}/cubic")
            s = self.op("Add", [x, c], f"{prefix}/inner")
            k = self.op("Mul", [s, "const.sqrt_2_over_pi"], f"{prefix}/scale")
            t = self.op("Tanh", [k], f"{prefix}/tanh")
            a = self.op("Add", [t, "const.one"], f"{prefix}/add")
            m = self.op("Mul", [x, a], f"{prefix}/mul")
            return self.op("Mul", [m, "const.half"], f"{prefix}/out")
        raise SystemExit(f"convert: unsupported hidden_act '{act}'")


def build_model(config: dict, weights: Weights, source_note: str = "") -> onnx.ModelProto:
    model_type = config.get("model_type", "bert")
    if model_type not in ("bert",):
        # RoBERTa/XLM-R offset positions by padding_idx+1 and need different handling.
        raise SystemExit(f"convert: model_type '{model_type}' is not a plain BERT encoder; not supported")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit("convert: only absolute position embeddings are supported")

    hidden = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    inter = int(config["intermediate_size"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    vocab = int(config["vocab_size"])
    max_pos = int(config["max_position_embeddings"])
    act = config.get("hidden_act", "gelu")
    if hidden % heads:
        raise SystemExit("convert: hidden_size is not divisible by num_attention_heads")
    head_dim = hidden // heads

    g = GraphBuilder()
    # shared constants
    g.const_f32("const.one", 1.0)
    g.const_f32("const.half", 0.5)
    if act == "gelu":
        g.const_f32("const.sqrt2", math.sqrt(2.0))
    else:
        g.const_f32("const.three", 3.0)
        g.const_f32("const.gelu_c", 0.044715)
        g.const_f32("const.sqrt_2_over_pi", math.sqrt(2.0 / math.pi))
    g.const_f32("const.attn_scale", 1.0 / math.sqrt(head_dim))
    g.const_f32("const.zero", 0.0)
    g.const_f32("const.mask_neg", np.finfo(np.float32).min)
    g.const_i64("const.i0", 0)
    g.const_i64("const.i1", 1)
    g.const_i64("const.mask_axes", [1, 2])
    g.const_i64("const.shape_split", [0, 0, heads, head_dim])
    g.const_i64("const.shape_merge", [0, 0, hidden])

    # ---- embeddings --------------------------------------------------------
    word = weights("embeddings.word_embeddings.weight")
    if word.shape != (vocab, hidden):
        raise SystemExit(f"convert: word embeddings {word.shape} do not match config ({vocab}, {hidden})")
    pos = weights("embeddings.position_embeddings.weight")
    if pos.shape != (max_pos, hidden):
        raise SystemExit(f"convert: position embeddings {pos.shape} do not match config ({max_pos}, {hidden})")
    g.init("embeddings.word_embeddings.weight", word)
    g.init("embeddings.position_embeddings.weight", pos)

    we = g.op("Gather", ["embeddings.word_embeddings.weight", "input_ids"], "embeddings/word", axis=0)

    # position ids 0..seq-1 derived from the input shape
    shp = g.op("Shape", ["input_ids"], "embeddings/shape")
    seq = g.op("Gather", [shp, "const.i1"], "embeddings/seq_len", axis=0)
    pos_ids = g.op("Range", ["const.i0", seq, "const.i1"], "embeddings/position_ids")
    pe = g.op("Gather", ["embeddings.position_embeddings.weight", pos_ids], "embeddings/position", axis=0)
    emb = g.op("Add", [we, pe], "embeddings/word_plus_pos")

    if weights.has("embeddings.token_type_embeddings.weight"):
        g.init("embeddings.token_type_embeddings.weight", weights("embeddings.token_type_embeddings.weight"))
        te = g.op("Gather", ["embeddings.token_type_embeddings.weight", "token_type_ids"], "embeddings/token_type", axis=0)
        emb = g.op("Add", [emb, te], "embeddings/sum")
    x = g.layer_norm(
        emb, weights("embeddings.LayerNorm.weight"), weights("embeddings.LayerNorm.bias"), eps, "embeddings.LayerNorm"
    )

    # ---- additive attention-mask bias: [batch, 1, 1, seq] ------------------
    mask_bool = g.op("Cast", ["attention_mask"], "mask/bool", to=TensorProto.BOOL)
    bias2d = g.op("Where", [mask_bool, "const.zero", "const.mask_neg"], "mask/bias2d")
    mask_bias = g.op("Unsqueeze", [bias2d, "const.mask_axes"], "mask/bias")

    # ---- encoder layers ----------------------------------------------------
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = g.linear(x, weights(f"{p}.attention.self.query.weight"), weights(f"{p}.attention.self.query.bias"), f"{p}.attention.self.query")
        k = g.linear(x, weights(f"{p}.attention.self.key.weight"), weights(f"{p}.attention.self.key.bias"), f"{p}.attention.self.key")
        v = g.linear(x, weights(f"{p}.attention.self.value.weight"), weights(f"{p}.attention.self.value.bias"), f"{p}.attention.self.value")

        qh = g.op("Reshape", [q, "const.shape_split"], f"{p}/q_split")
        qh = g.op("Transpose", [qh], f"{p}/q_heads", perm=[0, 2, 1, 3])  # [B, H, S, D]
        kh = g.op("Reshape", [k, "const.shape_split"], f"{p}/k_split")
        kh = g.op("Transpose", [kh], f"{p}/k_heads_t", perm=[0, 2, 3, 1])  # [B, H, D, S]
        vh = g.op("Reshape", [v, "const.shape_split"], f"{p}/v_split")
        vh = g.op("Transpose", [vh], f"{p}/v_heads", perm=[0, 2, 1, 3])  # [B, H, S, D]

        scores = g.op("MatMul", [qh, kh], f"{p}/scores_raw")
        scores = g.op("Mul", [scores, "const.attn_scale"], f"{p}/scores_scaled")
        scores = g.op("Add", [scores, mask_bias], f"{p}/scores_masked")
        probs = g.op("Softmax", [scores], f"{p}/probs", axis=-1)
        ctx = g.op("MatMul", [probs, vh], f"{p}/context_heads")
        ctx = g.op("Transpose", [ctx], f"{p}/context_t", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, "const.shape_merge"], f"{p}/context")

        attn = g.linear(ctx, weights(f"{p}.attention.output.dense.weight"), weights(f"{p}.attention.output.dense.bias"), f"{p}.attention.output.dense")
        attn = g.op("Add", [attn, x], f"{p}/attention_residual")
        x = g.layer_norm(
            attn,
            weights(f"{p}.attention.output.LayerNorm.weight"),
            weights(f"{p}.attention.output.LayerNorm.bias"),
            eps,
            f"{p}.attention.output.LayerNorm",
        )

        w_in = weights(f"{p}.intermediate.dense.weight")
        if w_in.shape != (inter, hidden):
            raise SystemExit(f"convert: {p}.intermediate.dense.weight is {w_in.shape}, config says ({inter}, {hidden})")
        h = g.linear(x, w_in, weights(f"{p}.intermediate.dense.bias"), f"{p}.intermediate.dense")
        h = g.gelu(h, act, f"{p}/gelu")
        h = g.linear(h, weights(f"{p}.output.dense.weight"), weights(f"{p}.output.dense.bias"), f"{p}.output.dense")
        h = g.op("Add", [h, x], f"{p}/ffn_residual")
        x = g.layer_norm(h, weights(f"{p}.output.LayerNorm.weight"), weights(f"{p}.output.LayerNorm.bias"), eps, f"{p}.output.LayerNorm")

    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output_Identity"))

    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in INPUT_NAMES]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", "sequence", hidden])]
    graph = helper.make_graph(g.nodes, "bert_encoder", inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="docpipe-convert-bert",
        producer_version="1",
        doc_string=f"BERT encoder ({layers} layers, hidden {hidden}) -> last_hidden_state. {source_note}".strip(),
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    meta = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "max_position_embeddings": max_pos,
        "pooling": "none (done by the embedder)",
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)

    unused = sorted(k for k in weights.t if k not in weights.used and not k.startswith("pooler.") and k != "embeddings.position_ids")
    if unused:
        print(f"convert: note: {len(unused)} checkpoint tensors not used (e.g. {unused[:3]})", file=sys.stderr)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path, help="HF config.json")
    ap.add_argument("--weights", required=True, type=Path, help="model.safetensors")
    ap.add_argument("--out", required=True, type=Path, help="output model.onnx")
    args = ap.parse_args(argv)

    config = json.loads(args.config.read_text())
    weights = Weights(read_safetensors(args.weights))
    model = build_model(config, weights, source_note=f"Converted from {args.weights.name}.")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    size = model.ByteSize()
    if size > 1_900_000_000:  # protobuf 2 GiB limit: keep tensors beside the graph
        onnx.save_model(model, str(args.out), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=args.out.name + ".data")
    else:
        onnx.save_model(model, str(args.out))
    onnx.checker.check_model(str(args.out), full_check=True)
    print(f"convert: wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes, opset {OPSET}); onnx.checker OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
