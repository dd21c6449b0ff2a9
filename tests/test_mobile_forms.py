"""wrappers/mobile_forms.py: the static decoder's branch-free forms return sam2's own values bit for bit.

Checked against the official methods on the inputs where a branch could go the other way: every
label kind, the padding point, logits exactly at the stability thresholds, a score exactly at
the stability threshold, tied and subnormally close IoU predictions, empty masks. Two weight
seeds (random weights: the forms' exactness does not depend on trained values).
"""

from __future__ import annotations

import pytest
import torch

from exporter.checkpoints.loading import random_model
from exporter.core.variants import resolve
from exporter.wrappers import mobile_forms as MF


@pytest.fixture(scope="module", params=[0, 3], ids=["seed0", "seed3"])
def model(request):
    return random_model(resolve("tiny"), request.param)[0]


@pytest.mark.parametrize("pad", [True, False])
def test_embed_points_is_the_official_embedding(model, pad):
    pe = model.sam_prompt_encoder
    g = torch.Generator().manual_seed(7)
    points = torch.rand(5, 6, 2, generator=g) * 1024
    points[0, 0] = torch.tensor([0.0, 1023.0])  # the frame's corners
    labels = torch.tensor(
        [[1, 0, 2, 3, -1, -1], [1, 1, 1, 1, 1, 1], [0, -1, -1, -1, -1, -1], [2, 3, 1, 0, 1, 0], [3, 2, -1, 0, 1, 1]],
        dtype=torch.float32,
    )
    official = pe._embed_points(points, labels, pad=pad)
    assert torch.equal(MF.embed_points(pe, points, labels, pad), official)
    # and each label matters: the forms do not return the same thing for every kind
    assert not torch.equal(official[0, 0], MF.embed_points(pe, points, labels.roll(1, dims=1), pad)[0, 0])


def _hard_cases(delta: float, thresh: float) -> tuple[torch.Tensor, torch.Tensor]:
    """all_mask_logits [8, 4, 256, 256], all_iou_scores [8, 4] where a branch sits on its edge."""
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(8, 4, 256, 256, generator=g) * 3
    iou = torch.rand(8, 4, generator=g)
    logits[1, 0] = delta  # exactly at +delta: not above it, but above -delta
    logits[2, 0] = -10.0  # nothing above -delta: score 1 by definition
    # area_u = 50, area_i = 49: a score of exactly 0.98 = the threshold (stable)
    logits[3, 0] = -10.0
    logits[3, 0].view(-1)[:49] = 1.0
    logits[3, 0].view(-1)[49] = 0.0
    logits[4, 0] = torch.where(torch.rand(256, 256, generator=g) > 0.5, 5.0, -delta)  # -delta: not above it
    iou[5, 1:] = 0.5  # a three-way tie: the first wins
    iou[6, 2:] = 0.75  # a tie between the second and third
    iou[6, 1] = 0.25
    tiny = torch.finfo(torch.float32).tiny
    iou[7, 1:] = torch.tensor([tiny / 4, tiny / 2, tiny / 8])  # subnormal, one subnormal apart
    return logits, iou


def test_stability_selection_is_the_official_one(model):
    md = model.sam_mask_decoder
    logits, iou = _hard_cases(md.dynamic_multimask_stability_delta, md.dynamic_multimask_stability_thresh)
    masks, scores = md._dynamic_multimask_via_stability(logits, iou)
    ours, our_scores = MF.dynamic_multimask_via_stability(md, logits, iou)
    assert torch.equal(ours, masks) and torch.equal(our_scores, scores)
    # both branches ran: some prompts keep token 0's mask, others fall back to a multimask one
    kept = [torch.equal(masks[i, 0], logits[i, 0]) for i in range(len(logits))]
    assert any(kept) and not all(kept)


def test_forms_are_swapped_in_and_out(model):
    pe, md = model.sam_prompt_encoder, model.sam_mask_decoder
    with MF.mobile_forms(model) as n:
        assert n == 2 and pe._embed_points.__func__ is MF.embed_points
    assert "_embed_points" not in vars(pe) and "_dynamic_multimask_via_stability" not in vars(md)
    with MF.mobile_forms(model, enabled=False) as n:
        assert n == 0
