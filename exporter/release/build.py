"""``sam2-onnx release``: a verified, hub-ready folder from an exported and parity-checked one.

    <out>/encoder.onnx, decoder.onnx, encoder.fp16.onnx, ...   the exported graphs, as they are
    <out>/encoder.ort, decoder.ort, ...                        ORT-format copies for ONNX Runtime Mobile
    <out>/required_operators.config                            operators a reduced ORT build needs
    <out>/parity*.json, parity*.html, bench.json, bench.png    the evidence
    <out>/README.md                                            model card (YAML front matter)
    <out>/manifest.json                                        the export manifest + a "release" record
    <out>/SHA256SUMS                                           `sha256sum -c SHA256SUMS` checks every file

Refuses (ReleaseRefused, exit 6) artifacts made from random weights unless allowed (the card
then says so at the top), any precision without a passing parity report whose digest matches
the manifest, any INT8 graph whose integer kernels are not proven safe on every CPU, and
(IntegrityError, exit 3) files whose size or sha256 differ from the manifest.
The ``.ort`` copies are loaded and must decode the same masks as the ``.onnx`` files. The
folder is built out of sight and renamed into place; an existing one needs ``force``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..bench.benchmark import BENCH_JSON, BENCH_PNG, current_bench
from ..checks.equivalence import iou
from ..checks.sample_inputs import SAMPLE_PHOTO
from ..core import contract as C
from ..core.digests import SUMS_FILE, sha256_file, verify_release, write_sums
from ..core.errors import InputError, IntegrityError, ReleaseRefused, Sam2OnnxError, SetupError, refuse_overwrite
from ..core.manifest import (
    GRAPHS,
    MANIFEST_FILE,
    PROTOBUF_LIMIT,
    data_file,
    graph_bytes,
    listed_files,
    manifest_profile,
    package_versions,
    random_seed,
    read_manifest,
    verify_files,
    write_manifest,
)
from ..core.staging import publish, staging_dir, write_text_atomic
from ..runtime.inputs import read_image
from ..runtime.profiles import join_calls, static_calls
from ..runtime.sam1_transforms import preprocess as sam1_preprocess
from ..runtime.sessions import graph_file, session_options
from .browser_check import BROWSER_EPS, check_in_browser, sample_image
from .mobile_check import mobile_usability
from .model_card import model_card

OPS_CONFIG = "required_operators.config"
# .ort vs .onnx on the sample photo and prompts: masks (logits > 0) must agree this well
ORT_MASK_IOU_MIN = 0.9999
ORT_GROWTH_MAX = 1.1


def parity_record(folder: Path, manifest: dict, precision: str) -> dict:
    """The parity verdict of ``precision``, checked against its report file; ReleaseRefused if
    there is none, it failed, or the report is not the one the manifest recorded."""
    entry = manifest.get("parity", {}).get(precision)
    fix = f"run `sam2-onnx parity {folder} --precision {precision}`"
    if not entry:
        raise ReleaseRefused(f"{precision}: no parity report in {folder}; {fix}")
    if entry.get("verdict") != "pass":
        raise ReleaseRefused(
            f"{precision}: parity failed ({entry.get('failures')} failing case(s)); a release needs a passing report"
        )
    report = folder / entry["report"]
    if not report.is_file() or sha256_file(report) != entry.get("report_sha256"):
        raise ReleaseRefused(
            f"{precision}: parity report {report} is missing or not the one the manifest recorded; {fix}"
        )
    data = json.loads(report.read_text())
    if (
        data.get("verdict") != "pass"
        or data.get("weights", {}).get("state_dict_sha256") != manifest["weights"]["state_dict_sha256"]
    ):
        raise ReleaseRefused(f"{precision}: {report.name} does not show a pass for these weights; {fix}")
    return {
        "report": report.name,
        "html": report.with_suffix(".html").name,
        "summary": data["summary"],
        "cases": len(data["cases"]),
        "images": sorted(data["images"]),
        "folder": report.parent,
    }  # `parity --report DIR` keeps it outside the model folder


def check_releasable(folder: Path, allow_random_weights: bool = False) -> tuple[dict, dict[str, dict], dict[str, str]]:
    """``(manifest, {precision: parity record}, {INT8 file: kernel proof})`` if ``folder`` may be
    released, else raises."""
    manifest = read_manifest(folder)
    verify_files(folder, manifest)  # IntegrityError: a file differs from what was exported and checked
    seed = random_seed(manifest["weights"])
    if seed is not None and not allow_random_weights:
        raise ReleaseRefused(
            f"{folder} was exported from seeded random weights (seed {seed}), not a real "
            "checkpoint; pass --allow-random-weights only to test a release pipeline"
        )
    precisions = list(manifest.get("precisions") or {"fp32": {}})
    records = {p: parity_record(Path(folder), manifest, p) for p in precisions}
    return manifest, records, kernel_proofs(Path(folder), manifest)


def kernel_proofs(folder: Path, manifest: dict) -> dict[str, str]:
    """``{file: proof summary}`` of every INT8 graph, proved again on the files themselves
    (precision/kernel_safety.py); ReleaseRefused if one could overflow an integer kernel of
    some CPU, or the manifest does not carry the proof (made before it existed)."""
    from ..precision.kernel_safety import analyse, summary

    int8 = [
        name
        for name in dict.fromkeys((manifest.get("precisions") or {}).get("int8", {}).values())
        if manifest["files"][name]["precision"] == "int8"
    ]
    if int8 and manifest.get("int8", {}).get("kernel_safe") is not True:
        raise ReleaseRefused(
            f"int8: the manifest of {folder} carries no kernel-safety proof; re-export the INT8 "
            "graphs with this version"
        )
    proofs = {}
    for name in int8:
        proof = analyse(folder / name)
        if not proof["kernel_safe"]:
            reason = "; ".join(proof["problems"][:1]) or "no integer layers found"
            raise ReleaseRefused(
                f"int8: {name} is not kernel-safe ({reason}): its masks would differ on CPUs "
                "that take those kernels; re-export it with this version"
            )
        proofs[name] = summary(proof)
    return proofs


@contextlib.contextmanager
def _quiet():
    """Silence onnxruntime's converter: constant-folding warnings and INFO lines are expected."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    logging.disable(logging.INFO)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)
        ort.set_default_logger_severity(2)


