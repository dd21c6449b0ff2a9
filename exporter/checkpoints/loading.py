"""Load official checkpoints strictly, detect which variant a file is, make random weights.

Official SAM 2 checkpoints are ``torch.save({"model": state_dict})`` zip files; SAM 1's are
``torch.save(state_dict)``. Both are read with
``torch.load(weights_only=True)`` so a pickle that would run code is refused, and every key and
shape must match the requested variant exactly (no silent partial loads). When they do not, the
file's real variant is named, detected from its tensor shapes: trunk (ViT) width and depth, and
the keys only SAM 2.1 has.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import pickletools
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from ..core.digests import sha256_file
from ..core.errors import CheckpointError, refuse_overwrite
from ..core.variants import Variant, all_variants

# Keys that exist only in SAM 2.1 models (added with the 2.1 release's object-pointer changes).
_SAM21_ONLY = "no_obj_embed_spatial"
_PATCH = "image_encoder.trunk.patch_embed.proj.weight"  # [embed_dim, 3, 7, 7]
_SAM1_PATCH = "image_encoder.patch_embed.proj.weight"  # SAM 1's ViT: [embed_dim, 3, 16, 16]

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights came from, as recorded in manifests and reports."""

    kind: str  # "checkpoint" | "random"
    state_dict_sha256: str  # digest of the tensors themselves (see state_dict_digest)
    file_sha256: str | None = None
    path: str | None = None
    seed: int | None = None  # random: its seed; checkpoint: the seed a random-weights file is marked with


def state_dict_digest(sd: StateDict) -> str:
    """sha256 over sorted names, dtypes, shapes and raw bytes: equal iff the weights are equal."""
    h = hashlib.sha256()
    for name in sorted(sd):
        t = sd[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _pickle_globals(path: Path, limit: int = 64 << 20) -> list[str] | None:
    """Globals a plain pickle would import, found by disassembling it (nothing is executed).

    None when the bytes are not a parseable pickle at all.
    """
    names, strings = [], []
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(io.BytesIO(f.read(limit))):
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # any parse failure means "not a pickle"
        return None
    return names


def _describe_load_failure(path: Path, exc: BaseException) -> str:
    text = str(exc)
    if "failed finding central directory" in text or "failed reading zip archive" in text:
        return f"{path}: truncated or corrupt checkpoint (broken zip archive); download it again"
    if zipfile.is_zipfile(path):
        return f"{path}: a zip archive, but not a PyTorch checkpoint (no data.pkl record)"
    imports = _pickle_globals(path)
    if imports is None:
        return f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)"
    unsafe = [n for n in imports if not n.startswith(("torch.", "collections.OrderedDict"))]
    if unsafe:
        return (
            f"{path}: refused: its pickle would import {unsafe[0]} and run code, which "
            "weights-only loading forbids; only official checkpoints ({'model': state_dict}) load"
        )
    return f"{path}: not a PyTorch checkpoint ({exc.__class__.__name__}: {text.splitlines()[0][:120]})"


# Key under which save_checkpoint marks a file holding seeded random weights, so that an
# export from it is still recorded as random (and refused by `sam2-onnx release`).
RANDOM_MARK = "sam2_onnx_random_weights_seed"


def read_checkpoint(path: Path) -> StateDict:
    """Read ``{"model": state_dict}`` from ``path`` without executing code; CheckpointError if not."""
    return _read(path)["model"]


def _read(path: Path) -> dict:
    """The whole checkpoint dict: ``model`` checked to be a state dict of tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    # mmap keeps large checkpoints out of RSS; only zip-format files support it.
    mmap = zipfile.is_zipfile(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we explain
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types here; all mean "not a checkpoint"
        raise CheckpointError(_describe_load_failure(path, exc)) from exc
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        # SAM 1's official format: the state dict itself (a random-weights mark is a zip record)
        obj = {"model": obj} | ({RANDOM_MARK: seed} if (seed := _zip_mark(path)) is not None else {})
    if not isinstance(obj, dict) or "model" not in obj:
        got = sorted(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path}: not an official SAM checkpoint: expected a state dict (SAM 1) or a dict with "
            f"key 'model' holding one (SAM 2), got {got}"
        )
    sd = obj["model"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: 'model' is not a state dict of tensors")
    return obj


def _hiera_defaults() -> dict:
    from sam2.modeling.backbones.hieradet import Hiera

    params = inspect.signature(Hiera.__init__).parameters
    return {"embed_dim": params["embed_dim"].default, "stages": params["stages"].default}


def _zip_mark(path: Path) -> int | None:
    """The random-weights seed recorded beside a SAM 1 state dict (see save_checkpoint), or None."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        record = next((n for n in z.namelist() if n.endswith("/" + RANDOM_MARK)), None)
        return int(z.read(record)) if record else None


