"""Other consumers' I/O profiles: exported, then driven by each consumer's own feeds.

The tensors are built as the consumers' source builds them (CVAT's SAM 2 plugin,
cvat-ui/plugins/sam2/src/ts/index.tsx; onnxruntime's tool, models/sam2/image_decoder.py), fed to
a plain onnxruntime session, and the masks compared with the official SAM2ImagePredictor's for
the same clicks, on non-square photos. Seeded random weights (seed 0 and 1): the IoU is over the
pixels the reference decides (configs' fp32 iou_band), as in parity.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from exporter.checks.equivalence import decided_iou
from exporter.core import contract as C
from exporter.core.manifest import read_manifest
from exporter.core.variants import resolve
from exporter.export.pipeline import export_variant
from exporter.parity.cases import sample_image
from exporter.parity.engine import reference_predictor, run_parity
from exporter.runtime import SAM2OnnxPredictor

pytestmark = pytest.mark.export

FP32 = resolve("tiny").parity["fp32"]
PHOTOS = ("coffee", "rocket")  # 400 x 600 and 427 x 640: the two frames differ


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def folders(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"profiles{request.param}")
    return {
        name: export_variant(resolve("tiny"), out, seed=request.param, profile=name, stream=None).folder
        for name in ("cvat", "onnxruntime")
    }


@pytest.fixture(scope="module")
def official(folders):
    """The official predictor with the folders' weights (both profiles share them)."""
    ref, _ = reference_predictor(read_manifest(folders["cvat"]))
    return ref


def _sessions(folder):
    return (
        ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        for name in ("encoder.onnx", "decoder.onnx")
    )


def _official(ref, image, **kwargs):
    import torch

    with torch.inference_mode():
        ref.set_image(image)
        return ref.predict(**kwargs, multimask_output=False, return_logits=True)


def _encoder_input(ref, image):
    return ref._transforms(image.copy())[None].numpy()  # the server's SAM2Transforms input