def _session(path: Path, level: str = "all", ort_file: Path | None = None):
    """A CPU session on ``path`` at optimisation ``level`` (runtime.sessions.session_options); with
    ``ort_file``, onnxruntime also saves the optimised graph there in ORT format."""
    import onnxruntime as ort

    opts = session_options(None, level)
    if ort_file is not None:
        opts.optimized_model_filepath = str(ort_file)
        opts.add_session_config_entry("session.save_model_format", "ORT")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def too_large_for_ort(manifest: dict) -> dict[str, str]:
    """``{graph file: why}`` for the graphs that get no ``.ort`` copy: an ORT-format file is one
    flatbuffer, which holds at most 2 GB and has no external data (ViT-H's fp32 encoder)."""
    return {
        name: f"{graph_bytes(e) / 1e9:.2f} GB is over the ORT format's 2 GB (one flatbuffer, no external data)"
        for name, e in manifest["files"].items()
        if graph_bytes(e) >= PROTOBUF_LIMIT
    }


def convert_to_ort(onnx_files: list[Path], out: Path) -> dict[str, str]:
    """ORT-format copies of ``onnx_files`` in ``out`` plus one ``required_operators.config`` for
    all of them; returns ``{ort file: optimisation level baked in}`` ("basic" or "disable").

    Each copy gets onnxruntime's basic (portable) optimisations baked in, as its mobile
    converter does, unless that grows the file by more than ORT_GROWTH_MAX: constant folding
    turns FP16 and compressed INT8 weights back into FP32 ones on a CPU without those kernels,
    which would undo the point of the smaller precision. Such files are saved unoptimised.
    """
    from onnxruntime.tools.ort_format_model import create_config_from_models

    levels = {}
    try:
        with _quiet():
            for f in onnx_files:
                target = out / f.with_suffix(".ort").name
                _session(f, "basic", target)
                levels[target.name] = "basic"
                size = f.stat().st_size + (data_file(f).stat().st_size if data_file(f).is_file() else 0)
                if target.stat().st_size > size * ORT_GROWTH_MAX:
                    _session(f, "disable", target)
                    levels[target.name] = "disable"
            create_config_from_models([out / name for name in levels], out / OPS_CONFIG, False)
            # its header names each model by path: keep the file names, not the staging folder's
            config = (out / OPS_CONFIG).read_text().replace(f"{out}{os.sep}", "")
            (out / OPS_CONFIG).write_text(config)
    except Exception as exc:  # onnxruntime raises its own types; all mean "cannot convert"
        raise IntegrityError(f"ORT-format conversion failed: {exc}") from exc
    return levels


