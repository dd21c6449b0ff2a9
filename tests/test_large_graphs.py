"""Graphs whose weights live in an external-data file (export/large_graphs.py): the steps keep a
graph and its ``.data`` file together, the manifest hashes both, and the runtime, parity and
release take such folders. ViT-H's encoder (2.53 GB) is the graph that needs it; tiny exported
with ``--external-data`` runs the same code in CI (ViT-H itself runs in the release plan)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx import numpy_helper as nh

from exporter.checks.equivalence import run_graph
from exporter.core.errors import IntegrityError
from exporter.core.manifest import PROTOBUF_LIMIT, data_file, file_entry, read_manifest, verify_files
from exporter.export import large_graphs as L
from exporter.export import onnx_steps as G
from exporter.parity.cases import sample_image
from exporter.precision.fp16 import convert as convert_fp16
from exporter.release.build import too_large_for_ort
from exporter.runtime import SAM2OnnxPredictor

from .fixtures import run_cli


def _graph(seed: int) -> onnx.ModelProto:
    """x [n, 64] -> ((x @ W + B) * 2) @ W2: two big weights, a constant, foldable arithmetic."""
    rng = np.random.default_rng(seed)
    weights = [
        nh.from_array(rng.standard_normal((64, 64)).astype(np.float32), "W"),
        nh.from_array(rng.standard_normal(64).astype(np.float32), "B"),
        nh.from_array(rng.standard_normal((64, 32)).astype(np.float32), "W2"),
        nh.from_array(np.array([2.0], np.float32), "two"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["y"]),
        helper.make_node("Add", ["y", "B"], ["z"]),
        helper.make_node("Identity", ["two"], ["two_again"]),  # onnxsim folds it away
        helper.make_node("Mul", ["z", "two_again"], ["m"]),
        helper.make_node("MatMul", ["m", "W2"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["n", 32])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_scattered_tensors_are_gathered_and_every_step_keeps_them_beside_the_graph(tmp_path, seed):
    # torch's exporter writes one file per tensor for a graph over 2 GB; onnx does the same here
    scattered = tmp_path / "scattered"
    scattered.mkdir()
    onnx.save_model(_graph(seed), str(scattered / "g.onnx"), save_as_external_data=True, all_tensors_to_one_file=False)
    assert sorted(p.name for p in scattered.iterdir()) == ["W", "W2", "g.onnx"]  # a file per weight over 1 KB
    feeds = [{"x": np.random.default_rng(seed + 10).standard_normal((3, 64)).astype(np.float32)}]
    expected = run_graph(scattered / "g.onnx", feeds)

    traced = tmp_path / "g.traced.onnx"
    L.gather(scattered / "g.onnx", traced)
    assert sorted(p.name for p in scattered.iterdir()) == []  # the scattered files are gone
    assert L.has_external_data(traced) and traced.stat().st_size < 1024  # the structure alone
    G.check(traced)
    np.testing.assert_array_equal(run_graph(traced, feeds)[0]["out"], expected[0]["out"])

    record = G.simplify_verified(traced, "decoder", feeds, expected)  # onnxsim on the path
    assert record["status"] == "applied" and record["nodes_after"] < record["nodes_before"], record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.traced.onnx", "g.traced.onnx.data", "scattered"]

    final = tmp_path / "decoder.onnx"
    G.stamp(traced, final, "decoder", {"k": "v"}, _profile_for_graph())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.onnx", "decoder.onnx.data", "scattered"]
    assert not list(tmp_path.glob(".*"))  # no trace, candidate or inferred files left behind
    model = onnx.load(str(final), load_external_data=False)
    locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"decoder.onnx.data"}
    np.testing.assert_allclose(run_graph(final, feeds)[0]["out"], expected[0]["out"], rtol=1e-6, atol=1e-5)

    half = tmp_path / "decoder.fp16.onnx"  # FP16 from a graph with external data: one file again
    convert_fp16(final, half, ["Softmax"], [])
    assert not L.has_external_data(half) and half.stat().st_size > data_file(final).stat().st_size / 2
    assert onnx.TensorProto.FLOAT16 in {i.data_type for i in onnx.load(str(half)).graph.initializer}
    np.testing.assert_allclose(run_graph(half, feeds)[0]["out"], expected[0]["out"], rtol=2e-2, atol=0.3)

    assert data_file(final).stat().st_mode & 0o777 == final.stat().st_mode & 0o777  # not onnx's private 0600
    entry = file_entry(final, "decoder", "fp32")
    assert entry["external_data"]["file"] == "decoder.onnx.data"
    assert entry["external_data"]["bytes"] == data_file(final).stat().st_size


def _profile_for_graph():
    """A profile whose decoder contract is the toy graph's I/O (stamp checks I/O against it)."""
    from dataclasses import replace

    from exporter.core import contract as C

    x = C.TensorSpec("x", "float32", ("n", 64), "input")
    out = C.TensorSpec("out", "float32", ("n", 32), "output")
    return replace(C.SAMEXPORTER, name="toy", decoder_inputs=(x,), decoder_outputs=(out,))


