"""The torch-free tracker's pieces: bfloat16 memories, hole filling, frame sources and their
preprocessing, command-line prompts, and ``sam2-onnx track`` on a folder of JPEGs and an MP4.

Tracking itself is compared with the official SAM2VideoPredictor in parity_tests/test_video_parity.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.measure
import torch
from PIL import Image

from exporter.core.errors import InputError, ManifestError
from exporter.parity.video_clip import make_clip
from exporter.runtime.masks import small_components
from exporter.runtime.video_frames import Frames
from exporter.runtime.video_memory import from_bfloat16, to_bfloat16
from exporter.runtime.video_outputs import parse_prompts
from exporter.runtime.video_predictor import SAM2OnnxVideoPredictor
from tests.fixtures import run_cli


def test_bfloat16_rounding_equals_torch():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.standard_normal(100_000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 100_000),
            np.array([0.0, -0.0, np.inf, -np.inf, 1e-40, -3e-39, 3.4e38, 1.00390625, 1.01171875], np.float32),
            # ties: exactly half way between two bfloat16 values, both parities
            (np.arange(1, 200, dtype=np.uint32) * 0x10000 + 0x8000).view(np.float32),
        ]
    ).astype(np.float32)
    want = torch.from_numpy(x).bfloat16().float().numpy()
    got = from_bfloat16(to_bfloat16(x))
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.isnan(from_bfloat16(to_bfloat16(np.array([np.nan], np.float32)))).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_hole_filling_matches_connected_component_labelling(seed):
    """sam2's fill_holes_in_mask_scores: background (<= 0) components of at most max_area pixels,
    8-connected, become 0.1 (sam2 labels them with its CUDA extension; scikit-image here)."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        logits = rng.standard_normal((256, 256)).astype(np.float32)
        logits = np.where(rng.random((256, 256)) < 0.85, np.abs(logits), -np.abs(logits))  # sparse holes
        area = int(rng.integers(1, 30))
        labels = skimage.measure.label(logits <= 0, connectivity=2)
        sizes = np.bincount(labels.ravel())
        want = (labels > 0) & (sizes[labels] <= area)
        got = small_components((logits <= 0)[None], area)[0]
        assert np.array_equal(got, want)
        assert want.any() and not want.all()


def test_preprocessing_equals_sam2_video_loader(tmp_path):
    from sam2.utils.misc import load_video_frames

    clip = make_clip(8)
    folder = clip.write_jpegs(tmp_path / "frames")
    images, h, w = load_video_frames(str(folder), 1024, offload_video_to_cpu=True, compute_device=torch.device("cpu"))
    frames = Frames(folder)
    assert frames.size == (h, w) == clip.frames[0].shape[:2] and len(frames) == 8
    for i in (0, 5):
        assert np.array_equal(frames.frame(i), images[i : i + 1].numpy())
    # arrays: the same operations on the decoded pixels
    decoded = [np.asarray(Image.open(folder / f"{i:05d}.jpg").convert("RGB")) for i in range(8)]
    assert np.array_equal(Frames(decoded).frame(5), images[5:6].numpy())


