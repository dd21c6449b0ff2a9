"""The torch-free automatic mask generator: its numpy pieces against the official torch /
torchvision / pycocotools code they replace, then whole runs against the official generator.

Random weights (seed 0) give masks that cover most of the image, so whole runs use the
lowered thresholds of ``exporter.parity.automask.SETTINGS`` (see that module). The two-photo
parity and ``crop_n_layers=1`` run in ``parity_tests/test_parity.py`` through the engine.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import skimage.data
import torch
from sam2.utils import amg

from exporter.core.errors import InputError
from exporter.core.variants import resolve
from exporter.parity.automask import LADDER, SETTINGS, compare, masks_of, match, run_case
from exporter.parity.engine import reference_predictor
from exporter.parity.metrics import check
from exporter.runtime import SAM2OnnxAutomaticMaskGenerator, SAM2OnnxPredictor
from exporter.runtime.automask import AutomaskParams, crop_boxes, point_grid
from exporter.runtime.masks import (
    fill_small_regions,
    mask_boxes,
    near_crop_edge,
    nms,
    remove_small_regions,
    small_components,
    stability_score,
    torch_sort_descending,
)
from exporter.runtime.rle import coco_decode, coco_rle, mask_to_rle, rle_area, rle_to_mask
from exporter.runtime.sam1_automask import Sam1AutomaskParams
from tests.fixtures import run_cli


def _random_masks(rng, k: int, h: int, w: int) -> np.ndarray:
    """Blobs of varied density, plus an empty and a full mask."""
    masks = rng.random((k, h, w)) < rng.random((k, 1, 1))
    masks[0] = False
    masks[1] = True
    return masks


# --- numpy pieces vs the official code -----------------------------------------------------


def test_rle_matches_official_and_pycocotools():
    from pycocotools import mask as coco

    rng = np.random.default_rng(0)
    masks = _random_masks(rng, 40, 23, 31)
    official = amg.mask_to_rle_pytorch(torch.from_numpy(masks))
    for mask, want in zip(masks, official):
        rle = mask_to_rle(mask)
        assert rle == want
        assert np.array_equal(rle_to_mask(rle), amg.rle_to_mask(want))
        assert rle_area(rle) == amg.area_from_rle(want) == mask.sum()
        compressed = coco_rle(rle)
        assert compressed == amg.coco_encode_rle(want)  # pycocotools' encoder
        assert coco_decode(compressed["counts"]) == rle["counts"]
        assert np.array_equal(coco.decode({"size": compressed["size"], "counts": compressed["counts"].encode()}), mask)
        assert np.array_equal(rle_to_mask(compressed), mask)


def test_boxes_stability_and_edges_match_official():
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((30, 40, 50)) * rng.random((30, 1, 1)) * 3).astype(np.float32)
    logits[0] = -5
    masks = logits > 0
    assert np.array_equal(mask_boxes(masks), amg.batched_mask_to_box(torch.from_numpy(masks)).numpy())
    for threshold, offset in ((0.0, 1.0), (0.3, 0.05)):
        ours = stability_score(logits, threshold, offset)
        want = amg.calculate_stability_score(torch.from_numpy(logits), threshold, offset).numpy()
        assert ours.dtype == np.float32 and np.array_equal(ours, want, equal_nan=True)
    boxes = rng.integers(0, 300, (200, 4))
    boxes[:, 2:] += boxes[:, :2]
    crop, image = [100, 50, 400, 350], [0, 0, 500, 400]
    want = amg.is_box_near_crop_edge(torch.from_numpy(boxes), crop, image).numpy()
    assert want.any() and not want.all()
    assert np.array_equal(near_crop_edge(boxes, crop, image), want)


def test_torch_sort_order_replayed_with_ties():
    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 15, 16, 17, 100, 1000, 3000):
        for keys in (rng.random(n), rng.integers(0, 3, n), rng.integers(0, 40, n), np.zeros(n)):
            keys = keys.astype(np.float32)
            want = torch.from_numpy(keys).sort(descending=True)[1].numpy()
            assert np.array_equal(torch_sort_descending(keys), want), (n, keys[:5])


def test_nms_matches_torchvision_with_ties():
    """Both torchvision paths: the kernel's (<= 1000 boxes) and the per-category one that
    re-sorts with torch's unstable sort (> 1000); ties and IoUs exactly at the threshold."""
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(2)
    for n in (600, 1500):
        corners = rng.integers(0, 60, (n, 2))
        boxes = np.concatenate([corners, corners + rng.integers(1, 80, (n, 2))], axis=1).astype(np.float32)
        for scores in (rng.random(n).astype(np.float32), rng.integers(0, 4, n).astype(np.float32)):  # ties
            for threshold in (0.3, 0.5, 0.7, 1.0):
                want = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.zeros(n), threshold)
                assert nms(boxes, scores, threshold).tolist() == want.tolist(), (n, threshold)


