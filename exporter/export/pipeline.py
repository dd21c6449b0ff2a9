"""Export one SAM 2 or SAM 1 variant: load -> trace -> check -> simplify (verified) -> stamp -> publish.

``export_variant`` writes ``<out>/<variant name>/`` (``<variant name>-<profile>/`` for another
consumer's I/O profile) with ``encoder.onnx``, ``decoder.onnx``, the
FP16/INT8 graphs asked for (``encoder.fp16.onnx`` ..., see precision/) and ``manifest.json``,
built in a staging folder and renamed into place at the end (core/staging.py).

Memory: graphs are traced straight to files and the torch model is freed before anything else
runs; ONNX's shape inference and checker work on the files in C++. ``large`` peaks far under
the ~14 GB of a naive in-memory export (docs/performance.md, from ``scripts/bench_export.py``).

Same weights, same options -> byte-identical ONNX files and manifest (no timestamps, no paths).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..checks.sample_inputs import SAMPLE_PHOTO, encoder_feed, reference_runs
from ..core import contract as C
from ..core import manifest as M
from ..core.errors import CheckpointError, ExportError, InputError, refuse_overwrite
from ..core.staging import publish, staging_dir
from ..core.variants import Variant
from ..core.video_contract import VIDEO
from ..precision import build_precisions, check_settings, parse_precisions
from ..precision import steps as precision_steps
from . import onnx_steps as G
from .current import quantization_settings
from .large_graphs import gather, has_external_data
from .video_graphs import finish_video, trace_video

MIN_OPSET = 16  # the oldest opset this toolkit supports and tests
MAX_OPSET = 20  # the newest the TorchScript exporter of torch 2.14 can emit
EXPORTER = "torch.onnx.export, TorchScript tracer (dynamo=False)"


@dataclass
class ExportResult:
    folder: Path
    manifest: dict
    seconds: dict[str, float] = field(default_factory=dict)


class _Progress:
    """One console line per step: its number, name, wall time and a short outcome."""

    def __init__(self, total: int, stream: TextIO | None):
        self.total, self.stream, self.done = total, stream, 0
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        self.done += 1
        self._write(f"  [{self.done:>2}/{self.total}] {name:<28}")
        outcome = {"detail": ""}
        t0 = time.perf_counter()
        try:
            yield outcome
        except BaseException:
            self._write(f"{time.perf_counter() - t0:7.1f} s  failed\n")
            raise
        self.seconds[name] = time.perf_counter() - t0
        self._write(f"{self.seconds[name]:7.1f} s  {outcome['detail']}".rstrip() + "\n")

    def _write(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()


def check_opset(opset: int) -> int:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported: use {MIN_OPSET} to {MAX_OPSET}")
    return opset


def export_variant(
    variant: Variant,
    out: Path,
    *,
    checkpoint: Path | None = None,
    seed: int | None = None,
    opset: int | None = None,
    simplify: bool = True,
    fast: bool = True,
    force: bool = False,
    precisions: list[str] = ("fp32",),
    calibration_images: Path | None = None,
    profile: str | None = None,
    static_shapes: tuple[int, int] | None = None,
    external_data: bool = False,
    video: bool = True,
    stream: TextIO | None = sys.stderr,
) -> ExportResult:
    """Export ``variant`` with the weights of ``checkpoint`` or random weights from ``seed``.

    ``precisions``: "fp32" plus any of "fp16", "int8" (see exporter/precision); static INT8
    calibrates on ``calibration_images`` (a folder) or the bundled photos. ``fast``: trace with
    the faster export forms of wrappers/fast_forms.py (same math); False traces sam2 as written.
    ``profile``: whose I/O contract the graphs follow (``core/contract.py`` PROFILES; None: the
    default samexporter one, whose files are the same bytes as without the option).
    ``static_shapes``: (L, N) to fix every dim (B = 1, L prompts, N points) for ONNX Runtime
    Mobile's NNAPI / CoreML / XNNPACK; written to ``<variant>[-<profile>]-static-LxN/``.
    ``external_data``: every graph's weights in ``<file>.data`` beside it (large_graphs.py), as
    a graph over protobuf's 2 GB (ViT-H's encoder) always has them; fp32 only.
    ``video``: also the video graphs (export/video_graphs.py) for SAM 2 variants in the default
    dynamic profile; other profiles, static shapes, external-data exports and SAM 1 have none.

    Returns the final folder, its manifest and the seconds per step. Raises ExportError
    (bad opset, unwritable output, a graph failing its checks), CheckpointError (unreadable or
    other-variant checkpoint), OutputExistsError (folder exists and not ``force``).
    """
    if (checkpoint is None) == (seed is None):
        raise ExportError("give exactly one of a checkpoint or random weights with a seed")
    opset = check_opset(variant.opset if opset is None else opset)
    precisions = parse_precisions(",".join(precisions))
    io = C.profile(profile, variant.family)
    if variant.is_sam1 and static_shapes is not None:
        raise InputError(f"{variant.name}: --static-shapes is for SAM 2 variants; SAM 1 exports dynamic shapes")
    family_default = C.default_profile(variant.family).name
    if io.name != family_default and precisions != ["fp32"]:
        raise InputError(
            f"--profile {io.name} exports fp32 graphs only; FP16 / INT8 files follow the {family_default} profile"
        )
    if static_shapes is not None:
        io = io.with_static_shapes(*static_shapes)
        if precisions != ["fp32"]:
            raise InputError("--static-shapes exports fp32 graphs only; FP16 / INT8 files have dynamic shapes")
    if external_data and (precisions != ["fp32"] or static_shapes is not None):
        raise InputError("--external-data exports dynamic fp32 graphs only")
    check_settings(variant, precisions)
    if calibration_images is not None and not Path(calibration_images).is_dir():
        raise InputError(f"--calibration-images {calibration_images}: not a directory")
    folder_name = variant.name + io.folder_suffix
    out, final = Path(out), Path(out) / folder_name
    refuse_overwrite(final, force)  # before minutes of work; publish checks again
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CheckpointError(f"{checkpoint}: no such file")
    weights_text = f"checkpoint {Path(checkpoint).name}" if checkpoint else f"random weights, seed {seed}"
    if stream is not None:
        profile_text = "" if io.name == variant.io_profile.name else f", {io.name} I/O profile"
        profile_text += f", static shapes L={io.static[0]} N={io.static[1]}" if io.static else ""
        stream.write(f"export {variant.name} ({weights_text}, opset {opset}{profile_text}) -> {final}\n")
    # load, trace, check, stamp, stamp + manifest, publish; a reference run and two simplify steps;
    # a static export's mobile rewrites (and its reference run without simplify)
    steps = 6 + (3 if simplify else 0) + ((1 if simplify else 2) if io.static else 0)
    # the video graphs: traced and checked, then simplified (verified) and stamped
    # (not with --external-data yet: the video graphs would not follow its layout)
    plain = io.name == C.DEFAULT_PROFILE and not io.static and not external_data
    video = {} if video and not variant.is_sam1 and plain else None
    steps += 2 if video is not None else 0
    progress = _Progress(steps + precision_steps(precisions, variant), stream)
    staging = staging_dir(out, folder_name)
    try:
        _export_into(
            staging,
            variant,
            (checkpoint, seed),
            opset,
            simplify,
            fast,
            precisions,
            calibration_images,
            io,
            external_data,
            video,
            progress,
        )
        with progress.step("publish") as s:
            publish(staging, final, force)
            s["detail"] = str(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(final, M.read_manifest(final), progress.seconds)


def _export_into(
    staging: Path,
    variant: Variant,
    weights_from: tuple,
    opset,
    simplify,
    fast,
    precisions,
    calibration_images,
    io: C.Profile,
    external_data: bool,
    video: dict | None,
    progress,
) -> None:
    from ..checkpoints.loading import load_checkpoint, random_model

    checkpoint, seed = weights_from
    raw = {role: staging / f"{role}.traced.onnx" for role in M.GRAPHS}
    with progress.step("load weights") as s:
        model, source = load_checkpoint(variant, checkpoint) if checkpoint else random_model(variant, seed)
        s["detail"] = f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters"
    weights = _weights_record(source)
    # handed over in a list that the tracer empties, so the model is freed once traced
    held = [model]
    del model
    if variant.is_sam1:
        _trace_sam1(held, raw, opset, io, progress)
    else:
        _trace_sam2(held, raw, opset, io, fast, progress, variant, video)
    gc.collect()
    with progress.step("check graphs") as s:
        for path in raw.values():
            if external_data and not has_external_data(path):
                gather(path, path)
            G.check(path)
        s["detail"] = "strict shape inference + full checker"
        if any(has_external_data(path) for path in raw.values()):
            s["detail"] += "; weights of " + ", ".join(r for r, p in raw.items() if has_external_data(p))
            s["detail"] += " in external-data files"
    _finish(staging, variant, raw, weights, opset, simplify, fast, precisions, calibration_images, io, progress, video)


def _trace_sam2(held: list, raw: dict, opset: int, io: C.Profile, fast: bool, progress, variant, video) -> None:
    """SAM 2's encoder and the profile's decoder (wrappers/encoder.py, decoder.py, profiles.py);
    into ``video`` (unless None) the traced video graphs and their settings (video_graphs.py)."""
    import torch

    from ..wrappers import ImageEncoder, ProfileDecoder, PromptDecoder
    from ..wrappers.fast_forms import fast_forms
    from ..wrappers.mobile_forms import mobile_forms

    model = held.pop()
    with progress.step("trace encoder + decoder") as s:
        # static exports: the decoder's branches as arithmetic NNAPI takes (wrappers/mobile_forms.py)
        with fast_forms(model, fast) as swapped, mobile_forms(model, bool(io.static)) as mobile:
            G.trace(
                ImageEncoder(model).eval(),
                (torch.from_numpy(encoder_feed()["image"]),),
                raw["encoder"],
                "encoder",
                opset,
                io,
            )
            args = _decoder_args(io)
            if io.name == C.DEFAULT_PROFILE:
                decoder = PromptDecoder(model)
            else:
                decoder, args = ProfileDecoder(model, io), _profile_args(io, args)
            G.trace(decoder.eval(), args, raw["decoder"], "decoder", opset, io)
        s["detail"] = f"{swapped} modules in fast export form" if fast else "plain sam2 modules (--plain-graphs)"
        s["detail"] += f", {mobile} in mobile form" if mobile else ""
        del args, decoder  # after the forms are undone: they hold the model's modules until then
    if video is not None:
        with progress.step("trace video graphs") as s:
            video["raw"], video["settings"] = trace_video(model, variant, raw["encoder"].parent, opset)
            s["detail"] = ", ".join(video["raw"])
    del model
    gc.collect()


def _trace_sam1(held: list, raw: dict, opset: int, io: C.Profile, progress) -> None:
    """SAM 1's ViT encoder and segment_anything's own ONNX decoder (wrappers/sam1.py)."""
    import torch

    from ..checks.sam1_inputs import sam1_encoder_feed
    from ..wrappers.sam1 import Sam1Encoder, sam1_decoder

    model = held.pop()
    with progress.step("trace encoder + decoder") as s:
        feed, _ = sam1_encoder_feed(SAMPLE_PHOTO)
        G.trace(
            Sam1Encoder(model).eval(), (torch.from_numpy(feed["input_image"]),), raw["encoder"], "encoder", opset, io
        )
        del feed
        # L=2, N=3 and a non-square original size, so that no dynamic dim is traced as a constant
        gen = torch.Generator().manual_seed(0)
        args = (
            torch.zeros(1, 256, 64, 64),
            torch.rand(2, 3, 2, generator=gen) * C.IMAGE_SIZE,
            torch.tensor([[C.LABEL_FG, C.LABEL_BG, C.LABEL_PAD], [C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_FG]]).float(),
            torch.zeros(1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE),
            torch.ones(1),
            torch.tensor([300.0, 451.0]),
        )
        G.trace(sam1_decoder(model, not io.multimask).eval(), args, raw["decoder"], "decoder", opset, io)
        s["detail"] = "segment_anything's image encoder and SamOnnxModel"
        del model, args


def _finish(staging, variant, raw, weights, opset, simplify, fast, precisions, calibration_images, io, progress, video):
    """Reference run, simplification (verified), mobile rewrites, precisions, stamps, manifest."""
    from ..wrappers.fast_forms import FORM_NAMES

    simplification = {role: {"status": "skipped", "detail": "--no-simplify"} for role in M.GRAPHS}
    rewrites = {}
    if simplify or io.static:
        with progress.step("reference run (onnxruntime)") as s:
            runs = reference_runs(raw["encoder"], raw["decoder"], io)
            labels = io.spec("decoder", "point_labels").name
            s["detail"] = f"sample photo {SAMPLE_PHOTO.name}, {sum(len(f[labels]) for f in runs['decoder'][0])} prompts"
    for role in M.GRAPHS if simplify else ():
        with progress.step(f"simplify {role}") as s:
            simplification[role] = rec = G.simplify_verified(
                raw[role], role, *runs[role], standard_ops_only=bool(io.static)
            )
            s["detail"] = (
                f"{rec['nodes_before']} -> {rec['nodes_after']} nodes, verified"
                if rec["status"] == "applied"
                else f"KEPT UNSIMPLIFIED: {rec['detail']}"
            )
    if io.static:  # operators NNAPI / CoreML lack, as ones they have (export/mobile_rewrites.py)
        with progress.step("mobile rewrites") as s:
            rewrites = {role: G.rewrite_verified(raw[role], role, *runs[role], opset) for role in M.GRAPHS}
            s["detail"] = "; ".join(
                f"{role}: " + (", ".join(f"{n} {op}" for op, n in r["replaced"].items()) or "none")
                if r["status"] == "applied"
                else f"{role} KEPT AS IS: {r['detail']}"
                for role, r in rewrites.items()
            )

    with progress.step("stamp fp32 graphs") as s:
        files = {}
        for role, (file, _, _) in M.GRAPHS.items():
            applied = simplification[role]["status"] == "applied"
            G.stamp(
                raw[role], staging / file, role, _provenance(variant, role, weights, opset, applied, "fp32", io), io
            )
            files[file] = M.file_entry(staging / file, role, "fp32")
        s["detail"] = ", ".join(_size_text(f, e) for f, e in files.items())
    if video is not None:
        with progress.step("simplify video graphs") as s:
            video_part = finish_video(
                staging,
                video["raw"],
                runs["encoder"][1][0] if simplify else None,
                video["settings"],
                lambda role, applied: _provenance(variant, role, weights, opset, applied, "fp32", VIDEO),
            )
            s["detail"] = ", ".join(_size_text(f, e) for f, e in video_part["files"].items())
    derived = build_precisions(staging, variant, precisions, calibration_images, progress.step)
    with progress.step("stamp + write manifest") as s:
        for file, (role, precision) in derived.pop("new_files").items():
            applied = simplification[role]["status"] == "applied"
            unstamped = staging / f".{file}.unstamped"
            os.replace(staging / file, unstamped)
            props = _provenance(variant, role, weights, opset, applied, precision, io)
            G.stamp(unstamped, staging / file, role, props, io)
            files[file] = M.file_entry(staging / file, role, precision)
        M.write_manifest(
            staging,
            _manifest(
                variant,
                weights,
                opset,
                simplify,
                list(FORM_NAMES) if fast and not variant.is_sam1 else [],
                precisions,
                files,
                simplification,
                rewrites,
                derived,
                io,
            )
            | ({"video": video_part} if video is not None else {}),
        )
        s["detail"] = f"{len(files)} graphs: " + ", ".join(_size_text(f, e) for f, e in files.items())


def _size_text(file: str, entry: dict) -> str:
    data = " + external data" if "external_data" in entry else ""
    return f"{file}{data} {M.graph_bytes(entry) / 1e6:.1f} MB"


def _decoder_args(io: C.Profile) -> tuple:
    """The default decoder's trace inputs: L=2, N=3 so that no dynamic dim is traced as a
    constant 1, or a static profile's L and N (every label kind, cycled)."""
    import torch

    prompts, points = io.static or (2, 3)
    labels = [C.LABEL_FG, C.LABEL_BG, C.LABEL_PAD, C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_FG]
    return (
        torch.zeros(1, 256, 64, 64),
        torch.zeros(1, 32, 256, 256),
        torch.zeros(1, 64, 128, 128),
        torch.rand(prompts, points, 2, generator=torch.Generator().manual_seed(0)) * C.IMAGE_SIZE,
        torch.tensor([labels[i % len(labels)] for i in range(prompts * points)], dtype=torch.float32).reshape(
            prompts, points
        ),
        torch.zeros(prompts, 1, 256, 256),
        torch.arange(prompts, dtype=torch.float32) % 2,
    )