def test_frame_sources_and_their_errors(tmp_path):
    clip = make_clip(8)
    folder = clip.write_jpegs(tmp_path / "frames")
    (folder / "00010.jpg").write_bytes((folder / "00001.jpg").read_bytes())
    frames = Frames(folder)  # sorted by the number: 0..7, then 10 (a string sort puts 10 after 1)
    assert len(frames) == 9 and np.array_equal(frames.rgb(8), frames.rgb(1))
    (folder / "cover.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="named by their index"):
        Frames(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no JPEG frames"):
        Frames(empty)
    with pytest.raises(InputError, match="no such folder"):
        Frames(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder of JPEG frames nor a video"):
        Frames(tmp_path / "notes.txt")
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match="not a readable video"):
        Frames(tmp_path / "broken.mp4")
    with pytest.raises(InputError, match="no frames"):
        Frames([])
    with pytest.raises(InputError, match="uint8"):
        Frames([np.zeros((4, 4, 3), np.float32)])


def _write_mp4(path, frames):
    """Lossless H.264 (RGB) through PyAV: the decoded frames are the given arrays."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264rgb", rate=10, options={"crf": "0", "preset": "ultrafast"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb24"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_mp4_frames_decode_exactly(tmp_path):
    clip = make_clip(8)
    _write_mp4(tmp_path / "clip.mp4", clip.frames)
    frames = Frames(tmp_path / "clip.mp4")
    assert len(frames) == 8 and frames.size == clip.frames[0].shape[:2]
    assert all(np.array_equal(frames.rgb(i), clip.frames[i]) for i in range(8))


def test_prompt_parsing():
    prompts = parse_prompts(["0:1:10,20", "0:1:30,40:0", "3:2:5,5"], ["0:1:1,2,50,60"])
    assert [(p.frame, p.obj_id, p.points, p.labels, p.box) for p in prompts] == [
        (0, 1, [[10.0, 20.0], [30.0, 40.0]], [1, 0], [1.0, 2.0, 50.0, 60.0]),
        (3, 2, [[5.0, 5.0]], [1], None),
    ]
    for points, boxes, match in [
        ([], [], "at least one"),
        (["0:1"], [], "FRAME:OBJ:X,Y"),
        (["a:1:1,2"], [], "integers"),
        (["-1:1:1,2"], [], ">= 0"),
        (["0:1:1,2:5"], [], "label must be 1"),
        (["0:1:1,nan"], [], "2 comma-separated"),
        ([], ["0:1:5,5,1,1"], "x0 < x1"),
        ([], ["0:1:1,1,5,5", "0:1:2,2,6,6"], "already has a box"),
    ]:
        with pytest.raises(InputError, match=match):
            parse_prompts(points, boxes)


@pytest.mark.export
def test_predictor_refuses_folders_without_video_graphs(exported, tmp_path):
    import shutil

    folder = exported("tiny")
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["video"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="has no video graphs"):
        SAM2OnnxVideoPredictor(copy)
    predictor = SAM2OnnxVideoPredictor(folder)
    state = predictor.init_state([f for f in make_clip(8).frames[:2]])
    with pytest.raises(InputError, match="no points or masks"):
        next(predictor.propagate_in_video(state))
    with pytest.raises(InputError, match="frame_idx must be"):
        predictor.add_new_points_or_box(state, 2, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(InputError, match="together"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]])
    with pytest.raises(InputError, match="2-D"):
        predictor.add_new_mask(state, 0, 1, np.zeros((2, 2, 2)))


@pytest.mark.export
@pytest.mark.slow
def test_track_cli_on_jpeg_folder_and_mp4(exported, tmp_path):
    """The same frames as JPEGs and as a lossless MP4 give the same masks; the files are complete."""
    folder = make_clip(8).write_jpegs(tmp_path / "frames")
    jpeg_frames = [np.asarray(Image.open(folder / f"{i:05d}.jpg").convert("RGB")) for i in range(3)]
    for i in range(3, 8):
        (folder / f"{i:05d}.jpg").unlink()
    _write_mp4(tmp_path / "clip.mp4", jpeg_frames)
    model = exported("tiny")
    args = ["--point", "1:1:40,130", "--point", "1:1:200,30:0", "--box", "2:7:170,10,240,80"]
    for source, out in ((folder, tmp_path / "a"), (tmp_path / "clip.mp4", tmp_path / "b")):
        proc = run_cli("track", model, source, *args, "--out", out)
        assert proc.returncode == 0, proc.stderr
        assert "2 frames (forward from frame 1)" in proc.stdout
    summary = json.loads((tmp_path / "a" / "track.json").read_text())
    assert summary["frames"] == 3 and summary["tracked_frames"] == 2 and set(summary["objects"]) == {"1", "7"}
    assert summary["prompts"][0]["labels"] == [1, 0]
    for obj in ("1", "7"):
        for frame in range(1, 3):
            a = np.asarray(Image.open(tmp_path / "a" / "masks" / obj / f"{frame:05d}.png"))
            b = np.asarray(Image.open(tmp_path / "b" / "masks" / obj / f"{frame:05d}.png"))
            assert a.shape == (240, 320) and np.array_equal(a, b)
            assert summary["objects"][obj][str(frame)]["area"] == int((a > 0).sum())
    with Image.open(tmp_path / "a" / "overlay.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (320, 240)
    # reverse: from the last prompted frame back to 0; an existing folder needs --force
    proc = run_cli("track", model, folder, *args, "--reverse", "--out", tmp_path / "a")
    assert proc.returncode == 1 and "--force" in proc.stderr
    proc = run_cli("track", model, folder, *args, "--reverse", "--force", "--out", tmp_path / "a")
    assert proc.returncode == 0 and "3 frames (reverse from frame 2)" in proc.stdout
    proc = run_cli("track", model, folder, "--point", "9:1:5,5", "--out", tmp_path / "c")
    assert proc.returncode == 1 and "has 3 frames" in proc.stderr and not (tmp_path / "c").exists()
