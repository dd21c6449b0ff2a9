"""Variant registry: one YAML per variant under ``configs/``.

A variant is a SAM 2 / SAM 2.1 model size (``sam2.1_hiera_tiny`` ...). Its YAML names the
official sam2 model config, image and feature sizes, export opset, parity tolerances and
quantization settings; every other module reads them from the :class:`Variant` built here.
The short aliases ``tiny | small | base_plus | large`` resolve to the SAM 2.1 variants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

CONFIGS_ENV = "SAM2_ONNX_CONFIGS"
_REQUIRED = ("name", "family", "size", "sam2_config", "checkpoint", "parameters",
             "image_size", "features", "opset", "parity", "quantization")


@dataclass(frozen=True)
class Variant:
    """One model variant as declared in ``configs/<name>.yaml``."""

    name: str                                  # e.g. "sam2.1_hiera_tiny"
    family: str                                # "sam2" or "sam2.1"
    size: str                                  # "tiny" | "small" | "base_plus" | "large"
    sam2_config: str                           # hydra config inside the sam2 package
    checkpoint: str                            # key of this variant in checkpoints.lock
    parameters: int                            # number of nn.Parameter elements of the built model
    image_size: int                            # encoder input side, pixels
    features: dict[str, tuple[int, ...]]       # encoder output name -> [C, H, W]
    opset: int                                 # default ONNX opset for export
    parity: dict[str, dict[str, float]]        # precision -> metric -> threshold
    quantization: dict[str, Any]               # precision -> settings
    aliases: tuple[str, ...] = field(default=())
    source: Path | None = None                 # the YAML it came from


def configs_dir() -> Path:
    """``$SAM2_ONNX_CONFIGS`` if set, else ``configs/`` next to the package (repo checkout)."""
    override = os.environ.get(CONFIGS_ENV)
    return Path(override) if override else Path(__file__).resolve().parent.parent / "configs"


def _parse(path: Path) -> Variant:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_REQUIRED) - {"aliases", "description"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if raw["name"] != path.stem:
        raise ConfigError(f"{path}: name {raw['name']!r} does not match the file name")
    return Variant(
        name=raw["name"],
        family=str(raw["family"]),
        size=raw["size"],
        sam2_config=raw["sam2_config"],
        checkpoint=raw["checkpoint"],
        parameters=int(raw["parameters"]),
        image_size=int(raw["image_size"]),
        features={k: tuple(int(d) for d in v) for k, v in raw["features"].items()},
        opset=int(raw["opset"]),
        parity=raw["parity"],
        quantization=raw["quantization"],
        aliases=tuple(raw.get("aliases") or ()),
        source=path,
    )


@cache
def _registry(directory: Path) -> dict[str, Variant]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no variant configs in {directory}; set ${CONFIGS_ENV} or run from a checkout")
    variants = {v.name: v for v in map(_parse, files)}
    return variants


def all_variants() -> list[Variant]:
    """Every declared variant, SAM 2 first then SAM 2.1, small to large as in the YAMLs."""
    order = {"tiny": 0, "small": 1, "base_plus": 2, "large": 3}
    return sorted(_registry(configs_dir()).values(), key=lambda v: (v.family, order.get(v.size, 9)))


def resolve(name: str) -> Variant:
    """Full name or alias -> Variant; unknown names list the valid ones."""
    registry = _registry(configs_dir())
    if name in registry:
        return registry[name]
    for variant in registry.values():
        if name in variant.aliases:
            return variant
    valid = sorted(registry) + sorted(a for v in registry.values() for a in v.aliases)
    raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(valid)}")
