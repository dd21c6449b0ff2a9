"""INT8 graphs with onnxruntime.quantization: dynamic or static QDQ, tried in order until one is accepted.

* ``dynamic``: 8-bit weights for every MatMul whose weight is a 2-D constant, activations
  quantized to uint8 at run time (onnxruntime fuses them into DynamicQuantizeMatMul).
* ``static``: QDQ format, activation ranges calibrated with MinMax on real photos; quantizes the
  MatMuls and Convs with constant weights (not attention's activation x activation products).

Each candidate also names its weight scheme (``WEIGHT_SCHEMES``), tried in the configs' order:
int7 (signed, at most 64 in magnitude) first, because VNNI CPUs multiply unsigned by signed
bytes in one instruction and AVX2 ones take their fast u8 x s8 path, and two such products still
fit an int16 lane; then uint8 (u8 x u8 kernels sum in 32 bits everywhere: slower, one bit more
accurate). Both are kernel-safe on every CPU (kernel_safety.py; docs/precision.md).

Both start from a prepared graph: a ``MatMul`` reading ``Transpose(constant)`` gets the
transposed constant (the quantizers only see a weight when it is a constant input, and would
silently leave such a layer float32), and every ``Gemm`` with a constant weight (SAM 2's
decoder has 40) becomes ``MatMul`` + ``Add`` with the weight pre-transposed. onnxruntime 1.31's
dynamic quantizer does the Gemm rewrite itself; doing it here lets static QDQ and our list of
layers to quantize name the same MatMuls.

Large float constants that no quantizer touches (the encoder's position embedding, folded by
onnxsim into a [1, C, 256, 256] tensor, 25 MB in tiny) are stored as int8 with a per-channel
``DequantizeLinear``; otherwise they alone would keep tiny's INT8 encoder above 0.3x the FP32 bytes.

Candidates are tried in the configs' order (modes; within a mode each weight scheme; within a
scheme each step of layers kept float): a candidate is accepted when its graph is kernel-safe,
within the tolerance against FP32 on the sample photo and prompts, and decodes masks up to the
parity gate (mask_check.py).
The first accepted ships; the manifest records every candidate tried, its bytes, errors, masks
and proof, and why the choice was made. The order in ``configs/`` comes from measurements
(``scripts/bench_precision.py``); timing inside export would make the choice, and so the
artifacts, depend on machine load. With ``fp32`` as the last candidate the graph stays FP32
when nothing else is accepted; without it, the export refuses and says why.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..checks.equivalence import Feeds, Outputs, Tolerance, compare, run_graph
from ..core.errors import ExportError, one_line
from ..core.manifest import data_file
from . import kernel_safety

MODES = ("dynamic", "static", "fp32")
COMPRESS_MIN_ELEMENTS = 1 << 20  # float constants at least this large are stored as int8
# weight schemes (configs' quantization.int8.weights) -> (onnxruntime QuantType name,
# reduce_range). Activations are uint8 in every scheme. "uint8" and "int7" (symmetric, |w| <= 64,
# one zero point per tensor made non-zero by give_zero_points) are kernel-safe on every CPU
# (kernel_safety.py); full-range "int8" overflows the u8s8 kernels of AVX2 / AVX-512 without
# VNNI, so the proof refuses it: it is kept only to show that refusal.
WEIGHT_SCHEMES = {"uint8": ("QUInt8", False), "int7": ("QInt8", True), "int8": ("QInt8", False)}


@dataclass
class Int8Result:
    """What the manifest records about one graph's INT8 choice."""

    chosen: str  # "dynamic" | "static" | "fp32" (the FP32 file is used)
    reason: str
    candidates: dict  # record key -> {weights, bytes, comparison, kernel_safety, masks, ...} or {error}
    tolerance: dict
    prepared: dict  # counts of the graph rewrites before quantization
    weights: str | None = None  # the accepted candidate's weight scheme (WEIGHT_SCHEMES); None for fp32
    candidate: str = ""  # the accepted record key ("dynamic/int7", "dynamic/uint8/float-step-1", "fp32")
    float_layers: list = ()  # its patterns of layers kept float
    kept_float: list = ()  # the layers they matched

    @property
    def kernel_safety(self) -> dict:
        """The shipped graph's proof (no integer layers when the FP32 graph is kept)."""
        return self.candidates.get(self.candidate, {}).get("kernel_safety") or {"kernel_safe": True, "layers": 0}

    def as_dict(self) -> dict:
        return {
            "chosen": self.chosen,
            "candidate": self.candidate,
            "reason": self.reason,
            "weights": self.weights,
            "float_layers": list(self.float_layers),
            "kept_float": list(self.kept_float),
            "kernel_safety": self.kernel_safety,
            "tolerance": self.tolerance,
            "prepared": self.prepared,
            "candidates": self.candidates,
        }


