"""Decoder graph: SAM 2's prompt encoder + mask decoder for one image and L prompts."""

from __future__ import annotations

import torch
from torch import nn

from ..core.contract import LOW_RES_SIZE


def embed_prompts(pe: nn.Module, point_coords, point_labels, mask_input, has_mask_input):
    """PromptEncoder.forward as the predictors call it, branch-free: points [L, N, 2] / labels
    [L, N], mask_input [L, 1, 256, 256] used where has_mask_input [L] is 1 ->
    sparse [L, N + 1, 256], dense [L, 256, 64, 64]."""
    # The predictors pass boxes as corner points and boxes=None, so the prompt encoder
    # always appends one (0, 0) padding point with label -1: pad=True does exactly that.
    sparse = pe._embed_points(point_coords, point_labels, pad=True)
    # mask_input or the learned "no mask" embedding, chosen by multiplying instead of an
    # `if`, so one graph serves both (0 * finite == 0 exactly, so each case is exact).
    has = has_mask_input.reshape(-1, 1, 1, 1)
    no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
    dense = has * pe.mask_downscaling(mask_input) + (1.0 - has) * no_mask
    return sparse, dense


class PromptDecoder(nn.Module):
    """Prompt encoder + mask decoder with every branch turned into arithmetic.

    forward(image_embed [1, 256, 64, 64], high_res_feats_0 [1, 32, 256, 256],
            high_res_feats_1 [1, 64, 128, 128], point_coords [L, N, 2] (1024 frame),
            point_labels [L, N] (float: 1 fg, 0 bg, 2/3 box corners, -1 padding),
            mask_input [L, 1, 256, 256], has_mask_input [L]) ->
        masks [L, 3, 256, 256], iou_predictions [L, 3]            (multimask tokens 1..3)
        single_masks [L, 1, 256, 256], single_iou_predictions [L, 1]  (multimask_output=False)

    Logits are not clamped, so the runtime can upsample them exactly as the official
    predictor does before it clamps the low-res copy it returns.
    """

    def __init__(self, sam2_model: nn.Module):
        super().__init__()
        self.prompt_encoder = sam2_model.sam_prompt_encoder
        self.mask_decoder = sam2_model.sam_mask_decoder
        # get_dense_pe() depends on nothing but weights: compute once, export as a constant
        self.register_buffer("dense_pe", self.prompt_encoder.get_dense_pe().detach(), persistent=False)

    @torch.no_grad()
    def forward(
        self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input
    ):
        sparse, dense = embed_prompts(self.prompt_encoder, point_coords, point_labels, mask_input, has_mask_input)
        all_masks, all_iou, _, _ = self.mask_decoder.predict_masks(
            image_embeddings=image_embed,
            image_pe=self.dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            repeat_image=True,  # one image, L prompts (for L == 1 identical to no repeat)
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        # No-op reshape to constants: predict_masks views with -1, which leaves the token axis
        # unknown to ONNX shape inference; pinning it keeps `masks` [L, 3, 256, 256] static.
        all_masks = all_masks.reshape(-1, self.mask_decoder.num_mask_tokens, LOW_RES_SIZE, LOW_RES_SIZE)
        if self.mask_decoder.dynamic_multimask_via_stability:  # a build setting, not data
            single_masks, single_iou = self.mask_decoder._dynamic_multimask_via_stability(all_masks, all_iou)
        else:
            single_masks, single_iou = all_masks[:, 0:1], all_iou[:, 0:1]
        return all_masks[:, 1:], all_iou[:, 1:], single_masks, single_iou
