"""The SAM 1 family: registry, checkpoints, the exported graphs and SAM1OnnxPredictor against
the official segment_anything SamPredictor on the same weights and real photos.

Random weights stand in for official checkpoints, which cannot be downloaded here: the numbers
measure the conversion, not the model's quality. ViT-B runs here; ViT-L and ViT-H share its code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
import torch
from segment_anything import SamPredictor, sam_model_registry

from exporter.checkpoints.loading import random_model, state_dict_digest
from exporter.core import contract as C
from exporter.core.errors import InputError, NotReadyError
from exporter.core.manifest import read_manifest
from exporter.core.variants import all_variants, resolve
from exporter.export.onnx_steps import trace
from exporter.parity.metrics import iou
from exporter.runtime import SAM1OnnxPredictor, SAM2OnnxPredictor
from exporter.runtime.inputs import as_rgb
from exporter.runtime.sam1_transforms import postprocess_masks, preprocess_shape
from exporter.wrappers.sam1 import sam1_decoder

from .fixtures import run_cli

SAM1 = [v for v in all_variants() if v.is_sam1]


def test_the_three_sam1_variants():
    assert [v.name for v in SAM1] == ["sam_vit_b", "sam_vit_l", "sam_vit_h"]
    for v in SAM1:
        assert v.family == "sam1" and v.io_profile.name == "sam1" and v.sam1_model == v.name.removeprefix("sam_")
        # the parameter counts stated in configs/ are those of segment_anything's own builders
        with torch.device("meta"):
            model = sam_model_registry[v.sam1_model]()
        assert sum(p.numel() for p in model.parameters()) == v.parameters
    with pytest.raises(Exception, match="sam1"):
        C.profile("sam1", "sam2")  # the SAM 1 contract is not offered to SAM 2 exports


def test_random_checkpoint_is_an_official_sam1_file(random_checkpoint):
    path, source = random_checkpoint("sam_vit_b", seed=3)
    official = sam_model_registry["vit_b"](checkpoint=str(path))  # the segment-anything README's loader
    assert state_dict_digest(official.state_dict()) == source.state_dict_sha256
    out = run_cli("inspect", path)
    assert out.returncode == 0 and "sam_vit_b" in out.stdout, out.stderr


def test_export_refuses_what_sam1_lacks():
    for args, message in (
        (["--static-shapes", "1,4"], "--static-shapes is for SAM 2 variants"),
        (["--profile", "cvat"], "sam1"),
    ):
        out = run_cli("export", "sam_vit_b", "--random-weights", "--out", "/nonexistent-dir/x", *args)
        assert out.returncode != 0 and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) <= 2, out.stderr  # one error line (after the header)


@pytest.mark.parametrize("seed", [1, 2])
def test_decoder_graph_crops_for_every_image_size(tmp_path, seed):
    """The decoder is traced on one image size; every other size must be cropped and resized
    as SamPredictor does (segment_anything's own SamOnnxModel bakes the traced size in)."""
    torch.manual_seed(seed)
    sam = sam_model_registry["vit_b"]().eval()
    path = tmp_path / "decoder.onnx"
    g = torch.Generator().manual_seed(seed)
    args = (
        torch.randn(1, 256, 64, 64, generator=g),
        torch.rand(1, 2, 2, generator=g) * C.IMAGE_SIZE,
        torch.tensor([[C.LABEL_FG, C.LABEL_PAD]]).float(),
        torch.zeros(1, 1, 256, 256),
        torch.zeros(1),
        torch.tensor([300.0, 451.0]),
    )
    trace(sam1_decoder(sam).eval(), args, path, "decoder", 17, C.profile("sam1", "sam1"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for hw in [(512, 512), (683, 1024), (1200, 800), (77, 1999)]:
        feeds = [a.numpy() for a in args[:-1]] + [np.array(hw, np.float32)]
        masks, _, low_res = session.run(None, dict(zip([i.name for i in session.get_inputs()], feeds)))
        expected = postprocess_masks(low_res, preprocess_shape(hw), hw)
        assert masks.shape == expected.shape == (1, 4, *hw)
        np.testing.assert_allclose(masks, expected, rtol=0, atol=1e-3)


@pytest.fixture(scope="module")
def pair(exported):
    """(official SamPredictor, ours) on the seed-0 ViT-B weights of the export."""
    folder = exported("sam_vit_b")
    model, source = random_model(resolve("sam_vit_b"), 0)
    assert source.state_dict_sha256 == read_manifest(folder)["weights"]["state_dict_sha256"]
    return SamPredictor(model.eval()), SAM1OnnxPredictor(folder, threads=2)


def _same(ref_out, our_out):
    (m_ref, s_ref, l_ref), (m_ours, s_ours, l_ours) = ref_out, our_out
    assert m_ours.shape == m_ref.shape and s_ours.shape == s_ref.shape and l_ours.shape == l_ref.shape
    assert m_ours.dtype == m_ref.dtype
    np.testing.assert_allclose(s_ours, s_ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(l_ours, l_ref, rtol=0, atol=1e-3)
    if m_ref.dtype == bool:
        assert (
            min(iou(a, b) for a, b in zip(m_ours.reshape(-1, *m_ours.shape[-2:]), m_ref.reshape(-1, *m_ref.shape[-2:])))
            >= 0.9999
        )


@pytest.mark.parametrize(
    "photo", [skimage.data.astronaut, lambda: np.ascontiguousarray(skimage.data.chelsea().transpose(1, 0, 2))]
)
def test_predictor_matches_sam_predictor(pair, photo):
    ref, ours = pair
    image = as_rgb(photo())
    h, w = image.shape[:2]
    with torch.inference_mode():
        ref.set_image(image)
    ours.set_image(image)
    assert ours.original_size == tuple(ref.original_size) and ours.input_size == tuple(ref.input_size)
    np.testing.assert_allclose(ours.get_image_embedding(), ref.features.numpy(), rtol=0, atol=1e-3)
    point = np.array([[w * 0.5, h * 0.45]])
    box = np.array([w * 0.2, h * 0.15, w * 0.8, h * 0.85])
    prompts = [
        dict(point_coords=point, point_labels=np.array([1])),
        dict(point_coords=np.r_[point, [[w * 0.1, h * 0.1]]], point_labels=np.array([1, 0]), multimask_output=False),
        dict(box=box),
        dict(box=box, point_coords=np.array([[w * 0.75, h * 0.2]]), point_labels=np.array([0]), return_logits=True),
    ]
    with torch.inference_mode():
        for kwargs in prompts:
            _same(ref.predict(**kwargs), ours.predict(**kwargs))
        _, scores, low_res = ref.predict(**prompts[0])
        refine = dict(prompts[0], mask_input=low_res[np.argmax(scores)][None], multimask_output=False)
        _same(ref.predict(**refine), ours.predict(**refine))
        # several boxes at once: the official predict_torch's batch
        boxes = np.stack([box, [0, 0, w / 2, h / 2]])
        t_boxes = ref.transform.apply_boxes_torch(torch.as_tensor(boxes, dtype=torch.float), ref.original_size)
        m, s, lr = ref.predict_torch(None, None, t_boxes, multimask_output=True, return_logits=True)
        _same((m.numpy(), s.numpy(), lr.numpy()), ours.predict(box=boxes, return_logits=True))
    ours.set_image(image[..., ::-1].copy(), image_format="BGR")  # SamPredictor's BGR input
    np.testing.assert_array_equal(ours.predict(box=box)[0], ours.decode(ours.embed(image), box=box)[0])


def test_bad_inputs_are_one_clear_error(pair, exported):
    ours = SAM1OnnxPredictor(exported("sam_vit_b"))
    with pytest.raises(NotReadyError, match="set_image"):
        ours.predict(box=[0, 0, 10, 10])
    ours.set_image(np.zeros((40, 60, 3), np.uint8))
    for kwargs, message in (
        (dict(), "needs a prompt"),
        (dict(point_coords=[[1, 2]]), "point_labels must be supplied"),
        (dict(point_coords=[[1, 2, 3]], point_labels=[1]), "point_coords must be"),
        (dict(box=[1, 2, 3]), "box must be"),
        (dict(box=[0, 0, 5, 5], mask_input=np.zeros((256, 256))), "mask_input must be"),
    ):
        with pytest.raises(InputError, match=message):
            ours.predict(**kwargs)
    with pytest.raises(InputError, match="use SAM2OnnxPredictor"):
        SAM1OnnxPredictor(exported("tiny"))
    with pytest.raises(InputError, match="use SAM1OnnxPredictor"):
        SAM2OnnxPredictor(exported("sam_vit_b"))


def test_automatic_mask_generator_matches_sam_automatic_mask_generator(pair, tmp_path):
    """SAM1OnnxAutomaticMaskGenerator against the official SamAutomaticMaskGenerator on the same
    weights, at the parity engine's grid setting (filters lowered until enough masks survive):
    same count, masks, boxes, areas, scores, points and crops; then the CLI on the same folder,
    which refuses SAM 2-only options by name."""
    from exporter.parity.automask import SETTINGS, run_case
    from exporter.parity.cases import sample_image
    from exporter.parity.metrics import check
    from exporter.parity.sam1_reference import Sam1Reference

    gates = resolve("sam_vit_b").parity["fp32"]
    image = sample_image("chelsea")
    metrics, _, (reference, mine), problems = run_case(
        Sam1Reference(pair[0].model), pair[1], image, SETTINGS["grid"], gates["automask_min_masks"]
    )
    assert not problems and not check(metrics, gates), (problems, check(metrics, gates))
    assert len(reference) >= gates["automask_min_masks"] and metrics["automask_masks_matched"] == len(reference)
    assert metrics["same_prompt_and_crop"] == len(reference)  # float64 grid points, as the official records
    assert [set(r) for r in mine] == [set(r) for r in reference]
    # min_mask_region_area (the official clean-up needs OpenCV, absent here): every kept mask has
    # no hole and no island under the area, and its record's area and box are the cleaned mask's
    from skimage.measure import label

    from exporter.runtime import SAM1OnnxAutomaticMaskGenerator
    from exporter.runtime.masks import mask_boxes

    open_filters = dict(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)
    cleaned = SAM1OnnxAutomaticMaskGenerator(pair[1], min_mask_region_area=400, **open_filters).generate(image)
    assert cleaned
    for r in cleaned:
        mask = r["segmentation"]
        islands = np.bincount(label(mask, connectivity=2).ravel())[1:]
        holes = np.bincount(label(~mask, connectivity=2).ravel())[1:]
        assert len(islands) == 1 or islands.min() >= 400, sorted(islands)[:3]  # all small: the largest stays
        assert holes.size == 0 or holes.min() >= 400, sorted(holes)[:3]
        x0, y0, x1, y1 = mask_boxes(mask[None])[0]
        assert r["area"] == mask.sum() and r["bbox"] == [x0, y0, x1 - x0, y1 - y0]
    out = tmp_path / "masks.json"
    folder = pair[1].model_dir
    photo = tmp_path / "chelsea.png"
    from PIL import Image

    Image.fromarray(image).save(photo)
    proc = run_cli("automask", folder, photo, "--out", out, "--points-per-side", "4", "--pred-iou-thresh", "0")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["params"]["pred_iou_thresh"] == 0
    for flag in ("--use-m2m", "--single-mask"):
        proc = run_cli("automask", folder, photo, "--out", tmp_path / "x.json", flag)
        assert proc.returncode == 1 and "SamAutomaticMaskGenerator takes" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()


def test_single_mask_profile_is_samonnxmodels_return_single_mask(pair, tmp_path):
    """``export --profile sam1_single``: the decoder of segment-anything's notebook and web demo
    (``SamOnnxModel(return_single_mask=True)``), one mask per prompt chosen in the graph. Its
    outputs equal the unmodified official module's, run eagerly, for a click (best of tokens 1..3)
    and for a box with a point (token 0); the predictor serves multimask_output=False only; parity
    passes against SamPredictor with select_masks' rule; release refuses the profile by name."""
    from segment_anything.utils.onnx import SamOnnxModel

    out = run_cli("export", "sam_vit_b", "--random-weights", "--profile", "sam1_single", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "sam_vit_b-sam1_single"
    manifest = read_manifest(folder)
    assert manifest["profile"]["name"] == "sam1_single" and "return_single_mask=True" in manifest["single_mask"]["rule"]
    assert manifest["preprocessing"] == pair[1].manifest["preprocessing"]  # the same encoder input
    session = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    image = skimage.data.coffee()
    hw = image.shape[:2]
    ours = SAM1OnnxPredictor(folder, threads=2)
    ours.set_image(image)
    official = SamOnnxModel(pair[0].model, return_single_mask=True).eval()
    every_token = SamOnnxModel(pair[0].model, return_single_mask=False).eval()
    scale = 1024 / max(hw)
    prompts = {
        "click": ([[300.0, 200.0], [0.0, 0.0]], [1, -1]),
        "box and point": ([[100.0, 150.0], [60.0, 40.0], [500.0, 350.0]], [1, 2, 3]),
    }
    chosen = set()
    for coords, labels in prompts.values():
        feeds = {
            "image_embeddings": ours.get_image_embedding(),
            "point_coords": np.array([coords], np.float32) * scale,
            "point_labels": np.array([labels], np.float32),
            "mask_input": np.zeros((1, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
            "orig_im_size": np.array(hw, np.float32),
        }
        got = session.run(None, feeds)
        with torch.inference_mode():
            want = [t.numpy() for t in official(*(torch.from_numpy(v) for v in feeds.values()))]
        assert [g.shape for g in got] == [w.shape for w in want] == [(1, 1, *hw), (1, 1), (1, 1, 256, 256)]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-3)
        with torch.inference_mode():  # which of the four tokens the graph chose
            four = every_token(*(torch.from_numpy(v) for v in feeds.values()))[2].numpy()
        chosen.add(int(np.argmin(np.abs(four[0] - got[2][0]).max(axis=(1, 2)))))
    assert 0 in chosen and chosen - {0}, chosen  # token 0 for the box, one of tokens 1..3 for the click
    masks, scores, _ = ours.predict(point_coords=[[300, 200]], point_labels=[1], multimask_output=False)
    assert masks.shape == (1, *hw) and scores.shape == (1,)
    with pytest.raises(InputError, match="multimask_output=False"):
        ours.predict(point_coords=[[300, 200]], point_labels=[1])
    out = run_cli("parity", folder, "--samples", "coffee", "--kinds", "point,fg_bg,box")
    assert out.returncode == 0 and "pass" in out.stderr and "generator: not run" in out.stderr, out.stderr
    refused = run_cli("release", folder, "--out", tmp_path / "release", "--allow-random-weights")
    assert refused.returncode != 0 and "sam1_single I/O profile" in refused.stderr, refused.stderr
    assert not (tmp_path / "release").exists()


def test_sam1_runtime_never_loads_torch(exported):
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "sam2", "segment_anything", "cv2"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from exporter.runtime import SAM1OnnxPredictor
p = SAM1OnnxPredictor({str(exported("sam_vit_b"))!r})
p.set_image(np.zeros((60, 80, 3), np.uint8))
masks, scores, logits = p.predict(point_coords=[[10, 20]], point_labels=[1])
assert masks.shape == (3, 60, 80) and masks.dtype == bool and logits.shape == (3, 256, 256)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_parity_then_release_on_the_command_line(exported, tmp_path):
    """``parity`` (against SamPredictor) then ``release --allow-random-weights`` of a ViT-B folder:
    the .ort copies are checked against the .onnx files and the card states the SAM 1 contract."""
    folder = tmp_path / "sam_vit_b"
    shutil.copytree(exported("sam_vit_b"), folder)  # the shared export stays untouched
    # the automatic mask generator's parity runs in its own test (it costs minutes of torch eager)
    out = run_cli("parity", folder, "--samples", "coffee", "--kinds", "point,box,four_boxes,refine", "--no-automask")
    assert out.returncode == 0 and "pass" in out.stderr, out.stderr
    report = json.loads((folder / "parity.json").read_text())
    assert report["verdict"] == "pass" and report["reference"] == "SamPredictor" and len(report["cases"]) == 5
    release = tmp_path / "release"
    refused = run_cli("release", folder, "--out", release)
    assert refused.returncode == 6 and "random" in refused.stderr and not release.exists(), refused.stderr
    out = run_cli("release", folder, "--out", release, "--allow-random-weights")
    assert out.returncode == 0, out.stderr
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["release"]["ort_format"]["check"]["fp32"]["mask_iou_min"] >= 0.9999
    assert manifest["release"]["browser"] is None  # the page serves SAM 2 folders
    assert "Not checked: the browser check's page runs SAM 2's contract" in (release / "README.md").read_text()
    card = (release / "README.md").read_text()
    assert "base_model: facebook/sam-vit-base" in card and "SAM1OnnxPredictor" in card and "orig_im_size" in card
    assert {"encoder.ort", "decoder.ort", "parity.json"} <= {p.name for p in release.iterdir()}


def test_fp16_and_int8_graphs_pass_parity_and_release(exported, tmp_path):
    """``--precision fp32,fp16,int8`` for ViT-B: the FP16 graphs and the INT8 choice are built and
    checked at export on SAM 1's own inputs (SamPredictor's preprocessing and prompts), take
    float32 tensors like the FP32 ones, carry the kernel proof, pass their parity gates against
    SamPredictor, and release with their .ort copies."""
    folder = tmp_path / "sam_vit_b"
    shutil.copytree(exported("sam_vit_b", "fp32,fp16,int8"), folder)
    manifest = read_manifest(folder)
    assert manifest["precisions"]["fp16"] == {"encoder": "encoder.fp16.onnx", "decoder": "decoder.fp16.onnx"}
    for role in ("encoder", "decoder"):
        assert manifest["fp16"][role]["comparison"]["ok"], manifest["fp16"][role]
        fp32, fp16 = manifest["files"][f"{role}.onnx"]["bytes"], manifest["files"][f"{role}.fp16.onnx"]["bytes"]
        assert 0.45 < fp16 / fp32 < 0.55, (role, fp16, fp32)
    int8 = manifest["int8"]
    assert manifest["precisions"]["int8"]["encoder"] == "encoder.int8.onnx" and int8["kernel_safe"], int8
    check = int8["encoder"]["candidates"][int8["encoder"]["candidate"]]["masks"]
    assert check["ok"] and check["iou_min"] >= resolve("sam_vit_b").parity["int8"]["mask_iou_min"], check
    assert int8["mask_check"]["prompt_sets_per_photo"] == 10 and len(int8["mask_check"]["photos"]) >= 2, int8
    assert manifest["files"]["encoder.int8.onnx"]["bytes"] < 0.3 * manifest["files"]["encoder.onnx"]["bytes"]
    for precision in ("fp16", "int8"):
        session = ort.InferenceSession(
            str(folder / manifest["precisions"][precision]["encoder"]), providers=["CPUExecutionProvider"]
        )
        assert [(i.name, i.type) for i in session.get_inputs()] == [("input_image", "tensor(float)")]
    out = run_cli(
        "parity",
        folder,
        "--precision",
        "fp32,fp16,int8",
        "--samples",
        "camera",
        "--kinds",
        "point,box,refine",
        "--no-automask",
    )
    assert out.returncode == 0 and "fp16" in out.stderr and "int8" in out.stderr, out.stderr
    for precision in ("fp16", "int8"):
        assert read_manifest(folder)["parity"][precision]["verdict"] == "pass"
        report = json.loads((folder / f"parity.{precision}.json").read_text())
        assert report["verdict"] == "pass" and report["gates"] == resolve("sam_vit_b").parity[precision]
    release = tmp_path / "release"
    out = run_cli("release", folder, "--out", release, "--allow-random-weights")
    assert out.returncode == 0, out.stderr
    check = json.loads((release / "manifest.json").read_text())["release"]["ort_format"]["check"]
    assert set(check) == {"fp32", "fp16", "int8"} and check["fp16"]["mask_iou_min"] >= 0.9999, check
    assert {"encoder.fp16.ort", "decoder.fp16.ort", "encoder.int8.ort"} <= {p.name for p in release.iterdir()}
    card = (release / "README.md").read_text()
    assert "kernel-safe" in card, card
