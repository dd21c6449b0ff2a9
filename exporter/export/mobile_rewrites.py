"""Graph rewrites for static-shape exports: operators NNAPI or CoreML lack, as ones they have.

onnxruntime's mobile usability checker (release/mobile_check.py) names what keeps the static
graphs off the phone's accelerators. Seven of those operators have exact or near-exact forms in
operators NNAPI and CoreML both take, so the rewrite keeps the I/O contract and changes only
the arithmetic's rounding (export verifies it on the sample photo, parity gates it):

- ``LayerNormalization`` (NNAPI, CoreML NeuralNetwork): ReduceMean, Sub, Mul, Add, Sqrt, Div.
- ``Erf`` (NNAPI, CoreML NeuralNetwork; exact GELU): Abramowitz & Stegun 7.1.26, a rational
  polynomial times exp(-x^2), absolute error below 1.5e-7 (6e-7 in float32, near 0), in
  Mul, Add, Div, Exp and Clip only (CoreML MLProgram, which has Erf, lacks Abs and Neg).
- ``Cos`` (NNAPI): sin(x + pi / 2).
- ``Pad`` with zeros (CoreML MLProgram): Concat with zero blocks, the shapes being fixed.
- ``ConvTranspose`` with kernel = stride and no overlap (NNAPI; the decoder's 2x upscaling): a
  1x1 Conv to k*k times the channels and a DCR DepthToSpace, the same products per output.
- ``Gather`` of one constant index (CoreML MLProgram): Slice and Squeeze, the same values.
- ``Transpose`` of rank 6 (CoreML takes rank 5 at most; Hiera's window partitions): the same
  permutation on the runs of axes that move together, in rank 4, between Reshapes; chains of
  Reshapes then fold into one, so no rank-6 tensor is left.
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


def _conv_transpose(b, node, shapes, opset, constants) -> list | None:
    """out[n, o, k*i + a, k*j + b] = bias[o] + sum_c x[n, c, i, j] W[c, o, a, b] when kernel = stride:
    a 1x1 Conv whose output channel (a*k + b)*O + o has weights W[:, o, a, b], then DepthToSpace
    in DCR order (the one NNAPI takes), which puts channel (a*k + b)*O + o at (o, k*i + a, k*j + b)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = constants(node.input[1])
    if weight is None or weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        return None
    k = weight.shape[2]
    plain = (
        attrs.get("strides", [1, 1]) == [k, k]
        and attrs.get("group", 1) == 1
        and all(p == 0 for p in attrs.get("pads", [0] * 4))
        and all(d == 1 for d in attrs.get("dilations", [1, 1]))
        and not any(attrs.get(a) for a in ("output_padding", "output_shape"))
        and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET", b"VALID", "VALID")
    )
    if not plain:
        return None
    c_in, c_out = weight.shape[:2]
    base, nodes = node.name or "conv_transpose", []
    w = weight.transpose(2, 3, 1, 0).reshape(k * k * c_out, c_in, 1, 1)  # [(a, b, o), c]
    inputs = [node.input[0], b.array(np.ascontiguousarray(w), base)]
    if len(node.input) > 2 and node.input[2]:
        bias = constants(node.input[2])
        if bias is None:
            return None
        inputs.append(b.array(np.tile(bias, k * k), base))  # channel (a*k + b)*O + o gets bias[o]
    y = b.op(nodes, "Conv", inputs, base, kernel_shape=[1, 1])
    b.op(nodes, "DepthToSpace", [y], base, node.output[0], blocksize=int(k), mode="DCR")
    return nodes


