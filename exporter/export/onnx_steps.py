"""One ONNX graph file through the export pipeline: trace, check, simplify (verified), stamp.

Every function works on a file in the staging folder, so large graphs never need two
in-memory copies: ONNX's shape inference and checker run on paths, in C++. A graph over
protobuf's 2 GB is a file and its external-data file (large_graphs.py); every step keeps the two
together.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

from ..checks.equivalence import Feeds, Outputs, Tolerance, compare, run_graph
from ..core import contract as C
from ..core.errors import ExportError, one_line
from ..core.video_contract import VIDEO
from . import large_graphs as L

# Simplified vs traced graph, same inputs, same runtime: the only differences come from
# onnxsim's constant folding and op fusion, so the bounds are as tight as the export tests'.
SIMPLIFY_TOLERANCE = {
    "encoder": Tolerance(rel_l2=1e-5),
    "decoder": Tolerance(max_abs=1e-4),
    "memory_attention": Tolerance(rel_l2=1e-5),
    "memory_encoder": Tolerance(rel_l2=1e-5),
    "video_decoder": Tolerance(max_abs=1e-4),
    "mask_prompt": Tolerance(max_abs=1e-4),
}


def trace(module, args: tuple, path: Path, role: str, opset: int, profile: C.Profile = C.SAMEXPORTER) -> None:
    """torch.onnx.export with the profile's names and dynamic axes (TorchScript tracer).

    Traced in a folder of its own: a graph over 2 GB comes out of torch as one file per tensor,
    gathered here into ``path`` + ``path.data``."""
    import torch

    _, inputs, outputs = profile.graphs()[role]
    folder = path.with_name(f".{path.name}.trace")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        _torch_export(torch, module, args, folder / path.name, inputs, outputs, opset)
        if len(list(folder.iterdir())) > 1:
            L.gather(folder / path.name, path)
        else:
            os.replace(folder / path.name, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if profile.static or profile.family == "sam1" or profile.name == VIDEO.name:
        _fix_output_dims(path, outputs)


def _torch_export(torch, module, args, path: Path, inputs, outputs, opset: int) -> None:
    with warnings.catch_warnings():
        # The TorchScript exporter's deprecation notice and its tracer warnings (shape
        # arithmetic turned into constants) are expected; the exported graphs are verified
        # against the PyTorch wrappers by the tests, for every variant and dynamic dim.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=C.names(inputs),
            output_names=C.names(outputs),
            dynamic_axes=C.dynamic_axes(inputs, outputs),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _fix_output_dims(path: Path, outputs) -> None:
    """Write the contract's fixed output dims into the traced file: the tracer names every
    reshaped output dim symbolically even when all inputs are fixed (a static profile), and
    SamOnnxModel's token axis comes out of a Resize unnamed (checked by strict shape inference
    in :func:`check`). Symbolic dims keep the tracer's names."""
    model = L.load_structure(path)
    for value, spec in zip(model.graph.output, outputs):
        for dim, size in zip(value.type.tensor_type.shape.dim, spec.shape):
            if not isinstance(size, str):
                dim.Clear()
                dim.dim_value = size
    L.save_structure(model, path, path)


