"""The parity suite: every variant's FP32 artifacts (and tiny's FP16 and INT8) vs the official SAM2ImagePredictor.

Random weights (seed 0) stand in for official checkpoints, which cannot be downloaded here:
the numbers measure the conversion, not the model's quality. Gates: configs/<variant>.yaml.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from exporter.checks.equivalence import run_graph
from exporter.core import contract as C
from exporter.core.errors import ParityError
from exporter.core.manifest import file_entry, read_manifest, write_manifest
from exporter.core.variants import all_variants, resolve
from exporter.export.onnx_steps import trace
from exporter.parity.cases import KINDS, SAMPLES
from exporter.parity.engine import run_parity
from exporter.parity.metrics import check
from exporter.parity.plan import PLAN, RELEASE_PLAN
from exporter.parity.report import write_report
from exporter.wrappers import ImageEncoder
from tests.fixtures import run_cli, variant_params


def test_plan_covers_every_variant_photo_and_kind():
    assert sorted(PLAN) == sorted(v.name for v in all_variants())
    assert set(RELEASE_PLAN) < set(PLAN)
    seen = [photo for name, photos in PLAN.items() if name not in RELEASE_PLAN for photo in photos]
    assert all(seen.count(p) >= 2 for p in SAMPLES), seen  # in CI alone


@pytest.mark.parametrize("name", variant_params(PLAN))
def test_parity(exported, name, tmp_path):
    result = run_parity(exported(name), samples=PLAN[name], stream=None)
    assert result.passed, "\n".join(result.failures())
    assert {c.kind for c in result.cases} == set(KINDS) | {"encoder"}
    assert len(result.cases) == len(PLAN[name]) * (len(KINDS) + 1)
    json_path, html_path = write_report(result, tmp_path)
    report = json.loads(json_path.read_text())
    assert report["verdict"] == "pass" and report["weights"]["seed"] == 0
    assert len(report["cases"]) == len(result.cases)
    assert html_path.read_text().count("<img ") == 3 * len(PLAN[name]) * len(KINDS)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_parity_reduced_precision(exported, precision, tmp_path):
    """Every precision of the default variant through the engine, gated by configs parity.<precision>."""
    name = "sam2.1_hiera_tiny"
    folder = exported(name, "fp32,fp16,int8")
    result = run_parity(folder, precision, samples=PLAN[name], stream=None)
    assert result.passed, "\n".join(result.failures())
    assert result.gates == resolve(name).parity[precision]
    assert len(result.cases) == len(PLAN[name]) * (len(KINDS) + 1)
    fp32 = read_manifest(folder)["files"]
    summary = result.summary()
    assert summary["files"]["encoder"] == f"encoder.{precision}.onnx"
    assert summary["bytes"]["encoder"] < 0.55 * fp32["encoder.onnx"]["bytes"]
    assert summary["iou_min"] >= resolve(name).parity[precision]["mask_iou_min"]
    assert summary["iou_min"] <= summary["iou_median"] <= 1.0 and summary["encoder_ms_median"] > 0
    json_path, html_path = write_report(result, tmp_path)
    report = json.loads(json_path.read_text())
    assert json_path.name == f"parity.{precision}.json" and report["summary"]["precision"] == precision
    assert "lower bound" in report["weights_note"]
    if precision == "int8":  # the per-layer SQNR table: every quantized layer, finite, worst first in HTML
        rows = report["sqnr"]["encoder"]
        assert len(rows) >= 80 and all(r["sqnr_db"] > 10 for r in rows if r["sqnr_db"] != "inf")
        assert "per-layer SQNR" in html_path.read_text()
    else:
        assert report["sqnr"] == {}


def test_mask_iou_counts_only_pixels_the_reference_decides():
    """A random-weight mask can be a plateau of logits within 1e-3 of zero: any rounding flips
    it. Flips there are not counted; one flip on a pixel the reference decides is."""
    from exporter.parity.metrics import decided_iou

    ref = np.full((4, 8), 1e-4, np.float32)  # a plateau, barely above the threshold
    ref[0, :] = 3.0  # one decided row
    ours = -ref  # every plateau pixel flipped
    ours[0, :] = 3.0
    assert decided_iou(ref, ours, band=0.0) == 8 / 32 and decided_iou(ref, ours, band=1e-2) == 1.0
    ours[0, 0] = -0.5  # a decided pixel flipped: that counts
    assert decided_iou(ref, ours, band=1e-2) == 7 / 8
    gates = resolve("tiny").parity
    for precision in ("fp16", "int8"):  # the band never exceeds what the logits gate allows
        assert gates[precision]["iou_band"] <= gates[precision]["logits_max_abs"]


def test_metrics_reject_nan_and_name_the_passing_tolerance():
    gates = resolve("tiny").parity["fp32"]
    assert check({"mask_iou_min": float("nan")}, gates) != []
    assert check({"finite": False}, gates) == ["outputs contain NaN or inf"]
    (failure,) = check({"logits_max_abs": 0.25}, gates)
    assert "0.25 > 0.001" in failure and "<= 0.25" in failure


def _with_bgr_encoder(folder, tmp_path):
    """A copy of the artifacts whose encoder was exported reading BGR: a classic export bug."""
    from exporter.checkpoints.loading import random_model

    class BGREncoder(ImageEncoder):
        def forward(self, image):
            return super().forward(image.flip(1))

    broken = shutil.copytree(folder, tmp_path / folder.name)
    model, _ = random_model(resolve("tiny"), 0)
    trace(BGREncoder(model).eval(), (torch.zeros(1, 3, 1024, 1024),), broken / C.ENCODER_FILE, "encoder", 17)
    manifest = read_manifest(broken)  # the manifest is rewritten, so only parity can tell
    manifest["files"][C.ENCODER_FILE] = file_entry(broken / C.ENCODER_FILE, "encoder", "fp32")
    write_manifest(broken, manifest)
    return broken


def test_broken_artifact_fails_loudly(exported, tmp_path):
    broken = _with_bgr_encoder(exported("tiny"), tmp_path)
    out = run_graph(broken / C.ENCODER_FILE, [{"image": np.zeros((1, 3, 1024, 1024), np.float32)}])
    assert out[0]["image_embed"].shape == (1, 256, 64, 64)  # a well-formed graph, wrong function
    proc = run_cli("parity", broken, "--samples", "chelsea", "--kinds", "point,box", "--no-automask")
    assert proc.returncode == 5, proc.stderr
    assert "encoder_rel_l2 = " in proc.stderr and "would pass with a threshold <=" in proc.stderr
    assert "chelsea / encoder" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    report = json.loads((broken / "parity.json").read_text())
    assert report["verdict"] == "fail" and report["failures"]
    assert read_manifest(broken)["parity"]["fp32"]["verdict"] == "fail"


def _with_failing_decoder(folder, tmp_path):
    """A copy whose decoder loads and follows the contract but fails at run time in onnxruntime:
    iou_predictions gains 0 x a Gather at index 999999, out of bounds for its 3 columns."""
    import onnx
    from onnx import helper, numpy_helper

    broken = shutil.copytree(folder, tmp_path / "failing")
    model = onnx.load(str(broken / C.DECODER_FILE))
    node = next(n for n in model.graph.node if "iou_predictions" in n.output)
    node.output[list(node.output).index("iou_predictions")] = "iou_before"
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(999999, np.int64), "bad_index"),
            numpy_helper.from_array(np.array([1], np.int64), "axis_1"),
            numpy_helper.from_array(np.array(0, np.float32), "zero"),
        ]
    )
    model.graph.node.extend(
        [
            helper.make_node("Gather", ["iou_before", "bad_index"], ["picked"], axis=1),
            helper.make_node("Unsqueeze", ["picked", "axis_1"], ["column"]),
            helper.make_node("Mul", ["column", "zero"], ["nothing"]),
            helper.make_node("Add", ["iou_before", "nothing"], ["iou_predictions"]),
        ]
    )
    onnx.save(model, str(broken / C.DECODER_FILE))
    manifest = read_manifest(broken)
    manifest["files"][C.DECODER_FILE] = file_entry(broken / C.DECODER_FILE, "decoder", "fp32")
    write_manifest(broken, manifest)
    return broken


def test_a_case_that_raises_is_a_failed_case_not_a_crash(exported, tmp_path):
    """onnxruntime raising inside one case: every case is still reported, each failure names
    its photo, kind and what raised; the command ends with one line and exit 5."""
    broken = _with_failing_decoder(exported("tiny"), tmp_path)
    result = run_parity(broken, samples=["chelsea"], kinds=["point", "box"], stream=None)
    assert [c.kind for c in result.cases] == ["encoder", "point", "box"] and result.cases[0].passed
    for case in result.cases[1:]:
        assert not case.passed and case.failures[0].startswith("our decoder raised "), case.failures
    proc = run_cli("parity", broken, "--samples", "chelsea", "--kinds", "point,box", "--no-automask")
    assert proc.returncode == 5 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "chelsea / point: our decoder raised" in last, last
    report = json.loads((broken / "parity.json").read_text())
    assert report["verdict"] == "fail" and len(report["failures"]) == 2 and report["machine"]["cpu_features"]


def test_parity_cli_writes_report_and_manifest_verdict(exported, tmp_path):
    """The parity command as a release job runs it, automatic mask generation included (on
    by default at fp32): the official generator and ours on two photos (8x8 points) and on
    one with crop_n_layers=1, thresholds lowered for random weights (parity/automask.py).
    With random weights every sub-crop mask reaches its crop's inner edge, so both generators
    drop them all and the crop case's masks come from the whole-image crop."""
    folder = shutil.copytree(exported("tiny"), tmp_path / "model")
    user_image = tmp_path / "mine.png"
    from PIL import Image

    Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (200, 1))).save(user_image)
    proc = run_cli(
        "parity", folder, "--samples", "camera", "--images", user_image, "--kinds", "point,four_boxes,padding"
    )
    assert proc.returncode == 0, proc.stderr
    assert "fp32: PASS" in proc.stdout
    report = json.loads((folder / "parity.json").read_text())
    assert sorted(report["images"]) == ["camera", "chelsea", "coffee", "mine.png"]
    automask = {(c["image"], c["kind"]): c["metrics"] for c in report["cases"] if c["kind"].startswith("automask:")}
    assert sorted(automask) == [
        ("chelsea", "automask:crops"),
        ("chelsea", "automask:grid"),
        ("coffee", "automask:grid"),
    ]
    for (photo, kind), m in automask.items():
        assert m["automask_count_diff"] == 0 and m["automask_iou_min"] >= 0.999, (photo, kind, m)
        assert m["automask_box_mismatches"] == 0 and m["same_prompt_and_crop"] == m["masks_ours"], (photo, kind, m)
        assert m["masks_ours"] >= (24 if kind == "automask:grid" else 12), (photo, kind, m)  # dozens of masks
    assert report["summary"]["automask_iou_min"] >= 0.999 and set(report["automask_settings"]) == {"grid", "crops"}
    entry = read_manifest(folder)["parity"]["fp32"]
    assert entry["verdict"] == "pass" and entry["report"] == "parity.json" and entry["cases"] == 8 + 3
    assert (folder / "parity.html").read_text().count("official (left), ONNX (right)") == 3
    from exporter.core.digests import sha256_file

    assert entry["report_sha256"] == sha256_file(folder / "parity.json")
    assert (folder / "parity.html").read_text().startswith("<!doctype html>")


def test_parity_against_other_weights_is_refused(exported, random_checkpoint):
    with pytest.raises(ParityError, match="different weights is refused"):
        run_parity(exported("tiny"), seed=1, samples=["chelsea"], stream=None)
    path, _ = random_checkpoint("tiny", seed=2)
    proc = run_cli("parity", exported("tiny"), "--checkpoint", path, "--samples", "chelsea")
    assert proc.returncode == 1 and "different weights is refused" in proc.stderr


def test_unknown_samples_and_kinds_are_refused(exported):
    proc = run_cli("parity", exported("tiny"), "--samples", "lena")
    assert proc.returncode == 1 and "unknown sample image(s) lena" in proc.stderr
    proc = run_cli("parity", exported("tiny"), "--kinds", "lasso")
    assert proc.returncode == 1 and "unknown prompt kind(s) lasso" in proc.stderr
