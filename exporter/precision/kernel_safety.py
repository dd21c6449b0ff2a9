"""Can any integer kernel onnxruntime may pick overflow on this INT8 graph? A static proof.

onnxruntime (MLAS) chooses its int8 GEMM / convolution kernel by CPU at run time. Most of them
accumulate products in int32, but some first sum a few products in a 16-bit lane, so a graph
whose integers are too large gives different (wrong) results on those CPUs only:

* x86-64 with AVX2, SSE4.1 or AVX-512 without VNNI, u8 x s8: ``vpmaddubsw`` adds two u8 x s8
  products into an int16 lane **with saturation**, then ``vpmaddwd`` widens to int32. Full-range
  int8 weights reach 2 * 255 * 127 = 64770 per lane: the "u8s8 overflow" that took tiny's
  encoder from relative L2 0.017 (VNNI) to 0.258 (AVX2).
* ARM64 NEON without the dot-product extension, u8 x s8 and s8 x s8: activations are flipped to
  s8 (``a ^ 0x80``), then ``smull`` + ``smlal`` add two s8 x s8 products into an int16 lane
  (wrapping) before ``sadalp`` widens them.
* Every other kernel keeps at least 32 bits: x86 and ARM64 u8 x u8 (operands widened to 16 bits,
  ``vpmaddwd`` / ``umlal`` into 32-bit lanes), AVX-512 VNNI / AVX-VNNI (``vpdpbusds``), AMX
  (``tdpbusd``), ARM64 ``udot`` / ``sdot`` / ``ummla``. On x86-64, s8 activations are turned into
  u8 ones by onnxruntime's QDQ transformer (a + 128) and then meet the u8 x s8 kernels above.

One more path is refused for what it takes rather than for a lane: on ARM64 CPUs with SME,
onnxruntime 1.31 runs a DynamicQuantizeMatMul whose signed weights have no zero point (or only
zeros) with KleidiAI kernels, which quantize the activations their own way. Under QEMU's SME
emulation those came out ~100% off while the same weights with zero points were exact, and
without the hardware an emulation fault cannot be told from a kernel one, so a signed weight
without a non-zero zero point counts as unsafe (``KLEIDIAI``).

The proof reads every layer that multiplies integers (MatMulInteger, ConvInteger, QLinear*,
the contrib fused forms, and QDQ MatMul / Conv / Gemm), takes the activation's integer range
from its type (run-time quantizers may use all of it) and the weight's from the stored values,
and bounds every lane of every kernel in ``KERNELS`` and the int32 sum over the reduction
length. ``kernel_safe`` holds only if no bound leaves its lane. The kernels' behaviour is taken
from MLAS's sources (``onnxruntime/core/mlas/lib``: ``QgemmU8X8KernelAvx2.S``,
``QgemmU8X8KernelAvx512Core.S``, ``QgemmS8S8KernelNeon.S``, ``QgemmU8X8KernelNeon.S``,
``qgemm_kernel_amx.cpp``) and onnxruntime's quantization guide; ``tests/test_kernel_safety.py``
runs graphs under an emulated AVX2 CPU to show both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

INT32 = (-(2**31), 2**31 - 1)
INT16 = (-(2**15), 2**15 - 1)
TYPE_RANGE = {onnx.TensorProto.UINT8: ("uint8", 0, 255), onnx.TensorProto.INT8: ("int8", -128, 127)}


@dataclass(frozen=True)
class Kernel:
    """One kernel family: the operand types it takes, how it transforms them, and its narrowest lane."""

    name: str
    cpus: str
    activation: str  # "uint8" | "int8" | "any"
    weight: str  # "uint8" | "int8" | "any"
    activation_shift: int  # added to the stored activation before multiplying (ARM flips u8 to s8)
    products_per_lane: int  # products summed before the lane is widened
    lane: tuple[int, int]  # the lane's integer range


KERNELS = (
    Kernel(
        "u8s8 vpmaddubsw (int16 lane, saturating)",
        "x86-64 AVX2, SSE4.1, AVX-512 without VNNI",
        "uint8",
        "int8",
        0,
        2,
        INT16,
    ),
    Kernel(
        "s8s8 as u8s8 after onnxruntime's +128 shift",
        "x86-64 AVX2, SSE4.1, AVX-512 without VNNI",
        "int8",
        "int8",
        128,
        2,
        INT16,
    ),
    Kernel(
        "x8s8 smull + smlal (int16 lane, wrapping)", "ARM64 NEON without dot product", "uint8", "int8", -128, 2, INT16
    ),
    Kernel("s8s8 smull + smlal (int16 lane, wrapping)", "ARM64 NEON without dot product", "int8", "int8", 0, 2, INT16),
    Kernel(
        "u8u8 widened to int16, vpmaddwd / umlal (int32 lane)",
        "x86-64 AVX2 / AVX-512, ARM64 NEON",
        "uint8",
        "uint8",
        0,
        2,
        INT32,
    ),
    Kernel(
        "vpdpbusds / tdpbusd / udot / sdot / ummla (int32 lane)",
        "x86-64 AVX-512 VNNI, AVX-VNNI, AMX; ARM64 dot product, i8mm",
        "any",
        "any",
        0,
        4,
        INT32,
    ),
)

# integer-product ops: op type -> (activation input, weight input); the rest of their inputs
# are scales and zero points. The contrib ops are what onnxruntime fuses the ONNX forms into.
INTEGER_OPS = {
    "MatMulInteger": (0, 1),
    "ConvInteger": (0, 1),
    "QLinearMatMul": (0, 3),
    "QLinearConv": (0, 3),
    "MatMulIntegerToFloat": (0, 1),
    "DynamicQuantizeMatMul": (0, 1),
    "QGemm": (0, 3),
}
# the weight's zero-point input of each integer op (absent: zero)
WEIGHT_ZERO_POINT = {
    "MatMulInteger": 3,
    "ConvInteger": 3,
    "QLinearMatMul": 5,
    "QLinearConv": 5,
    "MatMulIntegerToFloat": 5,
    "DynamicQuantizeMatMul": 3,
    "QGemm": 5,
}
KLEIDIAI = (
    "signed weights without zero points take onnxruntime's KleidiAI kernels on ARM64 CPUs with SME, "
    "which could not be verified (wrong under QEMU's SME emulation): store them with zero points or as uint8"
)
QDQ_OPS = ("MatMul", "Conv", "Gemm")  # float ops whose inputs are both DequantizeLinear outputs
PASS_THROUGH = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity")


@dataclass
class Operand:
    dtype: str
    low: int
    high: int
    source: str


def _extremes(a: Operand, w: Operand, shift: int) -> tuple[int, int]:
    """Smallest and largest single product of ``(a + shift) * w`` over both ranges."""
    corners = [(x + shift) * y for x in (a.low, a.high) for y in (w.low, w.high)]
    return min(corners), max(corners)


def kernel_bounds(a: Operand, w: Operand, reduction: int) -> list[dict]:
    """Every kernel that may run this layer: its lane's worst sum against the lane's range."""
    rows = []
    for k in KERNELS:
        if k.activation not in ("any", a.dtype) or k.weight not in ("any", w.dtype):
            continue
        lo, hi = _extremes(a, w, k.activation_shift)
        sums = (k.products_per_lane * lo, k.products_per_lane * hi)
        rows.append(
            {
                "kernel": k.name,
                "cpus": k.cpus,
                "lane_sum": list(sums),
                "lane_range": list(k.lane),
                "ok": k.lane[0] <= sums[0] and sums[1] <= k.lane[1],
            }
        )
    # the int32 accumulator over the whole reduction (any kernel, zero points applied after);
    # an unknown reduction length (0: the weight is not a constant) cannot be bounded
    lo, hi = _extremes(a, w, 0)
    worst = max(abs(lo), abs(hi)) * reduction
    rows.append(
        {
            "kernel": "int32 accumulator over the reduction",
            "cpus": "all",
            "lane_sum": [-worst, worst],
            "lane_range": list(INT32),
            "ok": reduction > 0 and worst <= INT32[1],
        }
    )
    return rows


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.inputs = {i.name: i.type.tensor_type.elem_type for i in self.graph.input}

    def integer_operand(self, name: str, depth: int = 0) -> Operand | None:
        """The integer range of tensor ``name``: stored values for a constant, the whole type for
        a run-time quantizer's output; None when it is not an 8-bit integer tensor we can trace."""
        if name in self.inits:
            t = self.inits[name]
            if t.data_type not in TYPE_RANGE:
                return None
            values = numpy_helper.to_array(t)
            dtype = TYPE_RANGE[t.data_type][0]
            return Operand(dtype, int(values.min()), int(values.max()), f"constant {name}")
        if self.inputs.get(name) in TYPE_RANGE:  # an integer graph input: any value of its type
            dtype, low, high = TYPE_RANGE[self.inputs[name]]
            return Operand(dtype, low, high, f"graph input (whole {dtype} range)")
        node = self.producer.get(name)
        if node is None or depth > 8:
            return None
        if node.op_type == "DynamicQuantizeLinear":
            return Operand("uint8", 0, 255, "DynamicQuantizeLinear (run time, whole uint8 range)")
        if node.op_type == "QuantizeLinear":  # its zero point's type is its output's (uint8 without one)
            zp = self.inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            elem = zp.data_type if zp is not None else onnx.TensorProto.UINT8
            if elem not in TYPE_RANGE:
                return None  # 16-bit QDQ and the like: not a form the proof knows
            dtype, low, high = TYPE_RANGE[elem]
            return Operand(dtype, low, high, f"QuantizeLinear (run time, whole {dtype} range)")
        if node.op_type in PASS_THROUGH:
            return self.integer_operand(node.input[0], depth + 1)
        return None

    def zero_point_free(self, node: onnx.NodeProto, weight: Operand) -> bool:
        """Signed weights whose zero point is absent or all zeros (the KleidiAI path on SME CPUs);
        a zero point computed at run time counts as possibly zero."""
        if weight.dtype != "int8":
            return False
        if node.op_type in WEIGHT_ZERO_POINT:
            index = WEIGHT_ZERO_POINT[node.op_type]
            name = node.input[index] if len(node.input) > index else ""
        else:  # QDQ: the weight's DequantizeLinear
            dq = self.producer.get(node.input[1])
            name = dq.input[2] if dq is not None and len(dq.input) > 2 else ""
        if not name:
            return True
        return name not in self.inits or not numpy_helper.to_array(self.inits[name]).any()

    def dequantized(self, name: str) -> Operand | None:
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            return None
        return self.integer_operand(node.input[0])

    def reduction(self, node: onnx.NodeProto, weight: str) -> int:
        """Products summed per output: K of a MatMul weight [K, N]; C/group * kh * kw of a Conv."""
        source = weight
        producer = self.producer.get(weight)
        if producer is not None and producer.op_type == "DequantizeLinear":
            source = producer.input[0]
        if source not in self.inits:
            return 0
        dims = list(self.inits[source].dims)
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            return int(np.prod(dims[1:]))
        if node.op_type in ("Gemm", "QGemm") and any(a.name == "transB" and a.i for a in node.attribute):
            return int(dims[-1])
        return int(dims[-2]) if len(dims) >= 2 else int(dims[0])