def _gather(b, node, shapes, opset, constants) -> list | None:
    index = constants(node.input[1])
    dims = constants.dims(node.input[0])
    if index is None or index.ndim != 0 or dims is None:
        return None
    axis = {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("axis", 0) % len(dims)
    i = int(index) % dims[axis]
    base, nodes = node.name or "gather", []
    start, end, axes = (b.array(np.array([v], np.int64), base) for v in (i, i + 1, axis))
    y = b.op(nodes, "Slice", [node.input[0], start, end, axes], base)
    b.op(nodes, "Squeeze", [y, axes], base, node.output[0])  # Squeeze's axes are an input from opset 13
    return nodes


MAX_RANK = 5  # CoreML's


def _transpose(b, node, shapes, opset, constants) -> list | None:
    dims = constants.dims(node.input[0])
    if dims is None or len(dims) <= MAX_RANK:
        return None
    perm = {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("perm") or list(range(len(dims)))[::-1]
    runs = [[perm[0]]]  # output order; a run is input axes that stay adjacent and in order
    for axis in perm[1:]:
        if axis == runs[-1][-1] + 1:
            runs[-1].append(axis)
        else:
            runs.append([axis])
    if len(runs) > MAX_RANK:
        return None
    by_input = sorted(runs)
    grouped = [int(np.prod([dims[a] for a in run])) for run in by_input]
    base, nodes = node.name or "transpose", []
    x = b.op(nodes, "Reshape", [node.input[0], b.array(np.array(grouped, np.int64), base)], base)
    y = b.op(nodes, "Transpose", [x], base, perm=[by_input.index(run) for run in runs])
    out = np.array([dims[a] for a in perm], np.int64)
    b.op(nodes, "Reshape", [y, b.array(out, base)], base, node.output[0])
    return nodes


def _fold_reshapes(graph: onnx.GraphProto) -> int:
    """Reshape(Reshape(x, s0), s1) -> Reshape(x, s1) where s1 is a constant without 0 (which would
    copy a dim of the input it reads), then drop the nodes nothing reads; returns Reshapes folded."""
    producer = {o: n for n in graph.node for o in n.output}
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    folded = 0
    for node in (n for n in graph.node if n.op_type == "Reshape"):
        inner, shape = producer.get(node.input[0]), initializers.get(node.input[1])
        while shape is not None and np.all(shape != 0) and inner is not None and inner.op_type == "Reshape":
            node.input[0] = inner.input[0]
            inner, folded = producer.get(inner.input[0]), folded + 1
    while True:  # unread nodes, innermost last
        read = _names_read(graph) | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            return folded
        for n in dead:
            graph.node.remove(n)


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


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every value name a node of ``graph`` or of its subgraphs (If / Loop bodies) reads."""
    names = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                names |= _names_read(sub)
    return names


REWRITES = {
    "LayerNormalization": _layer_norm,
    "Erf": _erf,
    "Cos": _cos,
    "Pad": _pad,
    "ConvTranspose": _conv_transpose,
    "Gather": _gather,
    "Transpose": _transpose,
    "Resize": _resize,
}
NEEDS_CONSTANTS = ("Pad", "ConvTranspose", "Gather", "Transpose")  # rewrites that read constant inputs


def rewrite_for_mobile(path: Path, opset: int) -> dict[str, int]:
    """Rewrite ``path`` in place (see the module docstring); returns ``{op type: nodes replaced}``."""
    model = onnx.load(str(path))
    graph, shapes = model.graph, _Shapes(model)
    constants = _Constants(model, shapes)
    b, done, out = _Builder(graph), Counter(), []
    for node in graph.node:
        rewrite = REWRITES.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        args = (b, node, shapes, opset) + ((constants,) if node.op_type in NEEDS_CONSTANTS else ())
        replacement = rewrite(*args) if rewrite else None
        if replacement is None:
            out.append(node)
        else:
            out.extend(replacement)
            done[node.op_type] += 1
    del graph.node[:]
    graph.node.extend(out)
    if done["Transpose"]:
        _fold_reshapes(graph)
    used = _names_read(graph) | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]  # replaced weights (ConvTranspose's) go
    del graph.initializer[:]
    graph.initializer.extend(kept)
    produced = {o for n in graph.node for o in n.output}
    infos = [v for v in graph.value_info if v.name in produced]  # none for values that went
    del graph.value_info[:]
    graph.value_info.extend(infos)
    onnx.save(model, str(path))
    return dict(sorted(done.items()))