def _index(model: onnx.ModelProto) -> tuple:
    """(graph, initializers by name, producer node by output, number of readers by tensor name)."""
    graph = model.graph
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    return graph, {t.name: t for t in graph.initializer}, {o: n for n in graph.node for o in n.output}, uses


def prepare(src: Path, dst: Path) -> dict:
    """Rewrite constant-weight Gemms as MatMul + Add and fold Transpose(constant) into MatMul
    weights, so that the quantizers see every weight matrix. Returns counts of each rewrite."""
    model = onnx.load(str(src))
    graph, inits, producer, uses = _index(model)
    counts = {"gemm_to_matmul": 0, "transposed_weights_folded": 0}
    nodes = []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if (
            node.op_type == "Gemm"
            and node.input[1] in inits
            and not attrs.get("transA", 0)
            and attrs.get("alpha", 1.0) == 1.0
            and attrs.get("beta", 1.0) == 1.0
        ):
            weight = numpy_helper.to_array(inits[node.input[1]])
            name = f"{node.input[1]}__matmul"
            graph.initializer.append(
                numpy_helper.from_array(np.ascontiguousarray(weight.T if attrs.get("transB", 0) else weight), name)
            )
            product = node.output[0] if len(node.input) < 3 else f"{node.output[0]}__product"
            nodes.append(onnx.helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}__matmul"))
            if len(node.input) == 3:
                nodes.append(
                    onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}__bias")
                )
            counts["gemm_to_matmul"] += 1
            continue
        if node.op_type == "MatMul" and node.input[1] in producer:
            transpose = producer[node.input[1]]
            if transpose.op_type == "Transpose" and transpose.input[0] in inits:
                perm = next((a.ints for a in transpose.attribute if a.name == "perm"), None)
                weight = numpy_helper.to_array(inits[transpose.input[0]])
                name = f"{transpose.input[0]}__transposed"
                graph.initializer.append(
                    numpy_helper.from_array(np.ascontiguousarray(np.transpose(weight, perm or None)), name)
                )
                node.input[1] = name
                counts["transposed_weights_folded"] += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    del graph.value_info[:]  # stale after the rewrite; onnxruntime infers its own
    save_like(model, src, dst)
    return counts


def save_like(model: onnx.ModelProto, src: Path, dst: Path) -> None:
    """Save ``model`` (derived from ``src``) as ``dst``, its weights in ``dst``'s external-data
    file when ``src`` has one: such graphs are over protobuf's 2 GB as one file (ViT-H)."""
    if not data_file(src).is_file():
        onnx.save(model, str(dst))
        return
    data_file(dst).unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        model,
        str(dst),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_file(dst).name,
        size_threshold=1024,
    )


def remove_graph(path: Path) -> None:
    """Delete a working graph and its external-data file, if any."""
    path.unlink(missing_ok=True)
    data_file(path).unlink(missing_ok=True)


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