def _box_within(box, ref_logits, band):
    """Our box lies between the boxes of the pixels the reference decides in and may have."""

    def extent(mask):
        ys, xs = np.nonzero(mask)
        return (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else None

    sure, maybe = extent(ref_logits > band), extent(ref_logits > -band)
    if maybe is None:
        return tuple(box) == (0, 0, 0, 0)
    inner = sure or (maybe[2], maybe[3], maybe[0], maybe[1])  # nothing sure: any box inside maybe
    x0, y0, x1, y1 = box
    return (
        maybe[0] <= x0 <= inner[0]
        and maybe[1] <= y0 <= inner[1]
        and inner[2] <= x1 <= maybe[2]
        and inner[3] <= y1 <= maybe[3]
    )


@pytest.mark.parametrize("name", ["cvat", "onnxruntime"])
def test_profile_folders_record_their_contract_and_load(folders, name):
    folder = folders[name]
    manifest = read_manifest(folder)
    assert manifest["profile"]["name"] == name
    profile = C.PROFILES[name]
    assert [s["name"] for s in manifest["io"]["decoder"]["inputs"]] == C.names(profile.decoder_inputs)
    props = {p.key: p.value for p in onnx.load(str(folder / "decoder.onnx"), load_external_data=False).metadata_props}
    assert props["sam2_onnx.profile"] == name
    assert json.loads(props["sam2_onnx.io"])["outputs"][0]["dtype"] == profile.decoder_outputs[0].dtype
    assert SAM2OnnxPredictor(folder).profile is profile  # sessions checked against the profile


@pytest.mark.parametrize("photo", PHOTOS)
def test_cvat_feeds_give_the_official_masks_and_box_with_low_res_masks_fed_back(folders, official, photo):
    image = sample_image(photo)
    h, w = image.shape[:2]
    encoder, decoder = _sessions(folders["cvat"])
    embed = dict(
        zip(
            ["high_res_feats_0", "high_res_feats_1", "image_embed"],
            encoder.run(None, {"image": _encoder_input(official, image)}),
        )
    )
    scale = 1024 / max(h, w)  # CVAT's getModelScale
    band = FP32["iou_band"]

    def cvat_decode(clicks, labels, mask_input):
        coords = np.array(clicks, np.float32)[None] * scale
        feeds = embed | {
            "point_coords": coords.astype(np.float32),
            "point_labels": np.array(labels, np.float32)[None],
            "orig_im_size": np.array([h, w], np.int32),
            "mask_input": np.zeros((1, 1, 256, 256), np.float32) if mask_input is None else mask_input,
            "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        }
        return dict(zip([o.name for o in decoder.get_outputs()], decoder.run(None, feeds)))

    first = [[0.5 * w, 0.45 * h]]
    second = first + [[0.15 * w, 0.2 * h]]
    ours1 = cvat_decode(first, [1], None)
    ref1 = _official(official, image, point_coords=np.array(first), point_labels=np.array([1]))
    # the second click reuses the first answer's low_res_masks, as CVAT does when only one click was added
    ours2 = cvat_decode(second, [1, 0], ours1["low_res_masks"])
    ref2 = _official(official, image, point_coords=np.array(second), point_labels=np.array([1, 0]), mask_input=ref1[2])
    # a box (corners 2, 3 first) and a positive click
    box = [[0.2 * w, 0.15 * h], [0.8 * w, 0.85 * h], [0.5 * w, 0.5 * h]]
    ours3 = cvat_decode(box, [2, 3, 1], None)
    ref3 = _official(
        official, image, box=np.array(box[:2]).ravel(), point_coords=np.array(box[2:]), point_labels=np.array([1])
    )
    for ours, (m_ref, s_ref, l_ref) in ((ours1, ref1), (ours2, ref2), (ours3, ref3)):
        assert ours["masks"].shape == (1, 1, h, w)  # CVAT reads dims[2], dims[3] as H, W
        assert decided_iou(m_ref[0], ours["masks"][0, 0], band) >= 0.9999
        assert abs(float(ours["iou_predictions"][0, 0]) - float(s_ref[0])) <= FP32["score_abs"]
        assert np.abs(ours["low_res_masks"][0] - l_ref).max() <= FP32["logits_max_abs"]
        got_box = tuple(int(ours[k][0]) for k in ("xtl", "ytl", "xbr", "ybr"))
        assert _box_within(got_box, m_ref[0], band), (got_box, photo)
        ys, xs = np.nonzero(ours["masks"][0, 0] > 0)  # and exactly the box of the graph's own mask
        assert got_box == ((xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else (0, 0, 0, 0))


@pytest.mark.parametrize("photo", PHOTOS)
def test_onnxruntime_tool_feeds_give_the_official_masks(folders, official, photo):
    image = sample_image(photo)
    h, w = image.shape[:2]
    encoder, decoder = _sessions(folders["onnxruntime"])
    features = encoder.run(None, {"image": _encoder_input(official, image)})
    # two prompts padded with label -1, coordinates in the 1024 x 1024 frame, int32 labels and size
    clicks = np.array([[[0.5 * w, 0.45 * h], [0.1 * w, 0.1 * h]], [[0.3 * w, 0.6 * h], [0.0, 0.0]]])
    labels = np.array([[1, 0], [1, -1]])
    feeds = dict(zip(["image_features_0", "image_features_1", "image_embeddings"], features)) | {
        "point_coords": (clicks * [1024 / w, 1024 / h]).astype(np.float32),
        "point_labels": labels.astype(np.int32),
        "input_masks": np.zeros((2, 1, 256, 256), np.float32),
        "has_input_masks": np.zeros(2, np.float32),
        "original_image_size": np.array([h, w], np.int32),
    }
    masks, scores, low_res = decoder.run(None, feeds)
    m_ref, s_ref, l_ref = _official(official, image, point_coords=clicks, point_labels=labels)
    assert masks.dtype == np.bool_ and masks.shape == (2, 1, h, w)
    for i in range(2):
        assert decided_iou(m_ref[i, 0], masks[i, 0].astype(np.float32), FP32["iou_band"]) >= 0.9999
    assert np.abs(scores - s_ref).max() <= FP32["score_abs"]
    assert np.abs(low_res - l_ref).max() <= FP32["logits_max_abs"]


@pytest.mark.parametrize("name", ["cvat", "onnxruntime"])
def test_profiles_pass_parity(folders, name):
    """Our predictor runs each profile, and the parity engine gates it like the default."""
    result = run_parity(folders[name], samples=list(PHOTOS), sqnr=False, stream=None)
    assert result.passed, result.failures()[:3]
    assert {c.kind for c in result.cases} >= {"point", "box", "refine", "padding"}


def test_profiles_refuse_what_they_do_not_serve(folders):
    predictor = SAM2OnnxPredictor(folders["onnxruntime"])
    predictor.set_image(sample_image("coffee"))
    with pytest.raises(ValueError, match="multimask_output=False"):
        predictor.predict(point_coords=[[100, 100]], point_labels=[1])
    with pytest.raises(ValueError, match="no logits"):
        predictor.predict(point_coords=[[100, 100]], point_labels=[1], multimask_output=False, return_logits=True)
    masks, scores, low_res = predictor.predict(point_coords=[[100, 100]], point_labels=[1], multimask_output=False)
    assert masks.shape == (1, 400, 600) and scores.shape == (1,) and low_res.shape == (1, 256, 256)
    with pytest.raises(ValueError, match="profile"):
        export_variant(
            resolve("tiny"), folders["cvat"].parent, seed=0, profile="cvat", precisions=["fp32", "fp16"], stream=None
        )


def test_mask_box_is_the_inclusive_box_and_zero_when_empty():
    import torch

    from exporter.wrappers.profiles import mask_box

    mask = torch.zeros(3, 7, 9, dtype=torch.bool)
    mask[0, 2:5, 3:8] = True  # rows 2..4, columns 3..7
    mask[1, 6, 0] = True  # one pixel in the bottom-left corner
    boxes = torch.stack(mask_box(mask), dim=1).tolist()
    assert boxes == [[3, 2, 7, 4], [0, 6, 0, 6], [0, 0, 0, 0]]


def test_release_and_the_page_refuse_profile_folders_with_the_reason(folders, tmp_path):
    from exporter.release.build import build_release
    from exporter.web.server import make_server

    with pytest.raises(ValueError, match="cvat I/O profile"):
        build_release(folders["cvat"], tmp_path / "release", allow_random_weights=True, browser_eps=())
    with pytest.raises(ValueError, match="onnxruntime I/O profile"):
        make_server(folders["onnxruntime"])
    assert not (tmp_path / "release").exists()
