"""Is this export current? One rule for every caller that reuses an export instead of redoing it
(the benchmarks, the release job, the CPU-kinds and seed sweeps).

An export folder is current for a request when its manifest reads and every file it lists
verifies against its digest, its weights match the requested ones (every key given: a random
seed, or a checkpoint file's sha256), it holds the requested precisions (exactly those, for a
release: it ships every precision the manifest lists), it was traced with the same export
forms (fast or as sam2 wrote it), and its derived graphs were made with the configs' current
quantization settings (an edited weight scheme or tolerance means other INT8 / FP16 graphs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ..core.errors import Sam2OnnxError
from ..core.manifest import read_manifest, verify_files
from ..core.variants import resolve


def random_weights(seed: int) -> dict:
    """The weights request of seeded random weights."""
    return {"source": "random", "seed": seed}


def checkpoint_weights(sha256: str) -> dict:
    """The weights request of an official (or any) checkpoint file, by its digest."""
    return {"source": "checkpoint", "checkpoint_sha256": sha256}


def stale_reason(
    folder: Path, weights: dict, precisions: list[str], *, exact: bool = False, fast: bool = True
) -> str | None:
    """None when ``folder`` holds a current export for this request, else why not (one line).

    ``precisions`` as export reads them (``parse_precisions``: fp32 first, fixed order)."""
    from ..wrappers import mobile_forms
    from ..wrappers.fast_forms import FORM_NAMES

    try:
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
    except Sam2OnnxError as exc:
        return str(exc)
    have = manifest.get("weights", {})
    differ = sorted(k for k, v in weights.items() if have.get(k) != v)
    if differ:
        return f"other weights ({', '.join(f'{k} {have.get(k)!r}' for k in differ)})"
    options = manifest.get("options", {})
    have = options.get("precisions") or []
    if (have != list(precisions)) if exact else not set(precisions) <= set(have):
        return f"holds {','.join(have) or 'no precisions'}, asked for {','.join(precisions)}"
    if options.get("fast_forms") != (list(FORM_NAMES) if fast else []):
        return "traced with other export forms"
    static = manifest.get("profile", {}).get("static_shapes") is not None
    if options.get("mobile_forms") != (list(mobile_forms.FORM_NAMES) if static else None):
        return "traced with other mobile forms"
    name = manifest.get("variant", {}).get("name")
    try:
        settings = quantization_settings(resolve(str(name)), have)
    except Sam2OnnxError as exc:
        return str(exc)
    if options.get("quantization") != settings:
        return f"derived graphs made with other quantization settings than configs/{name}.yaml's"
    return None


def quantization_settings(variant, precisions: list[str]) -> dict:
    """The configs' settings each derived precision of an export was made with (manifest options)."""
    return {p: variant.quantization[p] for p in precisions if p in variant.quantization}


def ensure_export(
    variant,
    out: Path,
    *,
    precisions: list[str] = ("fp32",),
    seed: int = 0,
    tag: str = "bench",
    stream: TextIO | None = None,
) -> Path:
    """``out/<variant>``: the seeded random-weights export at ``precisions``, exported (replacing
    what is there) unless it already holds them. Prints one line, with the reason, when it exports."""
    from .pipeline import export_variant

    folder = out / variant.name
    reason = stale_reason(folder, random_weights(seed), list(precisions))
    if reason is not None:
        print(
            f"[{tag}] exporting {variant.name} at {','.join(precisions)} (random weights, seed {seed}): {reason}",
            file=sys.stdout,
            flush=True,
        )
        export_variant(variant, out, seed=seed, force=True, precisions=list(precisions), stream=stream)
    return folder
