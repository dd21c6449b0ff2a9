"""FP16 and INT8 artifacts: export, manifest records, runtime loading, and the building blocks
(FP16 search, INT8 graph preparation, calibration ranges) on real ONNX graphs in onnxruntime.

The exported numbers come from random weights (seed 0); the accuracy gates themselves are in
parity_tests/test_parity.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.checks.equivalence import Tolerance, run_graph
from exporter.core.errors import ConfigError, ExportError
from exporter.core.manifest import read_manifest, verify_files
from exporter.core.variants import resolve
from exporter.export.pipeline import export_variant
from exporter.parity.cases import sample_image
from exporter.parity.metrics import iou
from exporter.precision import fp16, int8
from exporter.precision.calibration import calibration_images, minmax_ranges
from exporter.runtime import SAM2OnnxPredictor
from tests.fixtures import run_cli

ALL = "fp32,fp16,int8"


def _save(nodes, inputs, outputs, inits, path):
    graph = helper.make_graph(nodes, "toy", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# ---------------------------------------------------------------- the exported artifacts


def test_export_writes_every_precision_with_records(exported):
    folder = exported("tiny", ALL)
    m = read_manifest(folder)
    verify_files(folder, m)  # every listed file: size and sha256
    assert m["options"]["precisions"] == ["fp32", "fp16", "int8"]
    fp32_bytes = {role: m["files"][f]["bytes"] for role, f in m["precisions"]["fp32"].items()}
    for role in ("encoder", "decoder"):
        name = f"{role}.fp16.onnx"
        assert m["files"][name]["precision"] == "fp16" and m["precisions"]["fp16"][role] == name
        # about half: fp16 weights, plus the few float32 constants of block-listed nodes
        assert m["files"][name]["bytes"] < 0.55 * fp32_bytes[role]
        rec = m["fp16"][role]
        assert rec["comparison"]["ok"] and rec["blocked_nodes"] > 0
        assert set(rec["op_block_list"]) >= {"LayerNormalization", "Softmax"}
        meta = {p.key: p.value for p in onnx.load(str(folder / name), load_external_data=False).metadata_props}
        assert meta["sam2_onnx.precision"] == "fp16" and meta["sam2_onnx.graph"] == role
    enc = m["int8"]["encoder"]
    assert enc["chosen"] in ("dynamic", "static") and m["precisions"]["int8"]["encoder"] == "encoder.int8.onnx"
    schemes = resolve("tiny").quantization["int8"]["weights"]  # fastest first: int7, then uint8
    tried = list(enc["candidates"])  # in the configs' order, up to the first accepted one
    assert tried[-1] == enc["candidate"] and tried[0] == f"dynamic/{schemes[0]}"
    assert enc["candidate"].startswith(f"{enc['chosen']}/{enc['weights']}") and enc["weights"] in schemes
    assert [c["accepted"] for c in enc["candidates"].values()] == [False] * (len(tried) - 1) + [True]
    stored = {"int7": ("int8", 64), "uint8": ("uint8", 255)}  # scheme -> stored dtype, largest |weight|
    for key, cand in enc["candidates"].items():  # each built, proved and compared
        assert cand["bytes"] > 0 and "rel_l2" in cand["comparison"], key
        dtype, largest = stored[cand["weights"]]
        proved = cand["kernel_safety"]["weights"]
        assert cand["kernel_safety"]["kernel_safe"] and proved["dtype"] == dtype, key
        assert max(abs(v) for v in proved["range"]) <= largest, key
    assert enc["reason"].startswith("first accepted candidate") and f"{enc['candidate']}: " in enc["reason"]
    # the shipped encoder decoded masks up to the parity gate on every check photo
    shipped = enc["candidates"][enc["candidate"]]
    gate = resolve("tiny").parity["int8"]["mask_iou_min"]
    assert shipped["accepted"] and shipped["masks"]["ok"] and shipped["masks"]["gate"] == gate
    assert min(shipped["masks"]["per_photo"].values()) >= gate and len(shipped["masks"]["per_photo"]) == 6
    limit = 0.5 * resolve("tiny").parity["int8"]["logits_max_abs"]  # half the parity gate's room
    assert shipped["masks"]["logits_limit"] == limit and 0 < shipped["masks"]["logits_max_abs"] <= limit
    assert m["int8"]["mask_check"]["photos"] == sorted(shipped["masks"]["per_photo"])
    # the kernel-safety proof, as the manifest carries it: every quantized weight tensor's range
    assert m["int8"]["kernel_safe"] is True and shipped["weights"] == enc["weights"]
    proof = enc["kernel_safety"]
    assert proof["layers"] == len(proof["per_layer"]) > 40 and proof["activation"]["range"] == [0, 255]
    dtype = stored[enc["weights"]][0]
    assert all(r["weight"].startswith(f"{dtype} [") and r["reduction"] > 0 for r in proof["per_layer"])
    if enc["weights"] == "int7":  # every signed weight tensor was given a zero point (off KleidiAI's path)
        assert {r["weight_zero_points"] for r in proof["per_layer"]} == {"stored"}
        assert 0 < shipped["zero_points_given"]["tensors"] <= proof["layers"]
    assert m["int8"]["kernel_proof"]["encoder"].startswith("kernel-safe: ")
    assert set(m["int8"]["checked_on"]) >= {"cpu", "features", "int8_kernel"}
    # the size target: the INT8 encoder at most 0.3x the FP32 bytes
    assert m["files"]["encoder.int8.onnx"]["bytes"] <= 0.3 * fp32_bytes["encoder"]
    dec = m["int8"]["decoder"]
    # every Gemm (a Linear) of the FP32 decoder was rewritten to MatMul + Add for the quantizer
    gemms = sum(n.op_type == "Gemm" for n in onnx.load(str(folder / "decoder.onnx")).graph.node)
    assert gemms > 0 and dec["prepared"]["gemm_to_matmul"] == gemms
    if dec["chosen"] == "fp32":  # the manifest maps int8's decoder to the FP32 file, no copy
        assert m["precisions"]["int8"]["decoder"] == "decoder.onnx" and "decoder.int8.onnx" not in m["files"]
        assert not (folder / "decoder.int8.onnx").exists() and "no int8 candidate accepted" in dec["reason"]
        assert list(dec["candidates"]) == ["dynamic/uint8", "static/uint8", "fp32"] and dec["weights"] is None
        assert m["int8"]["kernel_proof"]["decoder"] == "no integer layers"
    # static candidates calibrate on the bundled photos (the decoder's were tried)
    assert m["int8"]["calibration"]["source"] == "bundled" and len(m["int8"]["calibration"]["images"]) == 6


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_runtime_loads_each_precision_close_to_fp32(exported, precision):
    folder = exported("tiny", ALL)
    image = sample_image("coffee")
    masks = {}
    for p in ("fp32", precision):
        predictor = SAM2OnnxPredictor(folder, precision=p)
        predictor.set_image(image)
        masks[p], scores, _ = predictor.predict(point_coords=[[300, 200]], point_labels=[1])
        assert masks[p].shape == (3, 400, 600) and np.isfinite(scores).all()
    assert min(iou(a, b) for a, b in zip(masks["fp32"], masks[precision])) > 0.9


def test_export_refuses_bad_precision_and_calibration_folder(tmp_path):
    proc = run_cli("export", "tiny", "--random-weights", "--out", tmp_path, "--precision", "fp32,bf16")
    assert proc.returncode == 1 and "use a comma-separated subset of fp32, fp16, int8" in proc.stderr
    proc = run_cli(
        "export",
        "tiny",
        "--random-weights",
        "--out",
        tmp_path,
        "--precision",
        "int8",
        "--calibration-images",
        tmp_path / "nowhere",
    )
    assert proc.returncode == 1 and "not a directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no images"):
        calibration_images(tmp_path / "empty")


def test_incomplete_quantization_config_is_refused_before_work(tmp_path):
    broken = dataclasses.replace(resolve("tiny"), quantization={"fp16": {"op_block_list": []}})
    with pytest.raises(ConfigError, match=r"quantization\.fp16\.tolerance\.encoder is missing"):
        export_variant(broken, tmp_path, seed=0, precisions=["fp16"], stream=None)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- FP16 conversion and search


def test_fp16_search_pins_exactly_the_node_that_needs_float32(tmp_path):
    """A divisor of 1e5 has no float16 value (max 65504; the converter clamps such constants to
    1e4), so the search must keep that Div in FP32 - and nothing else."""
    src = _save(
        [
            helper.make_node("Mul", ["x", "k"], ["a"], name="scale"),
            helper.make_node("Div", ["a", "big"], ["y"], name="shrink"),
            helper.make_node("Add", ["y", "one"], ["z"], name="shift"),
        ],
        [_vi("x", [64])],
        [_vi("z", [64])],
        {"k": np.array(300, np.float32), "big": np.array(1e5, np.float32), "one": np.array(1, np.float32)},
        tmp_path / "toy.onnx",
    )
    feeds = [{"x": np.linspace(0.5, 1.5, 64, dtype=np.float32)}]
    reference = run_graph(src, feeds)
    tol = Tolerance(rel_l2=1e-2)
    with pytest.raises(ExportError, match="FP16 misses its tolerance"):
        fp16.build(src, tmp_path / "plain.onnx", feeds, reference, tol, [], auto_search=False)
    assert not (tmp_path / "plain.onnx").exists()
    result = fp16.build(src, tmp_path / "toy.fp16.onnx", feeds, reference, tol, [], budget=24)
    assert result.searched_nodes == ["shrink"] and result.comparison["ok"] and result.evaluations > 2
    got = run_graph(tmp_path / "toy.fp16.onnx", feeds)[0]["z"]
    assert got.dtype == np.float32 and np.allclose(got, reference[0]["z"], rtol=1e-2)
    # a budget too small to finish leaves the untried nodes in FP32: larger, never wrong
    small = fp16.build(src, tmp_path / "toy2.fp16.onnx", feeds, reference, tol, [], budget=2)
    assert set(small.searched_nodes) > {"shrink"} and small.comparison["ok"]


def test_fp16_keeps_float32_io_when_an_output_is_read_inside(tmp_path):
    """The decoder's iou_predictions is both an output and an input of later nodes."""
    src = _save(
        [helper.make_node("Sigmoid", ["x"], ["p"], name="sig"), helper.make_node("Mul", ["p", "p"], ["q"], name="sq")],
        [_vi("x", [8])],
        [_vi("p", [8]), _vi("q", [8])],
        {},
        tmp_path / "toy.onnx",
    )
    feeds = [{"x": np.linspace(-2, 2, 8, dtype=np.float32)}]
    ref = run_graph(src, feeds)
    fp16.build(src, tmp_path / "toy.fp16.onnx", feeds, ref, Tolerance(rel_l2=1e-2), [])
    got = run_graph(tmp_path / "toy.fp16.onnx", feeds)[0]
    assert {k: v.dtype for k, v in got.items()} == {"p": np.float32, "q": np.float32}
    assert np.allclose(got["q"], ref[0]["q"], rtol=2e-3)


