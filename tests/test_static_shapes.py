"""Static-shape exports for ONNX Runtime Mobile: fixed dims, parity, padding, release and mobile verdict.

Two folders: ``1,3`` (one prompt of three points: every prompt kind fits) with seed 0 and
``2,2`` (two prompts of two points: prompts are split and filled) with seed 1. Seeded random
weights: IoU is over the pixels the reference decides (configs' fp32 iou_band), as in parity.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from exporter.checks.equivalence import decided_iou
from exporter.core.manifest import read_manifest
from exporter.core.variants import resolve
from exporter.export.pipeline import export_variant
from exporter.parity.cases import KINDS, padded, sample_image
from exporter.parity.engine import reference_predictor, run_parity
from exporter.parity.report import save_report
from exporter.runtime import SAM2OnnxPredictor

from .fixtures import config_ops, ort_file_ops, run_cli

pytestmark = pytest.mark.export

SHAPES = {(1, 3): 0, (2, 2): 1}  # static shapes -> weight seed
BAND = resolve("tiny").parity["fp32"]["iou_band"]
# operators NNAPI or CoreML lack that the traced graphs had (onnxruntime's usability checker lists)
BLOCKERS = {"Erf", "LayerNormalization", "Cos", "Pad", "ConvTranspose", "Gather", "Equal", "Where", "ScatterND"}
BLOCKERS |= {"ArgMax", "Greater", "GreaterOrEqual", "ReduceSum", "Expand", "Floor", "Neg", "Min"}


@pytest.fixture(scope="module")
def static(tmp_path_factory):
    out = tmp_path_factory.mktemp("static")
    return {
        shape: export_variant(resolve("tiny"), out, seed=seed, static_shapes=shape, stream=None).folder
        for shape, seed in SHAPES.items()
    }


@pytest.mark.parametrize("shape", list(SHAPES), ids=["1x3", "2x2"])
def test_every_dim_is_fixed_and_every_op_standard(static, shape):
    folder = static[shape]
    assert folder.name == f"sam2.1_hiera_tiny-static-{shape[0]}x{shape[1]}"
    manifest = read_manifest(folder)
    assert manifest["profile"]["static_shapes"] == {"prompts": shape[0], "points": shape[1]}
    assert manifest["options"]["dynamic_axes"] == {"encoder": {}, "decoder": {}}
    for name in ("encoder.onnx", "decoder.onnx"):
        graph = onnx.load(str(folder / name)).graph
        for value in list(graph.input) + list(graph.output):
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]
            assert all(isinstance(d, int) and d > 0 for d in dims), (name, value.name, dims)
        # onnxsim would fuse fixed-shape attention into com.microsoft Attention: NNAPI / CoreML lack it
        assert {n.domain for n in graph.node} <= {"", "ai.onnx"}, name
        # rewritten at export (export/mobile_rewrites.py) or traced in mobile form
        # (wrappers/mobile_forms.py): what NNAPI or CoreML lack
        assert not {n.op_type for n in graph.node} & BLOCKERS, (name, {n.op_type for n in graph.node} & BLOCKERS)
        inferred = onnx.shape_inference.infer_shapes(onnx.load(str(folder / name)), strict_mode=True)
        assert max(len(v.type.tensor_type.shape.dim) for v in inferred.graph.value_info) <= 5, name  # CoreML's
    assert manifest["options"]["mobile_forms"] == ["embed_points", "dynamic_multimask_via_stability"]
    rewrites = manifest["mobile_rewrites"]
    assert {r["status"] for r in rewrites.values()} == {"applied"}
    assert rewrites["encoder"]["replaced"]["Erf"] > 0 and rewrites["decoder"]["replaced"]["LayerNormalization"] > 0
    decoder = {v.name: v for v in onnx.load(str(folder / "decoder.onnx")).graph.input}
    assert [d.dim_value for d in decoder["point_coords"].type.tensor_type.shape.dim] == [*shape, 2]
    assert SAM2OnnxPredictor(folder).profile.static == shape


@pytest.mark.parametrize(
    "shape, photo, kinds",
    [((1, 3), "coffee", list(KINDS)), ((2, 2), "rocket", ["point", "fg_bg", "box", "four_boxes", "refine"])],
    ids=["1x3", "2x2"],
)
def test_static_folders_pass_parity(static, shape, photo, kinds):
    """The parity engine asks the official predictor for the same padded prompts our runtime sends."""
    result = run_parity(static[shape], samples=[photo], kinds=kinds, sqnr=False, stream=None)
    assert result.passed, result.failures()[:3]
    assert {c.kind for c in result.cases} == {"encoder", *kinds}


def test_padding_is_what_the_official_model_computes_and_not_free(static):
    """A click sent to the 1x3 decoder is padded with two label -1 points: the masks equal the
    official predictor's for the padded prompt, and differ from its unpadded answer (so the
    parity above compares something that can fail)."""
    import torch

    folder = static[(1, 3)]
    ref, _ = reference_predictor(read_manifest(folder))
    ours = SAM2OnnxPredictor(folder)
    image = sample_image("chelsea")
    ours.set_image(image)
    kwargs = KINDS["point"](*image.shape[:2])
    masks, _, _ = ours.predict(**kwargs, return_logits=True)
    with torch.inference_mode():
        ref.set_image(image)
        same, _, _ = ref.predict(**padded(kwargs, 3), return_logits=True)
        unpadded, _, _ = ref.predict(**kwargs, return_logits=True)
    assert min(decided_iou(m, r, BAND) for m, r in zip(masks, same)) >= 0.9999
    assert min(decided_iou(m, r, BAND) for m, r in zip(masks, unpadded)) < 0.999


def test_runtime_splits_fills_and_refuses_what_does_not_fit(static):
    one, two = SAM2OnnxPredictor(static[(1, 3)]), SAM2OnnxPredictor(static[(2, 2)])
    a, b = sample_image("coffee"), sample_image("chelsea")
    # one image per encoder call, whatever the batch
    batch = one.embed_batch([a, b])
    for emb, image in zip(batch, (a, b)):
        alone = one.embed(image)
        assert np.array_equal(emb.image_embed, alone.image_embed) and emb.orig_hw == alone.orig_hw
    # three boxes on a two-prompt decoder: two calls, the second filled by repeating its prompt
    h, w = a.shape[:2]
    boxes = np.array([[0.1 * w, 0.1 * h, 0.6 * w, 0.7 * h], [0.3 * w, 0.2 * h, 0.9 * w, 0.9 * h], [0, 0, w, h]])
    two.set_image(a)
    masks, scores, low_res = two.predict(box=boxes, return_logits=True)
    assert masks.shape == (3, 3, h, w) and scores.shape == (3, 3) and low_res.shape == (3, 3, 256, 256)
    for i, box in enumerate(boxes):
        alone, alone_scores, _ = two.predict(box=box, return_logits=True)
        assert np.array_equal(alone, masks[i]) and np.array_equal(alone_scores, scores[i])
    one.set_image(a)
    with pytest.raises(ValueError, match=r"--static-shapes 1,3: a prompt has 4 points"):
        one.predict(box=boxes[0], point_coords=[[10, 10], [20, 20]], point_labels=[1, 0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--static-shapes", "3"], "expected L,N"),
        (["--static-shapes", "0,3"], "must be 1 to 64"),
        (["--static-shapes", "1,3", "--profile", "cvat"], "keeps dims H, W dynamic"),
        (["--static-shapes", "1,3", "--precision", "fp32,fp16"], "fp32 graphs only"),
    ],
)
def test_export_refuses_static_shapes_it_cannot_make(tmp_path, args, message):
    proc = run_cli("export", "tiny", "--random-weights", "--out", tmp_path, *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())


def test_release_card_carries_the_mobile_verdict(static, exported, tmp_path):
    """The release of a static folder: .ort copies whose every op the config lists, the checker's
    verdict per graph and provider (more of each graph on NNAPI than the dynamic files as they
    are), no browser check (the page takes dynamic folders) and a card that says all of it."""
    from exporter.release.build import build_release
    from exporter.release.mobile_check import mobile_usability
    from exporter.web.server import make_server

    folder = static[(1, 3)]
    save_report(run_parity(folder, samples=["chelsea"], kinds=["point"], sqnr=False, stream=None), None)
    release = build_release(folder, tmp_path / "release", allow_random_weights=True)
    assert release["browser"] is None
    mobile = release["mobile"]["files"]
    assert sorted(mobile) == ["decoder.onnx", "encoder.onnx"]
    dynamic = {name: mobile_usability(exported("tiny") / name) for name in mobile}
    for name, record in mobile.items():
        assert record["dynamic_inputs"] == [] and dynamic[name]["dynamic_inputs"]
        nnapi, as_is = record["providers"]["NNAPI"], dynamic[name]["providers"]["NNAPI"]
        assert "if_shapes_fixed" not in nnapi and "if_shapes_fixed" in as_is
        assert nnapi["supported"] / nnapi["nodes"] > as_is["supported"] / as_is["nodes"], name
        assert as_is["unsupported_due_to_dynamic_shapes"] > 0 and as_is["verdict"] != "YES", name
        for provider in ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram", "XNNPACK"):
            entry = record["providers"][provider]
            assert 0 < entry["supported"] <= entry["nodes"] == record["nodes"], (name, provider)
        # the rewrites and mobile forms leave NNAPI and CoreML MLProgram nothing they lack: the
        # whole graph in one partition, the checker's YES
        for provider in ("NNAPI", "CoreML MLProgram"):
            entry = record["providers"][provider]
            assert (entry["supported"], entry["partitions"], entry["verdict"]) == (record["nodes"], 1, "YES"), (
                name,
                provider,
                entry["unsupported_ops"],
            )
    card = (tmp_path / "release" / "README.md").read_text()
    assert "were rewritten at export" in card and "`dynamic_multimask_via_stability`) were traced as exact" in card
    assert "## On mobile (ONNX Runtime Mobile)" in card and "static-shape files are for ONNX Runtime Mobile" in card
    enc = mobile["encoder.onnx"]["providers"]["NNAPI"]
    assert f"| `encoder.onnx` | {enc['supported']}/{enc['nodes']} nodes, {enc['partitions']} partitions" in card
    assert "exactly 1 prompt(s) of 3 point(s)" in card
    saved = json.loads((tmp_path / "release" / "manifest.json").read_text())
    assert saved["release"]["mobile"] == release["mobile"]
    # every operator of the .ort files themselves, and nothing else, is in the reduced build's config
    used = ort_file_ops([tmp_path / "release" / n for n in ("encoder.ort", "decoder.ort")])
    assert used == config_ops(tmp_path / "release" / "required_operators.config")
    with pytest.raises(ValueError, match="--static-shapes"):
        make_server(folder)


def test_bench_times_a_static_folder(static, tmp_path):
    """sam2-onnx bench feeds the static decoder its padded click (the speeds go in docs/mobile.md)."""
    proc = run_cli("bench", static[(1, 3)], "--no-torch", "--runs", "1", "--warmup", "0", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert result["engine"] == "onnxruntime" and result["decoder"]["runs"] == 5 and result["decoder"]["median_ms"] > 0
