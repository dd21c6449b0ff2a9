"""SAM 2's rotary position encoding (RoPE) in real arithmetic, for the memory attention graph.

sam2's ``apply_rotary_enc`` multiplies by ``freqs_cis`` as complex numbers (``view_as_complex``),
which ONNX cannot express. A complex product is two real ones per pair of channels:
``(a + ib)(c + is) = (ac - bs) + i(as + bc)``, with ``c, s`` the real and imaginary parts of the
very ``freqs_cis`` the module holds, so the rewrite is exact math; tests/test_video_graphs.py
compares it with sam2's function.
"""

from __future__ import annotations

import torch


def cos_sin(freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """freqs_cis [L, D/2] complex64 -> (cos [L, D/2], sin [L, D/2]) float32, the same numbers."""
    return freqs_cis.real.float().contiguous(), freqs_cis.imag.float().contiguous()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``apply_rotary_enc`` on one tensor: x [B, H, R * L, D] whose tokens are R repeats of the L
    positions of ``cos`` / ``sin`` [L, D/2] (R = 1 for queries; R memory frames for keys, sam2's
    ``repeat_freqs_k``). Channels pair up as (2k, 2k+1), the layout view_as_complex reads.

    R comes from the shape (a reshape with -1), so one graph serves any number of memories.
    """
    b, h, _, d = x.shape
    positions = cos.shape[0]
    pairs = x.reshape(b, h, -1, positions, d // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    out = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1)
    return out.reshape(x.shape)
