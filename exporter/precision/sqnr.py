"""Per-layer SQNR of a quantized graph against its FP32 source, to find the layers that lose most.

For every MatMul, Gemm and Conv of the FP32 graph whose output tensor also exists in the
quantized graph (onnxruntime's quantizers keep the original output names), both graphs are run
on the same feed with that tensor exposed as an extra output, and

    SQNR = 10 * log10( sum(ref^2) / sum((ref - quantized)^2) )  dB

is computed per tensor. Higher is better; each bit of precision is worth about 6 dB, and a
layer below ~20 dB is a candidate to keep in float. The error is cumulative (a layer inherits
the error of everything before it), so the first layer where SQNR drops is the culprit.
Tensors are exposed in chunks so the run never holds more than ``chunk`` of them at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..checks.equivalence import Feeds, cpu_session, rel_l2

LAYER_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def layer_outputs(fp32: Path, quantized: Path) -> list[tuple[str, str, str]]:
    """``[(tensor, op type, node name)]`` of the FP32 layers whose output the quantized graph has."""
    ref = onnx.load(str(fp32), load_external_data=False)
    q = onnx.load(str(quantized), load_external_data=False)
    present = {o for n in q.graph.node for o in n.output}
    return [
        (n.output[0], n.op_type, n.name) for n in ref.graph.node if n.op_type in LAYER_OPS and n.output[0] in present
    ]


def _with_outputs(path: Path, names: list[str], dst: Path) -> Path:
    """``path`` with ``names`` as extra outputs, as ``dst`` in the same folder: the structure alone,
    so that a graph's external-data file (ViT-H's) is read from where it lies, never copied."""
    model = onnx.load(str(path), load_external_data=False)
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    onnx.save(model, str(dst))
    return dst


def sqnr_db(rel_l2: float, has_signal: bool) -> float:
    """SQNR from the relative L2 error: signal / noise power = 1 / rel_l2**2."""
    if rel_l2 == 0:
        return float("inf")
    return float(-20 * np.log10(rel_l2)) if has_signal else float("-inf")


def per_layer(fp32: Path, quantized: Path, feed: Feeds, chunk: int = 24) -> list[dict]:
    """SQNR of every layer output in graph order: ``[{tensor, op, node, sqnr_db, rel_l2}]``."""
    layers = layer_outputs(fp32, quantized)
    rows = []
    tmp = Path(quantized).with_name(f".{Path(quantized).name}.sqnr.onnx")
    try:
        for start in range(0, len(layers), chunk):
            part = layers[start : start + chunk]
            names = [t for t, _, _ in part]
            values = []
            for path in (fp32, quantized):
                session = cpu_session(_with_outputs(path, names, tmp))
                values.append(session.run(names, feed))
                del session
            for (tensor, op, node), ref, got in zip(part, *values):
                rel = rel_l2(got, ref)
                rows.append(
                    {
                        "tensor": tensor,
                        "op": op,
                        "node": node,
                        "sqnr_db": sqnr_db(rel, bool(np.any(ref))),
                        "rel_l2": rel,
                    }
                )
    finally:
        tmp.unlink(missing_ok=True)
    return rows