def analyse(path: Path) -> dict:
    """The proof for one graph file: every integer layer, the worst lane of each kernel, and the verdict.

    Returns ``{"kernel_safe": bool, "layers": n, "activation": {...}, "weights": {...},
    "kernels": [{kernel, cpus, lane_sum, lane_range, ok, layer, layers_outside}], "per_layer":
    [{layer, activation, weight, reduction}], "problems": [...]}``; the ranges are the union over
    all layers and each kernel row is its worst layer.
    """
    g = _Graph(onnx.load(str(path)))
    layers, problems, zero_point_free = [], [], []
    for node in g.graph.node:
        if node.op_type in INTEGER_OPS:
            ai, wi = INTEGER_OPS[node.op_type]
            a = (
                Operand("uint8", 0, 255, "DynamicQuantizeMatMul (run time, whole uint8 range)")
                if node.op_type == "DynamicQuantizeMatMul"
                else g.integer_operand(node.input[ai])
            )
            w = g.integer_operand(node.input[wi])
        elif node.op_type in QDQ_OPS and len(node.input) >= 2:
            a, w = g.dequantized(node.input[0]), g.dequantized(node.input[1])
            if a is None and w is None:
                continue  # a float layer
            if a is None or w is None:
                continue  # one side float: onnxruntime runs it as a float kernel on dequantized values
        else:
            continue
        if a is None or w is None:
            problems.append(f"{node.name or node.op_type}: cannot trace the integer range of its operands")
            continue
        layers.append((node, a, w, g.reduction(node, node.input[INTEGER_OPS.get(node.op_type, (0, 1))[1]])))
        zero_point_free.append(g.zero_point_free(node, w))
    worst: dict[str, dict] = {}
    for node, a, w, k in layers:
        for row in kernel_bounds(a, w, k):
            prev = worst.get(row["kernel"])
            failing = (prev or {}).get("layers_outside", 0) + (not row["ok"])
            if prev is None or _fill(row) > _fill(prev):
                prev = row | {"layer": node.name}
            worst[row["kernel"]] = prev | {"layers_outside": failing}
    problems += [
        f"{r['kernel']} ({r['cpus']}) overflows in {r['layers_outside']} of {len(layers)} layers: "
        f"{r['layer']} reaches {r['lane_sum']}, its lane holds {r['lane_range']}"
        for r in worst.values()
        if r["layers_outside"]
    ]
    if any(zero_point_free):
        first = next(node.name for (node, *_), free in zip(layers, zero_point_free) if free)
        problems.append(f"{sum(zero_point_free)} of {len(layers)} layers (first {first}): {KLEIDIAI}")
    acts = [a for _, a, _, _ in layers]
    weights = [w for _, _, w, _ in layers]
    return {
        "kernel_safe": bool(layers) and not problems,
        "layers": len(layers),
        "activation": _union(acts),
        "weights": _union(weights),
        "max_reduction": max((k for *_, k in layers), default=0),
        "kernels": list(worst.values()),
        # every quantized weight tensor: its stored integer range, its activation's, the reduction length
        "per_layer": [
            {
                "layer": node.name,
                "activation": f"{a.dtype} [{a.low}, {a.high}]",
                "weight": f"{w.dtype} [{w.low}, {w.high}]",
                "reduction": k,
                "weight_zero_points": "unsigned weights"
                if w.dtype != "int8"
                else ("none or zeros" if free else "stored"),
            }
            for (node, a, w, k), free in zip(layers, zero_point_free)
        ],
        "problems": problems,
    }


