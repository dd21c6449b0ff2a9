"""Export-time forms of sam2 modules: the same arithmetic, laid out so ONNX Runtime runs it faster.

``fast_forms(model)`` swaps the ``forward`` of a few sam2 module instances while the graphs are
traced and restores them afterwards, so the eager model (the parity reference, the graph
wrappers' tests) stays the official code. The swapped methods reuse the modules' own weights;
only layouts, broadcasting and the order of operations change, so outputs agree to float
rounding (export verifies every graph, the parity suite gates every artifact).

Why each form is faster (``sam2-onnx bench`` and the A/B notes in docs/performance.md, "Faster graphs"):

* ``LayerNorm2d`` (decoder upscaling and mask downscaling): the official mean / variance over the
  channel axis of NCHW exports as two strided ReduceMeans and five elementwise ops; channels-last
  ``layer_norm`` is one LayerNormalization between two transposes.
* ``MaskDecoder.predict_masks``: the official code copies the image embedding and the dense
  positional encoding once per prompt before the transformer; broadcasting gives the same values
  without the two copies, and the positional encoding's layout change folds into a constant.
* ``Attention.forward`` in the decoder's five cross-attentions (``token_to_image_attention``,
  ``image_to_token_attention``): the official code projects the 4096 image tokens to 128
  channels (and back, image to tokens) to meet about 8 prompt tokens; reassociating the products
  applies the weights on the prompt side instead, halving the decoder's largest matrix products
  for one click. The saving shrinks as points are added: equal at 9 points, and more work than
  the official form beyond (measured, docs/performance.md "Faster graphs"); ``--plain-graphs`` exports the
  official form for applications that send many points per prompt.

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


def predict_masks(
    self,
    image_embeddings,
    image_pe,
    sparse_prompt_embeddings,
    dense_prompt_embeddings,
    repeat_image: bool,
    high_res_features=None,
):
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
        self.iou_token.weight,
        self.mask_tokens.weight,
    ]
    output_tokens = torch.cat(weights, dim=0).unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
    tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
    src = image_embeddings + dense_prompt_embeddings  # [L, 256, 64, 64] by broadcasting
    b, c, h, w = src.shape
    hs, src = self.transformer(src, image_pe, tokens)  # keys + pe broadcast inside
    iou_token_out = hs[:, s, :]
    mask_tokens_out = hs[:, s + 1 : (s + 1 + self.num_mask_tokens), :]
    src = src.transpose(1, 2).reshape(b, c, h, w)
    if not self.use_high_res_features:
        upscaled = self.output_upscaling(src)
    else:
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res_features
        upscaled = act1(ln1(dc1(src) + feat_s1))
        upscaled = act2(dc2(upscaled) + feat_s0)
    hyper_in = torch.stack(
        [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
    )
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    iou_pred = self.iou_prediction_head(iou_token_out)
    if self.pred_obj_scores:
        object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
    else:
        object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)
    return masks, iou_pred, mask_tokens_out, object_score_logits


def token_to_image_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward`` for T prompt tokens attending to N image tokens, without projecting the image.

    q [L, T, C] tokens, k [L, N, C] image + positional encoding, v [L, N, C] image -> [L, T, C]
    (C = 256, N = 4096, heads H = 8 of d = 16 after the 2x downsampling to 128).

    The official code projects all N keys and values to 128 channels (2 x N x C x 128
    multiply-adds) to meet T of order 8 queries. Per head, q_h K_h^T = (q_h W_k,h) k^T + q_h b_k,h,
    whose last term is the same for every key and cancels in the softmax; and since each softmax
    row sums to 1, P_h V_h = (P_h v) W_v,h^T + b_v,h. Applying the weights to the T side instead
    costs 2 x N x C x (H * T): half as much for one click (T = 8), equal at T = 16 (9 points).
    """
    heads = self.num_heads
    d = self.internal_dim // heads
    # heads split and joined with reshape + transpose here rather than sam2's _separate_heads /
    # _recombine_heads: theirs derive the head width from traced shapes (tiny decoder: 602 nodes
    # after onnxsim instead of 549)
    L, T, C = q.shape[0], q.shape[1], k.shape[-1]
    qh = self.q_proj(q).reshape(L, T, heads, d).transpose(1, 2)  # [L, H, T, d]
    # the softmax scale folds into W_k: a constant at export
    wk = (self.k_proj.weight * d**-0.5).reshape(heads, d, C)  # [H, d, C]
    a = (qh @ wk).reshape(L, heads * T, C)  # [L, H*T, C]
    p = torch.softmax(a @ k.transpose(1, 2), dim=-1)  # [L, H*T, N]
    pv = (p @ v).reshape(L, heads, T, C)  # [L, H, T, C]
    wv = self.v_proj.weight.reshape(heads, d, C).transpose(1, 2)  # [H, C, d]
    out = pv @ wv + self.v_proj.bias.reshape(heads, 1, d)  # [L, H, T, d]
    return self.out_proj(out.transpose(1, 2).reshape(L, T, heads * d))


