"""The torch-free runtime against the official SAM2ImagePredictor, same weights, real photos.

Random weights (seed 0) stand in for official checkpoints, which cannot be downloaded here.
Gates from issue #4: original-size mask IoU >= 0.9999 in every case, scores within 1e-4.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.utils.transforms import SAM2Transforms

from exporter.checkpoints.loading import random_model
from exporter.checks.equivalence import rel_l2
from exporter.core.errors import InputError, IntegrityError, ManifestError, NotReadyError
from exporter.core.variants import resolve
from exporter.parity.metrics import iou
from exporter.runtime import SAM2OnnxPredictor
from exporter.runtime.transforms import preprocess, upsample_masks

from .fixtures import run_cli

# real photos of different sizes and aspect ratios (H x W): 300x451, 512x512, 400x600
PHOTOS = {"chelsea": skimage.data.chelsea, "astronaut": skimage.data.astronaut, "coffee": skimage.data.coffee}


@pytest.fixture(scope="module")
def pair(exported):
    """(official predictor, ours) on the same seed-0 tiny weights."""
    model, _ = random_model(resolve("tiny"), 0)
    return SAM2ImagePredictor(model), SAM2OnnxPredictor(exported("tiny"))


def _assert_same(ref_out, our_out):
    (m1, s1, l1), (m2, s2, l2) = ref_out, our_out
    assert (m1.shape, s1.shape, l1.shape) == (m2.shape, s2.shape, l2.shape)
    assert m2.dtype == m1.dtype == np.float32
    ious = [iou(a > 0.5, b > 0.5) for a, b in zip(m1.reshape(-1, *m1.shape[-2:]), m2.reshape(-1, *m2.shape[-2:]))]
    assert min(ious) >= 0.9999, ious
    assert float(np.abs(s1 - s2).max()) <= 1e-4
    assert float(np.abs(l1 - l2).max()) <= 1e-3


def _scaled(h: int, w: int, xy) -> np.ndarray:
    """Points given as fractions of the image -> pixels."""
    return np.asarray(xy, float) * [w, h]


def _cases(h: int, w: int) -> dict[str, dict]:
    box = np.r_[_scaled(h, w, [0.2, 0.15]), _scaled(h, w, [0.8, 0.9])]
    return {
        "point multimask": dict(point_coords=_scaled(h, w, [[0.5, 0.4]]), point_labels=[1]),
        "point single": dict(point_coords=_scaled(h, w, [[0.5, 0.4]]), point_labels=[1], multimask_output=False),
        "fg + bg": dict(point_coords=_scaled(h, w, [[0.5, 0.4], [0.1, 0.9]]), point_labels=[1, 0]),
        "box": dict(box=box),
        "box + bg point": dict(box=box, point_coords=_scaled(h, w, [[0.6, 0.2]]), point_labels=[0]),
        "four boxes": dict(box=np.stack([box, box * 0.5, box * 0.9, np.r_[box[:2], box[:2] + 40]])),
        "border points": dict(point_coords=[[0, 0], [w - 1, h - 1], [w, h / 2]], point_labels=[1, 0, 1]),
        "padded prompts": dict(
            point_coords=_scaled(h, w, [[[0.5, 0.4], [0.1, 0.9], [0.7, 0.7]], [[0.3, 0.3], [0.0, 0.0], [0.0, 0.0]]]),
            point_labels=[[1, 0, 1], [1, -1, -1]],
        ),
        "logits": dict(point_coords=_scaled(h, w, [[0.3, 0.6]]), point_labels=[1], return_logits=True),
    }


@pytest.mark.parametrize("photo", sorted(PHOTOS))
def test_predict_matches_official(pair, photo):
    ref, ours = pair
    image = PHOTOS[photo]()
    ref.set_image(image)
    ours.set_image(image)
    h, w = image.shape[:2]
    for name, kwargs in _cases(h, w).items():
        ref_out = ref.predict(**kwargs)
        our_out = ours.predict(**kwargs)
        if name == "logits":  # logits at original size agree to float32 rounding
            assert float(np.abs(ref_out[0] - our_out[0]).max()) < 1e-3
            ref_out = ((ref_out[0] > 0).astype(np.float32), *ref_out[1:])
            our_out = ((our_out[0] > 0).astype(np.float32), *our_out[1:])
        _assert_same(ref_out, our_out)
    # a second call refining with the previous best low-res logits
    first = ref.predict(**_cases(h, w)["point multimask"])
    mask_input = first[2][np.argmax(first[1])][None]
    kwargs = dict(point_coords=_scaled(h, w, [[0.5, 0.4]]), point_labels=[1], mask_input=mask_input)
    _assert_same(ref.predict(**kwargs), ours.predict(**kwargs))
    assert rel_l2(ours.get_image_embedding(), ref.get_image_embedding().numpy()) < 1e-5


def test_batch_of_two_images_matches_official(pair):
    ref, ours = pair
    images = [skimage.data.chelsea(), skimage.data.coffee()]
    ref.set_image_batch(images)
    ours.set_image_batch(images)
    boxes = [np.array([40.0, 30, 300, 250]), np.array([[100.0, 80, 500, 380], [10, 10, 200, 150]])]
    points = [np.array([[200.0, 150]]), None]
    labels = [np.array([1]), None]
    got = ours.predict_batch(points, labels, boxes)
    want = ref.predict_batch(points, labels, boxes)
    for i in range(2):
        _assert_same(tuple(w_[i] for w_ in want), tuple(g[i] for g in got))


def test_preprocess_equals_sam2_transforms():
    transforms = SAM2Transforms(resolution=1024, mask_threshold=0.0)
    rng = np.random.default_rng(0)
    images = [
        skimage.data.chelsea(),
        skimage.data.astronaut(),
        rng.integers(0, 256, (1200, 1800, 3), dtype=np.uint8),  # larger than 1024
        rng.integers(0, 256, (37, 2000, 3), dtype=np.uint8),  # extreme aspect ratio
        np.repeat(skimage.data.camera()[..., None], 3, axis=2),
    ]  # grayscale photo as RGB
    for image in images:
        want = transforms(image)[None].numpy()
        assert float(np.abs(preprocess(image) - want).max()) <= 1e-5, image.shape


def test_upsampling_equals_interpolate():
    g = torch.Generator().manual_seed(0)
    for hw in [(300, 451), (1200, 1800), (100, 80), (2000, 37)]:
        logits = torch.randn(2, 3, 256, 256, generator=g) * 10
        want = F.interpolate(logits, hw, mode="bilinear", align_corners=False).numpy()
        got = upsample_masks(logits.numpy(), hw)
        assert got.shape == want.shape and got.dtype == np.float32
        assert float(np.abs(got - want).max()) <= 2e-5, hw  # a few float32 ulps at |logit| ~ 40


def test_gray_rgba_and_pil_inputs_are_converted(pair):
    _, ours = pair
    gray = skimage.data.camera()[::2, ::2]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    base = ours.embed(rgb).image_embed
    for variant in (
        gray,
        gray[..., None],
        np.dstack([rgb, np.full(gray.shape, 7, np.uint8)]),
        Image.fromarray(gray),
        Image.fromarray(rgb).convert("RGBA"),
    ):
        assert np.array_equal(ours.embed(variant).image_embed, base)


def test_stateless_decode_is_thread_safe(pair):
    _, ours = pair
    embedding = ours.embed(skimage.data.coffee())
    prompts = [dict(point_coords=[[100.0 + 40 * i, 120.0]], point_labels=[1]) for i in range(6)]
    serial = [ours.decode(embedding, **p) for p in prompts]
    results = [None] * len(prompts)

    def work(i):
        results[i] = ours.decode(embedding, **prompts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_runtime_never_loads_torch(exported):
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "sam2", "cv2"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from exporter.runtime import SAM2OnnxPredictor
p = SAM2OnnxPredictor({str(exported("tiny"))!r})
p.set_image(np.zeros((60, 80, 3), np.uint8))
masks, scores, logits = p.predict(point_coords=[[10, 20]], point_labels=[1])
assert masks.shape == (3, 60, 80)
from exporter.runtime import SAM2OnnxAutomaticMaskGenerator
records = SAM2OnnxAutomaticMaskGenerator(p, points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0,
                                         output_mode="coco_rle").generate(np.zeros((60, 80, 3), np.uint8))
assert records and all(isinstance(r["segmentation"]["counts"], str) for r in records)
from exporter.runtime.video_predictor import SAM2OnnxVideoPredictor
v = SAM2OnnxVideoPredictor({str(exported("tiny"))!r})
state = v.init_state([np.zeros((60, 80, 3), np.uint8)] * 2)
v.add_new_points_or_box(state, 0, 1, points=[[10, 20]], labels=[1])
tracked = list(v.propagate_in_video(state))
assert [f for f, _, _ in tracked] == [0, 1] and tracked[1][2].shape == (1, 1, 60, 80)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "sam2", "cv2"))
assert not loaded, loaded
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# --- validation: every bad input is a clear error ------------------------------------------


@pytest.fixture(scope="module")
def ready(pair):
    _, ours = pair
    ours.set_image(skimage.data.chelsea())
    return ours


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(point_coords=[[np.nan, 3.0]], point_labels=[1]), "NaN or infinite"),
        (dict(point_coords=[[np.inf, 3.0]], point_labels=[1]), "NaN or infinite"),
        (dict(point_coords=[[1.0, 3.0]], point_labels=[2]), "must be 1 (foreground) or 0"),
        (dict(point_coords=[[1.0, 3.0]], point_labels=[-1]), "must be 1 (foreground) or 0"),
        (dict(point_coords=[[[1.0, 3.0]], [[2.0, 2.0]]], point_labels=[[1], [-1]]), "only padding"),
        (dict(point_coords=[[1.0, 3.0], [4, 5]], point_labels=[1]), "point_labels has shape"),
        (dict(point_coords=[[1.0, 3.0]]), "must be given together"),
        (dict(point_coords=[1.0, 3.0, 4.0], point_labels=[1]), "point_coords must be"),
        (dict(box=[50.0, 10, 20, 80]), "x1 >= x0"),
        (dict(box=[10.0, 80, 50, 20]), "y1 >= y0"),
        (dict(box=[10.0, 20, 30]), "box must be"),
        (dict(box=[[1.0, 2, 30, 40], [1, 2, 30, 40]], point_coords=[[5.0, 5]], point_labels=[1]), "with several"),
        (dict(point_coords=[[1.0, 3.0]], point_labels=[1], mask_input=np.zeros((1, 128, 128))), "mask_input must be"),
        (
            dict(point_coords=[[1.0, 3.0]], point_labels=[1], mask_input=np.zeros((3, 1, 256, 256))),
            "mask_input must be",
        ),
        (dict(), "empty prompt"),
        (dict(point_coords=np.zeros((0, 2)), point_labels=np.zeros(0)), "empty prompt"),
        (dict(mask_input=np.zeros((1, 256, 256))), "empty prompt"),
    ],
)
def test_bad_prompts_are_refused(ready, kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ready.predict(**kwargs)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10, 3), np.float32), "must be uint8"),
        (np.zeros((10, 10, 2), np.uint8), "must be HxW"),
        (np.zeros((2, 10, 10, 3), np.uint8), "must be HxW"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ("photo.jpg", "numpy array or a PIL image"),
    ],
)
def test_bad_images_are_refused(pair, image, message):
    with pytest.raises(InputError, match=message):
        pair[1].set_image(image)


def test_predict_before_set_image(exported):
    fresh = SAM2OnnxPredictor(exported("tiny"))
    with pytest.raises(NotReadyError, match="set_image"):
        fresh.predict(point_coords=[[1.0, 2.0]], point_labels=[1])
    with pytest.raises(NotReadyError):
        fresh.get_image_embedding()
    fresh.set_image(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(NotReadyError, match="set_image_batch"):
        fresh.predict_batch([[[1.0, 2.0]]], [[1]])
    fresh.reset_predictor()
    with pytest.raises(NotReadyError):
        fresh.predict(point_coords=[[1.0, 2.0]], point_labels=[1])


def test_tampered_and_truncated_files_are_refused(exported, tmp_path):
    folder = shutil.copytree(exported("tiny"), tmp_path / "model")
    data = bytearray((folder / "decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256 differs"):
        SAM2OnnxPredictor(folder)
    (folder / "decoder.onnx").write_bytes(bytes(data[:1000]))
    with pytest.raises(IntegrityError, match="truncated"):
        SAM2OnnxPredictor(folder)
    (folder / "decoder.onnx").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        SAM2OnnxPredictor(folder)


def test_bad_model_folders_and_options(exported, tmp_path):
    with pytest.raises(ManifestError, match="manifest.json: missing"):
        SAM2OnnxPredictor(tmp_path)
    with pytest.raises(ManifestError, match="not a directory"):
        SAM2OnnxPredictor(tmp_path / "nope")
    with pytest.raises(ManifestError, match="no fp16 graphs"):
        SAM2OnnxPredictor(exported("tiny"), precision="fp16")
    with pytest.raises(InputError, match="precision must be one of"):
        SAM2OnnxPredictor(exported("tiny"), precision="bf16")
    with pytest.raises(InputError, match="not in this onnxruntime build"):
        SAM2OnnxPredictor(exported("tiny"), providers=["NoSuchExecutionProvider"])
    with pytest.raises(InputError, match="threads must be"):
        SAM2OnnxPredictor(exported("tiny"), threads=0)
    with pytest.raises(InputError, match="optimization must be"):
        SAM2OnnxPredictor(exported("tiny"), optimization="max")


# --- sam2-onnx predict ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "coffee.jpg"
    Image.fromarray(skimage.data.coffee()).save(path, quality=95)
    return path


def test_predict_cli_writes_masks_overlay_and_json(exported, photo_file, tmp_path):
    out = tmp_path / "pred"
    proc = run_cli(
        "predict",
        exported("tiny"),
        photo_file,
        "--point",
        "300,200",
        "--point",
        "50,350:0",
        "--box",
        "100,50,500,380",
        "--out",
        out,
        check=True,
    )
    assert "prompt 0: scores" in proc.stdout and "(* best)" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(result["files"])
    assert result["prompts"]["labels"] == [1, 0] and len(result["scores"][0]) == 3
    assert result["timings_ms"]["encoder"] > 0 and result["weights"] == "random"
    for name in ("mask_0.png", "mask_1.png", "mask_2.png"):
        mask = np.asarray(Image.open(out / name))
        assert mask.shape == (400, 600) and set(np.unique(mask)) <= {0, 255}
    # the mask PNGs are the predictor's masks for the same prompt
    ours = SAM2OnnxPredictor(exported("tiny"))
    ours.set_image(np.asarray(Image.open(photo_file).convert("RGB")))
    masks, scores, _ = ours.predict(point_coords=[[300, 200], [50, 350]], point_labels=[1, 0], box=[100, 50, 500, 380])
    assert np.allclose(result["scores"][0], scores, atol=1e-6)
    assert np.array_equal(np.asarray(Image.open(out / "mask_1.png")) > 0, masks[1] > 0.5)
    overlay = Image.open(out / "overlay.png")
    assert overlay.size == (600, 400) and overlay.mode == "RGB"


def test_predict_cli_batch_of_boxes_and_single_mask(exported, photo_file, tmp_path):
    out = tmp_path / "boxes"
    proc = run_cli(
        "predict",
        exported("tiny"),
        photo_file,
        "--box",
        "10,10,200,150",
        "--box",
        "100,50,500,380",
        "--single-mask",
        "--out",
        out,
        check=True,
    )
    assert "prompt 1:" in proc.stdout
    assert {"mask_0_0.png", "mask_1_0.png"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--point", "3;4"], 2, "expected X,Y or X,Y:LABEL"),
        (["--box", "1,2,3"], 2, "expected X0,Y0,X1,Y1"),
        ([], 2, "give at least one --point or --box"),
        (["--point", "3,4:7"], 1, "must be 1 (foreground) or 0"),
        (["--box", "50,10,20,80"], 1, "x1 >= x0"),
    ],
)
def test_predict_cli_bad_prompts(exported, photo_file, tmp_path, args, code, message):
    proc = run_cli("predict", exported("tiny"), photo_file, *args, "--out", tmp_path / "o")
    assert proc.returncode == code and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_predict_cli_bad_image_and_existing_output(exported, photo_file, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    proc = run_cli("predict", exported("tiny"), bad, "--point", "3,4", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "not a readable image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "o").mkdir()
    proc = run_cli("predict", exported("tiny"), photo_file, "--point", "3,4", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_encoder_pool_does_not_spin_and_decoder_pool_does(exported):
    """Two sessions share the cores: the encoder's pool must not spin (it would slow the decoder
    that runs next), the decoder's may (its kernels are short). Read back from onnxruntime."""
    from exporter.runtime.sessions import load_sessions

    sessions = load_sessions(exported("tiny"), threads=2)
    key = "session.intra_op.allow_spinning"
    assert sessions.encoder.get_session_options().get_session_config_entry(key) == "0"
    assert sessions.decoder.get_session_options().get_session_config_entry(key) == "1"
