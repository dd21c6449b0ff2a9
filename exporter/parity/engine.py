"""The parity engine: exported artifacts vs the unmodified official SAM2ImagePredictor.

Used by ``sam2-onnx parity`` and the ``parity_tests/`` suite alike. For every image it
measures preprocessing (our tensor vs SAM2Transforms'), the encoder (ONNX on the official
tensor vs the official features), then every prompt kind end to end (our preprocessing,
encoder, decoder and upsampling vs ``predict``), and holds each metric to the gates in
``configs/<variant>.yaml`` for the precision under test.

The reference must carry the artifacts' weights: its state-dict digest is compared with the
manifest's before anything runs, and parity against different weights is refused.

"Ours" is one of two runtimes (``RUNTIMES``): the Python one (``SAM2OnnxPredictor``) or the
browser page in headless Chromium (``exporter.web.predictor.BrowserPredictor``, onnxruntime-web),
which has the same embed / encode_tensor / decode API. The automatic mask generator and the
INT8 per-layer SQNR are measured on the Python runtime only.
"""

from __future__ import annotations

import sys
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from ..core.cpu import machine
from ..core.errors import ParityError, one_line
from ..core.manifest import graph_bytes, manifest_profile, read_manifest
from ..core.variants import resolve
from ..runtime import SAM2OnnxPredictor
from ..runtime.sam1_predictor import SAM1OnnxPredictor
from ..runtime.sam1_transforms import preprocess as sam1_preprocess
from ..runtime.transforms import preprocess
from .automask import GATE_KEYS as AUTOMASK_GATES
from .automask import PHOTOS as AUTOMASK_PHOTOS
from .automask import SETTINGS as AUTOMASK_SETTINGS
from .automask import run_case as run_automask_case
from .cases import KINDS, SAMPLES, load_images, padded, sample_image
from .metrics import check, decoder_metrics, encoder_metrics, max_abs
from .sam1_reference import Sam1Reference


@dataclass
class CaseResult:
    image: str
    kind: str  # "encoder" (per image) or a prompt kind
    metrics: dict
    failures: list[str]
    seconds: dict[str, float]
    masks: tuple | None = None  # (reference, ours) best-mask logits [H, W], for the report
    records: tuple | None = None  # automask cases: (reference, ours) mask records, for the report

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ParityResult:
    model_dir: Path
    variant: str
    precision: str
    weights: dict
    gates: dict
    cases: list[CaseResult] = field(default_factory=list)
    images: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, dict] = field(default_factory=dict)  # role -> {file, bytes, precision}
    sqnr: dict[str, list] = field(default_factory=dict)  # role -> per-layer rows (int8 only)
    machine: dict = field(default_factory=dict)  # where it ran: CPU, features, int8 kernel (core.cpu.machine)
    runtime: dict = field(default_factory=lambda: {"name": "python"})  # "ours": python, or web (+ browser, backend)
    reference: str = "SAM2ImagePredictor"  # the official predictor "ours" is compared with

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def worst_iou(self) -> float:
        return min((c.metrics["mask_iou_min"] for c in self.cases if "mask_iou_min" in c.metrics), default=1.0)

    @property
    def automask_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if c.kind.startswith("automask:")]

    def failures(self) -> list[str]:
        return [f"{c.image} / {c.kind}: {f}" for c in self.cases for f in c.failures]

    def summary(self) -> dict:
        """The headline numbers per precision: bytes, IoU min/median, worst logits and encoder
        errors, median encoder latency (our preprocessing + encoder graph, this machine)."""
        ious = [c.metrics["mask_iou_min"] for c in self.cases if "mask_iou_min" in c.metrics]
        logits = [c.metrics["logits_max_abs"] for c in self.cases if "logits_max_abs" in c.metrics]
        enc_s = [c.seconds["ours"] for c in self.cases if c.kind == "encoder"]
        enc_l2 = [c.metrics["encoder_rel_l2"] for c in self.cases if "encoder_rel_l2" in c.metrics]
        every_pixel = [c.metrics["mask_iou_min_all"] for c in self.cases if "mask_iou_min_all" in c.metrics]
        return {
            "precision": self.precision,
            "verdict": "pass" if self.passed else "fail",
            "bytes": {role: f["bytes"] for role, f in self.files.items()},
            "files": {role: f["file"] for role, f in self.files.items()},
            "iou_min": self.worst_iou if ious else None,
            "iou_median": float(np.median(ious)) if ious else None,
            "iou_min_all_pixels": min(every_pixel, default=None),
            "logits_max_abs": max(logits, default=None),
            "encoder_rel_l2_max": max(enc_l2, default=None),
            "automask_iou_min": min((c.metrics["automask_iou_min"] for c in self.automask_cases), default=None),
            "encoder_ms_median": float(np.median(enc_s) * 1e3) if enc_s else None,
        }