def test_grids_and_crops_match_official():
    for n, layers, factor in ((32, 0, 1), (8, 2, 2), (5, 1, 1)):
        ours = AutomaskParams(points_per_side=n, crop_n_layers=layers, crop_n_points_downscale_factor=factor).grids()
        want = amg.build_all_layer_point_grids(n, layers, factor)
        assert len(ours) == len(want) and all(np.array_equal(a, b) for a, b in zip(ours, want))
    assert np.array_equal(point_grid(3), amg.build_point_grid(3))
    for hw, layers, ratio in (((300, 451), 1, 512 / 1500), ((1200, 1800), 2, 0.2), ((17, 9), 1, 0.5)):
        assert crop_boxes(hw, layers, ratio) == amg.generate_crop_boxes(hw, layers, ratio)


def test_small_components_match_skimage():
    from skimage.filters import gaussian
    from skimage.measure import label

    rng = np.random.default_rng(3)
    fields = np.stack([gaussian(rng.random((64, 64)), sigma) for sigma in (0, 1, 2, 3) for _ in range(4)])
    binary = fields > np.median(fields, axis=(1, 2), keepdims=True)
    for max_area in (1, 10, 200):
        got = small_components(binary, max_area)
        for mask, small in zip(binary, got):
            labels = label(mask, connectivity=2)
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            assert np.array_equal(small, (labels > 0) & (sizes[labels] <= max_area))


def test_remove_small_regions_fills_holes_and_drops_specks():
    logits = np.full((1, 40, 40), -1.0, np.float32)
    logits[0, 5:30, 5:30] = 1.0  # a square ...
    logits[0, 10:12, 10:12] = -1.0  # ... with a 4-pixel hole
    logits[0, 35, 35] = 2.0  # and a 1-pixel speck outside it
    out = remove_small_regions(logits, max_area=4)
    assert (out[0, 10:12, 10:12] == 10.0).all() and out[0, 35, 35] == -10.0
    unchanged = np.ones_like(logits, bool)
    unchanged[0, 10:12, 10:12] = unchanged[0, 35, 35] = False
    assert np.array_equal(out[unchanged], logits[unchanged])
    assert remove_small_regions(logits, max_area=0) is logits


# --- parameters: every bad value is a clear InputError -------------------------------------


def _sam1_cleanup(mask: np.ndarray, area: int) -> tuple[np.ndarray, bool]:
    """segment_anything.utils.amg.remove_small_regions, "holes" then "islands", as
    SamAutomaticMaskGenerator.postprocess_small_regions applies them, with scikit-image's
    8-connected labels in place of OpenCV's (which this install lacks): a reference labelling."""
    from skimage.measure import label

    changed = False
    for holes in (True, False):
        labels = label(holes ^ mask, connectivity=2)
        sizes = np.bincount(labels.ravel())[1:]
        small = [i + 1 for i, s in enumerate(sizes) if s < area]
        if not small:
            continue
        fill = [0, *small]
        if not holes:
            fill = [i for i in range(len(sizes) + 1) if i not in fill] or [int(np.argmax(sizes)) + 1]
        mask, changed = np.isin(labels, fill), True
    return mask, changed


