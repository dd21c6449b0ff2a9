"""Do two ONNX graphs compute the same function? Run both in ONNX Runtime on the same feeds.

Used by export to accept or reject a simplified graph. Checks output names, then shapes, then
values per output (max abs and relative L2 error); a NaN or inf in the candidate always fails.
Every failure is collected before the verdict, and each says the smallest tolerance that would
have passed. numpy + onnxruntime only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

Feeds = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session that hands memory back when closed (no arena: large encoders are GBs)."""
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_graph(path: Path, feeds: list[Feeds]) -> list[Outputs]:
    """Outputs by name for each feed; the session is dropped before returning."""
    sess = cpu_session(path)
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, feed))) for feed in feeds]


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    """||got - want|| / ||want|| (absolute when want is all zeros)."""
    diff = float(np.linalg.norm(got.ravel().astype(np.float64) - want.ravel()))  # float64 first: bool outputs
    norm = float(np.linalg.norm(want.ravel().astype(np.float64)))
    return diff / norm if norm else diff


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def decided_iou(reference: np.ndarray, candidate: np.ndarray, band: float, threshold: float = 0.0) -> float:
    """IoU of two logit maps' masks (logits > ``threshold``) over the pixels the reference
    decides: those whose logit is at least ``band`` from the threshold (``band`` 0: all pixels).

    A pixel inside the band is one the reference itself barely decides; random-weight masks hold
    thousands of them (logits within 1e-3 of zero), which any rounding flips, so an IoU over
    them measures the weights, not the conversion. Pixels outside it must agree (see flips).
    """
    keep = np.abs(reference - threshold) >= band
    return iou((reference > threshold) & keep, (candidate > threshold) & keep)


@dataclass(frozen=True)
class Tolerance:
    max_abs: float | None = None  # per element
    rel_l2: float | None = None  # per output tensor


@dataclass
class Comparison:
    """Per-output worst errors over all feeds, and the failures found."""

    max_abs: dict[str, float] = field(default_factory=dict)
    rel_l2: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"ok": self.ok, "max_abs": self.max_abs, "rel_l2": self.rel_l2, "failures": self.failures}


def compare(reference: list[Outputs], candidate: list[Outputs], tol: Tolerance) -> Comparison:
    """Compare two runs over the same feeds, output by output."""
    result = Comparison()
    for i, (ref, got) in enumerate(zip(reference, candidate, strict=True)):
        if list(got) != list(ref):
            result.failures.append(f"feed {i}: outputs {list(got)} != {list(ref)}")
            continue
        for name, want in ref.items():
            have = got[name]
            if have.shape != want.shape or have.dtype != want.dtype:
                result.failures.append(
                    f"feed {i} {name}: {have.dtype}{list(have.shape)} != {want.dtype}{list(want.shape)}"
                )
                continue
            if not np.isfinite(have).all():
                result.failures.append(f"feed {i} {name}: NaN or inf")
                continue
            abs_err = float(np.abs(have.astype(np.float64) - want).max()) if want.size else 0.0
            l2 = rel_l2(have, want)
            result.max_abs[name] = max(result.max_abs.get(name, 0.0), abs_err)
            result.rel_l2[name] = max(result.rel_l2.get(name, 0.0), l2)
    for name in result.max_abs:
        if tol.max_abs is not None and result.max_abs[name] > tol.max_abs:
            result.failures.append(
                f"{name}: max abs error {result.max_abs[name]:.3g} > {tol.max_abs:g} "
                f"(would pass at max_abs >= {result.max_abs[name]:.3g})"
            )
        if tol.rel_l2 is not None and result.rel_l2[name] > tol.rel_l2:
            result.failures.append(
                f"{name}: relative L2 error {result.rel_l2[name]:.3g} > {tol.rel_l2:g} "
                f"(would pass at rel_l2 >= {result.rel_l2[name]:.3g})"
            )
    return result
