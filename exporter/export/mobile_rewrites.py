"""Graph rewrites for static-shape exports: operators NNAPI or CoreML lack, as ones they have.

onnxruntime's mobile usability checker (release/mobile_check.py) names what keeps the static
graphs off the phone's accelerators. Four of those operators have exact or near-exact forms in
operators NNAPI and CoreML both take, so the rewrite keeps the I/O contract and changes only
the arithmetic's rounding (export verifies it on the sample photo, parity gates it):

- ``LayerNormalization`` (NNAPI, CoreML NeuralNetwork): ReduceMean, Sub, Mul, Add, Sqrt, Div.
- ``Erf`` (NNAPI, CoreML NeuralNetwork; exact GELU): Abramowitz & Stegun 7.1.26, a rational
  polynomial times exp(-x^2), absolute error below 1.5e-7 (6e-7 in float32, near 0), in
  Mul, Add, Div, Exp and Clip only (CoreML MLProgram, which has Erf, lacks Abs and Neg).
- ``Cos`` (NNAPI): sin(x + pi / 2).
- ``Pad`` with zeros (CoreML MLProgram): Concat with zero blocks, the shapes being fixed.
- ``Resize`` without a roi: the same with an empty roi given (the checker counts an omitted input
  as a dynamic shape and cuts the graph there).

Works on the ONNX file in place; shapes come from ONNX shape inference (all dims are fixed).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

# erf(x) = sign(x) (1 - t (A1 + t (A2 + t (A3 + t (A4 + t A5)))) exp(-x^2)), t = 1 / (1 + P |x|)
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
SIGN_GAIN = 1e30  # sign(x) = clip(x * 1e30, -1, 1): no Sign on NNAPI; below 1e-30 erf(x) is ~0 anyway


class _Builder:
    """New nodes and scalar constants with names unique in the graph."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph, self.count, self.consts = graph, 0, {}

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}/mobile_{self.count}"

    def const(self, value, dtype=np.float32) -> str:
        key = (float(value), np.dtype(dtype).name)
        if key not in self.consts:
            name = f"mobile_const_{len(self.consts)}"
            self.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype), name))
            self.consts[key] = name
        return self.consts[key]

    def array(self, value: np.ndarray, base: str) -> str:
        name = self.name(base)
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def op(self, nodes: list, op_type: str, inputs: list[str], base: str, output: str | None = None, **attrs) -> str:
        out = output or self.name(base)
        nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(base), **attrs))
        return out


def _reduce_mean(b: _Builder, nodes: list, x: str, axes: list[int], opset: int, base: str) -> str:
    if opset >= 18:  # axes became an input
        return b.op(nodes, "ReduceMean", [x, b.array(np.array(axes, np.int64), base)], base, keepdims=1)
    return b.op(nodes, "ReduceMean", [x], base, axes=axes, keepdims=1)


def _layer_norm(b, node, shapes, opset) -> list | None:
    if len([o for o in node.output if o]) != 1:  # Mean / InvStdDev outputs asked for: leave it
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = len(shapes[node.input[0]])
    axis = attrs.get("axis", -1) % rank
    axes, eps, base, nodes = list(range(axis, rank)), attrs.get("epsilon", 1e-5), node.name or "ln", []
    x = node.input[0]
    d = b.op(nodes, "Sub", [x, _reduce_mean(b, nodes, x, axes, opset, base)], base)
    var = _reduce_mean(b, nodes, b.op(nodes, "Mul", [d, d], base), axes, opset, base)
    std = b.op(nodes, "Sqrt", [b.op(nodes, "Add", [var, b.const(eps)], base)], base)
    y = b.op(nodes, "Div", [d, std], base)
    has_bias = len(node.input) > 2 and node.input[2]
    y = b.op(nodes, "Mul", [y, node.input[1]], base, None if has_bias else node.output[0])
    if has_bias:
        b.op(nodes, "Add", [y, node.input[2]], base, node.output[0])
    return nodes