def _variant_fingerprint(variant: Variant) -> tuple:
    """What :func:`_state_dict_fingerprint` gives for ``variant``'s own architecture."""
    if variant.is_sam1:
        return _sam1_fingerprint(variant.sam1_model)
    return ("sam2", *_config_fingerprint(variant.sam2_config))


@cache
def _sam1_fingerprint(sam1_model: str) -> tuple:
    from segment_anything import sam_model_registry

    # segment_anything builds each size from constants in code: build it on the meta device
    # (no memory, no init) and read the shapes back
    with torch.device("meta"):
        sd = sam_model_registry[sam1_model](checkpoint=None).state_dict()
    return _state_dict_fingerprint(sd)


@cache
def _config_fingerprint(sam2_config: str) -> tuple[int, int, bool]:
    """(trunk embed_dim, trunk blocks, is SAM 2.1) read from a sam2 hydra config."""
    import sam2  # noqa: F401  (importing sam2 registers its configs with hydra)
    from hydra import compose

    model_cfg = compose(config_name=sam2_config).model
    trunk = {**_hiera_defaults(), **model_cfg.image_encoder.trunk}
    return int(trunk["embed_dim"]), int(sum(trunk["stages"])), bool(model_cfg.get(_SAM21_ONLY, False))


def _state_dict_fingerprint(sd: StateDict) -> tuple | None:
    """("sam2", trunk width, trunk blocks, is SAM 2.1) or ("sam1", ViT width, ViT blocks), or None."""
    if _SAM1_PATCH in sd:
        blocks = {k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")}
        return "sam1", int(sd[_SAM1_PATCH].shape[0]), len(blocks)
    if _PATCH not in sd:
        return None
    blocks = {k.split(".")[3] for k in sd if k.startswith("image_encoder.trunk.blocks.")}
    return "sam2", int(sd[_PATCH].shape[0]), len(blocks), _SAM21_ONLY in sd


def detect_variant(sd: StateDict) -> Variant | None:
    """The variant whose architecture the state dict's shapes describe, or None."""
    fp = _state_dict_fingerprint(sd)
    if fp is None:
        return None
    return next((v for v in all_variants() if _variant_fingerprint(v) == fp), None)


def build_model(variant: Variant) -> torch.nn.Module:
    """The official model for ``variant`` (SAM2Base, or SAM 1's Sam) on CPU in eval mode,
    default (unseeded) init."""
    if variant.is_sam1:
        from segment_anything import sam_model_registry

        return sam_model_registry[variant.sam1_model](checkpoint=None).eval()
    from sam2.build_sam import build_sam2

    return build_sam2(variant.sam2_config, None, device="cpu", mode="eval")


def video_predictor(variant: Variant, model: torch.nn.Module) -> torch.nn.Module:
    """The official SAM2VideoPredictor for ``variant`` (build_sam2_video_predictor's defaults:
    stability fallback, clicks binarized for the memory encoder, fill_hole_area 8) holding
    ``model``'s weights, on CPU in eval mode. The image model and the video predictor share one
    state dict: every key must load."""
    if variant.is_sam1:
        raise CheckpointError(f"{variant.name}: SAM 1 has no video predictor")
    import warnings

    from sam2.build_sam import build_sam2_video_predictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sam2 warns that its CUDA extension is absent (CPU)
        predictor = build_sam2_video_predictor(variant.sam2_config, None, device="cpu", mode="eval")
    predictor.load_state_dict(model.state_dict(), strict=True)
    return predictor.eval()


def _mismatch_summary(model_sd: StateDict, sd: StateDict) -> str:
    missing = sorted(set(model_sd) - set(sd))
    extra = sorted(set(sd) - set(model_sd))
    shapes = [k for k in model_sd if k in sd and model_sd[k].shape != sd[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} shape mismatches (e.g. {k}: file {tuple(sd[k].shape)} vs model {tuple(model_sd[k].shape)})"
        )
    return ", ".join(parts)


def _refuse_other_variant(sd: StateDict, variant: Variant, origin: str) -> None:
    """CheckpointError naming the variant ``sd`` really is, if it is a known other one."""
    actual = detect_variant(sd)
    if actual is not None and actual.name != variant.name:
        raise CheckpointError(f"{origin} is a {actual.name} checkpoint, not {variant.name}; use variant {actual.name}")


def load_into(model: torch.nn.Module, variant: Variant, sd: StateDict, origin: str) -> None:
    """Strictly load ``sd`` into ``model``; on mismatch name the variant the weights really are."""
    summary = _mismatch_summary(model.state_dict(), sd)
    if summary:
        _refuse_other_variant(sd, variant, origin)
        raise CheckpointError(f"{origin} does not match {variant.name}: {summary}")
    model.load_state_dict(sd, strict=True)


def load_checkpoint(variant: Variant, path: Path) -> tuple[torch.nn.Module, WeightsSource]:
    """Build ``variant`` and load the official checkpoint at ``path`` into it, strictly."""
    obj = _read(path)
    sd, seed = obj["model"], obj.get(RANDOM_MARK)
    _refuse_other_variant(sd, variant, str(path))  # before building a model of the wrong size
    model = build_model(variant)
    load_into(model, variant, sd, str(path))
    return model, WeightsSource(
        "checkpoint",
        state_dict_digest(sd),
        sha256_file(path),
        str(path),
        seed=int(seed) if isinstance(seed, int) else None,
    )


def random_model(variant: Variant, seed: int = 0) -> tuple[torch.nn.Module, WeightsSource]:
    """``variant`` with its package's own initialisation under ``torch.manual_seed(seed)``.

    The global RNG is forked so callers' random state is untouched; the same seed gives the
    same weights (same state_dict_digest) in any process on CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(variant)
    return model, WeightsSource("random", state_dict_digest(model.state_dict()), seed=seed)


def save_checkpoint(model: torch.nn.Module, path: Path, force: bool = False, random_seed: int | None = None) -> str:
    """Write ``{"model": state_dict}`` atomically (official format); returns the file's sha256.

    ``random_seed``: the weights are :func:`random_model`'s for that seed; the file says so
    (an extra key the official loader ignores), and exports from it are recorded as random.
    """
    path = Path(path)
    refuse_overwrite(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch.save names the zip's records after the file's stem, so the temporary file keeps
    # the final name (inside a hidden temp dir): same weights -> byte-identical file.
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tmp = tmp_dir / path.name
        if hasattr(model, "image_encoder") and not hasattr(model.image_encoder, "trunk"):
            # SAM 1's format is the bare state dict, which its loader reads strictly: a mark
            # goes into a record of the zip archive that torch.load does not read
            torch.save(model.state_dict(), tmp)
            if random_seed is not None:
                with zipfile.ZipFile(tmp, "a") as z:
                    z.writestr(f"{path.stem}/{RANDOM_MARK}", str(int(random_seed)))
        else:
            extra = {} if random_seed is None else {RANDOM_MARK: int(random_seed)}
            torch.save({"model": model.state_dict(), **extra}, tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return sha256_file(path)


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    variant: Variant | None
    parameters: int  # elements of the model's nn.Parameters found in the file
    tensors: int
    elements: int  # all tensor elements, buffers included
    file_bytes: int
    file_sha256: str
    state_dict_sha256: str
    problem: str | None  # why it does not load into the detected variant, if it does not


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    """Read a checkpoint, detect its variant and verify it loads strictly into that variant."""
    sd = read_checkpoint(path)
    variant = detect_variant(sd)
    problem, parameters = None, 0
    if variant is None:
        problem = "its tensor shapes match no known variant"
    else:
        model = build_model(variant)
        problem = _mismatch_summary(model.state_dict(), sd) or None
        parameters = sum(sd[n].numel() for n, _ in model.named_parameters() if n in sd)
    return CheckpointInfo(
        Path(path),
        variant,
        parameters,
        len(sd),
        sum(t.numel() for t in sd.values()),
        Path(path).stat().st_size,
        sha256_file(path),
        state_dict_digest(sd),
        problem,
    )