def reference_predictor(manifest: dict, checkpoint: Path | None = None, seed: int | None = None):
    """The official predictor with the artifacts' weights (from a checkpoint, a seed, or the
    manifest's own random seed); refuses weights whose digest differs from the manifest's.
    SAM 1 variants get ``SamPredictor`` behind the same API (parity/sam1_reference.py)."""
    model, source = reference_model(manifest, checkpoint, seed)
    if resolve(manifest["variant"]["name"]).is_sam1:
        return Sam1Reference(model, single_mask=not manifest_profile(manifest).multimask), source
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor(model), source


def reference_model(manifest: dict, checkpoint: Path | None = None, seed: int | None = None):
    """(the official model with the artifacts' weights, its WeightsSource); ParityError when the
    weights' digest differs from the manifest's (see reference_predictor)."""
    from ..checkpoints.loading import load_checkpoint, random_model

    variant, recorded = resolve(manifest["variant"]["name"]), manifest["weights"]
    if checkpoint is None and seed is None:
        if recorded["source"] != "random":
            raise ParityError(
                f"the artifacts were exported from {recorded.get('checkpoint_file')}; "
                "pass the same file with --checkpoint"
            )
        seed = recorded["seed"]
    model, source = load_checkpoint(variant, checkpoint) if checkpoint is not None else random_model(variant, seed)
    if source.state_dict_sha256 != recorded["state_dict_sha256"]:
        given = f"checkpoint {checkpoint}" if checkpoint is not None else f"random weights seed {seed}"
        raise ParityError(
            f"{given} has state-dict digest {source.state_dict_sha256[:12]}, but the artifacts "
            f"were exported from {recorded['state_dict_sha256'][:12]}; parity against "
            "different weights is refused"
        )
    return model, source


def _reference_input(ref, image: np.ndarray) -> np.ndarray:
    """The official encoder input of ``image`` ([1, 3, 1024, 1024] float32)."""
    if isinstance(ref, Sam1Reference):
        return ref.input_tensor(image)
    return ref._transforms(image.copy())[None].numpy()


def _features(ref) -> dict[str, np.ndarray]:
    """The official encoder outputs of the image set last, named as our encoder graph's."""
    if isinstance(ref, Sam1Reference):
        return ref.features()
    f = ref._features
    return {
        "high_res_feats_0": f["high_res_feats"][0].numpy(),
        "high_res_feats_1": f["high_res_feats"][1].numpy(),
        "image_embed": f["image_embed"].numpy(),
    }


def _best_masks(ref_out, our_out) -> tuple[np.ndarray, np.ndarray]:
    """The first prompt's best mask (by the reference's score): logits [H, W] from each side."""
    (m_ref, s_ref, _), (m_ours, _, _) = ref_out, our_out
    m_ref, m_ours = m_ref.reshape(-1, *m_ref.shape[-3:]), m_ours.reshape(-1, *m_ours.shape[-3:])
    best = int(np.argmax(s_ref.reshape(-1, s_ref.shape[-1])[0]))
    return m_ref[0, best], m_ours[0, best]


RUNTIMES = ("python", "web")


def open_runtime(runtime: str, model_dir: Path, precision: str, stack: ExitStack):
    """Our predictor for ``runtime`` (the Python one by the folder's family), closed with ``stack``."""
    if runtime == "python":
        sam1 = resolve(read_manifest(model_dir)["variant"]["name"]).is_sam1
        return (SAM1OnnxPredictor if sam1 else SAM2OnnxPredictor)(model_dir, precision=precision)
    if runtime == "web":
        from ..web.predictor import BrowserPredictor

        return stack.enter_context(BrowserPredictor(model_dir, precision=precision))
    raise ParityError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")


