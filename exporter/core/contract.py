"""The I/O contract of the exported graphs, declared once.

Export, manifest, runtime, tests and docs (README.md, docs/io-contract.md) all read it from here. Standard library only,
so the torch-free runtime can import it. The default profile is compatible with samexporter /
NimbusImage consumers: names, order, dtypes and shapes below must not change.

Symbolic dims: ``B`` images per encoder call, ``L`` prompts per decoder call, ``N`` points per
prompt (boxes are two corner points, labels 2 and 3; shorter prompts are padded with label -1).
"""

from __future__ import annotations

from dataclasses import dataclass

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"

IMAGE_SIZE = 1024  # encoder input side; prompts are in this frame
LOW_RES_SIZE = 256  # decoder mask side (IMAGE_SIZE / 4)
PIXEL_MEAN = (0.485, 0.456, 0.406)  # SAM2Transforms: RGB /255, then ImageNet mean/std
PIXEL_STD = (0.229, 0.224, 0.225)
MASK_THRESHOLD = 0.0  # logits > threshold -> foreground
LOW_RES_CLAMP = 32.0  # returned low-res logits are clamped to +-this (not in graph)

LABEL_PAD, LABEL_BG, LABEL_FG, LABEL_BOX_TL, LABEL_BOX_BR = -1, 0, 1, 2, 3

# multimask_output=False: SAM 2 (build_sam2 with apply_postprocessing) returns token 0's mask
# unless its stability score falls below the threshold, then the best of tokens 1..3.
STABILITY_DELTA = 0.05
STABILITY_THRESH = 0.98


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple[int | str, ...]  # str = symbolic (dynamic) dim
    meaning: str


ENCODER_INPUTS = (
    TensorSpec(
        "image",
        "float32",
        ("B", 3, IMAGE_SIZE, IMAGE_SIZE),
        "RGB resized to 1024x1024, /255, ImageNet mean/std normalized",
    ),
)
ENCODER_OUTPUTS = (
    TensorSpec("high_res_feats_0", "float32", ("B", 32, 256, 256), "level-0 features after conv_s0"),
    TensorSpec("high_res_feats_1", "float32", ("B", 64, 128, 128), "level-1 features after conv_s1"),
    TensorSpec("image_embed", "float32", ("B", 256, 64, 64), "lowest-res features + no_mem_embed"),
)
DECODER_INPUTS = (
    TensorSpec("image_embed", "float32", (1, 256, 64, 64), "from encoder"),
    TensorSpec("high_res_feats_0", "float32", (1, 32, 256, 256), "from encoder"),
    TensorSpec("high_res_feats_1", "float32", (1, 64, 128, 128), "from encoder"),
    TensorSpec("point_coords", "float32", ("L", "N", 2), "x,y in the 1024x1024 input frame"),
    TensorSpec("point_labels", "float32", ("L", "N"), "1 fg, 0 bg, 2 box top-left, 3 box bottom-right, -1 padding"),
    TensorSpec("mask_input", "float32", ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE), "previous low-res logits, zeros if none"),
    TensorSpec("has_mask_input", "float32", ("L",), "1 if mask_input is used, else 0"),
)
DECODER_OUTPUTS = (
    TensorSpec(
        "masks",
        "float32",
        ("L", 3, LOW_RES_SIZE, LOW_RES_SIZE),
        "low-res mask logits, multimask tokens 1..3, unclamped",
    ),
    TensorSpec("iou_predictions", "float32", ("L", 3), "predicted IoU per mask"),
    # Appended after the contract's two outputs (which keep their names and order): SAM 2's
    # multimask_output=False answer, chosen in-graph by the stability rule above.
    TensorSpec(
        "single_masks",
        "float32",
        ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE),
        "multimask_output=False mask logits (token 0, or best of 1..3 if unstable)",
    ),
    TensorSpec("single_iou_predictions", "float32", ("L", 1), "predicted IoU of single_masks"),
)


def names(specs: tuple[TensorSpec, ...]) -> list[str]:
    return [s.name for s in specs]


def dynamic_axes(*groups: tuple[TensorSpec, ...]) -> dict[str, dict[int, str]]:
    """``{tensor name: {axis: symbol}}`` for every symbolic dim, as torch.onnx.export wants."""
    return {
        s.name: {i: d for i, d in enumerate(s.shape) if isinstance(d, str)}
        for group in groups
        for s in group
        if any(isinstance(d, str) for d in s.shape)
    }


def mismatches(specs: tuple[TensorSpec, ...], actual: list[tuple[str, str, list]]) -> list[str]:
    """How a graph's inputs or outputs differ from ``specs``; empty when they match.

    ``actual`` is ``[(name, numpy dtype name, dims)]`` in graph order, dims as ints (fixed) or
    strings (symbolic), read from an ONNX file or an onnxruntime session alike.
    """
    found = [a[0] for a in actual]
    if found != names(specs):
        return [f"names {found} != {names(specs)}"]
    problems = []
    for spec, (name, dtype, dims) in zip(specs, actual):
        if dtype != spec.dtype:
            problems.append(f"{name}: dtype {dtype} != {spec.dtype}")
        elif len(dims) != len(spec.shape) or any(
            not isinstance(got, str) if isinstance(want, str) else got != want for want, got in zip(spec.shape, dims)
        ):
            # symbolic dims must stay symbolic (any name); fixed dims must be exact
            problems.append(f"{name}: shape {list(dims)} != {list(spec.shape)}")
    return problems
