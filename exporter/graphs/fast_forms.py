"""Export-time forms of sam2 modules: the same arithmetic, laid out so ONNX Runtime runs it faster.

``fast_forms(model)`` swaps the ``forward`` of a few sam2 module instances while the graphs are
traced and restores them afterwards, so the eager model (the parity reference, the graph
wrappers' tests) stays the official code. The swapped methods reuse the modules' own weights;
only layouts, broadcasting and the order of operations change, so outputs agree to float
rounding (export verifies every graph, the parity suite gates every artifact).

Why each form is faster (``sam2-onnx bench`` and the A/B notes in README, "Faster graphs"):

* ``LayerNorm2d`` (decoder upscaling and mask downscaling): the official mean / variance over the
  channel axis of NCHW exports as two strided ReduceMeans and five elementwise ops; channels-last
  ``layer_norm`` is one LayerNormalization between two transposes.
* ``MaskDecoder.predict_masks``: the official code copies the image embedding and the dense
  positional encoding once per prompt before the transformer; broadcasting gives the same values
  without the two copies, and the positional encoding's layout change folds into a constant.

Tried and dropped because it measured no faster: Hiera's attention as three 2-D Gemms with the
bias inside, one transpose per head layout and no strided qkv Split (the Gemm's bias pass costs
what the separate Add did; global attention's matrix products dominate either way).
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm_2d(self, x: torch.Tensor) -> torch.Tensor:
    """``LayerNorm2d.forward``: x [B, C, H, W] normalised over C, as one channels-last layer_norm."""
    # normalized_shape from the weight: a constant for the tracer (x.shape[1] would be traced)
    y = F.layer_norm(x.permute(0, 2, 3, 1), (self.weight.shape[0],), self.weight, self.bias, self.eps)
    return y.permute(0, 3, 1, 2)


def predict_masks(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                  repeat_image: bool, high_res_features=None):
    """``MaskDecoder.predict_masks`` for one image and L prompts, broadcasting instead of repeating.

    image_embeddings [1, 256, 64, 64], image_pe [1, 256, 64, 64] (a constant in our graph),
    sparse_prompt_embeddings [L, T, 256], dense_prompt_embeddings [L, 256, 64, 64],
    high_res_features [[1, 32, 256, 256], [1, 64, 128, 128]] ->
        masks [L, 4, 256, 256], iou_pred [L, 4], mask tokens [L, 4, 256], object score logits [L, 1]

    The official code copies the image embedding and the positional encoding once per prompt
    (``repeat_interleave``: two Tiles of [L, 256, 64, 64] per call) before adding the dense
    prompt; adding with broadcasting gives the same values without the copies, and leaves the
    positional encoding a [1, ...] constant whose flatten + permute is folded at export.
    """
    s = 1 if self.pred_obj_scores else 0
    weights = ([self.obj_score_token.weight] if self.pred_obj_scores else []) + [
        self.iou_token.weight, self.mask_tokens.weight]
    output_tokens = torch.cat(weights, dim=0).unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
    tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
    src = image_embeddings + dense_prompt_embeddings          # [L, 256, 64, 64] by broadcasting
    b, c, h, w = src.shape
    hs, src = self.transformer(src, image_pe, tokens)         # keys + pe broadcast inside
    iou_token_out = hs[:, s, :]
    mask_tokens_out = hs[:, s + 1:(s + 1 + self.num_mask_tokens), :]
    src = src.transpose(1, 2).reshape(b, c, h, w)
    if not self.use_high_res_features:
        upscaled = self.output_upscaling(src)
    else:
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res_features
        upscaled = act1(ln1(dc1(src) + feat_s1))
        upscaled = act2(dc2(upscaled) + feat_s0)
    hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                           dim=1)
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    iou_pred = self.iou_prediction_head(iou_token_out)
    if self.pred_obj_scores:
        object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
    else:
        object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)
    return masks, iou_pred, mask_tokens_out, object_score_logits


def _forms() -> dict[type, tuple[str, object]]:
    """{sam2 class: (method name, its export form)}."""
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam2_utils import LayerNorm2d

    return {LayerNorm2d: ("forward", layer_norm_2d), MaskDecoder: ("predict_masks", predict_masks)}


FORM_NAMES = ("layer_norm_2d", "predict_masks")   # recorded in the manifest


@contextlib.contextmanager
def fast_forms(model: nn.Module, enabled: bool = True):
    """Within the block, every matching submodule of ``model`` runs its fast form; yields how many."""
    swapped = []
    if enabled:
        forms = _forms()
        for module in model.modules():
            if type(module) in forms:
                name, form = forms[type(module)]
                setattr(module, name, types.MethodType(form, module))   # an instance attribute shadows the class's
                swapped.append((module, name))
    try:
        yield len(swapped)
    finally:
        for module, name in swapped:
            delattr(module, name)
