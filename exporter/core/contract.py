"""The I/O contracts of the exported graphs, declared once: one :class:`Profile` per consumer.

Export, manifest, runtime, tests and docs (README.md, docs/io-contract.md) all read them from here.
Standard library only, so the torch-free runtime can import it. The default profile is compatible
with samexporter / NimbusImage consumers: names, order, dtypes and shapes below must not change.
The other profiles (``PROFILES``) are other consumers' contracts, read from their source: CVAT's
SAM 2 plugin and onnxruntime's own SAM 2 tool; SAM 1 graphs follow segment_anything's own ONNX
export (``SamOnnxModel``), the contract of the apps that ship SAM 1.

Symbolic dims: ``B`` images per encoder call, ``L`` prompts per decoder call, ``N`` points per
prompt (boxes are two corner points, labels 2 and 3; shorter prompts are padded with label -1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import InputError

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"

IMAGE_SIZE = 1024  # encoder input side; prompts are in this frame
LOW_RES_SIZE = 256  # decoder mask side (IMAGE_SIZE / 4)
PIXEL_MEAN = (0.485, 0.456, 0.406)  # SAM2Transforms: RGB /255, then ImageNet mean/std
PIXEL_STD = (0.229, 0.224, 0.225)
MASK_THRESHOLD = 0.0  # logits > threshold -> foreground
LOW_RES_CLAMP = 32.0  # returned low-res logits are clamped to +-this (not in graph)

MAX_STATIC = 64  # largest L or N of a static-shape export

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
    # What the tensor is, in the default profile's names (or one of EXTRA_ROLES); "" = its name.
    # Profiles rename, reorder and retype tensors; the role is how wrappers and runtime match them.
    role: str = ""

    @property
    def what(self) -> str:
        return self.role or self.name


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


# Roles that only other profiles' graphs have.
ORIG_SIZE = "orig_im_size"  # int32 [2]: original (height, width)
MASKS_AT_ORIGINAL = "masks_at_original"  # single-mask logits upsampled to the original size
LOW_RES_CLAMPED = "low_res_clamped"  # single-mask low-res logits clamped to +-LOW_RES_CLAMP
BOX_ROLES = ("box_x0", "box_y0", "box_x1", "box_y1")  # the mask's bounding box, inclusive pixels


@dataclass(frozen=True)
class Profile:
    """One consumer's I/O contract: the four tensor lists, the coordinate frame and what masks mean.

    ``coords``: ``"square"``, x, y scaled by (1024 / W, 1024 / H) as SAM2Transforms does, or
    ``"longest_side"``, both scaled by 1024 / max(H, W) (SAM 1's frame, which CVAT keeps; the
    graph maps it to the square frame with ``orig_im_size``).
    ``masks``: ``"low_res_logits"`` (the runtime upsamples), ``"original_logits"`` or
    ``"original_bool"`` (upsampled in the graph, thresholded at ``MASK_THRESHOLD`` for bool).
    ``multimask``: whether the decoder serves ``multimask_output=True``; without it, it returns
    SAM 2's single stability-chosen mask per prompt (``multimask_output=False``).
    """

    name: str
    consumer: str
    encoder_inputs: tuple[TensorSpec, ...]
    encoder_outputs: tuple[TensorSpec, ...]
    decoder_inputs: tuple[TensorSpec, ...]
    decoder_outputs: tuple[TensorSpec, ...]
    coords: str = "square"
    masks: str = "low_res_logits"
    multimask: bool = True
    static: tuple[int, int] | None = None  # (L, N) of a fixed-shape export (with_static_shapes)
    family: str = "sam2"  # the model family whose graphs these are ("sam2" covers SAM 2.1; "sam1")

    def graphs(self) -> dict[str, tuple[str, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]:
        """``{role: (fp32 file, inputs, outputs)}`` for the encoder and decoder."""
        return {
            "encoder": (ENCODER_FILE, self.encoder_inputs, self.encoder_outputs),
            "decoder": (DECODER_FILE, self.decoder_inputs, self.decoder_outputs),
        }

    def spec(self, graph: str, what: str) -> TensorSpec | None:
        """The tensor of ``graph`` ("encoder" / "decoder") whose role is ``what``, else None."""
        _, ins, outs = self.graphs()[graph]
        return next((s for s in ins + outs if s.what == what), None)

    def describe(self) -> dict:
        """What the manifest records about the profile besides its tensors."""
        record = {
            "name": self.name,
            **({"family": self.family} if self.family != "sam2" else {}),  # SAM 2 manifests keep their keys
            "consumer": self.consumer,
            "coords": self.coords,
            "masks": self.masks,
            "multimask": self.multimask,
        }
        if self.static:  # absent for dynamic folders, whose manifests keep their keys
            record["static_shapes"] = {"prompts": self.static[0], "points": self.static[1]}
        return record

    def with_static_shapes(self, prompts: int, points: int) -> Profile:
        """This profile with every symbolic dim fixed: ``B`` = 1, ``L`` = ``prompts``, ``N`` =
        ``points``, for the mobile execution providers that need static shapes (NNAPI, CoreML,
        XNNPACK). Shorter prompts are padded with label -1 points, fewer prompts by repeating one
        (runtime/profiles.py). InputError if a dim would stay symbolic (masks at the original size)."""
        if prompts < 1 or points < 1 or max(prompts, points) > MAX_STATIC:
            raise InputError(f"--static-shapes {prompts},{points}: prompts and points must be 1 to {MAX_STATIC}")
        dims = {"B": 1, "L": prompts, "N": points}

        def fix(specs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
            return tuple(replace(s, shape=tuple(dims.get(d, d) for d in s.shape)) for s in specs)

        fixed = replace(
            self,
            encoder_inputs=fix(self.encoder_inputs),
            encoder_outputs=fix(self.encoder_outputs),
            decoder_inputs=fix(self.decoder_inputs),
            decoder_outputs=fix(self.decoder_outputs),
            static=(prompts, points),
        )
        left = sorted(
            {d for _, ins, outs in fixed.graphs().values() for s in ins + outs for d in s.shape if isinstance(d, str)}
        )
        if left:
            raise InputError(
                f"the {self.name} profile keeps dims {', '.join(left)} dynamic (masks at the original size): "
                f"static shapes need a profile with fixed outputs, e.g. {SAMEXPORTER.name}"
            )
        return fixed

    @property
    def folder_suffix(self) -> str:
        """What the export folder's name gets after the variant's: "" for the family's default profile."""
        parts = ([] if self.name in FAMILY_DEFAULTS.values() else [self.name]) + (
            [f"static-{self.static[0]}x{self.static[1]}"] if self.static else []
        )
        return "".join(f"-{p}" for p in parts)


