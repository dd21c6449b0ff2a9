"""Decoder graphs of the other consumers' profiles: the default decoder plus their own I/O.

The math is :class:`PromptDecoder`'s; around it each profile (``core/contract.py``) gets its
input dtypes and coordinate frame, masks upsampled to the original size in the graph (as
``SAM2Transforms.postprocess_masks``: bilinear, align_corners=False, from the unclamped logits),
low-res logits clamped as the official predictor returns them, and, for CVAT, the mask's box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core import contract as C
from .decoder import PromptDecoder


class ProfileDecoder(nn.Module):
    """SAM 2's single-mask decoder with a profile's inputs and outputs.

    forward(*inputs in ``profile.decoder_inputs`` order) -> the tensors of
    ``profile.decoder_outputs``, in order. Shapes: features [1, C, h, w], point_coords [L, N, 2],
    point_labels [L, N], mask_input [L, 1, 256, 256], has_mask_input [L], original size int32 [2]
    = (H, W) -> masks [L, 1, H, W] (float32 logits or bool), iou_predictions [L, 1],
    low_res_masks [L, 1, 256, 256] (clamped), box corners int32 [L] each.
    """

    def __init__(self, sam2_model: nn.Module, profile: C.Profile):
        super().__init__()
        if profile.multimask or profile.masks == "low_res_logits":
            raise ValueError(f"profile {profile.name} is the default decoder's, not a ProfileDecoder's")
        self.core = PromptDecoder(sam2_model)
        self.profile = profile
        self.roles = [s.what for s in profile.decoder_inputs]

    @torch.no_grad()
    def forward(self, *inputs):
        x = dict(zip(self.roles, inputs))
        size = x[C.ORIG_SIZE]  # [2] int32: H, W
        coords = x["point_coords"]
        if self.profile.coords == "longest_side":
            # x * 1024 / max(H, W) -> x * 1024 / W (and y by H): the square frame the encoder saw
            hw = size.to(torch.float32)
            coords = coords * (hw.max() / hw.flip(0))
        _, _, single, single_iou = self.core(
            x["image_embed"],
            x["high_res_feats_0"],
            x["high_res_feats_1"],
            coords,
            x["point_labels"].to(torch.float32),
            x["mask_input"],
            x["has_mask_input"],
        )
        logits = F.interpolate(single, size=(size[0], size[1]), mode="bilinear", align_corners=False)
        out = {
            C.MASKS_AT_ORIGINAL: logits > C.MASK_THRESHOLD if self.profile.masks == "original_bool" else logits,
            "single_iou_predictions": single_iou,
            C.LOW_RES_CLAMPED: single.clamp(-C.LOW_RES_CLAMP, C.LOW_RES_CLAMP),
        }
        if self.profile.spec("decoder", C.BOX_ROLES[0]) is not None:
            out.update(zip(C.BOX_ROLES, mask_box(logits[:, 0] > C.MASK_THRESHOLD)))
        return tuple(out[s.what] for s in self.profile.decoder_outputs)


def mask_box(mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Inclusive bounding box of each mask: mask [L, H, W] bool -> x0, y0, x1, y1 int32 [L] each.

    First set column / row by argmax (ONNX ArgMax keeps the first maximum), last by the largest
    index among the set ones; an empty mask gives 0, 0, 0, 0. Indices come from a cumulative
    sum rather than the shape, so H and W stay dynamic in the graph.
    """
    ends = []
    for any_set in (mask.any(dim=1), mask.any(dim=2)):  # columns [L, W], rows [L, H]
        v = any_set.to(torch.float32)
        index = torch.cumsum(torch.ones_like(v), dim=1) - 1.0
        ends.append((torch.argmax(v, dim=1), (v * index).amax(dim=1)))
    (x0, x1), (y0, y1) = ends
    return tuple(t.to(torch.int32) for t in (x0, y0, x1, y1))
