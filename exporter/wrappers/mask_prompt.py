"""Mask prompt graph: a mask given for a frame, as the video predictor turns it into an output.

``SAM2Base._use_mask_as_output`` (``use_mask_input_as_output_without_sam``): the mask itself
becomes the frame's logits (+-10, downsampled), and the SAM heads run on the frame's raw features
with the mask as their only prompt, for the object pointer alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.contract import IMAGE_SIZE, LOW_RES_SIZE
from .video_decoder import VideoDecoderGraph, object_pointers, presence

OUT_SCALE, OUT_BIAS = 20.0, -10.0  # _use_mask_as_output: logits of the mask's 1 and 0 pixels


class MaskPromptGraph(nn.Module):
    """forward(image_embed [1, 256, 64, 64], mask [1, 1, 1024, 1024] of 0 / 1) ->
    masks [1, 1, 256, 256], obj_ptr [1, 256], object_score_logits [1, 1]
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.heads = VideoDecoderGraph(model)
        self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, -1, 1, 1).clone(), persistent=False)
        # sam2 downsamples the mask with an antialiased bilinear resize; along each axis that is
        # one fixed linear map, read here from torch's own kernel applied to the identity
        eye = torch.eye(IMAGE_SIZE)[None, None]
        rows = F.interpolate(eye, size=(LOW_RES_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
        self.register_buffer("resize", rows[0, 0].contiguous(), persistent=False)  # [256, 1024]

    @torch.no_grad()
    def forward(self, image_embed, mask):
        model = self.model
        logits = mask * OUT_SCALE + OUT_BIAS
        low_res = self.resize @ logits @ self.resize.T  # [1, 1, 256, 256]
        present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).float()  # [1, 1]
        score = OUT_SCALE * present + OUT_BIAS
        pix_feat = image_embed - self.no_mem_embed  # sam2 runs the heads on the raw features here
        _, _, tokens, head_score = self.heads.heads(
            pix_feat,
            # only the masks read the high-res features, and they are not used here
            [torch.zeros(1, 32, 256, 256), torch.zeros(1, 64, 128, 128)],
            torch.zeros(1, 1, 2),
            -torch.ones(1, 1),  # no points: one padding point, as _forward_sam_heads adds
            model.mask_downsample(mask),
            torch.ones(1),
        )
        # multimask_output=False: token 0's pointer, gated by the heads' score, then by the mask's
        ptr = object_pointers(model, tokens[:, :1], presence(model, head_score))[:, 0]
        if model.pred_obj_scores:
            if model.fixed_no_obj_ptr:
                ptr = present * ptr
            ptr = ptr + (1 - present) * model.no_obj_ptr
        return low_res, ptr, score
