"""Export-time forms for static-shape (ONNX Runtime Mobile) decoders: sam2's branches as arithmetic.

The official prompt encoder picks each point's embedding with ``labels == k`` and ``torch.where``
and writes normalised coordinates by slice assignment; the single-mask choice compares a
stability score and takes an ``argmax``. Those export as Equal, Where, ScatterND, Greater,
ArgMax, ReduceSum and Expand, none of which NNAPI takes (release/mobile_check.py), so they cut a
phone's decoder into a dozen partitions. Here the same choices are made with operators NNAPI and
CoreML both have (Sub, Mul, Div, Add, Relu, Max, Clip, MatMul, ReduceMean), and every choice is
exact in float32 arithmetic:

* an indicator ``[d > 0]`` of a float ``d >= 0`` is ``clip(d / max(d, 2^-126) * 2^24, 0, 1)``
  (``d / d`` is exactly 1, subnormals are lifted by the scaling, ``0`` stays 0); ``[x > t]`` is
  that of ``relu(x - t)``, since IEEE subtraction of distinct floats is never 0;
* an integer label's one-hot ``[l == k]`` is ``relu(1 - (l - k)^2)``;
* a selection ``s * a + (1 - s) * b`` with ``s`` in {0, 1} is ``a`` or ``b`` exactly (``0 * x`` is
  a zero, ``x + 0`` is ``x``), and so is a MatMul with a one-hot row;
* counting 0/1 values is ``mean * n``: every partial sum is an integer below 2^24, exact in float32
  in any order, and ``n`` (65536) is a power of two.

So a static decoder traced with these forms returns the official masks bit for bit (tests check
the forms against sam2's own methods); ``mobile_forms(model)`` swaps them in while the graphs are
traced, as ``fast_forms`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fast_forms import swapped_methods


def _positive(d: torch.Tensor) -> torch.Tensor:
    """[d > 0] as float for finite d >= 0, in Max, Div, Mul and Clip (NNAPI and CoreML both have them).

    d / max(d, 2^-126) is exactly 1 for d >= 2^-126 and 0 for d == 0; a subnormal d gives at least
    2^-23, which the scaling by 2^24 and the clip lift to 1.
    """
    tiny = torch.tensor(torch.finfo(torch.float32).tiny)
    return torch.clamp(d / torch.maximum(d, tiny) * 2.0**24, 0.0, 1.0)


def _greater(x: torch.Tensor, t) -> torch.Tensor:
    """[x > t] as float, exactly (distinct floats never subtract to 0)."""
    return _positive(F.relu(x - t))


def embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
    """``PromptEncoder._embed_points``: points [L, N, 2] (1024 frame), labels [L, N] float in
    {-1, 0, 1, 2, 3} -> embeddings [L, N (+1 with pad), 256], with no Equal / Where / ScatterND.

    Each label's one-hot picks its learned embedding from a [5, 256] table by MatMul, added to
    the positional encoding, which padding (-1) zeroes first: the official values exactly.
    """
    points = points + 0.5  # the centre of the pixel, as the official code shifts
    if pad:
        points = torch.cat([points, torch.zeros_like(points[:, :1])], dim=1)
        labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
    h, w = self.input_image_size
    # x / W and y / H by broadcasting: the slice assignments of forward_with_coords export as ScatterND
    pe = self.pe_layer._pe_encoding(points / torch.tensor([float(w), float(h)]))  # [L, N', 256]
    kinds = torch.arange(-1, 4, dtype=labels.dtype)  # -1 (padding), then point_embeddings[0..3]
    offset = labels.unsqueeze(-1) - kinds
    one_hot = F.relu(1.0 - offset * offset)  # [L, N', 5]: exact for integer labels
    table = torch.cat([self.not_a_point_embed.weight] + [e.weight for e in self.point_embeddings], dim=0)
    return pe * (1.0 - one_hot[..., :1]) + one_hot @ table


def dynamic_multimask_via_stability(self, all_mask_logits: torch.Tensor, all_iou_scores: torch.Tensor):
    """``MaskDecoder._dynamic_multimask_via_stability``: all_mask_logits [L, 4, h, w],
    all_iou_scores [L, 4] -> mask logits [L, 1, h, w], iou [L, 1], with no ArgMax / Greater /
    ReduceSum / Where / Expand.

    Token 0's mask if its stability score (area above +delta over area above -delta, 1 when the
    latter is empty) reaches the threshold, else the multimask output with the highest predicted
    IoU, the first of equals as ``argmax`` keeps.
    """
    L, _, h, w = all_mask_logits.shape
    multi = all_mask_logits[:, 1:].reshape(L, 3, h * w)
    iou = [all_iou_scores[:, k : k + 1] for k in range(1, 4)]  # [L, 1] each
    best = torch.maximum(torch.maximum(iou[0], iou[1]), iou[2])
    is_max = [1.0 - _positive(best - s) for s in iou]
    first = [is_max[0], (1.0 - is_max[0]) * is_max[1]]
    pick = torch.stack(first + [1.0 - first[0] - first[1]], dim=-1)  # [L, 1, 3] one-hot
    best_logits = (pick @ multi).reshape(L, 1, h, w)
    best_iou = (pick @ all_iou_scores[:, 1:].unsqueeze(-1)).reshape(L, 1)

    single, single_iou = all_mask_logits[:, 0:1], all_iou_scores[:, 0:1]
    flat = single.reshape(L, h * w)
    delta = self.dynamic_multimask_stability_delta
    n = float(h * w)
    area_i = torch.mean(_greater(flat, delta), dim=-1, keepdim=True) * n  # [L, 1]
    area_u = torch.mean(_greater(flat, -delta), dim=-1, keepdim=True) * n
    empty = F.relu(1.0 - area_u)  # 1 when nothing is above -delta (then area_i is 0 too): score 1
    score = (area_i + empty) / (area_u + empty)
    stable = 1.0 - _positive(F.relu(self.dynamic_multimask_stability_thresh - score))  # [score >= thresh]
    mask = stable.reshape(L, 1, 1, 1) * single + (1.0 - stable.reshape(L, 1, 1, 1)) * best_logits
    return mask, stable * single_iou + (1.0 - stable) * best_iou


def _swaps(model: nn.Module) -> list[tuple[nn.Module, str, object]]:
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.prompt_encoder import PromptEncoder

    swaps = []
    for module in model.modules():
        if type(module) is PromptEncoder:
            swaps.append((module, "_embed_points", embed_points))
        elif type(module) is MaskDecoder:
            swaps.append((module, "_dynamic_multimask_via_stability", dynamic_multimask_via_stability))
    return swaps


# recorded in the manifest of static exports
FORM_NAMES = ("embed_points", "dynamic_multimask_via_stability")


def mobile_forms(model: nn.Module, enabled: bool = True):
    """Within the block, ``model``'s prompt encoder and mask decoder run these forms; yields how many."""
    return swapped_methods(_swaps(model) if enabled else [])