@pytest.mark.parametrize("seed", [0, 1])
def test_sam1_small_region_cleanup_follows_the_official_rules(seed):
    """SAM 1's min_mask_region_area clean-up (fewer pixels than the area: holes filled, then
    islands dropped, the largest kept when all are small) on random masks and on a built one."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    for _ in range(60):
        h, w = rng.integers(4, 48, 2)
        field = gaussian(rng.random((h, w)), rng.choice([0, 1, 2]))
        mask, area = field > np.quantile(field, rng.uniform(0.05, 0.95)), int(rng.integers(1, 40))
        got, changed = fill_small_regions(mask, area)
        want, want_changed = _sam1_cleanup(mask, area)
        assert np.array_equal(got, want) and changed == want_changed, (h, w, area)
    mask = np.zeros((30, 30), bool)
    mask[2:8, 2:8] = mask[20:23, 20:22] = True  # islands of 36 and 6 pixels
    mask[4, 4] = False  # a 1-pixel hole
    got, changed = fill_small_regions(mask, 40)
    assert changed and got.sum() == 36 and got[4, 4] and not got[20:23, 20:22].any()
    same, changed = fill_small_regions(mask, 1)  # nothing has fewer than 1 pixel
    assert np.array_equal(same, mask) and not changed


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(points_per_side=None), "exactly one of points_per_side and point_grids (got neither)"),
        (dict(point_grids=[point_grid(4)]), "exactly one of points_per_side and point_grids (got both)"),
        (dict(points_per_side=0), "points_per_side must be an integer >= 1"),
        (dict(points_per_batch=0), "points_per_batch must be an integer >= 1"),
        (dict(pred_iou_thresh=1.5), "pred_iou_thresh must be a number in [0, 1]"),
        (dict(output_mode="png"), "output_mode must be one of binary_mask, uncompressed_rle, coco_rle"),
        (dict(crop_n_layers=-1), "crop_n_layers must be an integer >= 0"),
        (
            dict(points_per_side=2, crop_n_layers=2, crop_n_points_downscale_factor=2),
            "leaves no points in crop layer 2",
        ),
        (dict(points_per_side=None, point_grids=[np.zeros((4, 3))]), "point_grids[0] must be a non-empty [N, 2] array"),
        (dict(points_per_side=None, point_grids=[point_grid(2) * 2]), "must hold x, y in [0, 1]"),
        (dict(points_per_side=None, point_grids=[point_grid(2)], crop_n_layers=1), "list of crop_n_layers + 1 = 2"),
        (dict(crop_overlap_ratio=1.0), "crop_overlap_ratio must be in [0, 1)"),
    ],
)
def test_bad_parameters_rejected(params, message):
    with pytest.raises(InputError) as err:
        AutomaskParams(**params)
    assert message in str(err.value)


# --- whole runs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(exported):
    folder = exported("tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from exporter.core.manifest import read_manifest

        ref, _ = reference_predictor(read_manifest(folder))
    return ref, SAM2OnnxPredictor(folder)


def test_unknown_parameter_rejected(pair):
    with pytest.raises(InputError, match="unknown parameter.*points_per_image"):
        SAM2OnnxAutomaticMaskGenerator(pair[1], points_per_image=8)


def test_output_modes_agree_and_coco_matches_official(pair):
    """Ours in all three modes gives the same masks; coco_rle matches the official
    generator's (pycocotools) output, mask by mask, within the parity gates."""
    ref, ours = pair
    image = skimage.data.chelsea()
    params = dict(SETTINGS["grid"], output_mode="coco_rle")
    metrics, _, (reference, mine), problems = run_case(ref, ours, image, params, min_masks=10)
    assert not problems and metrics["automask_step"] == 0, metrics  # seed 0 keeps enough as declared
    assert metrics["masks_ours"] >= 24, metrics  # dozens, not a trivial handful
    assert metrics["automask_count_diff"] == 0 and metrics["automask_box_mismatches"] == 0, metrics
    assert metrics["automask_iou_min"] >= 0.999 and metrics["same_prompt_and_crop"] == len(mine), metrics
    assert all(isinstance(r["segmentation"]["counts"], str) for r in mine)
    identical = sum(mine[i]["segmentation"] == reference[j]["segmentation"] for i, j, _ in match(mine, reference))
    assert identical >= 0.9 * len(mine)  # same bytes for (nearly) every mask
    by_mode = {
        mode: SAM2OnnxAutomaticMaskGenerator(ours, **dict(SETTINGS["grid"], output_mode=mode)).generate(image)
        for mode in ("binary_mask", "uncompressed_rle")
    }
    binary = by_mode["binary_mask"]
    assert all(r["segmentation"].dtype == bool and r["segmentation"].shape == image.shape[:2] for r in binary)
    for records in by_mode.values():
        assert [m.tolist() == b.tolist() for m, b in zip(masks_of(records), masks_of(mine))] == [True] * len(mine)
        assert [{k: v for k, v in r.items() if k != "segmentation"} for r in records] == [
            {k: v for k, v in r.items() if k != "segmentation"} for r in mine
        ]
    assert [r["area"] for r in binary] == [int(m.sum()) for m in masks_of(binary)]


