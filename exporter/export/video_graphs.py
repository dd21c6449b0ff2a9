"""The video graphs of a SAM 2 export: trace, check, simplify (verified), stamp; the manifest's
``video`` part.

They sit beside the image graphs in the same folder and share its ``encoder.onnx``; the image
files and their manifest entries are unchanged. Traced from the official SAM2VideoPredictor
holding the export's weights (build_sam2_video_predictor's settings), whose settings the
runtime's memory bank needs are recorded from the built model (wrappers/video_settings.py).
"""

from __future__ import annotations

from pathlib import Path

from ..checks.equivalence import Outputs
from ..checks.video_inputs import video_reference_runs
from ..core import manifest as M
from ..core.video_contract import VIDEO, VIDEO_GRAPHS
from . import onnx_steps as G


def trace_video(model, variant, staging: Path, opset: int) -> tuple[dict[str, Path], dict]:
    """Trace the four video graphs of ``model`` (the export's SAM2Base) into ``staging``.

    Returns ``({role: traced file}, settings)``. Trace inputs have T=2 memories, P=3 pointers and
    N=2 points, so that no dynamic dim is traced as a constant."""
    import torch

    from ..checkpoints.loading import video_predictor
    from ..wrappers.mask_prompt import MaskPromptGraph
    from ..wrappers.memory_attention import MemoryAttentionGraph
    from ..wrappers.memory_encoder import MemoryEncoderGraph
    from ..wrappers.video_decoder import VideoDecoderGraph
    from ..wrappers.video_settings import video_settings

    predictor = video_predictor(variant, model)
    settings = video_settings(predictor)
    gen = torch.Generator().manual_seed(0)
    embed = torch.randn(1, 256, 64, 64, generator=gen)
    high_res = (torch.randn(1, 32, 256, 256, generator=gen), torch.randn(1, 64, 128, 128, generator=gen))
    low_res = torch.randn(1, 1, 256, 256, generator=gen)
    args = {
        "memory_attention": (
            MemoryAttentionGraph(predictor),
            (
                embed,
                torch.randn(2, 64, 64, 64, generator=gen),
                torch.tensor([0, 6]),
                torch.randn(3, 256, generator=gen),
                torch.tensor([0.0, 1.0, 2.0]) / 15,
            ),
        ),
        "memory_encoder": (MemoryEncoderGraph(predictor), (embed, low_res, torch.tensor([[0.5]]), torch.ones(1))),
        "video_decoder": (
            VideoDecoderGraph(predictor),
            (
                embed,
                *high_res,
                torch.tensor([[[500.0, 300.0], [10.0, 20.0]]]),
                torch.tensor([[1.0, 0.0]]),
                low_res,
                torch.ones(1),
            ),
        ),
        "mask_prompt": (
            MaskPromptGraph(predictor),
            (embed, (torch.rand(1, 1, 1024, 1024, generator=gen) > 0.5).float()),
        ),
    }
    raw = {role: staging / f"{role}.traced.onnx" for role in VIDEO_GRAPHS}
    for role, (module, inputs) in args.items():
        G.trace(module.eval(), inputs, raw[role], role, opset, VIDEO)
        G.check(raw[role])
    return raw, settings


def finish_video(staging: Path, raw: dict[str, Path], features: Outputs | None, settings: dict, stamp_props) -> dict:
    """Simplify each traced graph when ``features`` (the sample photo's encoder outputs) are given,
    verified on the chained sample inputs (checks/video_inputs.py), then stamp it into its final
    name. ``stamp_props(role, simplified) -> metadata_props``. Returns the manifest's ``video`` part."""
    simplification = {role: {"status": "skipped", "detail": "--no-simplify"} for role in VIDEO_GRAPHS}
    if features is not None:
        runs = video_reference_runs(raw, features)
        for role in VIDEO_GRAPHS:
            simplification[role] = G.simplify_verified(raw[role], role, *runs[role])
    files = {}
    for role, (file, _, _) in VIDEO_GRAPHS.items():
        G.stamp(raw[role], staging / file, role, stamp_props(role, simplification[role]["status"] == "applied"), VIDEO)
        files[file] = M.file_entry(staging / file, role, "fp32")
    return {
        "encoder": "encoder.onnx",
        "files": files,
        "io": M.io_spec(VIDEO),
        "settings": settings,
        "simplification": simplification,
    }