def _profile_args(io: C.Profile, args: tuple) -> tuple:
    """The default decoder's trace inputs as ``io``'s: its order and dtypes, coordinates in its
    frame, and a non-square original size (so that no size is traced as a constant)."""
    import torch

    h, w = 300, 451
    by_role = dict(zip(C.names(C.DECODER_INPUTS), args)) | {C.ORIG_SIZE: torch.tensor([h, w], dtype=torch.int32)}
    if io.coords == "longest_side":
        by_role["point_coords"] = by_role["point_coords"] * torch.tensor([w, h]) / max(h, w)
    return tuple(by_role[s.what].to(getattr(torch, s.dtype)) for s in io.decoder_inputs)


def _weights_record(source) -> dict:
    if source.kind == "random":
        return {
            "source": "random",
            "seed": source.seed,
            "state_dict_sha256": source.state_dict_sha256,
            "note": "seeded random weights standing in for an official checkpoint; for testing the pipeline only",
        }
    record = {
        "source": "checkpoint",
        "checkpoint_file": Path(source.path).name,
        "checkpoint_sha256": source.file_sha256,
        "state_dict_sha256": source.state_dict_sha256,
    }
    if source.seed is not None:  # a file written by save_checkpoint(random_seed=...)
        record |= {
            "random_weights_seed": source.seed,
            "note": "a checkpoint file of seeded random weights; for testing the pipeline only",
        }
    return record