def check_ort_copies(folder: Path, manifest: dict, levels: dict[str, str]) -> dict[str, dict]:
    """Load every ``.ort`` file and compare its masks with its ``.onnx`` twin on the sample photo
    (a click, and four prompts of every label kind, two with mask input); IntegrityError if any
    mask's IoU is below ORT_MASK_IOU_MIN. A graph without an ``.ort`` copy (too_large_for_ort)
    runs as ``.onnx`` on both sides, so its partner's copy is still checked.

    Each ``.onnx`` twin is opened at the optimisation level baked into its copy (``levels``, from
    convert_to_ort), so the check measures the conversion alone: at FP16, onnxruntime's own
    optimisation levels already disagree with each other (tiny FP16: mask IoU 0.9995 between
    "basic" and "all" on the same .onnx file), which the parity gates judge, not this check.
    """
    from ..checks.sam1_inputs import sam1_decoder_feeds
    from ..checks.sample_inputs import decoder_feed

    profile = manifest_profile(manifest)
    image = sample_image()
    if profile.family == "sam1":
        photo = read_image(SAMPLE_PHOTO)
        image, hw = sam1_preprocess(photo)[0], photo.shape[:2]
    results = {}
    for precision in manifest.get("precisions") or {"fp32": {}}:
        runs = {}
        for fmt in (".onnx", ".ort"):
            files = [folder / Path(graph_file(role, precision, manifest)).with_suffix(fmt) for role in GRAPHS]
            files = [f if f.is_file() else f.with_suffix(".onnx") for f in files]
            enc, dec = (
                _session(f, levels.get(f.with_suffix(".ort").name, "all") if f.suffix == ".onnx" else "all")
                for f in files
            )
            if profile.family == "sam1":  # a click, then three prompts refining with its low-res masks
                (emb,) = enc.run(None, {"input_image": image})
                first = dec.run(None, sam1_decoder_feeds(emb, hw))
                second = dec.run(None, sam1_decoder_feeds(emb, hw, first[2]))
                runs[fmt] = [first[:2], second[:2]]
                continue
            feats = dict(zip(C.names(C.ENCODER_OUTPUTS), enc.run(None, {"image": image})))

            def run(feed, dec=dec):  # in calls of the folder's static shapes, if it has them
                calls = static_calls(profile, feed, truncate=True)
                return join_calls([dec.run(["masks", "iou_predictions"], c) for c in calls], len(feed["point_labels"]))

            first = run(decoder_feed(feats))
            runs[fmt] = [first, run(decoder_feed(feats, first[0][:1]))]
        ious, score_diff = [], 0.0
        for (m1, s1), (m2, s2) in zip(runs[".onnx"], runs[".ort"]):
            ious += [iou(a > 0, b > 0) for a, b in zip(m1.reshape(-1, *m1.shape[-2:]), m2.reshape(-1, *m2.shape[-2:]))]
            score_diff = max(score_diff, float(np.abs(s1 - s2).max()))
        results[precision] = {
            "masks": len(ious),
            "mask_iou_min": round(min(ious), 6),
            "iou_predictions_max_abs": score_diff,
        }
        if min(ious) < ORT_MASK_IOU_MIN:
            raise IntegrityError(
                f"{precision}: the .ort graphs decode different masks from the .onnx ones "
                f"(IoU {min(ious):.6f} < {ORT_MASK_IOU_MIN})"
            )
    return results