def test_m2m_and_single_mask_match_official(pair):
    """use_m2m refines every mask with its own logits (single-mask output, the graph's
    stability-based choice); few points keep the official run short."""
    ref, ours = pair
    for extra in (dict(use_m2m=True), dict(multimask_output=False)):
        params = dict(SETTINGS["grid"], points_per_side=3, **extra)
        metrics, _, (reference, mine), problems = run_case(ref, ours, skimage.data.coffee(), params, min_masks=1)
        assert mine and not problems and compare(mine, reference).items() <= metrics.items()
        assert metrics["automask_count_diff"] == 0 and metrics["automask_iou_min"] >= 0.999, (extra, metrics)
        assert metrics["automask_box_mismatches"] == 0 and metrics["automask_score_abs"] <= 1e-4, (extra, metrics)


def test_filters_are_lowered_until_enough_masks_survive(pair):
    """Filters that keep nothing make the official generator crash (box_area on an empty crop
    result): that try counts as zero masks, the ladder lowers the filters, and both generators
    are compared at the first step where the official one keeps enough."""
    ref, ours = pair
    params = dict(SETTINGS["crops"], pred_iou_thresh=0.999)
    metrics, _, (reference, mine), problems = run_case(ref, ours, skimage.data.chelsea(), params, min_masks=10)
    first = metrics["automask_tries"][0]
    assert first["masks"] == 0 and first["error"].startswith("IndexError"), first
    assert metrics["automask_step"] >= 1 and metrics["automask_params"]["pred_iou_thresh"] < 0.999, metrics
    assert len(reference) >= 10 and not problems, metrics
    assert metrics["automask_count_diff"] == 0 and metrics["automask_iou_min"] >= 0.999, metrics


def test_too_few_masks_at_every_step_is_a_failure(pair):
    """One point gives at most three masks: however low the filters go, that compares almost
    nothing, so the case fails on its gate instead of passing."""
    ref, ours = pair
    gates = resolve("tiny").parity["fp32"]
    params = dict(SETTINGS["grid"], points_per_side=1)
    metrics, _, _, problems = run_case(ref, ours, skimage.data.coffee(), params, gates["automask_min_masks"])
    assert metrics["automask_step"] == len(LADDER) - 1 and metrics["masks_reference"] <= 3, metrics
    failures = check(metrics, gates)
    assert any(f.startswith(f"automask_masks_matched = {metrics['automask_masks_matched']} < 10") for f in failures)


def test_min_mask_region_area_and_progress(pair):
    _, ours = pair
    image = skimage.data.coffee()
    calls = []
    base = dict(SETTINGS["grid"], points_per_side=4, points_per_batch=5)
    plain = SAM2OnnxAutomaticMaskGenerator(ours, **base).generate(image, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]  # 1 encoder run + 4 batches of <= 5 points
    calls.clear()
    SAM2OnnxAutomaticMaskGenerator(ours, **dict(base, crop_n_layers=1)).generate(
        image, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(i, 25) for i in range(1, 26)]  # 5 crops x (1 encoder run + 4 batches)
    cleaned = SAM2OnnxAutomaticMaskGenerator(ours, **base, min_mask_region_area=400).generate(image)
    # random-weight masks are ragged: cleaning specks and holes changes them and their stability
    assert plain and cleaned and any(not np.array_equal(a, b) for a, b in zip(masks_of(plain), masks_of(cleaned)))


# --- command line ------------------------------------------------------------------------