def _provenance(
    variant: Variant,
    role: str,
    weights: dict,
    opset: int,
    simplified: bool,
    precision: str,
    io: C.Profile = C.SAMEXPORTER,
) -> dict[str, str]:
    """metadata_props of each ONNX file: enough to trace it back without the manifest."""
    props = {
        "sam2_onnx.variant": variant.name,
        "sam2_onnx.graph": role,
        "sam2_onnx.version": M.package_versions("sam2-onnx-exporter")["sam2-onnx-exporter"],
        "sam2_onnx.opset": str(opset),
        "sam2_onnx.simplified": str(simplified).lower(),
        "sam2_onnx.precision": precision,
        "sam2_onnx.weights_source": weights["source"],
        "sam2_onnx.weights_sha256": weights["state_dict_sha256"],
    }
    if M.random_seed(weights) is not None:
        props["sam2_onnx.seed"] = str(M.random_seed(weights))
    else:
        props["sam2_onnx.checkpoint_sha256"] = weights["checkpoint_sha256"]
    if io.name != C.DEFAULT_PROFILE:  # absent for the default, whose files keep their bytes
        props["sam2_onnx.profile"] = io.name
    props["sam2_onnx.io"] = json.dumps(M.io_spec(io)[role], separators=(",", ":"))
    return props