def current_release(model_dir: Path, release_dir: Path) -> bool:
    """Whether ``release_dir`` is an intact release (SHA256SUMS verified) of exactly what
    ``build_release(model_dir, ...)`` would ship now: the same graph files, the same parity
    reports (by the digests the manifests record) and the same bench, or no bench in both."""

    def reports(m: dict) -> dict:  # which parity reports a manifest vouches for
        return {p: e.get("report_sha256") for p, e in m.get("parity", {}).items()}

    try:
        manifest = read_manifest(model_dir)
        verify_release(release_dir)
        released = json.loads((Path(release_dir) / MANIFEST_FILE).read_text())
        bench = BENCH_JSON if current_bench(model_dir, manifest) else None
        return (
            released.get("files") == manifest["files"]
            and released["release"]["bench"] == bench
            and (bench is None or sha256_file(Path(release_dir) / bench) == sha256_file(Path(model_dir) / bench))
            and reports(released) == reports(manifest)
        )
    except (Sam2OnnxError, OSError, ValueError, KeyError):
        return False


def build_release(
    model_dir: Path,
    out: Path,
    allow_random_weights: bool = False,
    force: bool = False,
    progress=None,
    browser_eps=BROWSER_EPS,
) -> dict:
    """Check ``model_dir``, then write the release folder ``out``; returns its release record.

    ``browser_eps``: the onnxruntime-web execution providers every graph file is checked on in
    headless Chromium (browser_check.py); empty: no browser check (the card says so)."""
    model_dir, out = Path(model_dir), Path(out)
    say = progress or (lambda _msg: None)
    if out.resolve() == model_dir.resolve():
        raise InputError("--out must be a new folder, not the model folder itself")
    refuse_overwrite(out, force)
    say("checking files, weights and parity reports")
    profile = manifest_profile(read_manifest(model_dir))
    family_default = C.default_profile(profile.family).name
    if profile.name != family_default:  # the .ort check, browser check and card read the default contract
        raise InputError(
            f"{model_dir}: exported with the {profile.name} I/O profile; `release` packages "
            f"{family_default} folders (the {profile.name} files are used as exported)"
        )
    if profile.family == "sam1":  # its own contract, which the page does not serve (web/server.py)
        browser_eps = ()
    if profile.static:  # for ONNX Runtime Mobile; a web page takes the dynamic folder's files
        browser_eps = ()
    if any("external_data" in e for e in read_manifest(model_dir)["files"].values()):
        browser_eps = ()  # the page loads single-file graphs (web/server.py); the card says so
    manifest, parity, proofs = check_releasable(model_dir, allow_random_weights)
    if browser_eps:  # before minutes of work: is there a browser to check the files in?
        from ..web.graph_check import require_browser

        try:
            require_browser()
        except SetupError as exc:
            raise SetupError(f"{exc}; or release without the browser check (--no-browser-check)") from None
    bench = current_bench(model_dir, manifest)
    staging = staging_dir(out.parent, out.name)
    try:
        onnx_files = [model_dir / name for name in manifest["files"]]
        for name in listed_files(manifest):  # with their external-data files
            shutil.copy2(model_dir / name, staging / name)
        no_ort = too_large_for_ort(manifest)
        for record in parity.values():
            for name in (record["report"], record["html"]):
                if (record["folder"] / name).is_file():
                    shutil.copy2(record["folder"] / name, staging / name)
        if bench:
            for name in (BENCH_JSON, BENCH_PNG):
                if (model_dir / name).is_file():
                    shutil.copy2(model_dir / name, staging / name)
        say(f"converting {len(onnx_files) - len(no_ort)} graphs to ORT format")
        levels = convert_to_ort([staging / f.name for f in onnx_files if f.name not in no_ort], staging)
        say("checking the .ort graphs against the .onnx ones")
        ort_check = check_ort_copies(staging, manifest, levels)
        say("running onnxruntime's mobile usability checker on every graph")
        mobile = {
            "onnxruntime": package_versions("onnxruntime")["onnxruntime"],
            "files": {f.name: mobile_usability(staging / f.name) for f in onnx_files},
        }
        browser = None
        if browser_eps:
            say(f"checking every graph file in headless Chromium ({', '.join(browser_eps)})")
            browser = check_in_browser(staging, manifest, browser_eps, lambda m: say(f"  {m}"))
        release = {
            "random_weights": random_seed(manifest["weights"]) is not None,
            "tool": package_versions("sam2-onnx-exporter", "onnxruntime"),
            "ort_format": {
                "files": {
                    name: {
                        "sha256": sha256_file(staging / name),
                        "bytes": (staging / name).stat().st_size,
                        "optimization": level,
                    }
                    for name, level in levels.items()
                },
                "operators_config": OPS_CONFIG,
                "check": ort_check,
                **({"not_converted": no_ort} if no_ort else {}),
            },
            "parity": {
                p: {k: r[k] for k in ("report", "cases", "images")} | {"verdict": "pass"} for p, r in parity.items()
            },
            "int8_kernel_proofs": proofs,
            "mobile": mobile,
            "browser": browser,
            "bench": BENCH_JSON if bench else None,
        }
        write_text_atomic(staging / "README.md", model_card(manifest, parity, bench, release))
        # the reports sit next to the manifest now, whatever folder `parity --report` had put them in
        local = {
            p: e | {"report": parity[p]["report"]} if p in parity else e for p, e in manifest.get("parity", {}).items()
        }
        # the video graphs are not released yet: their part would name files the folder lacks
        image_only = {k: v for k, v in manifest.items() if k not in ("video", "parity_video")}
        write_manifest(staging, image_only | {"parity": local, "release": release})
        write_sums(staging)
        publish(staging, out, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return release


def upload_plan(folder: Path) -> list[tuple[str, int]]:
    """``[(file, bytes)]`` a push would upload (the verified release folder)."""
    folder = Path(folder)
    return [(name, (folder / name).stat().st_size) for name in verify_release(folder) + [SUMS_FILE]]


def push_release(folder: Path, repo_id: str, dry_run: bool = False, echo=print) -> list[tuple[str, int]]:
    """Upload a verified release folder to the Hugging Face Hub model repo ``repo_id``.

    ``dry_run`` prints the plan and touches nothing (huggingface_hub is not even imported).
    A release made from random weights is never pushed.
    """
    folder = Path(folder)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InputError(f"repo id must look like OWNER/NAME, not {repo_id!r}")
    plan = upload_plan(folder)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    random = manifest.get("release", {}).get("random_weights", True)
    echo(
        f"{'[dry run] would push' if dry_run else 'pushing'} {folder} to https://huggingface.co/{repo_id} "
        f"({len(plan)} files, {sum(b for _, b in plan) / 1e6:.1f} MB, one commit)"
    )
    for name, size in plan:
        echo(f"  {name:<40} {size / 1e6:10.1f} MB")
    if random:
        if not dry_run:
            raise ReleaseRefused(f"{folder} holds random weights; it is for testing pipelines and is never pushed")
        echo("  note: this release holds random weights; a real push would be refused")
    if dry_run:
        return plan
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise InputError("pushing needs huggingface_hub: pip install 'sam2-onnx-exporter[hub]'") from None
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=f"{manifest['variant']['name']} ONNX release (sam2-onnx)",
    )
    return plan
