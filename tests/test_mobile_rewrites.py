"""export/mobile_rewrites.py on small hand-made graphs: each rewrite computes what the operator it
replaces computes (onnxruntime on both), in operators NNAPI and CoreML take."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.export.mobile_rewrites import rewrite_for_mobile


def _model(nodes, inputs, output_shape, initializers=(), opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _run(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _rewritten(tmp_path, model, feeds, opset=17):
    """(outputs before, outputs after, {op: replaced}, op types left) of ``model`` on ``feeds``."""
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    before = _run(path, feeds)
    replaced = rewrite_for_mobile(path, opset)
    onnx.checker.check_model(str(path), full_check=True)
    after = _run(path, feeds)
    return before, after, replaced, {n.op_type for n in onnx.load(str(path)).graph.node}


def test_erf_matches_math_erf_everywhere(tmp_path):
    x = np.concatenate(
        [np.linspace(-6, 6, 20001), [0.0, 1e-38, -1e-38, 1e-20, -1e-20, 30.0, -30.0, 1e30, -1e30]]
    ).astype(np.float32)
    model = _model([helper.make_node("Erf", ["x"], ["y"])], [("x", [len(x)])], [len(x)])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"Erf": 1} and "Erf" not in ops and not ops & {"Abs", "Neg", "Sign"}
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    # A&S 7.1.26 (1.5e-7) plus float32 rounding of 1 - erfc near 0 (measured 5.3e-7 at x = -0.042;
    # in GELU, 0.5 x (1 + erf x), that is 1e-8); onnxruntime's own Erf is within 6e-8
    assert np.abs(after - exact).max() < 6e-7
    assert np.abs(after - before).max() < 6e-7
    assert np.isnan(_rewritten(tmp_path, model, {"x": np.full(len(x), np.nan, np.float32)})[1]).all()


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("axis, bias", [(-1, True), (2, False)])
def test_layer_norm_is_reduce_mean_arithmetic(tmp_path, opset, axis, bias):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 6, 8)) * 3 + 1).astype(np.float32)
    shape = x.shape[axis:] if axis != -1 else x.shape[-1:]
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), "scale")]
    inputs = ["x", "scale"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), "bias"))
        inputs.append("bias")
    node = helper.make_node("LayerNormalization", inputs, ["y"], axis=axis, epsilon=1e-6)
    model = _model([node], [("x", list(x.shape))], list(x.shape), inits, opset)
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x}, opset)
    assert replaced == {"LayerNormalization": 1} and "LayerNormalization" not in ops
    assert np.abs(after - before).max() < 1e-5


def test_cos_is_a_shifted_sin_and_zero_pad_a_concat(tmp_path):
    x = np.linspace(-40, 40, 4 * 5 * 6 * 3, dtype=np.float32).reshape(4, 5, 6, 3)
    pads = numpy_helper.from_array(np.array([0, 1, 0, 0, 0, 2, 3, 0], np.int64), "pads")
    nodes = [helper.make_node("Cos", ["x"], ["c"]), helper.make_node("Pad", ["c", "pads"], ["y"], mode="constant")]
    model = _model(nodes, [("x", list(x.shape))], [4, 8, 9, 3], [pads])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"Cos": 1, "Pad": 1} and not ops & {"Cos", "Pad"}
    assert after.shape == before.shape == (4, 8, 9, 3) and np.abs(after - before).max() < 1e-5
    assert np.all(after[:, :1] == 0) and np.all(after[:, 6:] == 0) and np.all(after[:, :, 6:] == 0)


def test_pads_that_are_not_zeros_or_constant_stay(tmp_path):
    x = np.ones((2, 3), np.float32)
    pads = numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")
    value = numpy_helper.from_array(np.array(5.0, np.float32), "value")
    reflect = helper.make_node("Pad", ["x", "pads"], ["r"], mode="reflect")
    filled = helper.make_node("Pad", ["r", "pads", "value"], ["y"], mode="constant")
    model = _model([reflect, filled], [("x", [2, 3])], [2, 7], [pads, value])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {} and ops == {"Pad"} and np.array_equal(before, after)


def test_resize_gets_an_empty_roi(tmp_path):
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    model = _model([node], [("x", list(x.shape))], [2, 3, 8, 8], [scales])
    before, after, replaced, _ = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"Resize": 1} and np.array_equal(before, after)


@pytest.mark.parametrize("k, bias", [(2, True), (3, False)])
def test_conv_transpose_with_stride_equal_to_kernel_is_conv_then_depth_to_space(tmp_path, k, bias):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    w = rng.standard_normal((6, 4, k, k)).astype(np.float32)  # [C_in, C_out, k, k]
    b = rng.standard_normal(4).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if bias else [])
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), ["y"], strides=[k, k])
    model = _model([node], [("x", list(x.shape))], [2, 4, 5 * k, 7 * k], inits)
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"ConvTranspose": 1} and ops == {"Conv", "DepthToSpace"}
    rewritten = onnx.load(str(tmp_path / "m.onnx")).graph
    modes = [helper.get_attribute_value(a) for n in rewritten.node for a in n.attribute if a.name == "mode"]
    assert modes == [b"DCR"]  # the only DepthToSpace mode NNAPI takes
    assert "w" not in {i.name for i in rewritten.initializer}  # the replaced weights are not kept twice
    # the definition, independently of onnxruntime: each input pixel paints one k x k block
    expected = np.einsum("ncij,coab->noiajb", x.astype(np.float64), w).reshape(2, 4, 5 * k, 7 * k)
    expected += b.reshape(1, 4, 1, 1) if bias else 0
    assert np.abs(after - expected).max() < 1e-5 and np.abs(before - expected).max() < 1e-5


def test_overlapping_conv_transpose_stays(tmp_path):
    x = np.ones((1, 2, 3, 3), np.float32)
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    model = _model([node], [("x", [1, 2, 3, 3])], [1, 2, 7, 7], [w])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {} and ops == {"ConvTranspose"} and np.array_equal(before, after)


@pytest.mark.parametrize("axis, index", [(1, 2), (0, -1), (2, 0)])
def test_gather_of_one_constant_index_is_slice_and_squeeze(tmp_path, axis, index):
    x = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    idx = numpy_helper.from_array(np.array(index, np.int64), "i")
    out_shape = [d for k, d in enumerate(x.shape) if k != axis]
    model = _model([helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)], [("x", [3, 4, 5])], out_shape, [idx])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"Gather": 1} and ops == {"Slice", "Squeeze"}
    assert np.array_equal(after, np.take(x, index, axis=axis)) and np.array_equal(before, after)


def test_gather_of_several_indices_stays(tmp_path):
    idx = numpy_helper.from_array(np.array([0, 2], np.int64), "i")
    model = _model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)], [("x", [3, 2])], [2, 2], [idx])
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": np.ones((3, 2), np.float32)})
    assert replaced == {} and ops == {"Gather"}


def test_rank_6_window_partition_becomes_rank_4(tmp_path):
    """Hiera's window partition: [B, H, W, C] -> [B, H/w, w, W/w, w, C] -> swap -> [B * windows, w * w, C]."""
    x = np.arange(2 * 6 * 4 * 3, dtype=np.float32).reshape(2, 6, 4, 3)
    s6 = numpy_helper.from_array(np.array([2, 3, 2, 2, 2, 3], np.int64), "s6")
    s3 = numpy_helper.from_array(np.array([-1, 4, 3], np.int64), "s3")
    nodes = [
        helper.make_node("Reshape", ["x", "s6"], ["a"]),
        helper.make_node("Transpose", ["a"], ["t"], perm=[0, 1, 3, 2, 4, 5]),
        helper.make_node("Reshape", ["t", "s3"], ["y"]),
    ]
    # with the value_info an exported graph carries: the rank-6 values' entries must go with them
    model = onnx.shape_inference.infer_shapes(_model(nodes, [("x", list(x.shape))], [12, 4, 3], [s6, s3]))
    before, after, replaced, ops = _rewritten(tmp_path, model, {"x": x})
    assert replaced == {"Transpose": 1} and np.array_equal(before, after)
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "m.onnx")), strict_mode=True)
    ranks = {len(v.type.tensor_type.shape.dim) for v in inferred.graph.value_info}
    assert max(ranks) <= 5 and ops == {"Reshape", "Transpose"}
    expected = x.reshape(2, 3, 2, 2, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 4, 3)
    assert np.array_equal(after, expected)
