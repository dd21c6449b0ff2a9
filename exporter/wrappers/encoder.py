"""Encoder graph: what ``SAM2ImagePredictor.set_image`` computes after preprocessing."""

from __future__ import annotations

import torch
from torch import nn

from ..core.contract import ENCODER_OUTPUTS


class ImageEncoder(nn.Module):
    """Hiera backbone + FPN neck, conv_s0 / conv_s1 projections, no_mem_embed.

    forward(image [B, 3, 1024, 1024] float32, normalized RGB) ->
        high_res_feats_0 [B, 32, 256, 256], high_res_feats_1 [B, 64, 128, 128],
        image_embed [B, 256, 64, 64]
    """

    def __init__(self, sam2_model: nn.Module):
        super().__init__()
        self.model = sam2_model
        # [C, H, W] per output from the contract, as plain ints: a reshape to constants keeps
        # C, H, W static in the ONNX file; only the batch dim stays symbolic.
        self.out_shapes = [spec.shape[1:] for spec in ENCODER_OUTPUTS]

    @torch.no_grad()
    def forward(self, image: torch.Tensor):
        model = self.model
        backbone_out = model.forward_image(image)  # applies conv_s0 / conv_s1 to levels 0 and 1
        _, vision_feats, _, _ = model._prepare_backbone_features(backbone_out)
        if model.directly_add_no_mem_embed:
            # single images have no memory: the predictor adds the "no memory" embedding here
            vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
        # [HW, B, C] -> [B, C, H, W], as set_image does (with B generalised from 1)
        feats = [f.permute(1, 2, 0).reshape(-1, *shape) for f, shape in zip(vision_feats, self.out_shapes)]
        return feats[0], feats[1], feats[2]
