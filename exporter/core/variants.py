"""Variant registry: ``configs/defaults.yaml`` plus one short YAML per variant under ``configs/``.

A variant is a SAM 2 / SAM 2.1 model size (``sam2.1_hiera_tiny`` ...) or a SAM 1 one
(``sam_vit_b`` ...). Its YAML names the official model (a sam2 hydra config, or a
segment_anything ``sam_model_registry`` key) and checkpoint and holds what differs from the defaults; merged over
them it gives the export opset, parity tolerances and quantization settings, which every other
module reads from the :class:`Variant` built here. Image and feature sizes are the contract's.
The short aliases ``tiny | small | base_plus | large`` resolve to the SAM 2.1 variants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import contract as C
from .checkout import ROOT
from .errors import ConfigError

CONFIGS_ENV = "SAM2_ONNX_CONFIGS"
DEFAULTS_FILE = "defaults.yaml"
_IDENTITY = ("name", "family", "size", "checkpoint", "parameters")  # per variant only
# the key naming the official model, per family: a sam2 hydra config or a sam_model_registry key
MODEL_KEYS = {"sam1": "sam1_model", "sam2": "sam2_config", "sam2.1": "sam2_config"}
SAM1 = "sam1"
_SHARED = ("opset", "parity", "quantization")  # defaults, overridable
_OPTIONAL = ("aliases", "description")


@dataclass(frozen=True)
class Variant:
    """One model variant as declared in ``configs/<name>.yaml``."""

    name: str  # e.g. "sam2.1_hiera_tiny"
    family: str  # "sam1", "sam2" or "sam2.1"
    size: str  # "tiny" | "small" | "base_plus" | "large"; SAM 1: "vit_b" | "vit_l" | "vit_h"
    checkpoint: str  # key of this variant in checkpoints.lock
    parameters: int  # number of nn.Parameter elements of the built model
    opset: int  # default ONNX opset for export
    parity: dict[str, dict[str, float]]  # precision -> metric -> threshold
    quantization: dict[str, Any]  # precision -> settings
    sam2_config: str = ""  # SAM 2 / 2.1: hydra config inside the sam2 package
    sam1_model: str = ""  # SAM 1: key of segment_anything's sam_model_registry
    aliases: tuple[str, ...] = field(default=())
    source: Path | None = None  # the YAML it came from

    @property
    def is_sam1(self) -> bool:
        return self.family == SAM1

    @property
    def io_profile(self) -> C.Profile:
        """The family's default I/O profile (``core/contract.py``)."""
        return C.default_profile(self.family)

    @property
    def image_size(self) -> int:
        """Encoder input side in pixels (the contract's, the same for every variant)."""
        return C.IMAGE_SIZE

    @property
    def features(self) -> dict[str, tuple[int, ...]]:
        """Encoder output name -> [C, H, W] per image (the family's contract)."""
        return {s.name: tuple(s.shape[1:]) for s in self.io_profile.encoder_outputs}


def configs_dir() -> Path:
    """``$SAM2_ONNX_CONFIGS`` if set, else ``configs/`` next to the package (repo checkout)."""
    override = os.environ.get(CONFIGS_ENV)
    return Path(override) if override else ROOT / "configs"


def _load(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def _merge(defaults: dict, override: dict, path: Path, where: str = "") -> dict:
    """``override`` over ``defaults``: mappings merged key by key, anything else replaced. A key
    the defaults do not have is a typo, not a setting: refused, with its dotted path."""
    merged = dict(defaults)
    for key, value in override.items():
        dotted = f"{where}{key}"
        if key not in defaults:
            raise ConfigError(f"{path}: unknown key {dotted} (not in {DEFAULTS_FILE})")
        if isinstance(defaults[key], dict) and isinstance(value, dict):
            merged[key] = _merge(defaults[key], value, path, dotted + ".")
        else:
            merged[key] = value
    return merged


def _parse(path: Path, defaults: dict) -> Variant:
    raw = _load(path)
    family = str(raw.get("family"))
    if "family" in raw and family not in MODEL_KEYS:
        raise ConfigError(f"{path}: unknown family {family!r}; known: {', '.join(MODEL_KEYS)}")
    identity = _IDENTITY + ((MODEL_KEYS[family],) if family in MODEL_KEYS else ())
    missing = [k for k in identity if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - set(identity) - set(_SHARED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if raw["name"] != path.stem:
        raise ConfigError(f"{path}: name {raw['name']!r} does not match the file name")
    shared = _merge(defaults, {k: raw[k] for k in _SHARED if k in raw}, path)
    missing = [k for k in _SHARED if k not in shared]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {', '.join(missing)} (neither here nor in {DEFAULTS_FILE})")
    return Variant(
        name=raw["name"],
        family=family,
        size=raw["size"],
        checkpoint=raw["checkpoint"],
        parameters=int(raw["parameters"]),
        opset=int(shared["opset"]),
        parity=shared["parity"],
        quantization=shared["quantization"],
        **{MODEL_KEYS[family]: str(raw[MODEL_KEYS[family]])},
        aliases=tuple(raw.get("aliases") or ()),
        source=path,
    )


@cache
def _registry(directory: Path) -> dict[str, Variant]:
    files = sorted(f for f in directory.glob("*.yaml") if f.name != DEFAULTS_FILE)
    if not files:
        raise ConfigError(f"no variant configs in {directory}; set ${CONFIGS_ENV} or run from a checkout")
    defaults_path = directory / DEFAULTS_FILE
    defaults = _load(defaults_path) if defaults_path.exists() else {}
    unknown = sorted(set(defaults) - set(_SHARED))
    if unknown:
        raise ConfigError(f"{defaults_path}: unknown key(s) {', '.join(unknown)}; it holds {', '.join(_SHARED)}")
    return {v.name: v for v in (_parse(f, defaults) for f in files)}


def all_variants(sam1: bool = True) -> list[Variant]:
    """Every declared variant, SAM 1 (unless not ``sam1``), SAM 2, SAM 2.1, small to large."""
    order = {"tiny": 0, "small": 1, "base_plus": 2, "large": 3, "vit_b": 0, "vit_l": 1, "vit_h": 2}
    variants = sorted(_registry(configs_dir()).values(), key=lambda v: (v.family, order.get(v.size, 9)))
    return [v for v in variants if sam1 or not v.is_sam1]


def sam2_variants() -> list[Variant]:
    """The SAM 2 and SAM 2.1 variants (what code built on the sam2 package iterates)."""
    return all_variants(sam1=False)


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
