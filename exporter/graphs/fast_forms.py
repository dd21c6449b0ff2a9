"""Export-time forms of sam2 modules: the same arithmetic, laid out so ONNX Runtime runs it faster.

``fast_forms(model)`` swaps the ``forward`` of a few sam2 module instances while the graphs are
traced and restores them afterwards, so the eager model (the parity reference, the graph
wrappers' tests) stays the official code. The swapped methods reuse the modules' own weights;
only the order of reshapes, transposes and matrix products changes, so outputs agree to float
rounding (export verifies every graph, the parity suite gates every artifact).

Why each form is faster (``sam2-onnx bench`` and the A/B notes in README, "Faster graphs"):

* ``LayerNorm2d`` (decoder upscaling and mask downscaling): the official mean / variance over the
  channel axis of NCHW exports as two strided ReduceMeans and five elementwise ops; channels-last
  ``layer_norm`` is one LayerNormalization between two transposes.

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


def _forms() -> dict[type, object]:
    from sam2.modeling.sam2_utils import LayerNorm2d

    return {LayerNorm2d: layer_norm_2d}


FORM_NAMES = ("layer_norm_2d",)   # recorded in the manifest


@contextlib.contextmanager
def fast_forms(model: nn.Module, enabled: bool = True):
    """Within the block, every matching submodule of ``model`` runs its fast form."""
    swapped = []
    if enabled:
        forms = _forms()
        for module in model.modules():
            form = forms.get(type(module))
            if form is not None:
                module.forward = types.MethodType(form, module)   # instance attribute shadows the class's
                swapped.append(module)
    try:
        yield len(swapped)
    finally:
        for module in swapped:
            del module.forward