def image_to_token_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward`` for N image tokens attending to T prompt tokens, without projecting the image.

    q [L, N, C] image + positional encoding, k [L, T, C] tokens + their encoding, v [L, T, C]
    tokens -> [L, N, C] (C = 256, N = 4096, H = 8 heads of d = 16).

    The official code projects the N queries to 128 channels and the N head outputs back to
    256 (2 x N x 128 x C multiply-adds). Per head, (q W_q,h^T + b_q,h) K_h^T = q (W_q,h^T K_h^T)
    + b_q,h K_h^T, and sum_h P_h V_h W_o,h^T = P (V W_o^T stacked per head): both products with
    the image become N x C x (H * T), half as much for one click (T = 8), equal at T = 16.
    """
    heads = self.num_heads
    d = self.internal_dim // heads
    L, T, C = k.shape[0], k.shape[1], q.shape[-1]
    n = q.shape[1]
    kh = self.k_proj(k).reshape(L, T, heads, d).transpose(1, 2)  # [L, H, T, d]
    scale = d**-0.5
    wq = (self.q_proj.weight * scale).reshape(heads, d, C)  # [H, d, C]
    bq = (self.q_proj.bias * scale).reshape(heads, d, 1)  # [H, d, 1]
    qk = (kh @ wq).reshape(L, heads * T, C)  # [L, H*T, C]
    logits = q @ qk.transpose(1, 2) + (kh @ bq).reshape(L, 1, heads * T)  # [L, N, H*T]
    p = torch.softmax(logits.reshape(L, n, heads, T), dim=-1).reshape(L, n, heads * T)
    vh = self.v_proj(v).reshape(L, T, heads, d).transpose(1, 2)  # [L, H, T, d]
    wo = self.out_proj.weight.reshape(C, heads, d).permute(1, 2, 0)  # [H, d, C]
    vo = (vh @ wo).reshape(L, heads * T, C)  # [L, H*T, C]
    return p @ vo + self.out_proj.bias


def _swaps(model: nn.Module) -> list[tuple[nn.Module, str, object]]:
    """[(module instance, method name, its export form)] for every module of ``model`` that has one.

    The attention forms are per instance, not per class: which side is the image is a matter of
    where sam2 uses the module (its ``Attention`` class also serves the token self-attention).
    """
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.transformer import TwoWayAttentionBlock, TwoWayTransformer
    from sam2.modeling.sam2_utils import LayerNorm2d

    swaps = []
    for module in model.modules():
        if type(module) is LayerNorm2d:
            swaps.append((module, "forward", layer_norm_2d))
        elif type(module) is MaskDecoder:
            swaps.append((module, "predict_masks", predict_masks))
        elif type(module) is TwoWayAttentionBlock:
            swaps += [
                (module.cross_attn_token_to_image, "forward", token_to_image_attention),
                (module.cross_attn_image_to_token, "forward", image_to_token_attention),
            ]
        elif type(module) is TwoWayTransformer:
            swaps.append((module.final_attn_token_to_image, "forward", token_to_image_attention))
    return swaps


# recorded in the manifest
FORM_NAMES = ("layer_norm_2d", "predict_masks", "token_to_image_attention", "image_to_token_attention")


@contextlib.contextmanager
def swapped_methods(swaps: list[tuple[nn.Module, str, object]]):
    """Within the block, each (module instance, method name, form) runs the form; yields how many."""
    swapped = []
    try:
        for module, name, form in swaps:
            setattr(module, name, types.MethodType(form, module))  # an instance attribute shadows the class's
            swapped.append((module, name))
        yield len(swapped)
    finally:
        for module, name in swapped:
            delattr(module, name)


def fast_forms(model: nn.Module, enabled: bool = True):
    """Within the block, every matching submodule of ``model`` runs its fast form; yields how many."""
    return swapped_methods(_swaps(model) if enabled else [])
