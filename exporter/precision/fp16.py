"""FP16 graphs with onnxconverter-common, and the search for the fewest nodes kept in FP32.

Inputs and outputs stay float32 (``keep_io_types``), so consumers feed the same tensors. Op
types known to lose accuracy in half precision (``op_block_list`` in configs) always stay FP32.
If the converted graph then misses its tolerance against the FP32 graph (both run in onnxruntime
on the sample photo and prompts), :func:`search` adds nodes to the FP32 set by bisection over
the graph's nodes in order, in the spirit of automatic mixed precision: a segment that converts
within tolerance stays FP16, a failing one is split until single nodes are pinned to FP32.

Three onnxconverter-common 1.16 quirks are repaired here, all found on SAM 2's graphs:
a graph output also read inside the graph gets its fp16 producer renamed under the reader's
feet (``iou_predictions`` in the decoder), and a ``Cast(to=float)`` whose result feeds fp16
nodes keeps ``to=float`` while its value_info says float16 (``sqrt(head_dim)`` in the encoder), and
outputs of pinned nodes come out as float16 despite ``keep_io_types``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ..checks.equivalence import Comparison, Feeds, Outputs, Tolerance, compare, run_graph
from ..core.errors import ExportError, one_line
from ..core.manifest import data_file

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@dataclass
class Fp16Result:
    """What the manifest records about one FP16 graph."""

    op_block_list: list[str]
    blocked_nodes: int  # nodes of the block-listed op types (always FP32)
    searched_nodes: list[str]  # nodes the search pinned to FP32 on top of those
    evaluations: int  # converted graphs the search ran
    comparison: dict  # the shipped graph vs FP32 on the sample inputs
    tolerance: dict
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "op_block_list": self.op_block_list,
            "blocked_nodes": self.blocked_nodes,
            "fp32_nodes_added_by_search": self.searched_nodes,
            "search_evaluations": self.evaluations,
            "tolerance": self.tolerance,
            "comparison": self.comparison,
            "notes": self.notes,
        }


def _name_nodes(model: onnx.ModelProto) -> None:
    """node_block_list works by name: give every node a unique one."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def _isolate_outputs(model: onnx.ModelProto) -> None:
    """Give each graph output that is also read inside the graph its own Identity.

    The converter renames the producer of a kept-float32 output and inserts a Cast; nodes that
    read the output internally would then read the float32 copy with fp16 kernels.
    """
    outputs = {o.name for o in model.graph.output}
    read = {i for n in model.graph.node for i in n.input}
    for name in sorted(outputs & read):
        inner = f"{name}__inner"
        for node in model.graph.node:
            node.output[:] = [inner if o == name else o for o in node.output]
            node.input[:] = [inner if i == name else i for i in node.input]
        model.graph.node.append(onnx.helper.make_node("Identity", [inner], [name], name=f"{name}__out"))


def _repair_casts(model: onnx.ModelProto) -> int:
    """Set ``to=float16`` on Casts the converter meant to produce float16 (see module doc)."""
    declared = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    fixed = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or declared.get(node.output[0]) != FLOAT16:
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == FLOAT:
                attr.i, fixed = FLOAT16, fixed + 1
    return fixed


def _join_fp32_islands(model: onnx.ModelProto) -> int:
    """Drop fp32 -> fp16 -> fp32 Cast round trips between neighbouring FP32 nodes.

    The converter wraps each pinned node in its own Casts, so two pinned neighbours would still
    exchange an fp16-rounded (or overflowed) tensor; after this pass they exchange float32.
    """
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}
    to = {id(n): next((a.i for a in n.attribute if a.name == "to"), None) for n in model.graph.node}
    declared = {
        v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]
    }
    declared |= {t.name: t.data_type for t in model.graph.initializer}
    rename, drop = {}, set()
    for down in model.graph.node:
        if down.op_type != "Cast" or to[id(down)] != FLOAT16 or declared.get(down.input[0]) != FLOAT:
            continue  # only float32 -> float16 casts (not the int64 -> float16 shape arithmetic)
        readers = consumers.get(down.output[0], [])
        backs = [c for c in readers if c.op_type == "Cast" and to[id(c)] == FLOAT and c.output[0] not in outputs]
        for back in backs:
            rename[back.output[0]] = down.input[0]
            drop.add(id(back))
        if len(backs) == len(readers) and down.output[0] not in outputs:
            drop.add(id(down))  # nobody reads the fp16 copy any more
    kept = [n for n in model.graph.node if id(n) not in drop]
    for node in kept:
        node.input[:] = [rename.get(i, i) for i in node.input]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return len(drop)


def _restore_float_outputs(model: onnx.ModelProto, float_outputs: set[str]) -> None:
    """Make every output that was float32 float32 again; the converter leaves the outputs of
    block-listed producers behind an fp32 -> fp16 Cast when their node is pinned."""
    producer = {o: n for n in model.graph.node for o in n.output}
    for out in model.graph.output:
        if out.name not in float_outputs or out.type.tensor_type.elem_type == FLOAT:
            continue
        out.type.tensor_type.elem_type = FLOAT
        node = producer[out.name]
        if node.op_type == "Cast":
            next(a for a in node.attribute if a.name == "to").i = FLOAT
        else:
            inner = f"{out.name}__fp16"
            node.output[:] = [inner if o == out.name else o for o in node.output]
            model.graph.node.append(
                onnx.helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=f"{out.name}__to_float")
            )


