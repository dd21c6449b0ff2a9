"""INT8 graphs with onnxruntime.quantization: dynamic or static QDQ, chosen per graph by measurement.

* ``dynamic``: int8 weights for every MatMul whose weight is a constant, activations quantized
  on the fly (onnxruntime fuses them into DynamicQuantizeMatMul / MatMulIntegerToFloat).
* ``static``: QDQ format, activation ranges calibrated with MinMax on real photos; quantizes the
  MatMuls and Convs with constant weights (not attention's activation x activation products).

Both start from a prepared graph: a ``MatMul`` reading ``Transpose(constant)`` gets the
transposed constant (the quantizers only see a weight when it is a constant input, and would
silently leave such a layer float32), and every ``Gemm`` with a constant weight (SAM 2's
decoder has 40) becomes ``MatMul`` + ``Add`` with the weight pre-transposed. onnxruntime 1.31's
dynamic quantizer does the Gemm rewrite itself; doing it here lets static QDQ and our list of
layers to quantize name the same MatMuls.

Large float constants that no quantizer touches (the encoder's position embedding, folded by
onnxsim into a [1, C, 256, 256] tensor, 25 MB in tiny) are stored as int8 with a per-channel
``DequantizeLinear``; otherwise they alone would keep tiny's INT8 encoder above 0.3x the FP32 bytes.

Every candidate mode of a graph is built and compared with the FP32 graph in onnxruntime on
the sample photo and prompts; the first one in the configs' order that meets the tolerance
ships, and the manifest records every candidate's bytes and errors and why the choice was
made. The order in ``configs/`` comes from measurements (``scripts/bench_precision.py``);
timing inside export would make the choice, and so the artifacts, depend on machine load.
A graph whose candidates all miss falls back to its FP32 file when ``fp32`` is a candidate.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..equivalence import Feeds, Outputs, Tolerance, compare, run_graph
from ..errors import ExportError

MODES = ("dynamic", "static", "fp32")
COMPRESS_MIN_ELEMENTS = 1 << 20   # float constants at least this large are stored as int8


@dataclass
class Int8Result:
    """What the manifest records about one graph's INT8 choice."""

    chosen: str                  # "dynamic" | "static" | "fp32" (the FP32 file is used)
    reason: str
    candidates: dict             # mode -> {bytes, comparison, constants_compressed} or {error}
    tolerance: dict
    prepared: dict               # counts of the graph rewrites before quantization

    def as_dict(self) -> dict:
        return {"chosen": self.chosen, "reason": self.reason, "tolerance": self.tolerance,
                "prepared": self.prepared, "candidates": self.candidates}


def prepare(src: Path, dst: Path) -> dict:
    """Rewrite constant-weight Gemms as MatMul + Add and fold Transpose(constant) into MatMul
    weights, so that the quantizers see every weight matrix. Returns counts of each rewrite."""
    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    counts = {"gemm_to_matmul": 0, "transposed_weights_folded": 0}
    nodes = []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type == "Gemm" and node.input[1] in inits and not attrs.get("transA", 0)
                and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0):
            weight = numpy_helper.to_array(inits[node.input[1]])
            name = f"{node.input[1]}__matmul"
            graph.initializer.append(numpy_helper.from_array(
                np.ascontiguousarray(weight.T if attrs.get("transB", 0) else weight), name))
            product = node.output[0] if len(node.input) < 3 else f"{node.output[0]}__product"
            nodes.append(onnx.helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}__matmul"))
            if len(node.input) == 3:
                nodes.append(onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                                   name=f"{node.name}__bias"))
            counts["gemm_to_matmul"] += 1
            continue
        if node.op_type == "MatMul" and node.input[1] in producer:
            transpose = producer[node.input[1]]
            if transpose.op_type == "Transpose" and transpose.input[0] in inits:
                perm = next((a.ints for a in transpose.attribute if a.name == "perm"), None)
                weight = numpy_helper.to_array(inits[transpose.input[0]])
                name = f"{transpose.input[0]}__transposed"
                graph.initializer.append(numpy_helper.from_array(
                    np.ascontiguousarray(np.transpose(weight, perm or None)), name))
                node.input[1] = name
                counts["transposed_weights_folded"] += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    del graph.value_info[:]  # stale after the rewrite; onnxruntime infers its own
    onnx.save(model, str(dst))
    return counts


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove nodes whose outputs nobody reads (orphaned Transposes) and unread initializers."""
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def compress_constants(path: Path, min_elements: int = COMPRESS_MIN_ELEMENTS) -> int:
    """Store large float32 constants as int8 + DequantizeLinear (symmetric, per channel on
    axis 1 when it has more than one channel); returns how many were compressed."""
    model = onnx.load(str(path))
    graph, done = model.graph, 0
    for tensor in list(graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT or int(np.prod(tensor.dims)) < min_elements:
            continue
        values = numpy_helper.to_array(tensor)
        axis = 1 if values.ndim >= 2 and values.shape[1] > 1 else None
        reduce = tuple(i for i in range(values.ndim) if i != axis)
        scale = (np.abs(values).max(axis=reduce) / 127.0).astype(np.float32)
        scale[scale == 0] = 1.0
        shaped = scale.reshape([-1 if i == axis else 1 for i in range(values.ndim)]) if axis is not None else scale
        quantized = np.clip(np.rint(values / shaped), -127, 127).astype(np.int8)
        graph.initializer.remove(tensor)
        q_name, s_name, z_name = f"{tensor.name}__int8", f"{tensor.name}__scale", f"{tensor.name}__zero"
        graph.initializer.extend([numpy_helper.from_array(quantized, q_name),
                                  numpy_helper.from_array(scale if axis is not None else scale.reshape(()), s_name),
                                  numpy_helper.from_array(np.zeros(scale.shape if axis is not None else (), np.int8),
                                                          z_name)])
        attrs = {"axis": axis} if axis is not None else {}
        graph.node.insert(0, onnx.helper.make_node("DequantizeLinear", [q_name, s_name, z_name], [tensor.name],
                                                   name=f"{tensor.name}__dequantize", **attrs))
        done += 1
    onnx.save(model, str(path))
    return done


def weighted_nodes(path: Path, ops: tuple[str, ...]) -> list:
    """Nodes of ``ops`` whose second input (the weight) is a constant: the layers worth int8.
    Attention's activation x activation MatMuls stay float (both operands would need run-time
    ranges, and they are a small share of the work)."""
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type in ops and n.input[1] in inits]


def quantize_dynamic(prepared: Path, dst: Path, per_channel: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic as ort_dynamic

    # (an empty nodes_to_quantize means "all" to onnxruntime; SAM 2's graphs always have some)
    ort_dynamic(str(prepared), str(dst), op_types_to_quantize=["MatMul"], per_channel=per_channel,
                nodes_to_quantize=[n.name for n in weighted_nodes(prepared, ("MatMul",))],
                weight_type=QuantType.QInt8)


def quantize_static(prepared: Path, dst: Path, per_channel: bool, calibration: list[Feeds]) -> None:
    """QDQ with MinMax ranges from ``calibration`` for the constant-weight MatMuls and Convs."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_static

    from .calibration import minmax_ranges, write_cache

    weighted = weighted_nodes(prepared, ("MatMul", "Conv"))
    tensors = sorted({name for n in weighted for name in (n.input[0], n.output[0])})
    cache = dst.with_name(dst.name + ".ranges.json")
    try:
        write_cache(minmax_ranges(prepared, tensors, calibration), cache)
        ort_static(str(prepared), str(dst), None, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                   activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                   nodes_to_quantize=[n.name for n in weighted], op_types_to_quantize=["MatMul", "Conv"],
                   calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=cache)
    finally:
        cache.unlink(missing_ok=True)