def _union(ops: list[Operand]) -> dict:
    if not ops:
        return {}
    return {
        "dtype": "/".join(sorted({o.dtype for o in ops})),
        "range": [min(o.low for o in ops), max(o.high for o in ops)],
        "source": sorted({o.source.split(" ")[0] if o.source.startswith("constant") else o.source for o in ops}),
    }


def _fill(row: dict) -> float:
    """How much of its lane a kernel row uses (1.0 = the lane's edge; above it, overflow)."""
    (lo, hi), (lane_lo, lane_hi) = row["lane_sum"], row["lane_range"]
    return max(lo / lane_lo if lo < 0 else 0.0, hi / lane_hi if hi > 0 else 0.0)


def summary(proof: dict) -> str:
    """One line: the verdict, the operand ranges and the tightest 16-bit lane."""
    if not proof["layers"]:
        return "no integer layers"
    narrow = [r for r in proof["kernels"] if r["lane_range"] == list(INT16)]
    tight = max(narrow, key=_fill, default=None)
    verdict = "kernel-safe" if proof["kernel_safe"] else "NOT kernel-safe"
    acts, weights = proof["activation"], proof["weights"]
    where = (
        f"; tightest int16 lane {tight['lane_sum']} of {tight['lane_range']} ({tight['kernel']}, {tight['cpus']})"
        if tight
        else "; every kernel that applies has int32 lanes"
    )
    return (
        f"{verdict}: {proof['layers']} integer layers, activations {acts['dtype']} {acts['range']}, "
        f"weights {weights['dtype']} {weights['range']}{where}"
    )