def give_zero_points(path: Path) -> dict:
    """Give every signed weight tensor whose zero points are all zero one non-zero zero point,
    without widening the stored range: one channel moves by one step, its zero point with it,
    so its dequantized values stay the same, except the channel's values at the tensor's largest
    magnitude on that side, which are pulled in by one step (the channel with the fewest is
    chosen; usually there is one with none). onnxruntime 1.31 takes KleidiAI kernels on ARM64
    SME CPUs only for weights whose zero points are all zero (kernel_safety.KLEIDIAI); one
    non-zero channel keeps a layer on the kernels the proof covers. Returns how many tensors
    changed and how many stored values moved by more than the shift."""
    model = onnx.load(str(path))
    graph, inits, producer, uses = _index(model)
    pairs = []  # (weight, zero point, channel axis)
    for node in graph.node:
        if node.op_type in ("MatMulInteger", "ConvInteger") and len(node.input) > 3:
            pairs.append((node.input[1], node.input[3], 1 if node.op_type == "MatMulInteger" else 0))
        elif node.op_type in ("MatMul", "Conv", "Gemm") and node.input[1] in producer:
            dq = producer[node.input[1]]
            if dq.op_type == "DequantizeLinear" and len(dq.input) > 2:
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                pairs.append((dq.input[0], dq.input[2], axis))
    changed = moved = 0
    for w_name, z_name, axis in pairs:
        w, z = inits.get(w_name), inits.get(z_name)
        if w is None or z is None or w.data_type != onnx.TensorProto.INT8 or uses.get(z_name, 0) != 1:
            continue
        q, zero = numpy_helper.to_array(w).astype(np.int32), numpy_helper.to_array(z).astype(np.int32)
        if zero.any() or zero.ndim != 1 or zero.size < 2:
            continue  # already has one, or one zero point for the whole tensor (no channel to move)
        q = np.moveaxis(q, axis, 0).copy()
        limit = int(np.abs(q).max())
        flat = q.reshape(len(q), -1)
        # values that a step down (up) would push past the limit, per channel: where every channel
        # has some, the fewest are pulled in by one step (the only values this changes)
        at_low, at_high = (flat == -limit).sum(axis=1), (flat == limit).sum(axis=1)
        channel_down, channel_up = int(at_low.argmin()), int(at_high.argmin())
        step, channel = (-1, channel_down) if at_low[channel_down] <= at_high[channel_up] else (1, channel_up)
        edge = -limit if step < 0 else limit
        moved += int((q[channel] == edge).sum())
        q[channel][q[channel] == edge] -= step
        q[channel] += step
        zero[channel] = step
        w.CopyFrom(numpy_helper.from_array(np.moveaxis(q, 0, axis).astype(np.int8), w_name))
        z.CopyFrom(numpy_helper.from_array(zero.astype(np.int8), z_name))
        changed += 1
    if changed:
        onnx.save(model, str(path))
    return {"tensors": changed, "values_moved": moved}


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
        graph.initializer.extend(
            [
                numpy_helper.from_array(quantized, q_name),
                numpy_helper.from_array(scale if axis is not None else scale.reshape(()), s_name),
                numpy_helper.from_array(np.zeros(scale.shape if axis is not None else (), np.int8), z_name),
            ]
        )
        attrs = {"axis": axis} if axis is not None else {}
        graph.node.insert(
            0,
            onnx.helper.make_node(
                "DequantizeLinear", [q_name, s_name, z_name], [tensor.name], name=f"{tensor.name}__dequantize", **attrs
            ),
        )
        done += 1
    onnx.save(model, str(path))
    return done


def weighted_nodes(path: Path, ops: tuple[str, ...]) -> list:
    """Nodes of ``ops`` whose second input (the weight) is a constant: the layers worth int8.
    Attention's activation x activation MatMuls stay float (both operands would need run-time
    ranges, and a right operand quantized at run time has no stored range for the kernel-safety
    proof; they take ~40% of tiny's INT8 encoder time, docs/precision.md), and so do MatMuls
    with a batched (3-D) constant (the decoder's per-head attention weights): onnxruntime 1.31
    rejects per-channel zero points on those at run time ("b zero point is not valid") for uint8
    weights."""
    model = onnx.load(str(path), load_external_data=False)
    dims = {t.name: len(t.dims) for t in model.graph.initializer}
    return [
        n
        for n in model.graph.node
        if n.op_type in ops and n.input[1] in dims and (n.op_type != "MatMul" or dims[n.input[1]] == 2)
    ]


def _weight_type(weights: str):
    from onnxruntime.quantization import QuantType

    if weights not in WEIGHT_SCHEMES:
        raise ExportError(f"int8 weights must be one of {', '.join(WEIGHT_SCHEMES)}, not {weights!r}")
    name, reduce_range = WEIGHT_SCHEMES[weights]
    return getattr(QuantType, name), reduce_range


def quantize_dynamic(
    prepared: Path, dst: Path, per_channel: bool, weights: str = "uint8", exclude: list[str] = ()
) -> None:
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    weight_type, reduce_range = _weight_type(weights)
    nodes = [n.name for n in weighted_nodes(prepared, ("MatMul",)) if n.name not in set(exclude)]
    if not nodes:  # an empty nodes_to_quantize means "all" to onnxruntime
        raise ValueError("no weighted layer left to quantize")
    ort_dynamic(
        str(prepared),
        str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=per_channel,
        nodes_to_quantize=nodes,
        weight_type=weight_type,
        reduce_range=reduce_range,
    )