def build(src: Path, dst: Path, candidates: list[str], feeds: list[Feeds], reference: list[Outputs],
          tolerance: Tolerance, per_channel: bool = True, calibration: list[Feeds] | None = None) -> Int8Result:
    """Build every candidate mode of ``src`` (FP32 ONNX); the first within ``tolerance`` becomes
    ``dst``. ``chosen == "fp32"`` means no INT8 file was written (``dst`` absent).

    ``feeds``/``reference``: FP32 inputs/outputs on the sample photo and prompts (the check).
    ``calibration``: feeds for static calibration (required when "static" is a candidate).
    """
    unknown = sorted(set(candidates) - set(MODES))
    if unknown or not candidates:
        raise ExportError(f"int8 candidates must be a non-empty subset of {', '.join(MODES)}, not {candidates}")
    prepared = dst.with_name(dst.name + ".prepared")
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # the quantizer logs "consider pre-processing" on the root logger
    record: dict[str, dict] = {}
    try:
        counts = prepare(src, prepared)
        for mode in candidates:
            if mode == "fp32":
                record[mode] = {"bytes": src.stat().st_size, "comparison": {"ok": True, "failures": []}}
                continue
            out = dst.with_name(f"{dst.name}.{mode}")
            try:
                if mode == "dynamic":
                    quantize_dynamic(prepared, out, per_channel)
                else:
                    if not calibration:
                        raise ExportError("static INT8 needs calibration images")
                    quantize_static(prepared, out, per_channel, calibration)
                compressed = compress_constants(out)
                result = compare(reference, run_graph(out, feeds), tolerance)
                record[mode] = {"bytes": out.stat().st_size, "constants_compressed": compressed,
                                "comparison": result.as_dict()}
            except ExportError:
                raise
            except Exception as exc:  # a quantizer or runtime failure disqualifies the mode only
                record[mode] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}",
                                "comparison": {"ok": False, "failures": ["build failed"]}}
        chosen, reason = _choose(record)
        for mode in candidates:
            out = dst.with_name(f"{dst.name}.{mode}")
            if mode == chosen and mode != "fp32":
                os.replace(out, dst)
            else:
                out.unlink(missing_ok=True)
    finally:
        prepared.unlink(missing_ok=True)
        root.setLevel(level)
    return Int8Result(chosen, reason, record, tolerance.__dict__, counts)


def _choose(record: dict) -> tuple[str, str]:
    """The first candidate (configs order) within tolerance; the reason names every candidate."""
    def worst(r: dict) -> str:
        rel = r["comparison"].get("rel_l2") or {}
        return f"worst rel L2 {max(rel.values()):.2g}" if rel else "same as FP32"
    summary = "; ".join(f"{m}: " + (r["error"] if "error" in r else
                                    f"{r['bytes'] / 1e6:.1f} MB, {worst(r)}, "
                                    + ("within tolerance" if r["comparison"]["ok"] else "misses tolerance"))
                        for m, r in record.items())
    chosen = next((m for m, r in record.items() if r["comparison"]["ok"]), None)
    if chosen is None:
        raise ExportError(f"no INT8 mode meets the tolerance and fp32 is not a fallback candidate ({summary})")
    if chosen == "fp32":
        return chosen, f"no int8 mode within tolerance, the FP32 graph is used ({summary})"
    return chosen, f"first candidate within tolerance ({summary})"
