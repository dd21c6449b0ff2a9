"""Video parity of the default variant: SAM2OnnxVideoPredictor vs the official SAM2VideoPredictor.

CI runs a 10-frame clip (tracking forward over all of it, then 4 frames in reverse): the official
predictor costs about 10 s a frame for three objects on 2 CPU cores. ``sam2-onnx parity --video``
runs the 40-frame clip (docs/video.md has its table). Random weights (seed 0) stand in for
checkpoints: the numbers measure the conversion, not tracking quality.
"""

from __future__ import annotations

import json

import numpy as np

from exporter.core.manifest import read_manifest
from exporter.parity.video import _compare, run_video_parity
from exporter.parity.video_report import HTML_NAME, record_video_parity, write_video_report
from exporter.runtime.video_memory import FrameOut, ObjectOutputs


def test_video_parity_tiny(exported, tmp_path):
    folder = exported("tiny")
    result = run_video_parity(folder, frames=10, reverse_frames=4, stream=None)
    assert result.passed, "\n".join(result.failures())
    steps = [s["step"] for s in result.steps]
    assert [s.split(" on ")[0] for s in steps[:4]] == ["point", "box", "mask", "empty mask"]
    assert steps[4:7] == ["propagate forward", steps[5], "propagate reverse"] and steps[5].startswith("correction")
    assert steps[7].startswith("clear prompts on frame") and steps[8] == "remove object 2"
    removed = [r for r in result.rows if r["step"] == "remove object 2"]
    assert removed and {r["obj_id"] for r in removed} == {1, 3}  # the others' masks on its prompted frame
    forward = [r for r in result.rows if r["step"] == "propagate forward"]
    reverse = [r for r in result.rows if r["step"] == "propagate reverse"]
    assert sorted({r["frame"] for r in forward}) == list(range(10))  # from the first prompted frame, 0
    assert sorted({r["frame"] for r in reverse}) == list(range(5, 10))  # the last frame and 4 before it
    assert {r["obj_id"] for r in forward} == {1, 2, 3}
    # every tracked row compared pointers and scores; the masks compared were not empty or full
    assert all("obj_ptr_rel_l2" in r for r in forward + reverse)
    assert all(0 < r["area_median"] < 240 * 320 for r in forward if r["object_score"] > 0)
    # the occlusion path ran: the empty mask's frame has the object absent on both sides
    absent = [r for r in result.rows if r["step"].startswith("empty mask") and r["obj_id"] == 3]
    assert absent and absent[0]["object_score"] < 0
    json_path, html_path = write_video_report(result, tmp_path)
    report = json.loads(json_path.read_text())
    assert report["verdict"] == "pass" and report["weights"]["seed"] == 0
    assert report["worst"]["video_iou_min"] >= report["gates"]["video_iou_min"]
    assert html_path.name == HTML_NAME and html_path.read_text().count("<img ") == 2
    # recorded in a copy of the manifest's folder only (the session's export is shared)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.json").write_bytes((folder / "manifest.json").read_bytes())
    record_video_parity(copy, result, json_path)
    assert read_manifest(copy)["parity_video"]["verdict"] == "pass"


def test_video_comparison_can_fail():
    """A mask shifted by a few pixels, a pointer off by 1 %: the comparison sees both."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 1, 60, 80)).astype(np.float32)
    ours = np.roll(ref, 3, axis=-1)
    state = {
        "temp_output_dict_per_obj": {0: {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}},
        "output_dict_per_obj": {0: {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}},
    }
    import torch

    ptr = torch.ones(1, 256)
    state["output_dict_per_obj"][0]["non_cond_frame_outputs"][5] = {
        "obj_ptr": ptr,
        "object_score_logits": torch.tensor([[0.5]]),
    }

    class Ours:
        temp_output_dict_per_obj = {0: ObjectOutputs()}
        output_dict_per_obj = {0: ObjectOutputs(non_cond={5: FrameOut(ours, ptr.numpy() * 1.01, np.array([[0.5]]))})}

    (row,) = _compare("propagate forward", 5, [1], torch.from_numpy(ref), ours, state, Ours())
    assert row["iou_median"] < 0.9 and row["obj_ptr_rel_l2"] > 5e-3 and row["object_score_abs"] == 0