# ---------------------------------------------------------------- INT8 preparation and calibration


def _linear_toy(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(32, 16)).astype(np.float32), rng.normal(size=32).astype(np.float32)
    w2 = rng.normal(size=(8, 32)).astype(np.float32)
    return _save(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Transpose", ["w2"], ["w2t"], perm=[1, 0], name="t"),
            helper.make_node("MatMul", ["r", "w2t"], ["y"], name="fc2"),
        ],
        [_vi("x", [4, 16])],
        [_vi("y", [4, 8])],
        {"w1": w1, "b1": b1, "w2": w2},
        tmp_path / "lin.onnx",
    )


def test_int8_prepare_makes_every_weight_reach_the_quantizer(tmp_path):
    src = _linear_toy(tmp_path)
    feeds = [{"x": np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)}]
    counts = int8.prepare(src, tmp_path / "prep.onnx")
    assert counts == {"gemm_to_matmul": 1, "transposed_weights_folded": 1}
    ops = [n.op_type for n in onnx.load(str(tmp_path / "prep.onnx")).graph.node]
    assert ops == ["MatMul", "Add", "Relu", "MatMul"]  # the orphaned Transpose is gone
    assert np.allclose(run_graph(tmp_path / "prep.onnx", feeds)[0]["y"], run_graph(src, feeds)[0]["y"], atol=1e-4)
    # without prepare, neither weight reaches the quantizer as a constant MatMul input
    with pytest.raises(ValueError, match="no weighted layer left to quantize"):
        int8.quantize_dynamic(src, tmp_path / "q.onnx", per_channel=True)
    int8.quantize_dynamic(tmp_path / "prep.onnx", tmp_path / "q.onnx", per_channel=True)
    quantized = [n for n in onnx.load(str(tmp_path / "q.onnx")).graph.node if n.op_type == "MatMulInteger"]
    assert len(quantized) == 2