def run_parity(
    model_dir: Path,
    precision: str = "fp32",
    *,
    runtime: str = "python",
    checkpoint: Path | None = None,
    seed: int | None = None,
    samples: list[str] | None = None,
    images: list[Path] = (),
    kinds: list[str] | None = None,
    keep_masks: bool = True,
    sqnr: bool = True,
    automask: bool = False,
    stream: TextIO | None = sys.stderr,
) -> ParityResult:
    """Measure every (image, prompt kind) case; the result holds metrics, failures, timings.

    ``automask`` adds the automatic mask generator cases (``parity/automask.py``: its own
    settings and photos) when the precision's gates define ``automask_*`` thresholds and the
    runtime is the Python one. ``runtime="web"`` runs our side in headless Chromium.
    """
    with ExitStack() as stack:  # closes the browser of the web runtime
        t_start = time.perf_counter()
        model_dir = Path(model_dir)
        manifest = read_manifest(model_dir)
        variant = resolve(manifest["variant"]["name"])
        kinds = list(KINDS) if kinds is None else kinds
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ParityError(f"unknown prompt kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
        gates = variant.parity.get(precision)
        if gates is None:
            raise ParityError(f"configs have no parity gates for precision {precision!r}")
        pictures = load_images(list(SAMPLES) if samples is None else samples, list(images))
        ours = open_runtime(runtime, model_dir, precision, stack)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sam2 scripts its transforms with torch.jit (deprecated)
            ref, source = reference_predictor(manifest, checkpoint, seed)
        result = ParityResult(
            model_dir,
            variant.name,
            precision,
            {"source": source.kind, "seed": source.seed, "state_dict_sha256": source.state_dict_sha256},
            dict(gates),
            machine=machine(),
            runtime={"name": runtime, "class": type(ours).__name__} | (ours.backend if runtime == "web" else {}),
            reference="SamPredictor" if variant.is_sam1 else "SAM2ImagePredictor",
        )
        for name, image in pictures.items():
            h, w = image.shape[:2]
            result.images[name] = (h, w)
            _image_cases(result, name, image, ref, ours, kinds, gates, keep_masks)
            if stream is not None:
                mine = [c for c in result.cases if c.image == name]
                worst = min(c.metrics.get("mask_iou_min", 1.0) for c in mine)  # this photo only
                failed = sum(not c.passed for c in mine)
                stream.write(
                    f"  {name:<12} {h}x{w:<6} {len(mine) - 1} prompt kinds  "
                    f"{'FAIL (' + str(failed) + ')' if failed else 'pass'}  worst IoU {worst:.6f}\n"
                )
                stream.flush()
        if automask and runtime == "python" and all(k in gates for k in AUTOMASK_GATES):
            profile = ours.profile
            # the generators decode three masks per click and read low-res logits
            if profile.multimask and (profile.family == "sam1" or profile.masks == "low_res_logits"):
                _automask_cases(result, ref, ours, gates, stream)
            elif stream is not None:
                stream.write(
                    f"  automatic mask generator: not run (the {profile.name} profile's decoder serves one "
                    "mask per prompt; the generator needs three)\n"
                )
        files = ours.sessions.files if runtime == "python" else ours.files
        result.files = {
            role: {
                "file": name,
                "bytes": graph_bytes(manifest["files"][name]),  # with its external-data file
                "precision": manifest["files"][name]["precision"],
            }
            for role, name in files.items()
        }
        if precision == "int8" and sqnr and runtime == "python" and pictures:
            result.sqnr = layer_sqnr(model_dir, result.files, next(iter(pictures.values())), stream)
        result.seconds = time.perf_counter() - t_start
        return result


def _attempt(who: str, fn):
    """``(fn(), None)``, or ``(None, "<who> raised <error>")``: a case that raises is a failed
    case with its reason, never a crash of the whole run."""
    try:
        return fn(), None
    except Exception as exc:  # the reference, onnxruntime or our code: all reported the same way
        return None, f"{who} raised {one_line(exc)}"


def _image_cases(
    result: ParityResult,
    name: str,
    image: np.ndarray,
    ref,
    ours,  # SAM2OnnxPredictor or BrowserPredictor
    kinds: list[str],
    gates: dict,
    keep_masks: bool,
) -> None:
    """The encoder case and every prompt kind's case of one photo."""
    import torch

    def reference_image():
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.set_image(image.copy())
            return _reference_input(ref, image)

    t0 = time.perf_counter()
    x_ref, error = _attempt("the official predictor", reference_image)
    t1 = time.perf_counter()
    embedding, our_error = _attempt("our encoder", lambda: ours.embed(image))
    t2 = time.perf_counter()
    on_ref_input, input_error = (
        (None, None) if error or our_error else _attempt("our encoder", lambda: ours.encode_tensor(x_ref))
    )
    problems = [e for e in (error, our_error, input_error) if e]
    metrics = {}
    if not problems:
        # the web runtime's embedding holds the page's own input tensor (its preprocessing is JavaScript)
        if hasattr(embedding, "input"):
            ours_input = embedding.input
        elif isinstance(ref, Sam1Reference):
            ours_input = sam1_preprocess(image)[0]
        else:
            ours_input = preprocess(image)
        metrics = {"preprocess_max_abs": max_abs(ours_input, x_ref), **encoder_metrics(on_ref_input, _features(ref))}
    failures = (problems + [f"prompt kinds not run ({', '.join(kinds)})"]) if problems else check(metrics, gates)
    result.cases.append(CaseResult(name, "encoder", metrics, failures, {"reference": t1 - t0, "ours": t2 - t1}))
    if problems:
        return
    # A profile without multimask (cvat, onnxruntime) serves multimask_output=False only, and one
    # that thresholds in the graph has no logits: both sides are asked for what it serves.
    profile = getattr(ours, "profile", None)
    single_only = profile is not None and not profile.multimask
    our_logits = profile is None or profile.masks != "original_bool"
    # a static-shape decoder pads every prompt with label -1 points: the reference is asked the same
    pad = (lambda kw: padded(kw, profile.static[1])) if profile is not None and profile.static else dict
    for kind in kinds:
        kwargs = KINDS[kind](h=image.shape[0], w=image.shape[1])
        if single_only:
            kwargs["multimask_output"] = False

        def reference_predict(kind=kind, kwargs=kwargs):
            with torch.inference_mode():
                if kind == "refine":  # feed back the reference's best low-res logits of a click
                    _, scores, low_res = ref.predict(**pad(KINDS["point"](*image.shape[:2])))
                    kwargs["mask_input"] = low_res[np.argmax(scores)][None]
                return ref.predict(**pad(kwargs), return_logits=True)

        t0 = time.perf_counter()
        ref_out, error = _attempt("the official predictor", reference_predict)
        t1 = time.perf_counter()
        our_out, our_error = (
            (None, None)
            if error
            else _attempt(
                "our decoder", lambda kwargs=kwargs: ours.decode(embedding, **kwargs, return_logits=our_logits)
            )
        )
        t2 = time.perf_counter()
        if error or our_error:
            result.cases.append(
                CaseResult(name, kind, {}, [error or our_error], {"reference": t1 - t0, "ours": t2 - t1})
            )
            continue
        metrics = decoder_metrics(
            our_out, ref_out, band=gates["flip_band"], score_tol=gates["score_abs"], iou_band=gates.get("iou_band", 0.0)
        )
        result.cases.append(
            CaseResult(
                name,
                kind,
                metrics,
                check(metrics, gates),
                {"reference": t1 - t0, "ours": t2 - t1},
                _best_masks(ref_out, our_out) if keep_masks else None,
            )
        )


def _automask_cases(result: ParityResult, ref, ours: SAM2OnnxPredictor, gates: dict, stream: TextIO | None) -> None:
    """Official vs ONNX automatic mask generator for every setting and its photos."""
    for setting, params in AUTOMASK_SETTINGS.items():
        for name in AUTOMASK_PHOTOS[setting]:
            image = sample_image(name)
            metrics, seconds, records, problems = run_automask_case(
                ref, ours, image, params, gates["automask_min_masks"]
            )
            case = CaseResult(
                name, f"automask:{setting}", metrics, problems + check(metrics, gates), seconds, records=records
            )
            result.cases.append(case)
            result.images.setdefault(name, image.shape[:2])
            if stream is not None:
                lowered = f", filters lowered to step {metrics['automask_step']}" if metrics["automask_step"] else ""
                stream.write(
                    f"  {name:<12} automask {setting:<6} {metrics['masks_ours']} / "
                    f"{metrics['masks_reference']} masks{lowered}  {'pass' if case.passed else 'FAIL'}  "
                    f"matched IoU min {metrics['automask_iou_min']:.6f}  "
                    f"{seconds['reference']:.0f} s official, {seconds['ours']:.0f} s ours\n"
                )
                stream.flush()


def layer_sqnr(model_dir: Path, files: dict, image: np.ndarray, stream: TextIO | None) -> dict[str, list]:
    """Per-layer SQNR of each quantized graph against its FP32 file, on ``image`` (and a click)."""
    from ..core.manifest import GRAPHS
    from ..precision.calibration import decoder_feeds, encoder_feed
    from ..precision.sqnr import per_layer

    fp32 = {role: model_dir / GRAPHS[role][0] for role in GRAPHS}
    profile = manifest_profile(read_manifest(model_dir))
    feeds = {
        "encoder": encoder_feed(image, profile),
        "decoder": decoder_feeds(fp32["encoder"], {"": image}, profile)[0],
    }
    out = {}
    for role, entry in files.items():
        if entry["precision"] == "int8":
            if stream is not None:
                stream.write(f"  per-layer SQNR of {entry['file']}\n")
            out[role] = per_layer(fp32[role], model_dir / entry["file"], feeds[role])
    return out