def test_graphs_over_two_gigabytes_get_no_ort_copy():
    small = {"graph": "decoder", "precision": "fp32", "sha256": "0" * 64, "bytes": 16_000_000}
    huge = small | {"graph": "encoder", "bytes": 900_000, "external_data": {"bytes": PROTOBUF_LIMIT}}
    fits = small | {"graph": "encoder", "bytes": 900_000, "external_data": {"bytes": PROTOBUF_LIMIT - 900_001}}
    why = too_large_for_ort({"files": {"encoder.onnx": huge, "decoder.onnx": small}})
    assert list(why) == ["encoder.onnx"] and "2 GB" in why["encoder.onnx"]
    assert too_large_for_ort({"files": {"encoder.onnx": fits, "decoder.onnx": small}}) == {}


@pytest.fixture(scope="module")
def external(exported, tmp_path_factory):
    """tiny exported with --external-data through the command line, and the shared single-file export."""
    out = tmp_path_factory.mktemp("external")
    run_cli("export", "tiny", "--random-weights", "--external-data", "--out", out, check=True)
    return out / "sam2.1_hiera_tiny", exported("tiny")


def test_external_data_export_runs_as_the_single_file_one(external):
    folder, single = external
    manifest = read_manifest(folder)
    for name in ("encoder.onnx", "decoder.onnx"):
        entry = manifest["files"][name]
        assert entry["external_data"]["file"] == f"{name}.data", entry
        assert entry["bytes"] < entry["external_data"]["bytes"] / 3  # initializers out; Constant nodes stay
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", "encoder.onnx", "encoder.onnx.data", "decoder.onnx", "decoder.onnx.data"]
    )
    assert all(r["status"] == "applied" for r in manifest["simplification"].values())
    assert "video" not in manifest  # the video graphs do not come in this layout yet
    ours, theirs = SAM2OnnxPredictor(folder), SAM2OnnxPredictor(single)
    for photo in ("coffee", "camera"):
        image = sample_image(photo)
        ours.set_image(image)
        theirs.set_image(image)
        h, w = image.shape[:2]
        prompt = {"point_coords": np.array([[w * 0.4, h * 0.5]]), "point_labels": np.array([1])}
        (m1, s1, l1), (m2, s2, l2) = (p.predict(**prompt, return_logits=True) for p in (ours, theirs))
        np.testing.assert_allclose(l1, l2, atol=1e-4)
        np.testing.assert_allclose(s1, s2, atol=1e-5)
        assert ((m1 > 0) == (m2 > 0)).mean() > 0.9999


def test_a_corrupt_or_missing_data_file_is_one_clear_error(external, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(external[0], folder)
    with open(folder / "encoder.onnx.data", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(IntegrityError, match=r"encoder\.onnx\.data: sha256 differs"):
        verify_files(folder, read_manifest(folder))
    out = run_cli("parity", folder, "--samples", "coffee", "--kinds", "point")
    assert out.returncode != 0 and "encoder.onnx.data" in out.stderr, out.stderr
    (folder / "encoder.onnx.data").unlink()
    with pytest.raises(IntegrityError, match=r"encoder\.onnx\.data: missing"):
        SAM2OnnxPredictor(folder)
    out = run_cli("serve", external[0], "--port", "0")  # the page loads single-file graphs
    assert out.returncode != 0 and "external-data files" in out.stderr, out.stderr


def test_parity_and_release_take_external_data(external, tmp_path):
    folder = tmp_path / "sam2.1_hiera_tiny"
    shutil.copytree(external[0], folder)
    out = run_cli("parity", folder, "--samples", "rocket", "--no-automask")
    assert out.returncode == 0, out.stderr
    release = tmp_path / "release"
    out = run_cli("release", folder, "--out", release, "--allow-random-weights")
    assert out.returncode == 0, out.stderr
    names = {p.name for p in release.iterdir()}
    assert {"encoder.onnx", "encoder.onnx.data", "decoder.onnx.data", "encoder.ort", "decoder.ort"} <= names
    sums = (release / "SHA256SUMS").read_text()
    assert "encoder.onnx.data" in sums and "decoder.onnx.data" in sums
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["release"]["ort_format"]["check"]["fp32"]["mask_iou_min"] >= 0.9999
    assert "not_converted" not in manifest["release"]["ort_format"]  # tiny's encoder fits an .ort file
    # basic optimisations baked in, as for single files: sizes compared with the weights included
    assert {e["optimization"] for e in manifest["release"]["ort_format"]["files"].values()} == {"basic"}
    assert manifest["release"]["browser"] is None
    card = (release / "README.md").read_text()
    assert "`encoder.onnx.data`" in card and "ONNX external data" in card
    assert "Not checked: `encoder.onnx.data`, `decoder.onnx.data` hold weights as external data" in card
