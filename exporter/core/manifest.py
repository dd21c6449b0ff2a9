"""``manifest.json``: what an artifact folder holds, how it was made, and how to check it.

Standard library only, so the torch-free runtime reads and verifies manifests with this same
code. The I/O spec and preprocessing constants are rendered from :mod:`exporter.core.contract`;
nothing here restates them.

Layout (schema 1)::

    {"schema": "sam2-onnx/manifest", "schema_version": 1,
     "variant": {...}, "versions": {...}, "opset": 17, "exporter": "...",
     "weights": {"source": "random"|"checkpoint", "state_dict_sha256": ..., ...},
     "files": {"encoder.onnx": {"graph": "encoder", "precision": "fp32", "sha256": ..., "bytes": ...,
                                "external_data": {"file": "encoder.onnx.data", "sha256": ..., "bytes": ...}}, ...},
       ("external_data": a graph over protobuf's 2 GB, e.g. ViT-H's fp32 encoder, or export --external-data)
     "io": {"encoder": {"file": ..., "inputs": [...], "outputs": [...]}, "decoder": {...}},
     "preprocessing": {...}, "single_mask": {...}, "options": {...}, "simplification": {...}}

No timestamps or absolute paths: exporting the same weights twice gives the same manifest.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from . import contract as C
from .digests import sha256_file
from .errors import InputError, IntegrityError, ManifestError
from .staging import write_text_atomic

MANIFEST_FILE = "manifest.json"
DATA_SUFFIX = ".data"  # a graph's external-data file: its file name plus this
PROTOBUF_LIMIT = 2**31  # bytes: one .onnx file (a protobuf message) holds at most this; an .ort one too
SCHEMA = "sam2-onnx/manifest"
SCHEMA_VERSION = 1

GRAPHS = C.SAMEXPORTER.graphs()  # graph role -> (fp32 file, inputs, outputs) of the default profile


def package_versions(*dists: str) -> dict[str, str]:
    """Installed distribution versions ("not installed" rather than failing)."""
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = "not installed"
    return out


def _specs(specs: tuple[C.TensorSpec, ...]) -> list[dict]:
    return [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape), "meaning": s.meaning} for s in specs]


def io_spec(profile: C.Profile = C.SAMEXPORTER) -> dict:
    """A profile's contract as JSON: per graph its file and inputs/outputs, symbolic dims as strings."""
    return {
        role: {"file": file, "inputs": _specs(ins), "outputs": _specs(outs)}
        for role, (file, ins, outs) in profile.graphs().items()
    }


def manifest_profile(manifest: dict) -> C.Profile:
    """The I/O profile a folder was exported with (manifests without the key: the default),
    with its fixed shapes if it was exported with ``--static-shapes``."""
    record = manifest.get("profile") or {}
    name = record.get("name", C.DEFAULT_PROFILE)
    if name not in C.PROFILES:
        raise ManifestError(f"manifest names I/O profile {name!r}, unknown to this sam2-onnx ({', '.join(C.PROFILES)})")
    static = record.get("static_shapes")
    try:
        return C.PROFILES[name].with_static_shapes(static["prompts"], static["points"]) if static else C.PROFILES[name]
    except (InputError, KeyError, TypeError) as exc:
        raise ManifestError(f"manifest's static_shapes {static!r} are unusable: {exc}") from None


def preprocessing(profile: C.Profile = C.SAMEXPORTER) -> dict:
    """What a consumer must do around the graphs to reproduce the official predictor
    (SAM2ImagePredictor, or SAM 1's SamPredictor for a SAM 1 profile)."""
    if profile.family == "sam1":
        return {
            "image_size": C.IMAGE_SIZE,
            "steps": [  # ResizeLongestSide, then Sam.preprocess
                "RGB uint8 HxWx3 resized so that its longest side is image_size (PIL bilinear on uint8; "
                "new side = int(side * image_size / max(H, W) + 0.5))",
                "float32, subtract pixel_mean, divide by pixel_std (per channel, 0..255 scale)",
                "zero-pad at the bottom and right to image_size x image_size",
            ],
            "pixel_mean": list(C.SAM1_PIXEL_MEAN),
            "pixel_std": list(C.SAM1_PIXEL_STD),
            "point_coords": "pixel x,y times (new width / width, new height / height)",
            "boxes": "x0,y0,x1,y1 as two points labelled 2 and 3, after the other points",
            "padding_label": C.LABEL_PAD,
            "padding_point": "without a box, append (0, 0) with label -1 (SamPredictor does)",
            "low_res_size": C.LOW_RES_SIZE,
            "upsample": "in the graph: masks are logits at orig_im_size",
            "mask_threshold": C.MASK_THRESHOLD,
        }
    return {
        "image_size": C.IMAGE_SIZE,
        "steps": [  # SAM2Transforms, in this order
            "RGB uint8 HxWx3 -> float32 3xHxW divided by 255",
            "resize to image_size x image_size, bilinear with antialias, aspect ratio not kept",
            "subtract pixel_mean, divide by pixel_std (per channel)",
        ],
        "pixel_mean": list(C.PIXEL_MEAN),
        "pixel_std": list(C.PIXEL_STD),
        "point_coords": "pixel x,y scaled by (image_size / width, image_size / height)",
        "boxes": "x0,y0,x1,y1 as two points labelled 2 and 3, placed before the other points",
        "padding_label": C.LABEL_PAD,
        "low_res_size": C.LOW_RES_SIZE,
        "upsample": "bilinear, align_corners=False, low-res logits -> original height x width",
        "mask_threshold": C.MASK_THRESHOLD,
        "low_res_logits_clamp": C.LOW_RES_CLAMP,
    }