def quantize_static(
    prepared: Path,
    dst: Path,
    per_channel: bool,
    calibration: list[Feeds],
    weights: str = "uint8",
    exclude: list[str] = (),
) -> None:
    """QDQ with MinMax ranges from ``calibration`` for the constant-weight MatMuls and Convs."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_static

    from .calibration import minmax_ranges, write_cache

    weight_type, reduce_range = _weight_type(weights)

    weighted = [n for n in weighted_nodes(prepared, ("MatMul", "Conv")) if n.name not in set(exclude)]
    if not weighted:
        raise ValueError("no weighted layer left to quantize")
    tensors = sorted({name for n in weighted for name in (n.input[0], n.output[0])})
    cache = dst.with_name(dst.name + ".ranges.json")
    try:
        write_cache(minmax_ranges(prepared, tensors, calibration), cache)
        ort_static(
            str(prepared),
            str(dst),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=weight_type,
            reduce_range=reduce_range,
            nodes_to_quantize=[n.name for n in weighted],
            op_types_to_quantize=["MatMul", "Conv"],
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=cache,
        )
    finally:
        cache.unlink(missing_ok=True)


def kept_float(prepared: Path, patterns: list[str]) -> list[str]:
    """Names of the weighted layers that ``patterns`` (regular expressions on node names) keep float."""
    rx = [re.compile(p) for p in patterns]
    return [n.name for n in weighted_nodes(prepared, ("MatMul", "Conv")) if any(r.search(n.name) for r in rx)]


def _candidates(
    modes: list[str], schemes: list[str], float_steps: list[list[str]]
) -> list[tuple[str, str, str | None, int]]:
    """``(record key, mode, weight scheme, float step)`` in the order they are tried: within a
    mode every scheme, within a scheme every float step (the configs list each fastest first),
    fp32 (no scheme) where it is listed."""
    out = []
    for mode in modes:
        if mode == "fp32":
            out.append(("fp32", mode, None, 0))
            continue
        for scheme in schemes:
            out += [
                (f"{mode}/{scheme}" + (f"/float-step-{i}" if i else ""), mode, scheme, i)
                for i in range(len(float_steps))
            ]
    return out


def weight_schemes(weights: str | list[str]) -> list[str]:
    """The configs' ``weights`` (one scheme or a list, fastest first) as a checked list."""
    schemes = [weights] if isinstance(weights, str) else list(weights)
    bad = [w for w in schemes if w not in WEIGHT_SCHEMES]
    if bad or not schemes:
        raise ExportError(f"int8 weights must be a non-empty list of {', '.join(WEIGHT_SCHEMES)}, not {weights!r}")
    return schemes


def build(
    src: Path,
    dst: Path,
    candidates: list[str],
    feeds: list[Feeds],
    reference: list[Outputs],
    tolerance: Tolerance,
    per_channel: bool = True,
    calibration: list[Feeds] | Callable[[], list[Feeds]] | None = None,
    weights: str | list[str] = ("int7", "uint8"),
    masks: Callable[[Path], dict] | None = None,
    float_steps: list[list[str]] | None = None,
) -> Int8Result:
    """Try the candidate modes of ``src`` (FP32 ONNX) in order, each with every scheme of
    ``weights`` in turn and each of those with the layers of every ``float_steps`` entry kept float (regular expressions on node names; default: one
    step, nothing kept float), until one is kernel-safe (kernel_safety.py), within ``tolerance``
    and, given ``masks`` (mask_check.py: the candidate file -> its mask comparison), up to the
    parity gate; it becomes ``dst``. ``chosen == "fp32"`` means no INT8 file was written.

    ``feeds``/``reference``: FP32 inputs/outputs on the sample photo and prompts (the check).
    ``calibration``: feeds for static calibration, or a function making them (called only if a
    static candidate is tried).
    """
    unknown = sorted(set(candidates) - set(MODES))
    if unknown or not candidates:
        raise ExportError(f"int8 candidates must be a non-empty subset of {', '.join(MODES)}, not {candidates}")
    float_steps = float_steps or [[]]
    schemes = weight_schemes(weights)
    prepared = dst.with_name(dst.name + ".prepared")
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # the quantizer logs "consider pre-processing" on the root logger
    record: dict[str, dict] = {}
    chosen_key = None
    try:
        counts = prepare(src, prepared)
        for key, mode, scheme, step in _candidates(candidates, schemes, float_steps):
            if mode == "fp32":
                record[key] = {
                    "bytes": src.stat().st_size + (data_file(src).stat().st_size if data_file(src).is_file() else 0),
                    "comparison": {"ok": True, "failures": []},
                    "accepted": True,
                }
            else:
                record[key] = _try(
                    prepared,
                    dst.with_name(f"{dst.name}.candidate"),
                    mode,
                    float_steps[step],
                    per_channel,
                    scheme,
                    calibration,
                    feeds,
                    reference,
                    tolerance,
                    masks,
                )
            if record[key]["accepted"]:
                chosen_key = key
                break
        chosen, reason = _choose(record, chosen_key)
        candidate = dst.with_name(f"{dst.name}.candidate")
        if chosen != "fp32":
            os.replace(candidate, dst)
        candidate.unlink(missing_ok=True)
    finally:
        remove_graph(prepared)
        dst.with_name(f"{dst.name}.candidate").unlink(missing_ok=True)
        root.setLevel(level)
    entry = record[chosen_key]
    return Int8Result(
        chosen,
        reason,
        record,
        tolerance.__dict__,
        counts,
        entry.get("weights"),
        chosen_key,
        entry.get("float_layers", []),
        entry.get("kept_float", []),
    )


