"""Memory encoder graph: one frame's features and chosen mask into the memory the bank keeps.

What ``SAM2Base._encode_new_memory`` computes for one object, from the low-res mask the
predictor keeps (the official code upsamples that same mask to 1024 first: here, in the graph).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.contract import IMAGE_SIZE


class MemoryEncoderGraph(nn.Module):
    """forward(image_embed [1, 256, 64, 64], mask_logits [1, 1, 256, 256],
               object_score_logits [1, 1], binarize [1]) -> maskmem_features [1, 64, 64, 64]

    ``binarize`` 1 encodes ``mask > 0`` (sam2's ``binarize_mask_from_pts_for_mem_enc`` on frames
    with clicks), 0 the mask's sigmoid; either is then scaled and shifted as configured. With
    ``no_obj_embed_spatial`` (SAM 2.1) a frame whose object score is <= 0 gets that embedding added.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model.memory_encoder
        self.scale, self.bias = model.sigmoid_scale_for_mem_enc, model.sigmoid_bias_for_mem_enc
        self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, -1, 1, 1).clone(), persistent=False)
        spatial = model.no_obj_embed_spatial
        self.register_buffer(
            "no_obj_embed_spatial", None if spatial is None else spatial.detach()[..., None, None], persistent=False
        )

    @torch.no_grad()
    def forward(self, image_embed, mask_logits, object_score_logits, binarize):
        pix_feat = image_embed - self.no_mem_embed  # the raw features, as the predictor holds them
        high_res = F.interpolate(mask_logits, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        # the two encodings chosen by multiplying (b is 0 or 1, so each case is exact)
        b = binarize.reshape(1, 1, 1, 1)
        mask = b * (high_res > 0).float() + (1.0 - b) * torch.sigmoid(high_res)
        if self.scale != 1.0:
            mask = mask * self.scale
        if self.bias != 0.0:
            mask = mask + self.bias
        features = self.encoder(pix_feat, mask, skip_mask_sigmoid=True)["vision_features"]
        if self.no_obj_embed_spatial is not None:
            absent = 1.0 - (object_score_logits > 0).float()  # [1, 1]
            features = features + absent[..., None, None] * self.no_obj_embed_spatial
        else:  # SAM 2.0: the score is not used; kept as an input so both families share the contract
            features = features + 0.0 * object_score_logits[..., None, None]
        return features