def convert(src: Path, dst: Path, op_block_list: list[str], node_block_list: list[str]) -> None:
    """Write ``src`` converted to FP16 as ``dst``; the listed op types and nodes stay FP32."""
    from onnxconverter_common import float16

    # A graph with external data (over 2 GB as FP32) cannot go through the converter's in-memory
    # shape inference (one protobuf): its shapes are inferred on the file, then loaded with it.
    large = data_file(src).is_file()
    inferred = src.with_name(f".{src.name}.fp16-shapes")  # beside src: its data file's location holds
    if large:
        structure = onnx.load(str(src), load_external_data=False)
        del structure.graph.value_info[:]  # stale float32 value_info from export would mislead the converter
        onnx.save(structure, str(inferred))
        del structure
        onnx.shape_inference.infer_shapes_path(str(inferred), str(inferred))
    try:
        model = onnx.load(str(inferred if large else src))
    finally:
        inferred.unlink(missing_ok=True)
    _name_nodes(model)
    _isolate_outputs(model)
    float_outputs = {o.name for o in model.graph.output if o.type.tensor_type.elem_type == FLOAT}
    if not large:
        del model.graph.value_info[:]  # stale float32 value_info from export would mislead the converter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "values truncated to fp16 range" notices, per initializer
        model = float16.convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=list(op_block_list),
            node_block_list=list(node_block_list),
            disable_shape_infer=large,
        )
    _repair_casts(model)
    _restore_float_outputs(model, float_outputs)
    _join_fp32_islands(model)
    onnx.save(model, str(dst))


def candidates(src: Path, op_block_list: list[str]) -> list[str]:
    """Nodes the search may pin to FP32, in graph order: all but the blocked ones (data movement
    included: a Concat or Gather of fp16 tensors rounds learned embeddings too)."""
    model = onnx.load(str(src), load_external_data=False)
    _name_nodes(model)
    return [n.name for n in model.graph.node if n.op_type not in op_block_list]


def build(
    src: Path,
    dst: Path,
    feeds: list[Feeds],
    reference: list[Outputs],
    tolerance: Tolerance,
    op_block_list: list[str],
    auto_search: bool = True,
    budget: int = 24,
) -> Fp16Result:
    """Convert ``src`` (FP32 ONNX) to ``dst`` meeting ``tolerance`` against ``reference``.

    ``feeds``/``reference``: the FP32 graph's inputs and outputs on the sample photo/prompts.
    Raises ExportError when even the search's best graph misses the tolerance.
    """
    model = onnx.load(str(src), load_external_data=False)
    blocked = sum(n.op_type in op_block_list for n in model.graph.node)
    del model
    tried: list[list[str]] = []

    def attempt(pinned: list[str]) -> Comparison:
        tried.append(list(pinned))
        convert(src, dst, op_block_list, pinned)
        try:
            return compare(reference, run_graph(dst, feeds), tolerance)
        except Exception as exc:  # e.g. an op without an fp16 kernel in this onnxruntime
            return Comparison(failures=[f"onnxruntime cannot run it: {one_line(exc, with_type=False)}"])

    pinned: list[str] = []
    result = attempt(pinned)
    notes = []
    if not result.ok and auto_search:
        pinned, result = search(candidates(src, op_block_list), attempt, budget)
        notes.append(f"block list alone missed the tolerance; search pinned {len(pinned)} more nodes")
    if not result.ok:
        if dst.exists():
            os.unlink(dst)
        raise ExportError(
            f"{src.name}: FP16 misses its tolerance ({'; '.join(result.failures[:2])}); "
            "add op types to quantization.fp16.op_block_list in configs"
        )
    if tried[-1] != pinned:  # the search's last attempt failed: rebuild the accepted one
        convert(src, dst, op_block_list, pinned)
    return Fp16Result(list(op_block_list), blocked, pinned, len(tried), result.as_dict(), tolerance.__dict__, notes)


def search(nodes: list[str], attempt, budget: int):
    """Fewest extra FP32 nodes: start with every candidate pinned, then release segments to FP16.

    ``attempt(pinned)`` converts and compares. A segment whose release keeps the graph within
    tolerance is released; a failing one is halved, down to single nodes, which stay pinned.
    When ``budget`` attempts are spent, the untried segments stay FP32 (safe, just larger).
    Returns (pinned nodes, comparison of that configuration).
    """
    pinned = list(nodes)
    best = attempt(pinned)
    if not best.ok:
        return pinned, best  # even all-FP32 arithmetic misses: nothing to find
    used = 1
    stack = [list(nodes)]
    while stack and used < budget:
        segment = stack.pop(0)
        released = set(segment)
        trial = [n for n in pinned if n not in released]
        result = attempt(trial)
        used += 1
        if result.ok:
            pinned, best = trial, result
        elif len(segment) > 1:
            half = len(segment) // 2
            stack[:0] = [segment[:half], segment[half:]]
    return pinned, best