def _single_mask_outputs(masks_dtype: str, masks_meaning: str, low_res_meaning: str) -> tuple[TensorSpec, ...]:
    """masks [L, 1, H, W] at the original size, iou_predictions [L, 1], low_res_masks [L, 1, 256, 256]:
    the three outputs both other consumers read, under the same names."""
    return (
        TensorSpec("masks", masks_dtype, ("L", 1, "H", "W"), masks_meaning, MASKS_AT_ORIGINAL),
        TensorSpec("iou_predictions", "float32", ("L", 1), "predicted IoU of masks", "single_iou_predictions"),
        TensorSpec("low_res_masks", "float32", ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE), low_res_meaning, LOW_RES_CLAMPED),
    )


SAMEXPORTER = Profile(
    "samexporter",
    "samexporter, NimbusImage and the apps built on their files (the default)",
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
)

CVAT = Profile(
    "cvat",
    "CVAT's SAM 2 plugin (cvat-ui/plugins/sam2): encoder on the server, decoder in onnxruntime-web",
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    # the default seven (CVAT feeds by name), then the original size
    DECODER_INPUTS[:3]
    + (
        TensorSpec("point_coords", "float32", ("L", "N", 2), "x,y times 1024 / max(H, W) (longest side 1024)"),
        DECODER_INPUTS[4],
        TensorSpec("mask_input", "float32", ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE), "previous low_res_masks, or zeros"),
        DECODER_INPUTS[6],
        TensorSpec(ORIG_SIZE, "int32", (2,), "original image height, width", ORIG_SIZE),
    ),
    _single_mask_outputs(
        "float32",
        "multimask_output=False mask logits at the original size (> 0 is the mask)",
        "low-res logits of masks, clamped to +-32: the next click's mask_input",
    )
    + tuple(
        TensorSpec(name, "int32", ("L",), f"mask bounding box {side}, inclusive pixels (0 for an empty mask)", role)
        for name, side, role in zip(("xtl", "ytl", "xbr", "ybr"), ("left x", "top y", "right x", "bottom y"), BOX_ROLES)
    ),
    coords="longest_side",
    masks="original_logits",
    multimask=False,
)

ONNXRUNTIME = Profile(
    "onnxruntime",
    "onnxruntime's SAM 2 tool (onnxruntime/python/tools/transformers/models/sam2), multimask_output=False",
    ENCODER_INPUTS,
    tuple(
        TensorSpec(name, s.dtype, s.shape, s.meaning, s.name)
        for name, s in zip(("image_features_0", "image_features_1", "image_embeddings"), ENCODER_OUTPUTS)
    ),
    (
        TensorSpec("image_features_0", "float32", (1, 32, 256, 256), "from encoder", "high_res_feats_0"),
        TensorSpec("image_features_1", "float32", (1, 64, 128, 128), "from encoder", "high_res_feats_1"),
        TensorSpec("image_embeddings", "float32", (1, 256, 64, 64), "from encoder", "image_embed"),
        DECODER_INPUTS[3],
        TensorSpec("point_labels", "int32", ("L", "N"), DECODER_INPUTS[4].meaning, "point_labels"),
        TensorSpec(
            "input_masks",
            "float32",
            ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE),
            "previous low_res_masks, or zeros",
            "mask_input",
        ),
        TensorSpec("has_input_masks", "float32", ("L",), "1 if input_masks is used, else 0", "has_mask_input"),
        TensorSpec("original_image_size", "int32", (2,), "original image height, width", ORIG_SIZE),
    ),
    _single_mask_outputs(
        "bool",
        "multimask_output=False masks at the original size (logits > 0)",
        "low-res logits of masks, clamped to +-32",
    ),
    masks="original_bool",
    multimask=False,
)