def check(path: Path) -> None:
    """Strict shape inference with data propagation, written into the file, then the full checker.

    The TorchScript exporter leaves reshaped outputs with made-up symbolic dims; strict
    inference with data propagation recovers the static ones the contract declares.
    """
    tmp = path.with_suffix(".inferred")
    try:
        onnx.shape_inference.infer_shapes_path(str(path), str(tmp), strict_mode=True, data_prop=True)
        os.replace(tmp, path)
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{path.name} fails the ONNX checks: {one_line(exc, 1000, with_type=False)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def io_of(graph: onnx.GraphProto) -> tuple[list, list]:
    """``[(name, numpy dtype name, dims)]`` of the graph's inputs and outputs (see contract.mismatches)."""

    def describe(values):
        return [
            (
                v.name,
                np.dtype(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).name,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    return describe(graph.input), describe(graph.output)


def simplify_verified(
    path: Path, role: str, feeds: list[Feeds], reference: list[Outputs], standard_ops_only: bool = False
) -> dict:
    """onnxsim ``path`` in place, if the result checks and reproduces ``reference`` on ``feeds``.

    ``standard_ops_only``: no fusion into onnxruntime's contrib ops (onnxsim fuses fixed-shape
    attention into com.microsoft Attention, which NNAPI and CoreML cannot take).

    Returns the record kept in the manifest: status "applied" or "rejected", node counts,
    tolerance, the comparison, and why. A rejected simplification leaves ``path`` untouched.
    """

    def simplify(candidate: Path, record: dict) -> None:
        record["nodes_before"], record["nodes_after"] = _onnxsim(path, candidate, standard_ops_only)

    counts = {"nodes_before": None, "nodes_after": None}
    return _verified(path, role, feeds, reference, simplify, "simplified graph unusable", counts)


@contextlib.contextmanager
def _quiet_native_output():
    """Silence what C++ code prints on file descriptors 1 and 2 (onnxsim's constant folding logs
    a WARNING for every node it could not fold, which is expected and says nothing to users)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _onnxsim(src: Path, dst: Path, standard_ops_only: bool) -> tuple[int, int]:
    """onnxsim ``src`` into ``dst`` (no checks here); returns the node counts before and after."""
    with _quiet_native_output():
        return _run_onnxsim(src, dst, standard_ops_only)


def _run_onnxsim(src: Path, dst: Path, standard_ops_only: bool) -> tuple[int, int]:
    import onnxsim

    skipped = ["fuse_attention"] if standard_ops_only else None
    if L.has_external_data(src):  # onnxsim reads and writes the file itself (external data, its names)
        before = len(L.load_structure(src).graph.node)
        folder = dst.with_name(f".{dst.name}.onnxsim")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        try:
            simplified, _ = onnxsim.simplify(
                str(src), check_n=0, skipped_optimizers=skipped, output_path=str(folder / dst.name)
            )
            after = len(simplified.graph.node)
            del simplified
            L.gather(folder / dst.name, dst)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return before, after
    model = onnx.load(str(src))
    before = len(model.graph.node)
    simplified, _ = onnxsim.simplify(model, check_n=0, skipped_optimizers=skipped)
    del model
    onnx.save(simplified, str(dst))
    return before, len(simplified.graph.node)


def rewrite_verified(path: Path, role: str, feeds: list[Feeds], reference: list[Outputs], opset: int) -> dict:
    """mobile_rewrites.py on ``path`` in place, if the result checks and reproduces ``reference``;
    the record as :func:`simplify_verified`'s, with ``"replaced"``: ``{op type: nodes}``."""
    from .mobile_rewrites import rewrite_for_mobile

    def rewrite(candidate: Path, record: dict) -> None:
        shutil.copyfile(path, candidate)
        replaced = Counter(rewrite_for_mobile(candidate, opset))
        # The rewrites fix shapes ONNX inference could not follow (a zero Pad's, as a Concat):
        # folding the shape arithmetic that hung on them exposes what a second pass rewrites
        # (Hiera's rank-6 Transposes, whose dims were computed at run time).
        _onnxsim(candidate, candidate, standard_ops_only=True)
        replaced.update(rewrite_for_mobile(candidate, opset))
        record["replaced"] = dict(sorted(replaced.items()))

    return _verified(path, role, feeds, reference, rewrite, "rewritten graph unusable", {"replaced": {}})


def _verified(path: Path, role: str, feeds, reference, build, unusable: str, fields: dict) -> dict:
    """Replace ``path`` by what ``build(candidate, record)`` writes, if it passes the ONNX checks
    and reproduces ``reference`` on ``feeds`` within SIMPLIFY_TOLERANCE; ``path`` is untouched
    otherwise. Returns the record: its status, ``fields`` (filled by ``build``), tolerance,
    comparison and why."""
    candidate = path.with_suffix(".candidate")
    record = {"status": "rejected", **fields}
    record |= {"tolerance": SIMPLIFY_TOLERANCE[role].__dict__, "comparison": None, "detail": ""}
    try:
        build(candidate, record)
        check(candidate)
    except Exception as exc:  # an optimisation: any failure keeps the graph as it was
        record["detail"] = f"{unusable}: {one_line(exc)}"
        L.remove(candidate)
        return record
    result = compare(reference, run_graph(candidate, feeds), SIMPLIFY_TOLERANCE[role])
    record["comparison"] = result.as_dict()
    if result.ok:
        record["status"], record["detail"] = "applied", "same outputs on the sample photo within tolerance"
        L.move(candidate, path)
    else:
        record["detail"] = "outputs differ: " + "; ".join(result.failures[:3])
        L.remove(candidate)
    return record


def stamp(src: Path, dst: Path, role: str, props: dict[str, str], profile: C.Profile = C.SAMEXPORTER) -> None:
    """Check ``src``'s I/O against the profile, write provenance into metadata_props as ``dst``."""
    file, inputs, outputs = profile.graphs()[role]
    model = L.load_structure(src)
    got_in, got_out = io_of(model.graph)
    problems = C.mismatches(inputs, got_in) + C.mismatches(outputs, got_out)
    if problems:
        raise ExportError(f"{file} breaks the {profile.name} I/O contract: " + "; ".join(problems[:3]))
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = f"SAM 2 {role} graph exported by sam2-onnx; see metadata_props and manifest.json"
    L.save_structure(model, src, dst)
    del model
    src.unlink()
    check(dst)
