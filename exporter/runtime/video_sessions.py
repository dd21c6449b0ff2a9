"""Open an export folder's video graphs: verify them, create sessions, check their contract.

The encoder is the folder's image encoder (the image contract's file); the four video graphs are
listed in the manifest's ``video`` part (core/video_contract.py), with the settings the memory
bank follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..core import contract as C
from ..core.errors import InputError, ManifestError, one_line
from ..core.manifest import read_manifest, verify_files
from ..core.video_contract import SETTINGS, VIDEO_GRAPHS
from .sessions import _io, graph_file, resolve_providers, session_options


@dataclass
class VideoSessions:
    encoder: ort.InferenceSession
    graphs: dict[str, ort.InferenceSession]  # video role -> session
    manifest: dict
    settings: dict  # video_contract.SETTINGS, recorded from the official model

    def run(self, role: str, **feeds: np.ndarray) -> list[np.ndarray]:
        """One call of a video graph: its outputs in contract order."""
        return self.graphs[role].run(None, feeds)


def _open(path: Path, inputs, outputs, providers, opts) -> ort.InferenceSession:
    try:
        sess = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ManifestError(f"{path}: onnxruntime cannot load it: {one_line(exc, 300, with_type=False)}") from None
    problems = C.mismatches(inputs, _io(sess.get_inputs())) + C.mismatches(outputs, _io(sess.get_outputs()))
    if problems:
        raise ManifestError(f"{path} does not follow the video I/O contract: " + "; ".join(problems[:3]))
    return sess


def load_video_sessions(
    model_dir: Path,
    precision: str = "fp32",
    providers: list[str] | None = None,
    threads: int | None = None,
    optimization: str = "all",
) -> VideoSessions:
    """Verify and open ``model_dir``'s encoder (of ``precision``) and its fp32 video graphs."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    video = manifest.get("video")
    if not isinstance(video, dict) or "files" not in video:
        raise ManifestError(
            f"{model_dir}: has no video graphs (exported without them, by another profile or static shapes); "
            "export the variant again with `sam2-onnx export` (default profile)"
        )
    missing = [k for k in SETTINGS if k not in video.get("settings", {})]
    if missing:
        raise ManifestError(f"{model_dir}: the manifest's video settings lack {', '.join(missing)}; export again")
    encoder_file = graph_file("encoder", precision, manifest)
    if encoder_file not in manifest["files"]:
        raise InputError(
            f"{model_dir}: no {precision} encoder ({encoder_file}); exported: {', '.join(manifest['files'])}"
        )
    verify_files(model_dir, manifest, [encoder_file])
    verify_files(model_dir, manifest, entries=video["files"])
    chosen = resolve_providers(providers)
    _, enc_in, enc_out = C.SAMEXPORTER.graphs()["encoder"]
    encoder = _open(model_dir / encoder_file, enc_in, enc_out, chosen, session_options(threads, optimization, False))
    graphs = {
        role: _open(model_dir / file, ins, outs, chosen, session_options(threads, optimization))
        for role, (file, ins, outs) in VIDEO_GRAPHS.items()
    }
    return VideoSessions(encoder, graphs, manifest, dict(video["settings"]))
