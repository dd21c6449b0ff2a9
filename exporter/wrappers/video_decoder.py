"""Video decoder graph: SAM 2's prompt encoder + mask decoder as the video predictor runs them.

``SAM2Base._forward_sam_heads`` for one object, returning every token's answer: the mask and
IoU of tokens 0..3, each token's object pointer and the object score. Which token the frame
keeps (multimask on a single click or while tracking, SAM 2's stability rule otherwise) is the
runtime's choice (exporter/runtime/video_heads.py), so one graph serves every frame.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.video_contract import TOKENS
from .decoder import PromptDecoder, embed_prompts

NO_OBJ_SCORE = -1024.0  # sam2_base.NO_OBJ_SCORE: the logits of a frame without the object


def object_pointers(model: nn.Module, tokens: torch.Tensor, appearing: torch.Tensor) -> torch.Tensor:
    """tokens [1, K, 256] -> object pointers [1, K, 256], the no-object pointer blended in with
    weight 1 - ``appearing`` [1, 1] (the 0/1 presence, or the score's sigmoid with soft_no_obj_ptr)."""
    ptrs = model.obj_ptr_proj(tokens)
    if model.pred_obj_scores:
        lam = appearing[..., None]
        if model.fixed_no_obj_ptr:
            ptrs = lam * ptrs
        ptrs = ptrs + (1 - lam) * model.no_obj_ptr
    return ptrs


def presence(model: nn.Module, score: torch.Tensor) -> torch.Tensor:
    """object_score_logits [1, 1] -> the weight of the object's own pointer, [1, 1]."""
    return score.sigmoid() if model.soft_no_obj_ptr else (score > 0).float()


class VideoDecoderGraph(PromptDecoder):
    """forward(pix_feat [1, 256, 64, 64], high_res_feats_0 [1, 32, 256, 256],
           high_res_feats_1 [1, 64, 128, 128], point_coords [1, N, 2], point_labels [1, N],
           mask_input [1, 1, 256, 256], has_mask_input [1]) ->
    masks [1, 4, 256, 256] (NO_OBJ_SCORE where the object score is <= 0), iou_predictions [1, 4],
    obj_ptrs [1, 4, 256], object_score_logits [1, 1]
    """

    def __init__(self, model: nn.Module):
        super().__init__(model)  # the prompt encoder, the mask decoder and its constant dense_pe
        self.model = model

    @torch.no_grad()
    def forward(
        self, pix_feat, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input
    ):
        masks, ious, tokens, score = self.heads(
            pix_feat, [high_res_feats_0, high_res_feats_1], point_coords, point_labels, mask_input, has_mask_input
        )
        return masks, ious, object_pointers(self.model, tokens, presence(self.model, score)), score

    def heads(self, pix_feat, high_res, point_coords, point_labels, mask_input, has_mask_input):
        """predict_masks on the prompt -> masks [1, 4, 256, 256] (gated), ious [1, 4],
        mask tokens [1, 4, 256], object score [1, 1]."""
        sparse, dense = embed_prompts(self.prompt_encoder, point_coords, point_labels, mask_input, has_mask_input)
        masks, ious, tokens, score = self.mask_decoder.predict_masks(
            image_embeddings=pix_feat,
            image_pe=self.dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            repeat_image=False,  # one object per call, as the video predictor runs it
            high_res_features=high_res,
        )
        masks = masks.reshape(1, TOKENS, *masks.shape[-2:])
        if self.model.pred_obj_scores:
            masks = torch.where(score[:, :, None, None] > 0, masks, NO_OBJ_SCORE)
        return masks, ious, tokens, score