def test_cli_automask_writes_json_and_overlay(exported, tmp_path):
    from PIL import Image

    photo = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()).save(photo)
    out, picture = tmp_path / "masks.json", tmp_path / "masks.png"
    flags = [
        "--points-per-side",
        "4",
        "--pred-iou-thresh",
        "0.52",
        "--stability-score-thresh",
        "0.6",
        "--stability-score-offset",
        "0.05",
        "--box-nms-thresh",
        "1.0",
    ]
    run_cli("automask", exported("tiny"), photo, "--out", out, "--overlay", picture, *flags, check=True)
    result = json.loads(out.read_text())
    assert result["count"] == len(result["masks"]) > 0 and result["params"]["points_per_side"] == 4
    assert result["params"]["output_mode"] == "coco_rle" and result["weights"] == "random"
    first = result["masks"][0]
    assert set(first) == {
        "segmentation",
        "area",
        "bbox",
        "predicted_iou",
        "point_coords",
        "stability_score",
        "crop_box",
    }
    assert rle_to_mask(first["segmentation"]).sum() == first["area"]
    with Image.open(picture) as im:
        assert im.size == (600, 400) and len(set(im.convert("RGB").getdata())) > 100

    again = run_cli("automask", exported("tiny"), photo, "--out", out, *flags)
    assert again.returncode == 1 and "already exists; use --force" in again.stderr
    grid = tmp_path / "grid.npy"
    np.save(grid, point_grid(2))
    both = run_cli("automask", exported("tiny"), photo, "--out", tmp_path / "b.json", "--point-grids", grid, *flags)
    assert both.returncode == 1 and "exactly one of points_per_side and point_grids (got both)" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1 and not (tmp_path / "b.json").exists()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    proc = run_cli("automask", exported("tiny"), bad, "--out", tmp_path / "c.json")
    assert proc.returncode == 1 and "not a readable image" in proc.stderr and not (tmp_path / "c.json").exists()
    proc = run_cli(
        "automask",
        exported("tiny"),
        photo,
        "--out",
        tmp_path / "d.json",
        "--point-grids",
        grid,
        "--pred-iou-thresh",
        "0",
        "--stability-score-thresh",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    assert {tuple(m["point_coords"][0]) for m in json.loads((tmp_path / "d.json").read_text())["masks"]} <= {
        (150.0, 100.0),
        (450.0, 100.0),
        (150.0, 300.0),
        (450.0, 300.0),
    }


def test_variant_configs_gate_automask_at_fp32():
    for name in ("tiny", "large", "sam2_hiera_small"):
        gates = resolve(name).parity
        assert gates["fp32"]["automask_iou_min"] >= 0.999 and gates["fp32"]["automask_count_diff"] == 0
        assert "automask_iou_min" not in gates["fp16"]


def test_defaults_match_official_and_cli():
    """One set of defaults: the official generator's signature, ours, and the CLI's options."""
    import inspect
    from dataclasses import fields

    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from segment_anything import SamAutomaticMaskGenerator

    from exporter.cli import automask

    official = inspect.signature(SAM2AutomaticMaskGenerator.__init__).parameters
    ours = {f.name: f.default for f in fields(AutomaskParams)}
    assert ours == {name: official[name].default for name in ours}
    sam1 = inspect.signature(SamAutomaticMaskGenerator.__init__).parameters
    sam1_ours = {f.name: f.default for f in fields(Sam1AutomaskParams) if f.name in Sam1AutomaskParams.names()}
    assert sam1_ours == {name: p.default for name, p in sam1.items() if name not in ("self", "model")}
    import click

    ctx = click.Context(automask)
    cli = {p.name: p.get_default(ctx) for p in automask.params}
    cli = {k: None if type(v).__name__ == "Sentinel" else v for k, v in cli.items()}  # click's "no default"
    renamed = {
        "multimask_output": ("single_mask", False),
        "point_grids": ("point_grids", None),
        "points_per_side": ("points_per_side", None),
        "pred_iou_thresh": ("pred_iou_thresh", None),
        "mask_threshold": ("mask_threshold", None),
    }  # None: 32 unless --point-grids is given; the folder's family's default
    for name, default in ours.items():
        option, want = renamed.get(name, (name, default))
        if name != "output_mode":  # JSON holds RLE only: coco_rle
            assert cli[option] == want, name