def _erf(b, node, shapes, opset) -> list:
    x, base, nodes = node.input[0], node.name or "erf", []
    # |x| as x sign(x) and -y as y * -1: CoreML MLProgram has neither Abs nor Neg
    sign = b.op(nodes, "Clip", [b.op(nodes, "Mul", [x, b.const(SIGN_GAIN)], base), b.const(-1.0), b.const(1.0)], base)
    a = b.op(nodes, "Mul", [x, sign], base)
    t = b.op(nodes, "Add", [b.const(1.0), b.op(nodes, "Mul", [a, b.const(ERF_P)], base)], base)
    t = b.op(nodes, "Div", [b.const(1.0), t], base)
    poly = b.const(ERF_A[-1])
    for coef in reversed(ERF_A[:-1]):  # Horner: A1 + t (A2 + t (...))
        poly = b.op(nodes, "Add", [b.const(coef), b.op(nodes, "Mul", [t, poly], base)], base)
    poly = b.op(nodes, "Mul", [t, poly], base)
    gauss = b.op(nodes, "Exp", [b.op(nodes, "Mul", [b.op(nodes, "Mul", [a, a], base), b.const(-1.0)], base)], base)
    magnitude = b.op(nodes, "Sub", [b.const(1.0), b.op(nodes, "Mul", [poly, gauss], base)], base)
    b.op(nodes, "Mul", [sign, magnitude], base, node.output[0])
    return nodes


def _cos(b, node, shapes, opset) -> list:
    nodes, base = [], node.name or "cos"
    shifted = b.op(nodes, "Add", [node.input[0], b.const(math.pi / 2)], base)
    b.op(nodes, "Sin", [shifted], base, node.output[0])
    return nodes


