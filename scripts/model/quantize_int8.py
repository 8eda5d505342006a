#!/usr/bin/env python3
"""Dynamic int8 quantisation of an fp32 embedding graph.

Usage:
    quantize_int8.py IN.onnx OUT.onnx

Weights become per-channel QInt8, activations are quantised on the fly
(onnxruntime.quantization.quantize_dynamic). Check the result with
    verify.py MODEL_DIR --compare-int8 OUT.onnx
"""
from __future__ import annotations

import sys
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    if not src.is_file():
        print(f"quantize: {src} not found", file=sys.stderr)
        return 1
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    quantize_dynamic(
        model_input=src,
        model_output=tmp,
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    tmp.replace(dst)
    print(f"quantize: wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB, from {src.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