def single_mask(profile: C.Profile = C.SAMEXPORTER) -> dict:
    """How multimask_output=False is served (documented in docs/io-contract.md as well)."""
    if profile.family == "sam1" and not profile.multimask:
        return {
            "outputs": ["masks", "iou_predictions", "low_res_masks"],
            "rule": "one mask per prompt, chosen in the graph (SamOnnxModel with return_single_mask=True): "
            f"the best of tokens 1..3 by predicted IoU for a prompt of at most {int(C.SAM1_SINGLE_POINTS)} "
            "points (a click and its padding point), else token 0",
        }
    if profile.family == "sam1":
        return {
            "outputs": ["masks", "iou_predictions", "low_res_masks"],
            "rule": f"the graph returns all {C.SAM1_MASKS} tokens' masks; multimask_output=True is tokens "
            "1..3 and False is token 0, as SamPredictor selects them",
        }
    return {
        "outputs": [s.name for s in C.DECODER_OUTPUTS[2:]],
        "rule": "token 0's mask unless its stability score (IoU of the masks thresholded at "
        f"+-{C.STABILITY_DELTA}) is below {C.STABILITY_THRESH}; then the best of tokens "
        "1..3 by predicted IoU (SAM 2's dynamic_multimask_via_stability, in the graph)",
    }


def random_seed(weights: dict) -> int | None:
    """The seed if the weights are seeded random ones (exported with --random-weights, or from a
    checkpoint file saved as random weights), else None."""
    if weights.get("source") == "random":
        return weights.get("seed")
    return weights.get("random_weights_seed")


def data_file(path: Path) -> Path:
    """Where a graph over protobuf's 2 GB (or exported with --external-data) keeps its weights:
    ``encoder.onnx`` -> ``encoder.onnx.data``, one ONNX external-data file beside it
    (export/large_graphs.py writes it)."""
    path = Path(path)
    return path.with_name(path.name + DATA_SUFFIX)


def file_entry(path: Path, graph: str, precision: str) -> dict:
    """A graph's manifest entry: size and sha256 of the file, and of its external-data file if it has one."""
    path = Path(path)
    entry = {"graph": graph, "precision": precision, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    data = data_file(path)
    if data.is_file():
        entry["external_data"] = {"file": data.name, "sha256": sha256_file(data), "bytes": data.stat().st_size}
    return entry


def graph_bytes(entry: dict) -> int:
    """A graph's size on disk: its .onnx file plus its external-data file, if any."""
    return entry["bytes"] + entry.get("external_data", {}).get("bytes", 0)


def listed_files(manifest: dict, names: list[str] | None = None) -> list[str]:
    """The files on disk behind the graphs ``names`` (all by default): each graph file and,
    right after it, its external-data file if it has one."""
    out = []
    for name in names if names is not None else list(manifest["files"]):
        out.append(name)
        if "external_data" in manifest["files"].get(name, {}):
            out.append(manifest["files"][name]["external_data"]["file"])
    return out


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write ``folder/manifest.json`` atomically, keys in a stable order."""
    path = Path(folder) / MANIFEST_FILE
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(folder: Path) -> dict:
    """Load and sanity-check ``folder/manifest.json``."""
    path = Path(folder) / MANIFEST_FILE
    if not Path(folder).is_dir():
        raise ManifestError(f"{folder}: not a directory (expected an exported model folder)")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing; is {folder} a folder written by `sam2-onnx export`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ManifestError(f"{path}: not a sam2-onnx manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            f"{path}: schema version {manifest.get('schema_version')} "
            f"is not supported (this sam2-onnx reads {SCHEMA_VERSION})"
        )
    if not isinstance(manifest.get("files"), dict):
        raise ManifestError(f"{path}: has no file list")
    return manifest


def verify_files(folder: Path, manifest: dict, names: list[str] | None = None, entries: dict | None = None) -> None:
    """Check size then sha256 of each listed file (all by default); IntegrityError names the first bad one.
    ``entries``: the file entries to read instead of the manifest's ``files`` (e.g. its ``video`` part's)."""
    entries = manifest["files"] if entries is None else entries
    for name in names if names is not None else list(entries):
        entry = entries.get(name)
        if entry is None:
            raise ManifestError(f"{folder}: manifest lists no file {name}")
        _verify_file(Path(folder) / name, entry)
        if "external_data" in entry:
            _verify_file(Path(folder) / entry["external_data"]["file"], entry["external_data"])


def _verify_file(path: Path, entry: dict) -> None:
    if not path.is_file():
        raise IntegrityError(f"{path}: missing (listed in the manifest)")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise IntegrityError(
            f"{path}: {size} bytes, manifest says {entry['bytes']} (truncated or replaced; re-export or re-download)"
        )
    if sha256_file(path) != entry["sha256"]:
        raise IntegrityError(
            f"{path}: sha256 differs from the manifest (modified or corrupt; re-export or re-download)"
        )