def _pad(b, node, shapes, opset, constants) -> list | None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("mode", b"constant")
    value = constants(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
    pads = constants(node.input[1])
    if mode not in (b"constant", "constant") or len(node.input) > 3 or pads is None:
        return None
    if value is None or np.any(value != 0):
        return None
    pads = pads.astype(int).tolist()
    shape = constants.dims(node.input[0])
    if shape is None:
        return None
    rank, dtype = len(shape), onnx.helper.tensor_dtype_to_np_dtype(shapes.dtype(node.input[0]))
    if any(p < 0 for p in pads) or len(pads) != 2 * rank:
        return None
    nodes, base, x = [], node.name or "pad", node.input[0]
    axes = [i for i in range(rank) if pads[i] or pads[i + rank]]
    for k, axis in enumerate(axes):
        parts = []
        for size in (pads[axis], None, pads[axis + rank]):
            if size is None:
                parts.append(x)
            elif size:
                parts.append(b.array(np.zeros(shape[:axis] + [size] + shape[axis + 1 :], dtype), base))
        out = node.output[0] if k == len(axes) - 1 else None
        x = b.op(nodes, "Concat", parts, base, out, axis=axis)
        shape[axis] += pads[axis] + pads[axis + rank]
    if not axes:
        b.op(nodes, "Identity", [x], base, node.output[0])
    return nodes


def _resize(b, node, shapes, opset) -> list | None:
    if len(node.input) < 3 or node.input[1]:  # no empty roi to fill
        return None
    # an empty roi, given: the usability checker counts an omitted input as a dynamic shape
    roi = b.array(np.zeros(0, np.float32), node.name or "resize")
    fixed = onnx.NodeProto()
    fixed.CopyFrom(node)
    fixed.input[1] = roi
    return [fixed]


class _Shapes(dict):
    """``{value name: dims}`` and element types, from ONNX shape inference."""

    def __init__(self, model: onnx.ModelProto):
        bare = onnx.ModelProto()
        bare.CopyFrom(model)
        del bare.graph.value_info[:]  # the tracer's symbolic dims would survive inference
        inferred = onnx.shape_inference.infer_shapes(bare, strict_mode=True, data_prop=True)
        g = inferred.graph
        values = list(g.value_info) + list(g.input) + list(g.output)
        super().__init__({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values})
        self.types = {v.name: v.type.tensor_type.elem_type for v in values}
        self.types |= {i.name: i.data_type for i in g.initializer}

    def dtype(self, name: str) -> int:
        return self.types[name]


class _Constants:
    """The value of a tensor computed from initializers and fixed shapes alone (e.g. Pad's pads,
    which the TorchScript exporter builds from Shape, Mod, Concat ... of the padded tensor),
    else None."""

    def __init__(self, model: onnx.ModelProto, shapes: _Shapes):
        self.model, self.shapes = model, shapes
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.initializers = {i.name: i for i in model.graph.initializer}

    def __call__(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        nodes, needed, known, todo = {}, set(), {}, [name]
        while todo:
            value = todo.pop()
            if value in self.initializers:
                needed.add(value)
            elif value in self.producer and self.producer[value].op_type == "Shape":
                shape = self._shape_of(self.producer[value])
                if shape is None:
                    return None
                known[value] = numpy_helper.from_array(shape, value)
            elif value in self.producer:
                node = self.producer[value]
                if id(node) not in nodes:
                    nodes[id(node)] = node
                    todo.extend(i for i in node.input if i)
            else:
                return None  # fed by a graph input
        if len(nodes) > 50:  # shape arithmetic is a handful of nodes; more is real compute
            return None
        from onnx.reference import ReferenceEvaluator

        order = [n for n in self.model.graph.node if id(n) in nodes and n.op_type != "Shape"]
        sub = helper.make_model(
            helper.make_graph(
                order,
                "constant",
                [],
                [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
                [self.initializers[i] for i in sorted(needed)] + list(known.values()),
            ),
            opset_imports=self.model.opset_import,
        )
        return ReferenceEvaluator(sub).run(None, {})[0]

    def dims(self, name: str) -> list[int] | None:
        """The fixed dims of ``name``: ONNX inference's, else measured (:meth:`_run_shapes`)."""
        dims = self.shapes.get(name)
        return dims if dims and all(d > 0 for d in dims) else self._run_shapes().get(name)

    def _shape_of(self, node: onnx.NodeProto) -> np.ndarray | None:
        dims = self.dims(node.input[0])
        if dims is None:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return np.array(dims[attrs.get("start", 0) : attrs.get("end", len(dims))], np.int64)

    def _run_shapes(self) -> dict[str, list[int]]:
        """The dims of every Shape and Pad node's input that ONNX inference left unknown, from one
        onnxruntime run on zeros: all inputs are fixed, and these shapes depend on no values
        (a wrong one would fail the verification on the sample photo)."""
        if not hasattr(self, "_ran"):
            import onnxruntime as ort

            wanted = sorted(
                {n.input[0] for n in self.model.graph.node if n.op_type in ("Shape", "Pad")}
                - {v for v, d in self.shapes.items() if d and all(x > 0 for x in d)}
            )
            probe = onnx.ModelProto()
            probe.CopyFrom(self.model)
            probe.graph.output.extend(onnx.ValueInfoProto(name=v) for v in wanted)
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every value
            opts.log_severity_level = 3  # constants of rewrites not yet spliced in look unused to it
            session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            types = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}
            feeds = {i.name: np.zeros(i.shape, types[i.type]) for i in session.get_inputs()}
            self._ran = {v: list(x.shape) for v, x in zip(wanted, session.run(wanted, feeds))} if wanted else {}
        return self._ran


REWRITES = {"LayerNormalization": _layer_norm, "Erf": _erf, "Cos": _cos, "Pad": _pad, "Resize": _resize}


def rewrite_for_mobile(path: Path, opset: int) -> dict[str, int]:
    """Rewrite ``path`` in place (see the module docstring); returns ``{op type: nodes replaced}``."""
    model = onnx.load(str(path))
    graph, shapes = model.graph, _Shapes(model)
    constants = _Constants(model, shapes)
    b, done, out = _Builder(graph), Counter(), []
    for node in graph.node:
        rewrite = REWRITES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        args = (b, node, shapes, opset) + ((constants,) if node.op_type == "Pad" else ())
        replacement = rewrite(*args) if rewrite else None
        if replacement is None:
            out.append(node)
        else:
            out.extend(replacement)
            done[node.op_type] += 1
    del graph.node[:]
    graph.node.extend(out)
    onnx.save(model, str(path))
    return dict(sorted(done.items()))
