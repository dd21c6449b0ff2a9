"""How much of each graph ONNX Runtime Mobile's execution providers can take, and what blocks the rest.

``mobile_usability`` runs onnxruntime's own mobile usability checker
(``onnxruntime.tools.mobile_helpers.usability_checker``, what ``python -m
onnxruntime.tools.check_onnx_model_mobile_usability`` prints) on one graph file, step by step so
that its figures come back as data: the graph at onnxruntime's basic optimisation level (what
the ``.ort`` conversion bakes in), then per provider the nodes it can take, in how many
partitions, the operators it lacks and the checker's verdict (YES / MAYBE / NO), as the graph is
and, for a graph with dynamic shapes, with them fixed.

NNAPI and CoreML come from the checker's own op lists. The checker has none for XNNPACK, which
takes single nodes beside the CPU provider (no partitions, no copies): its share is counted from
the op types XNNPACK_OPS registers, an upper bound, as per-node conditions (constant weights, 2-D
MatMul weights) are not checked.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import onnx

from ..core.manifest import data_file

# The float kernels of onnxruntime's XNNPACK provider
# (onnxruntime/core/providers/xnnpack/xnnpack_execution_provider.cc, RegisterKernels), plus the
# activations it fuses into a Conv / ConvTranspose before it.
XNNPACK_OPS = frozenset(
    {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "Softmax", "Resize", "Gemm", "MatMul", "Clip", "Relu"}
)
PROVIDERS = ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram")


def _partitioning(info) -> dict:
    """A usability_checker.PartitioningInfo as JSON."""
    return {
        "nodes": info.num_nodes,
        "supported": info.num_supported_nodes,
        "partitions": info.num_partitions,
        "partition_sizes": [len(group) for group in info.supported_groups],
        "unsupported_ops": sorted(info.unsupported_ops),
        "unsupported_due_to_dynamic_shapes": info.nodes_unsupported_due_to_dynamic_input,
        "unsupported_due_to_rank": info.num_unsupported_nodes_due_to_rank,
        "verdict": info.suitability().name,
    }


def mobile_usability(path: Path) -> dict:
    """The mobile usability of the ONNX file ``path``.

    Returns ``{"nodes", "dynamic_inputs": [names], "providers": {provider: record}}``, each record
    as :func:`_partitioning` writes it, NNAPI and CoreML with ``"if_shapes_fixed"`` beside it
    when the graph has dynamic inputs, XNNPACK with ``nodes``, ``supported`` and ``ops`` (the op
    types it takes, with counts).
    """
    from onnxruntime.tools.mobile_helpers import usability_checker as U
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    checks = {
        "NNAPI": U.check_nnapi_partitions,
        "CoreML NeuralNetwork": lambda m, fixed: U.check_coreml_partitions(
            m, fixed, "coreml_supported_neuralnetwork_ops.md"
        ),
        "CoreML MLProgram": lambda m, fixed: U.check_coreml_partitions(m, fixed, "coreml_supported_mlprogram_ops.md"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / Path(path).name
        optimize_model(Path(path), optimized, use_external_initializers=True)  # as analyze_model does
        if data_file(path).is_file():  # over 2 GB: onnxruntime's helper infers shapes in memory (one protobuf)
            inferred = Path(tmp) / f"shapes.{Path(path).name}"
            onnx.shape_inference.infer_shapes_path(str(optimized), str(inferred), strict_mode=True)
            model = onnx.load(str(inferred), load_external_data=False)  # the checker reads the structure
        else:
            model = ModelProtoWithShapeInfo(optimized).model_with_shape_info
    dynamic_inputs, _ = U.check_shapes(model.graph)
    record = {"nodes": len(model.graph.node), "dynamic_inputs": sorted(v.name for v in dynamic_inputs), "providers": {}}
    for name, check in checks.items():
        # require_fixed_input_sizes=True: nodes fed dynamic shapes count as unsupported, as they are
        entry = _partitioning(check(model, True))
        if dynamic_inputs:
            entry["if_shapes_fixed"] = _partitioning(check(model, False))
        record["providers"][name] = entry
    ops = Counter(n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx") and n.op_type in XNNPACK_OPS)
    record["providers"]["XNNPACK"] = {
        "nodes": len(model.graph.node),
        "supported": sum(ops.values()),
        "ops": dict(sorted(ops.items())),
    }
    return record


def _op(name: str) -> str:
    return name.removeprefix("ai.onnx:")


def _cell(entry: dict) -> str:
    if "partitions" not in entry:  # XNNPACK: single nodes, no partitions
        return f"{entry['supported']}/{entry['nodes']} nodes"
    text = f"{entry['supported']}/{entry['nodes']} nodes, {entry['partitions']} partitions: {entry['verdict']}"
    fixed = entry.get("if_shapes_fixed")
    if fixed:
        text += f" (shapes fixed: {fixed['supported']}, {fixed['partitions']} partitions: {fixed['verdict']})"
    return text


def _blockers(entry: dict) -> str:
    """What keeps nodes off a provider: operators it lacks, tensor ranks it lacks, dynamic shapes."""
    parts = [_op(o) for o in entry["unsupported_ops"]]
    if entry["unsupported_due_to_rank"]:
        parts.append(f"{entry['unsupported_due_to_rank']} nodes of a rank it lacks")
    if entry["unsupported_due_to_dynamic_shapes"]:
        parts.append(f"{entry['unsupported_due_to_dynamic_shapes']} nodes fed dynamic shapes")
    return ", ".join(parts)


def mobile_text(
    mobile: dict, static: bool, rewrites: dict | None = None, forms: list | None = None, sam1: bool = False
) -> str:
    """The model card's mobile section from the release's ``mobile`` record
    (``{"onnxruntime": version, "files": {file: mobile_usability(file)}}``), and the manifest's
    ``mobile_rewrites`` (export/mobile_rewrites.py) and ``options.mobile_forms``
    (wrappers/mobile_forms.py), if the export made them."""
    rows = ["| file | " + " | ".join(PROVIDERS) + " | XNNPACK |", "|---|" + "---|" * (len(PROVIDERS) + 1)]
    blockers = []
    for name, r in mobile["files"].items():
        rows.append(f"| `{name}` | " + " | ".join(_cell(r["providers"][p]) for p in (*PROVIDERS, "XNNPACK")) + " |")
        lacks = [f"{p}: {_blockers(r['providers'][p])}" for p in PROVIDERS if _blockers(r["providers"][p])]
        blockers.append(f"- `{name}`: " + ("; ".join(lacks) or "none"))
    shapes = (
        "Every dim of these graphs is fixed (exported with `--static-shapes`), as NNAPI, CoreML and XNNPACK need."
        if static
        else "These graphs have dynamic shapes, which keep nodes off NNAPI and CoreML; "
        + (
            "SAM 1 is exported with dynamic shapes only (its decoder crops to `orig_im_size`)."
            if sam1
            else "`sam2-onnx export VARIANT --static-shapes L,N` writes files with every dim fixed."
        )
    )
    done = [
        f"{role}: " + ", ".join(f"{n} {op}" for op, n in r["replaced"].items())
        for role, r in (rewrites or {}).items()
        if r.get("status") == "applied" and r.get("replaced")
    ]
    if done:
        shapes += (
            " Operators NNAPI or CoreML lack were rewritten at export as ones they have, checked on the "
            f"sample photo and then by parity ({'; '.join(done)})."
        )
    if forms:
        shapes += (
            f" The decoder's branches ({', '.join(f'`{f}`' for f in forms)}) were traced as exact arithmetic in "
            "operators NNAPI and CoreML have, instead of Equal, Where, ArgMax and comparisons."
        )
    return f"""## On mobile (ONNX Runtime Mobile)

onnxruntime {mobile["onnxruntime"]}'s mobile usability checker on each graph, at the basic optimisation
level the `.ort` copies bake in: how many nodes each execution provider can take, in how many
partitions (each boundary copies tensors between the accelerator and the CPU), and the checker's
verdict (YES: one partition over 75 % of the nodes). XNNPACK takes single nodes beside the CPU
provider; its count is of the op types it registers, an upper bound. {shapes}

{chr(10).join(rows)}

What keeps the rest off each provider:

{chr(10).join(blockers)}

Loading, feeding and reading these files on Android and iOS: docs/mobile.md in sam2-onnx.

"""
