"""Graphs over protobuf's 2 GB (ViT-H's fp32 encoder): the weights in one external-data file.

One ``.onnx`` file is one protobuf message, which holds at most 2 GB. ONNX's external-data
format keeps tensor bytes in other files, named (``location``) relative to the ``.onnx``.
torch's exporter writes one such file per tensor (hundreds, named after the parameters); this
toolkit keeps every graph as at most two files that travel together, ``<file>`` and
``<file>.data`` (core/manifest.py ``data_file``), both hashed in the manifest.

The export steps handle a graph's structure (names, shapes, metadata) without loading its
weights: :func:`load_structure` and :func:`save_structure` read and write the protobuf alone and
keep the data file beside it, so a 2.5 GB graph costs its bytes in memory only where a step
needs them (gathering torch's files, onnxsim). Graphs under the limit never take these paths
and keep their bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx.external_data_helper import _get_all_tensors, uses_external_data

from ..core.manifest import PROTOBUF_LIMIT, data_file
from ..core.staging import usual_mode

__all__ = [
    "PROTOBUF_LIMIT",
    "gather",
    "has_external_data",
    "load_structure",
    "move",
    "remove",
    "save",
    "save_structure",
]
SIZE_THRESHOLD = 1024  # bytes: smaller tensors stay in the .onnx (scalars and shapes, as onnx's default)


def has_external_data(path: Path) -> bool:
    return data_file(path).is_file()


def _locations(model: onnx.ModelProto) -> set[str]:
    return {
        entry.value
        for tensor in _get_all_tensors(model)
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }


def save(model: onnx.ModelProto, path: Path) -> None:
    """Write a model held whole in memory as ``path`` + ``path.data`` (its tensors over
    SIZE_THRESHOLD in the data file)."""
    data = data_file(path)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=SIZE_THRESHOLD,
    )
    usual_mode(data)  # onnx writes it 0600; it ships beside a 0644 graph


def gather(src: Path, dst: Path) -> None:
    """``src``, whose external tensors lie in any files beside it (torch's exporter writes one per
    tensor), as ``dst`` + ``dst.data``; the files ``src`` named are removed. Loads the weights once."""
    structure = onnx.load(str(src), load_external_data=False)
    scattered = [src.parent / name for name in _locations(structure)]
    del structure
    model = onnx.load(str(src))  # with the weights, wherever they are
    save(model, dst)
    del model
    for path in scattered:
        if path.resolve() != data_file(dst).resolve():
            path.unlink(missing_ok=True)
    if src.resolve() != dst.resolve():
        src.unlink()


def load_structure(path: Path) -> onnx.ModelProto:
    """The protobuf alone: tensors in the data file stay there (referenced, not read)."""
    return onnx.load(str(path), load_external_data=False)


def save_structure(model: onnx.ModelProto, src: Path, dst: Path) -> None:
    """Write ``model`` (loaded from ``src`` by :func:`load_structure`) as ``dst``; ``src``'s data
    file becomes ``dst``'s, its tensors pointing there. ``src`` itself is left for the caller."""
    if _locations(model):
        for tensor in _get_all_tensors(model):
            for entry in tensor.external_data if uses_external_data(tensor) else ():
                if entry.key == "location":
                    entry.value = data_file(dst).name
        if Path(src).resolve() != Path(dst).resolve():
            os.replace(data_file(src), data_file(dst))
    onnx.save(model, str(dst))


def move(src: Path, dst: Path) -> None:
    """Rename a graph (``os.replace``), its data file with it."""
    if has_external_data(src):
        save_structure(load_structure(src), src, dst)
        Path(src).unlink()
    else:
        os.replace(src, dst)


def remove(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
    data_file(path).unlink(missing_ok=True)