def test_minmax_ranges_match_numpy(tmp_path):
    src = _linear_toy(tmp_path)
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.normal(size=(4, 16)).astype(np.float32)} for _ in range(3)]
    ranges = minmax_ranges(src, ["h", "x"], feeds)
    m = onnx.load(str(src))
    w1, b1 = (numpy_helper.to_array(t) for t in m.graph.initializer[:2])
    hs = [f["x"] @ w1.T + b1 for f in feeds]
    assert np.isclose(ranges["h"][0], min(h.min() for h in hs), atol=1e-4)
    assert np.isclose(ranges["h"][1], max(h.max() for h in hs), atol=1e-4)
    assert ranges["x"] == (min(float(f["x"].min()) for f in feeds), max(float(f["x"].max()) for f in feeds))
    assert not (tmp_path / "lin.onnx.calibrate").exists()


def test_compress_constants_stores_large_floats_as_int8(tmp_path):
    big = np.random.default_rng(3).normal(size=(1, 4, 64, 64)).astype(np.float32)
    src = _save(
        [helper.make_node("Add", ["x", "pos"], ["y"], name="add")],
        [_vi("x", [1, 4, 64, 64])],
        [_vi("y", [1, 4, 64, 64])],
        {"pos": big},
        tmp_path / "pos.onnx",
    )
    before = src.stat().st_size
    assert int8.compress_constants(src, min_elements=1000) == 1
    assert src.stat().st_size < 0.3 * before
    feeds = [{"x": np.zeros((1, 4, 64, 64), np.float32)}]
    got = run_graph(src, feeds)[0]["y"]
    step = np.abs(big).max(axis=(0, 2, 3)) / 127  # one scale per channel (axis 1)
    assert (np.abs(got - big) <= step[None, :, None, None] / 2 + 1e-6).all()