def _manifest(
    variant: Variant,
    weights: dict,
    opset: int,
    simplify: bool,
    forms: list[str],
    precisions: list[str],
    files: dict,
    simplification: dict,
    rewrites: dict,
    derived: dict,
    io: C.Profile,
) -> dict:
    from ..wrappers.mobile_forms import FORM_NAMES as MOBILE_FORMS

    return {
        "schema": M.SCHEMA,
        "schema_version": M.SCHEMA_VERSION,
        "variant": {
            "name": variant.name,
            "family": variant.family,
            "size": variant.size,
            **({"sam1_model": variant.sam1_model} if variant.is_sam1 else {"sam2_config": variant.sam2_config}),
            "parameters": variant.parameters,
        },
        "versions": M.package_versions(
            "sam2-onnx-exporter",
            "segment-anything" if variant.is_sam1 else "sam2",
            "torch",
            "onnx",
            "onnxruntime",
            "onnxsim",
        )
        | {"python": platform.python_version()},
        "opset": opset,
        "exporter": EXPORTER,
        "weights": weights,
        "files": files,
        "profile": io.describe(),
        "io": M.io_spec(io),
        "preprocessing": M.preprocessing(io),
        "single_mask": M.single_mask(io),
        "options": {
            "opset": opset,
            "simplify": simplify,
            "precisions": precisions,
            "fast_forms": forms,  # wrappers/fast_forms.py: export-time forms traced
            **({"mobile_forms": list(MOBILE_FORMS)} if io.static else {}),  # wrappers/mobile_forms.py
            "quantization": quantization_settings(variant, precisions),  # current.py: other settings, stale
            "dynamic_axes": {role: C.dynamic_axes(ins, outs) for role, (_, ins, outs) in io.graphs().items()},
        },
        "checks": {
            "onnx_checker": "full_check",
            "shape_inference": "strict_mode, data_prop",
            "simplification_verified_on": SAMPLE_PHOTO.name,
        },
        "simplification": simplification,
        **({"mobile_rewrites": rewrites} if rewrites else {}),  # static exports only
        **derived,  # "precisions": {precision: {role: file}}, and "fp16" / "int8" records
    }