def _try(
    prepared: Path,
    out: Path,
    mode: str,
    patterns: list[str],
    per_channel: bool,
    weights: str,
    calibration,
    feeds: list[Feeds],
    reference: list[Outputs],
    tolerance: Tolerance,
    masks,
) -> dict:
    """Build one candidate into ``out`` and check it: the candidate's manifest record."""
    kept = kept_float(prepared, patterns)
    try:
        if mode == "dynamic":
            quantize_dynamic(prepared, out, per_channel, weights, exclude=kept)
        else:
            feeds_for_ranges = calibration() if callable(calibration) else calibration
            if not feeds_for_ranges:
                raise ExportError("static INT8 needs calibration images")
            quantize_static(prepared, out, per_channel, feeds_for_ranges, weights, exclude=kept)
        zero_points_given = give_zero_points(out)
        compressed = compress_constants(out)
        proof = kernel_safety.analyse(out)
        # an unsafe graph is not even run: its numbers here would not hold on other CPUs
        result = (
            compare(reference, run_graph(out, feeds), tolerance).as_dict()
            if proof["kernel_safe"]
            else {"ok": False, "failures": [kernel_safety.summary(proof)]}
        )
        # the costlier mask check only for a candidate that could still be chosen
        mask_result = masks(out) if masks is not None and result["ok"] else None
        return {
            "weights": weights,
            "bytes": out.stat().st_size,
            "zero_points_given": zero_points_given,
            "constants_compressed": compressed,
            "float_layers": patterns,
            "kept_float": kept,
            "kernel_safety": proof,
            "comparison": result,
            "masks": mask_result,
            "accepted": result["ok"] and (mask_result is None or mask_result["ok"]),
        }
    except ExportError:
        raise
    except Exception as exc:  # a quantizer or runtime failure disqualifies the candidate only
        return {
            "weights": weights,
            "error": one_line(exc),
            "accepted": False,
            "float_layers": patterns,
            "comparison": {"ok": False, "failures": ["build failed"]},
        }


def _verdict(r: dict) -> str:
    """One candidate in words: size, errors, and whether (or why not) it may ship."""
    if "error" in r:
        return r["error"]
    if not r.get("kernel_safety", {"kernel_safe": True})["kernel_safe"]:
        return f"{r['bytes'] / 1e6:.1f} MB, NOT kernel-safe ({r['kernel_safety']['problems'][0][:160]})"
    rel = r["comparison"].get("rel_l2") or {}
    text = f"{r['bytes'] / 1e6:.1f} MB, " + (f"worst rel L2 {max(rel.values()):.2g}" if rel else "same as FP32")
    if not r["comparison"]["ok"]:
        return text + ", misses tolerance"
    m = r.get("masks")
    if m is not None:
        text += f", mask IoU min {m['iou_min']:.4f}" + ("" if m["ok"] else f" < the parity gate {m['gate']:g}")
    return text + (", accepted" if r["accepted"] else "")


def _choose(record: dict, chosen: str | None) -> tuple[str, str]:
    """The accepted candidate's mode, and a reason that names every candidate tried."""
    summary = "; ".join(f"{m}: {_verdict(r)}" for m, r in record.items())
    if chosen is None:
        raise ExportError(
            f"no INT8 candidate is kernel-safe, within the tolerance and up to the parity gate, and "
            f"fp32 is not a fallback candidate ({summary})"
        )
    if chosen == "fp32":
        return chosen, f"no int8 candidate accepted, the FP32 graph is used ({summary})"
    return chosen.split("/")[0], f"first accepted candidate ({summary})"
