"""FP16 and INT8 graphs derived from the exported FP32 ones (``export --precision``).

``build_precisions`` runs inside export's staging folder after the FP32 graphs are final. Each
derived graph is checked against the FP32 graph in onnxruntime on the sample photo and prompts
with the tolerance in ``configs/<variant>.yaml`` ``quantization.<precision>.tolerance``. An
INT8 graph must also be kernel-safe on every CPU (kernel_safety.py) and decode masks up to the
parity gate on the calibration photos (mask_check.py), so that what passes here passes
``sam2-onnx parity``. What was kept in FP32, which INT8 mode was chosen and why, and every
candidate's bytes, errors, masks and proof go into the manifest.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..checks.equivalence import Tolerance
from ..core.errors import ConfigError, ExportError
from ..core.manifest import GRAPHS
from ..runtime.sessions import PRECISIONS, graph_file

LOGITS_ROOM = 0.5  # an INT8 candidate may use half the parity gate's logits error on the export's photos


def parse_precisions(text: str) -> list[str]:
    """``"fp16,int8"`` -> ``["fp32", "fp16", "int8"]``: fp32 is always built (the source)."""
    asked = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in asked if p not in PRECISIONS]
    if unknown or not asked:
        raise ExportError(f"--precision {text!r}: use a comma-separated subset of {', '.join(PRECISIONS)}")
    return [p for p in PRECISIONS if p == "fp32" or p in asked]


def check_settings(variant, precisions: list[str]) -> None:
    """Refuse, before any work, a configs/ quantization section missing what export will read."""
    need = {
        "fp16": [("op_block_list",), ("tolerance", "encoder"), ("tolerance", "decoder")],
        "int8": [(role, key) for role in GRAPHS for key in ("candidates", "tolerance")],
    }
    for role in GRAPHS if "int8" in precisions else ():
        steps_ = (variant.quantization.get("int8", {}).get(role) or {}).get("float_steps", [[]])
        if not (
            isinstance(steps_, list)
            and all(isinstance(st, list) and all(isinstance(x, str) for x in st) for st in steps_)
        ):
            raise ConfigError(
                f"{variant.source}: quantization.int8.{role}.float_steps must be a list of lists of regular expressions"
            )
        for pattern in (x for st in steps_ for x in st):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"{variant.source}: quantization.int8.{role}.float_steps: {pattern!r} is not a "
                    f"regular expression ({exc})"
                ) from None
    for precision in precisions:
        for path in need.get(precision, []):
            node = variant.quantization.get(precision)
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                raise ConfigError(f"{variant.source}: quantization.{precision}.{'.'.join(path)} is missing")


def build_precisions(folder: Path, variant, precisions: list[str], calibration_dir: Path | None, step) -> dict:
    """Write the derived graphs of ``precisions`` next to ``folder``'s FP32 ones.

    ``step(name)`` is export's progress context manager. Returns the manifest sections:
    ``{"precisions": {precision: {role: file}}, "fp16": {...}, "int8": {...}}`` plus
    ``"new_files": {file: (role, precision)}`` for the file list.
    """
    from ..checks.sample_inputs import SAMPLE_PHOTO, reference_runs
    from ..core.cpu import describe as describe_cpu
    from . import fp16, int8, kernel_safety
    from .calibration import calibration_images, decoder_feeds, encoder_feeds
    from .mask_check import CLICKS, MaskCheck

    fp32 = {role: folder / GRAPHS[role][0] for role in GRAPHS}
    out = {"precisions": {"fp32": {role: path.name for role, path in fp32.items()}}, "new_files": {}}
    if precisions == ["fp32"]:
        return out
    with step("reference run (fp32 graphs)") as s:
        runs = reference_runs(fp32["encoder"], fp32["decoder"], variant.io_profile)
        labels = variant.io_profile.spec("decoder", "point_labels").name
        s["detail"] = f"sample photo {SAMPLE_PHOTO.name}, {sum(len(f[labels]) for f in runs['decoder'][0])} prompts"
    settings = variant.quantization
    if "fp16" in precisions:
        cfg, out["fp16"], out["precisions"]["fp16"] = settings["fp16"], {}, {}
        for role in GRAPHS:
            name = graph_file(role, "fp16")
            with step(f"fp16 {role}") as s:
                rec = fp16.build(
                    fp32[role],
                    folder / name,
                    *runs[role],
                    Tolerance(**cfg["tolerance"][role]),
                    cfg["op_block_list"],
                    auto_search=cfg.get("auto_search", True),
                    budget=cfg.get("search_budget", 24),
                )
                out["fp16"][role], out["precisions"]["fp16"][role] = rec.as_dict(), name
                out["new_files"][name] = (role, "fp16")
                s["detail"] = (
                    f"{(folder / name).stat().st_size / 1e6:.1f} MB, {rec.blocked_nodes} block-listed "
                    f"+ {len(rec.searched_nodes)} searched nodes in fp32"
                )
    if "int8" in precisions:
        cfg, out["int8"], out["precisions"]["int8"] = settings["int8"], {}, {}
        images = calibration_images(calibration_dir)
        with step("int8 check masks (fp32)") as s:
            gates = variant.parity["int8"]
            masks = MaskCheck(
                fp32["encoder"],
                fp32["decoder"],
                images,
                gates["mask_iou_min"],
                gates.get("iou_band", 0.0),
                LOGITS_ROOM * gates["logits_max_abs"],
                variant.io_profile,
            )
            out["int8"]["mask_check"] = {
                "photos": list(masks.feeds),
                "prompt_sets_per_photo": len(masks.prompts[next(iter(masks.feeds))]),
                "gate": masks.gate,
                "iou_band": masks.band,
                "logits_limit": masks.logits_limit,
            }
            s["detail"] = (
                f"{len(masks.feeds)} photos x {2 * len(CLICKS)} prompt sets, gates: mask IoU >= {masks.gate:g}, "
                f"logits error <= {masks.logits_limit:g}"
            )
        made: dict[str, list] = {}

        def calibration(role: str):
            """Static candidates' calibration feeds, made the first time one is tried."""
            if role not in made:
                io = variant.io_profile
                made[role] = (
                    encoder_feeds(images, io)
                    if role == "encoder"
                    else decoder_feeds(fp32["encoder"], images, io, known=masks.features)
                )
                out["int8"]["calibration"] = {
                    "source": "bundled" if calibration_dir is None else "--calibration-images",
                    "images": list(images),
                    "decoder_prompt_sets_per_image": 2,
                }
            return made[role]

        shipped: dict[str, Path | None] = {"encoder": None, "decoder": None}  # None: the FP32 graph
        for role in GRAPHS:
            name = graph_file(role, "int8")
            with step(f"int8 {role}") as s:
                # each candidate decodes masks with the graphs chosen so far, as they will ship together
                rec = int8.build(
                    fp32[role],
                    folder / name,
                    cfg[role]["candidates"],
                    *runs[role],
                    Tolerance(**cfg[role]["tolerance"]),
                    per_channel=cfg.get("per_channel", True),
                    calibration=lambda role=role: calibration(role),
                    weights=cfg[role].get("weights", cfg["weights"]),
                    masks=lambda candidate, role=role: masks(**(shipped | {role: candidate})),
                    float_steps=cfg[role].get("float_steps"),
                )
                out["int8"][role] = rec.as_dict()
                if rec.chosen == "fp32":
                    out["precisions"]["int8"][role] = fp32[role].name
                    s["detail"] = "kept FP32 (no int8 mode accepted)"
                else:
                    shipped[role] = folder / name
                    out["precisions"]["int8"][role] = name
                    out["new_files"][name] = (role, "int8")
                    checked = rec.candidates[rec.candidate]["masks"]
                    floats = f", {len(rec.kept_float)} layers kept float" if rec.kept_float else ""
                    s["detail"] = (
                        f"{rec.chosen} ({rec.weights} weights{floats}), "
                        f"{(folder / name).stat().st_size / 1e6:.1f} MB, mask IoU min {checked['iou_min']:.4f}, "
                        f"logits error {checked['logits_max_abs']:.2g}, "
                        + kernel_safety.summary(rec.kernel_safety).split(":")[0]
                    )
        # the headline of the proof: every INT8 graph that ships can run on every CPU's kernels
        out["int8"]["kernel_safe"] = all(out["int8"][role]["kernel_safety"]["kernel_safe"] for role in GRAPHS)
        out["int8"]["checked_on"] = describe_cpu()  # where the tolerance check above ran
        out["int8"]["kernel_proof"] = {
            role: kernel_safety.summary(out["int8"][role]["kernel_safety"]) for role in GRAPHS
        }
    return out


def steps(precisions: list[str], variant) -> int:
    """How many progress steps build_precisions will take (for export's [n/N] counter)."""
    if precisions == ["fp32"]:
        return 0
    return 1 + 2 * ("fp16" in precisions) + 3 * ("int8" in precisions)


__all__ = ["PRECISIONS", "build_precisions", "derived_file", "parse_precisions", "steps"]
