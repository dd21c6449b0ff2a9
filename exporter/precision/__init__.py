"""FP16 and INT8 graphs derived from the exported FP32 ones (``export --precision``).

``build_precisions`` runs inside export's staging folder after the FP32 graphs are final. Each
derived graph is checked against the FP32 graph in onnxruntime on the sample photo and prompts
with the tolerance in ``configs/<variant>.yaml`` ``quantization.<precision>.tolerance`` (about
half the room of the parity gates, so that an artifact that passes here is expected to pass
``sam2-onnx parity``). What was kept in FP32, which INT8 mode was chosen and why, and every
candidate's bytes and errors go into the manifest.
"""

from __future__ import annotations

from pathlib import Path

from ..equivalence import Tolerance
from ..errors import ConfigError, ExportError
from ..manifest import GRAPHS
from ..runtime.graphs import PRECISIONS, graph_file


def parse_precisions(text: str) -> list[str]:
    """``"fp16,int8"`` -> ``["fp32", "fp16", "int8"]``: fp32 is always built (the source)."""
    asked = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in asked if p not in PRECISIONS]
    if unknown or not asked:
        raise ExportError(f"--precision {text!r}: use a comma-separated subset of {', '.join(PRECISIONS)}")
    return [p for p in PRECISIONS if p == "fp32" or p in asked]


def check_settings(variant, precisions: list[str]) -> None:
    """Refuse, before any work, a configs/ quantization section missing what export will read."""
    need = {"fp16": [("op_block_list",), ("tolerance", "encoder"), ("tolerance", "decoder")],
            "int8": [(role, key) for role in GRAPHS for key in ("candidates", "tolerance")]}
    for precision in precisions:
        for path in need.get(precision, []):
            node = variant.quantization.get(precision)
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                raise ConfigError(f"{variant.source}: quantization.{precision}.{'.'.join(path)} is missing")


def build_precisions(folder: Path, variant, precisions: list[str], calibration_dir: Path | None,
                     step) -> dict:
    """Write the derived graphs of ``precisions`` next to ``folder``'s FP32 ones.

    ``step(name)`` is export's progress context manager. Returns the manifest sections:
    ``{"precisions": {precision: {role: file}}, "fp16": {...}, "int8": {...}}`` plus
    ``"new_files": {file: (role, precision)}`` for the file list.
    """
    from ..sample_inputs import SAMPLE_PHOTO, reference_runs
    from . import fp16, int8
    from .calibration import calibration_images, decoder_feeds, encoder_feeds

    fp32 = {role: folder / GRAPHS[role][0] for role in GRAPHS}
    out = {"precisions": {"fp32": {role: path.name for role, path in fp32.items()}}, "new_files": {}}
    if precisions == ["fp32"]:
        return out
    with step("reference run (fp32 graphs)") as s:
        runs = reference_runs(fp32["encoder"], fp32["decoder"])
        s["detail"] = f"sample photo {SAMPLE_PHOTO.name}, 5 prompts"
    settings = variant.quantization
    if "fp16" in precisions:
        cfg, out["fp16"], out["precisions"]["fp16"] = settings["fp16"], {}, {}
        for role in GRAPHS:
            name = graph_file(role, "fp16")
            with step(f"fp16 {role}") as s:
                rec = fp16.build(fp32[role], folder / name, *runs[role], Tolerance(**cfg["tolerance"][role]),
                                 cfg["op_block_list"], auto_search=cfg.get("auto_search", True),
                                 budget=cfg.get("search_budget", 24))
                out["fp16"][role], out["precisions"]["fp16"][role] = rec.as_dict(), name
                out["new_files"][name] = (role, "fp16")
                s["detail"] = (f"{(folder / name).stat().st_size / 1e6:.1f} MB, {rec.blocked_nodes} block-listed "
                               f"+ {len(rec.searched_nodes)} searched nodes in fp32")
    if "int8" in precisions:
        cfg, out["int8"], out["precisions"]["int8"] = settings["int8"], {}, {}
        calibration = None
        if _calibrates(variant):
            with step("calibration feeds") as s:
                images = calibration_images(calibration_dir)
                calibration = {"encoder": encoder_feeds(images), "decoder": decoder_feeds(fp32["encoder"], images)}
                out["int8"]["calibration"] = {"source": "bundled" if calibration_dir is None else "--calibration-images",
                                              "images": list(images), "decoder_prompt_sets_per_image": 2}
                s["detail"] = f"{len(images)} photos ({'bundled' if calibration_dir is None else calibration_dir})"
        for role in GRAPHS:
            name = graph_file(role, "int8")
            with step(f"int8 {role}") as s:
                rec = int8.build(fp32[role], folder / name, cfg[role]["candidates"], *runs[role],
                                 Tolerance(**cfg[role]["tolerance"]), per_channel=cfg.get("per_channel", True),
                                 calibration=calibration[role] if calibration else None)
                out["int8"][role] = rec.as_dict()
                if rec.chosen == "fp32":
                    out["precisions"]["int8"][role] = fp32[role].name
                    s["detail"] = "kept FP32 (no int8 mode within tolerance)"
                else:
                    out["precisions"]["int8"][role] = name
                    out["new_files"][name] = (role, "int8")
                    s["detail"] = f"{rec.chosen}, {(folder / name).stat().st_size / 1e6:.1f} MB"
    return out


def _calibrates(variant) -> bool:
    """Static INT8 is a candidate for some graph, so calibration feeds are needed."""
    return any("static" in variant.quantization["int8"][role]["candidates"] for role in GRAPHS)


def steps(precisions: list[str], variant) -> int:
    """How many progress steps build_precisions will take (for export's [n/N] counter)."""
    if precisions == ["fp32"]:
        return 0
    n = 1 + 2 * ("fp16" in precisions) + 2 * ("int8" in precisions)
    if "int8" in precisions and _calibrates(variant):
        n += 1
    return n


__all__ = ["PRECISIONS", "build_precisions", "derived_file", "parse_precisions", "steps"]