# SAM 1: segment_anything's SamOnnxModel (utils/onnx.py) and the encoder input SamPredictor makes.
SAM1_PIXEL_MEAN = (123.675, 116.28, 103.53)  # Sam.pixel_mean / pixel_std, on 0..255 pixels
SAM1_PIXEL_STD = (58.395, 57.12, 57.375)
SAM1_MASKS = 4  # SamOnnxModel without return_single_mask: every token's mask, token 0 first

SAM1 = Profile(
    "sam1",
    "segment_anything's ONNX export (SamOnnxModel) and the apps built on it, e.g. NimbusImage's SAM 1",
    (
        TensorSpec(
            "input_image",
            "float32",
            (1, 3, IMAGE_SIZE, IMAGE_SIZE),
            "RGB resized to longest side 1024 (PIL bilinear), (x - mean) / std on 0..255, zero-padded bottom/right",
        ),
    ),
    (TensorSpec("image_embeddings", "float32", (1, 256, 64, 64), "ViT features after the neck"),),
    (
        TensorSpec("image_embeddings", "float32", (1, 256, 64, 64), "from encoder"),
        TensorSpec(
            "point_coords",
            "float32",
            ("L", "N", 2),
            "x,y times new size / original size (longest side 1024); a padding point (0,0) label -1 without a box",
        ),
        TensorSpec("point_labels", "float32", ("L", "N"), DECODER_INPUTS[4].meaning),
        TensorSpec("mask_input", "float32", (1, 1, LOW_RES_SIZE, LOW_RES_SIZE), "previous low_res_masks, or zeros"),
        TensorSpec("has_mask_input", "float32", (1,), "1 if mask_input is used, else 0"),
        TensorSpec(ORIG_SIZE, "float32", (2,), "original image height, width", ORIG_SIZE),
    ),
    (
        TensorSpec("masks", "float32", ("L", SAM1_MASKS, "H", "W"), "mask logits at the original size, tokens 0..3"),
        TensorSpec("iou_predictions", "float32", ("L", SAM1_MASKS), "predicted IoU per mask"),
        TensorSpec("low_res_masks", "float32", ("L", SAM1_MASKS, LOW_RES_SIZE, LOW_RES_SIZE), "low-res logits"),
    ),
    coords="longest_side",
    masks="original_logits",
    family="sam1",
)

# SamOnnxModel(return_single_mask=True), as segment-anything's ONNX notebook and web demo export it:
# one mask per prompt, chosen in the graph (select_masks): the best of tokens 1..3 by predicted IoU
# for a prompt of at most two points (a click and its padding point), else token 0
SAM1_SINGLE = replace(
    SAM1,
    name="sam1_single",
    consumer="segment_anything's ONNX export with return_single_mask=True (its notebook and web demo)",
    decoder_outputs=(
        TensorSpec("masks", "float32", ("L", 1, "H", "W"), "the chosen mask's logits at the original size"),
        TensorSpec("iou_predictions", "float32", ("L", 1), "its predicted IoU"),
        TensorSpec("low_res_masks", "float32", ("L", 1, LOW_RES_SIZE, LOW_RES_SIZE), "its low-res logits"),
    ),
    multimask=False,
)
SAM1_SINGLE_POINTS = 2.5  # select_masks: prompts with more points than this take token 0

PROFILES = {p.name: p for p in (SAMEXPORTER, CVAT, ONNXRUNTIME, SAM1, SAM1_SINGLE)}
DEFAULT_PROFILE = SAMEXPORTER.name
FAMILY_DEFAULTS = {"sam2": SAMEXPORTER.name, "sam2.1": SAMEXPORTER.name, "sam1": SAM1.name}


def default_profile(family: str) -> Profile:
    """The profile a variant of ``family`` is exported with unless another is asked for."""
    return PROFILES[FAMILY_DEFAULTS[family]]


def profile(name: str | None, family: str = "sam2") -> Profile:
    """The profile called ``name`` (None: the family's default); InputError for an unknown name
    or one of another model family's graphs."""
    if name is None:
        return default_profile(family)
    if name not in PROFILES:
        raise InputError(f"unknown I/O profile {name!r}; known: {', '.join(PROFILES)}")
    found = PROFILES[name]
    if found.family != ("sam1" if family == "sam1" else "sam2"):
        fits = [p for p, v in PROFILES.items() if (v.family == "sam1") == (family == "sam1")]
        raise InputError(f"--profile {name} is for {found.family} models, not {family}; use {' or '.join(fits)}")
    return found


def parse_static_shapes(text: str) -> tuple[int, int]:
    """``"L,N"`` (prompts per decoder call, points per prompt) -> (L, N); InputError otherwise."""
    try:
        prompts, points = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(
            f"--static-shapes {text!r}: expected L,N (prompts per call, points per prompt), e.g. 1,3"
        ) from None
    return prompts, points


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
