"""The release job end to end, release refusals, ``.ort`` copies, SHA256SUMS, ``bench.json``.

One module-scoped run of ``scripts/release.sh`` on tiny with random weights (export, parity on
one photo and one prompt kind, a one-run bench, release) feeds every test. It runs first with a
parity gate no result can meet (``mask_iou_min: 2``, through ``$SAM2_ONNX_CONFIGS``), so the
job's stop at a failed gate and a model folder holding a failed verdict are real ones, then
with the repository's gates, then a third time to show that nothing is redone.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
import yaml
from PIL import Image

from exporter.bench.benchmark import run_bench, table
from exporter.checks.sample_inputs import SAMPLE_PHOTO
from exporter.core import contract as C
from exporter.core.digests import sha256_file
from exporter.parity.metrics import iou
from exporter.runtime.transforms import preprocess

from .fixtures import config_ops, ort_file_ops, run_cli

ROOT = Path(__file__).resolve().parent.parent
VARIANT = "sam2.1_hiera_tiny"
JOB_OPTIONS = [
    "tiny",
    "--allow-random-weights",
    "--precision",
    "fp32",
    "--samples",
    "chelsea",
    "--kinds",
    "point",
    "--no-automask",
    "--runs",
    "1",
    "--decoder-runs",
    "2",
    "--warmup",
    "0",
]
RELEASE_FILES = {
    "encoder.onnx",
    "decoder.onnx",
    "encoder.ort",
    "decoder.ort",
    "required_operators.config",
    "README.md",
    "manifest.json",
    "SHA256SUMS",
    "parity.json",
    "parity.html",
    "bench.json",
    "bench.png",
}
STEP = re.compile(r"^(?P<name>\S.*?)\s{2,}(?P<status>ok|skipped|failed)\s+[\d.]+s\s{2}(?P<detail>.*)$")


def _job(tmp: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``scripts/release.sh`` as CI runs it, writing only under ``tmp``."""
    return subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "release.sh"),
            *JOB_OPTIONS,
            "--out",
            str(tmp / "art"),
            "--release-dir",
            str(tmp / "rel"),
            "--checkpoints",
            str(tmp / "ck"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env=os.environ | (env or {}),
    )


def _steps(stdout: str) -> dict[str, tuple[str, str]]:
    """The job's summary table: step name (without the variant) -> (status, detail)."""
    rows = {}
    for line in stdout.splitlines():
        m = STEP.match(line)
        if m and m["name"].startswith(f"{VARIANT}: "):
            rows[m["name"].split(": ", 1)[1]] = (m["status"], m["detail"])
    return rows


def _flip_byte(path: Path, offset: int) -> None:
    """Tamper with a file in place: invert every bit of the byte at ``offset`` (size unchanged)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def _digests(*folders: Path) -> dict[str, str]:
    return {str(p): sha256_file(p) for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def _strict_configs(folder: Path) -> Path:
    """The repository's variant configs with tiny's FP32 mask IoU gate at 2 (an IoU is at most 1)."""
    folder.mkdir()
    for path in (ROOT / "configs").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    config = yaml.safe_load((folder / f"{VARIANT}.yaml").read_text())
    config.setdefault("parity", {}).setdefault("fp32", {})["mask_iou_min"] = 2.0  # over defaults.yaml
    (folder / f"{VARIANT}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release_job")
    art, release = tmp / "art" / VARIANT, tmp / "rel" / VARIANT
    failed = _job(tmp, env={"SAM2_ONNX_CONFIGS": str(_strict_configs(tmp / "strict_configs"))})
    assert (art / "manifest.json").is_file(), failed.stdout + failed.stderr
    state = SimpleNamespace(
        release_after_failure=sorted((tmp / "rel").glob("*")) if (tmp / "rel").exists() else [],
        bench_after_failure=(art / "bench.json").exists(),
    )
    failed_folder = tmp / "failed" / VARIANT  # the model folder as the failed gate left it
    shutil.copytree(art, failed_folder)
    passed = _job(tmp)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    return SimpleNamespace(
        tmp=tmp, art=art, release=release, failed=failed, passed=passed, failed_folder=failed_folder, **vars(state)
    )


@pytest.fixture(scope="module")
def rerun(job):
    """A third run, pushing with --dry-run, with Python's import log on (to see what it imports)."""
    before = _digests(job.art, job.release)
    proc = _job(job.tmp, "--push", "me/x", "--dry-run", env={"PYTHONPROFILEIMPORTTIME": "1"})
    return SimpleNamespace(proc=proc, before=before, after=_digests(job.art, job.release))


def _one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    """The error line of a failed command: exit ``code``, one ``error:`` line after progress lines only."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    *progress, err = proc.stderr.strip().splitlines()
    assert err.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert all(re.fullmatch(r"\[(release|bench)\] .* \.\.\.", line) for line in progress), proc.stderr
    return err


# --- the release job ----------------------------------------------------------------------------


def test_job_stops_at_a_failed_parity_gate(job):
    proc = job.failed
    assert proc.returncode == 5, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = _steps(proc.stdout)
    assert list(steps) == ["fetch", "export (fp32)", "parity fp32"]
    assert steps["fetch"][0] == "skipped" and steps["export (fp32)"][0] == "ok"
    assert steps["parity fp32"][0] == "failed" and "mask_iou_min" in steps["parity fp32"][1]
    assert "verdict: FAILED" in proc.stdout
    assert job.release_after_failure == [] and not job.bench_after_failure
    # the failed verdict is on record, next to its report
    manifest = json.loads((job.failed_folder / "manifest.json").read_text())
    entry = manifest["parity"]["fp32"]
    assert entry["verdict"] == "fail" and entry["failures"] >= 1
    assert entry["report_sha256"] == sha256_file(job.failed_folder / entry["report"])
    report = json.loads((job.failed_folder / entry["report"]).read_text())
    assert report["verdict"] == "fail" and report["gates"]["mask_iou_min"] == 2.0


def test_job_end_to_end(job):
    steps = _steps(job.passed.stdout)
    assert list(steps) == ["fetch", "export (fp32)", "parity fp32", "bench", "release"]
    assert [s for s, _ in steps.values()] == ["skipped", "skipped", "ok", "ok", "ok"], steps
    assert "RANDOM WEIGHTS" in steps["release"][1] and "verdict: PASSED" in job.passed.stdout
    assert {p.name for p in job.release.iterdir()} == RELEASE_FILES
    assert list(job.release.parent.iterdir()) == [job.release]  # no staging folder left behind
    # the graphs and evidence are the model folder's own files, unchanged
    for name in ("encoder.onnx", "decoder.onnx", "parity.json", "parity.html", "bench.json", "bench.png"):
        assert sha256_file(job.release / name) == sha256_file(job.art / name), name
    art = json.loads((job.art / "manifest.json").read_text())
    released = json.loads((job.release / "manifest.json").read_text())
    assert released["files"] == art["files"] and released["weights"] == art["weights"]
    record = released["release"]
    assert record["random_weights"] is True and record["bench"] == "bench.json"
    assert record["parity"]["fp32"]["verdict"] == "pass" and record["parity"]["fp32"]["images"] == ["chelsea"]
    for name, entry in record["ort_format"]["files"].items():
        assert entry["sha256"] == sha256_file(job.release / name)
        assert entry["bytes"] == (job.release / name).stat().st_size
    assert set(record["ort_format"]["files"]) == {"encoder.ort", "decoder.ort"}
    # the job's own bench used its options: one encoder run and two decoder runs per engine, no warm-up
    bench = json.loads((job.release / "bench.json").read_text())
    assert bench["warmup"] == 0
    assert [(r["encoder"]["runs"], r["decoder"]["runs"]) for r in bench["results"]] == [(1, 2), (1, 2)]


def test_model_card_is_valid_and_stamped_random(job):
    text = (job.release / "README.md").read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["license"] == "apache-2.0"  # SAM 2.1's checkpoints and code
    assert meta["library_name"] == "onnx"
    assert meta["base_model"] == "facebook/sam2.1-hiera-tiny"  # the official Hugging Face repo of tiny
    assert {"onnx", "random-weights", "not-for-production"} <= set(meta["tags"])
    title = next(line for line in body.splitlines() if line.startswith("# "))
    assert VARIANT in title and "RANDOM WEIGHTS" in title
    assert body.index("WARNING: these graphs hold seeded random weights (seed 0)") < body.index("\n## ")
    # every file of the release is in the card with its size and digest
    for name in ("encoder.onnx", "decoder.onnx", "encoder.ort", "decoder.ort"):
        path = job.release / name
        row = next(line for line in body.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{path.stat().st_size:,}" in row and sha256_file(path)[:16] in row
    assert "| torch eager fp32 |" in body and "| onnxruntime fp32 |" in body and "![benchmark](bench.png)" in body


def test_release_card_says_what_mobile_providers_take_of_the_dynamic_files(job):
    """The checker's verdict on the dynamic files: in the manifest, in the card, and pointing to
    --static-shapes, as fixed shapes would give NNAPI more of each graph."""
    mobile = json.loads((job.release / "manifest.json").read_text())["release"]["mobile"]
    body = (job.release / "README.md").read_text()
    assert "## On mobile (ONNX Runtime Mobile)" in body and "--static-shapes L,N" in body
    for name in ("encoder.onnx", "decoder.onnx"):
        record = mobile["files"][name]
        assert record["dynamic_inputs"], name  # the prompt counts, the batch
        nnapi = record["providers"]["NNAPI"]
        assert nnapi["if_shapes_fixed"]["supported"] > nnapi["supported"] > 0, name
        rows = [line for line in body.splitlines() if line.startswith(f"| `{name}` |") and " nodes" in line]
        assert (
            len(rows) == 1
            and f"{nnapi['supported']}/{nnapi['nodes']} nodes, {nnapi['partitions']} partitions" in rows[0]
        )


def test_release_says_which_files_a_browser_runs(job):
    """Every graph file, .onnx and .ort, loaded by onnxruntime-web in headless Chromium (wasm)
    and run on the sample photo and prompts: its masks equal the Python onnxruntime's on the
    same file, and the card lists it for the web."""
    web = json.loads((job.release / "manifest.json").read_text())["release"]["browser"]
    graphs = ["encoder.onnx", "decoder.onnx", "encoder.ort", "decoder.ort"]
    lock = json.loads((ROOT / "exporter" / "web" / "package-lock.json").read_text())
    assert web["onnxruntime_web"] == lock["packages"]["node_modules/onnxruntime-web"]["version"]
    assert web["eps"] == ["wasm"] and web["browser"].startswith("chromium ")
    assert sorted(web["files"]) == sorted(graphs) and sorted(web["for_web"]) == sorted(graphs)
    for name, result in web["files"].items():
        wasm = result["wasm"]
        assert result["single_file"] and wasm["verdict"] == "pass", (name, wasm)
        assert wasm["masks"] == 15 and wasm["mask_iou_min"] >= 0.9999 and wasm["iou_band"] == 1e-4
        assert wasm["logits_max_abs"] < 1e-3 and wasm["iou_predictions_max_abs"] < 1e-4, (name, wasm)
        if name.startswith("encoder"):
            assert wasm["features_rel_l2_max"] < 1e-5, (name, wasm)
    body = (job.release / "README.md").read_text()
    section = body[body.index("## In the browser") : body.index("## Speed and memory")]
    assert f"onnxruntime-web {web['onnxruntime_web']} in headless {web['browser']}" in section
    for name in graphs:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.startswith(f"| `{name}` | yes | runs (mask IoU "), row
    assert "WebGPU was not checked" in section


def test_webgpu_failure_is_recorded_with_the_error(job):
    """onnxruntime-web 1.30's WebGPU provider cannot run an .ort decoder (docs/web.md): the
    check records the failure, at which stage and why, and the card shows it; wasm runs it."""
    from exporter.checks.equivalence import run_graph
    from exporter.checks.sample_inputs import decoder_feed
    from exporter.release.browser_check import _compare_masks, _verdict, sample_image
    from exporter.release.model_card import _browser_cell
    from exporter.web.graph_check import BrowserGraphs

    feeds = [decoder_feed(run_graph(job.release / "encoder.onnx", [{"image": sample_image()}])[0])]
    want = run_graph(job.release / "decoder.ort", feeds)
    with BrowserGraphs(job.release, ["decoder.ort"], "webgpu") as browser:
        run = browser.run("decoder.ort", feeds)
    assert "swiftshader" in (run.adapter or "").lower(), run  # Chromium's software adapter: no GPU here
    result = _verdict(run, _compare_masks, 1e-4, want)
    assert result["verdict"] == "fail" and result["stage"] == "run", result
    assert _browser_cell(result) == "fails (run): All inputs must be tensors on WebGPU buffers."
    with BrowserGraphs(job.release, ["decoder.ort"], "wasm") as browser:
        run = browser.run("decoder.ort", feeds)
    assert _verdict(run, _compare_masks, 1e-4, want)["verdict"] == "pass"


def test_external_data_is_found(tmp_path):
    """A graph that keeps its weights beside it is not a single file (not for a web page)."""
    from onnx import TensorProto, helper, numpy_helper

    from exporter.release.browser_check import external_data

    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [weight],
    )
    model = helper.make_model(graph)
    onnx.save(model, tmp_path / "one.onnx")
    onnx.save(model, tmp_path / "two.onnx", save_as_external_data=True, location="two.data", size_threshold=0)
    assert (tmp_path / "two.data").is_file()
    assert not external_data(tmp_path / "one.onnx") and external_data(tmp_path / "two.onnx")


def test_second_run_skips_every_step_and_changes_nothing(rerun):
    proc = rerun.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = _steps(proc.stdout)
    assert list(steps) == ["fetch", "export (fp32)", "parity fp32", "bench", "release", "push"]
    assert {name: s for name, (s, _) in steps.items() if name != "push"} == dict.fromkeys(list(steps)[:-1], "skipped")
    assert rerun.after == rerun.before


def test_new_bench_settings_rebench_and_rerelease_only(job, tmp_path):
    """A re-run asking for more bench calls measures again and releases the new bench.json;
    export and parity, whose inputs did not change, are skipped."""
    for name in ("art", "rel", "ck"):
        if (job.tmp / name).exists():
            shutil.copytree(job.tmp / name, tmp_path / name)
    art, release = tmp_path / "art" / VARIANT, tmp_path / "rel" / VARIANT
    onnx_before = {p.name: sha256_file(p) for p in art.glob("*.onnx")}
    proc = _job(tmp_path, "--runs", "2", "--no-browser-check")  # after JOB_OPTIONS' --runs 1: argparse keeps the last
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {name: s for name, (s, _) in _steps(proc.stdout).items()} == {
        "fetch": "skipped",
        "export (fp32)": "skipped",
        "parity fp32": "skipped",
        "bench": "ok",
        "release": "ok",
    }
    bench = json.loads((art / "bench.json").read_text())
    assert bench["settings"]["runs"] == 2 and [r["encoder"]["runs"] for r in bench["results"]] == [2, 2]
    assert sha256_file(release / "bench.json") == sha256_file(art / "bench.json")
    assert {p.name: sha256_file(p) for p in art.glob("*.onnx")} == onnx_before
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=release).returncode == 0


def test_push_dry_run_prints_the_plan_without_huggingface_hub(job, rerun):
    out, imports = rerun.proc.stdout, rerun.proc.stderr
    assert f"[dry run] would push {job.release} to https://huggingface.co/me/x" in out
    for name in RELEASE_FILES:
        size = (job.release / name).stat().st_size
        assert re.search(rf"^  {re.escape(name)} +{size / 1e6:.1f} MB$", out, re.M), name
    assert "a real push would be refused" in out
    assert rerun.proc.returncode == 0 and _steps(out)["push"] == ("ok", f"dry run: {len(RELEASE_FILES)} files to me/x")
    assert "exporter.release.build" in imports  # the import log is on ...
    assert "huggingface_hub" not in imports  # ... and never shows the hub client


def test_push_without_dry_run_refuses_random_weights(job):
    proc = run_cli("push", job.release, "--repo-id", "me/x")
    assert "holds random weights" in _one_line_error(proc, 6)


# --- the artifacts of a release -----------------------------------------------------------------


def test_sha256sums_verifies_with_coreutils(job, tmp_path):
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=job.release, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(check.stdout.splitlines()) == sorted(f"{n}: OK" for n in RELEASE_FILES - {"SHA256SUMS"})
    # one flipped byte in a copy: coreutils and `sam2-onnx push` both notice
    copy = tmp_path / "release"
    shutil.copytree(job.release, copy)
    _flip_byte(copy / "decoder.ort", 1_000_000)
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True, text=True)
    assert bad.returncode != 0 and "decoder.ort: FAILED" in bad.stdout
    assert "decoder.ort" in _one_line_error(run_cli("push", copy, "--repo-id", "me/x", "--dry-run"), 3)


def test_ort_copies_load_and_decode_the_same_masks(job):
    """The .ort files open in onnxruntime and give the .onnx files' masks on another photo than the
    release's own check (astronaut, 512x512) and prompts with every label, padding and mask input."""
    release = job.release
    sessions = {}
    for role in ("encoder", "decoder"):
        with open(release / f"{role}.ort", "rb") as f:
            assert f.read(8)[4:] == b"ORTM"  # an ORT flatbuffer, not a renamed .onnx
        for fmt in ("onnx", "ort"):
            sessions[role, fmt] = ort.InferenceSession(
                str(release / f"{role}.{fmt}"), providers=["CPUExecutionProvider"]
            )
        for io in ("get_inputs", "get_outputs"):
            names = {fmt: [v.name for v in getattr(sessions[role, fmt], io)()] for fmt in ("onnx", "ort")}
            assert names["ort"] == names["onnx"], (role, names)
    image = preprocess(skimage.data.astronaut())
    coords = np.array(
        [[[300, 200], [900, 800], [0, 0]], [[100, 150], [700, 900], [0, 0]], [[100, 150], [700, 900], [512, 512]]],
        np.float32,
    )
    labels = np.array([[1, 0, -1], [2, 3, -1], [2, 3, 1]], np.float32)
    outputs = {}
    for fmt in ("onnx", "ort"):
        feats = dict(zip(C.names(C.ENCODER_OUTPUTS), sessions["encoder", fmt].run(None, {"image": image})))
        feed = {
            **feats,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": np.zeros((3, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32),
            "has_mask_input": np.zeros(3, np.float32),
        }
        masks, scores = sessions["decoder", fmt].run(["masks", "iou_predictions"], feed)
        feed |= {"mask_input": masks[:, :1], "has_mask_input": np.array([1, 0, 1], np.float32)}  # refine
        outputs[fmt] = [(masks, scores), tuple(sessions["decoder", fmt].run(["masks", "iou_predictions"], feed))]
    for (m1, s1), (m2, s2) in zip(outputs["onnx"], outputs["ort"]):
        assert m1.shape == m2.shape == (3, 3, C.LOW_RES_SIZE, C.LOW_RES_SIZE)
        ious = [iou(a > 0, b > 0) for a, b in zip(m1.reshape(-1, *m1.shape[-2:]), m2.reshape(-1, *m2.shape[-2:]))]
        assert min(ious) >= 0.9999, ious
        assert float(np.abs(m1 - m2).max()) <= 1e-3 and float(np.abs(s1 - s2).max()) <= 1e-4


@pytest.mark.slow
def test_nimbusimage_feeds_give_the_python_runtimes_masks(job):
    """NimbusImage's SAM 2 client (tests/web/nimbusimage_flow.js: its samPipeline.ts step for
    step) in headless Chromium on the release folder as `serve` hosts it: encoder.ort and
    decoder.onnx, the image and prompt tensors built as that client builds them. The Python
    onnxruntime, given the same tensors and the same two files, returns the same masks.

    The client asks for WebGPU for the encoder; here the encoder runs on wasm. onnxruntime-web
    1.30 cannot run .ort files on WebGPU (docs/web.md: measured with the decoder on Chromium's
    SwiftShader adapter), and SwiftShader, the only adapter on a machine without a GPU, did not
    finish the encoder in 15 minutes."""
    from exporter.web.browser import chromium
    from exporter.web.server import make_server

    image = skimage.data.coffee()  # 400 x 600: scaled to 1024 x 683, black below
    png = BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    prompts = [
        {"clicks": [[300, 180, 1]]},
        {"clicks": [[300, 180, 1], [40, 360, 0]]},
        {"box": [120, 60, 480, 340]},
        {"clicks": [[450, 100, 0]], "box": [120, 60, 480, 340]},
    ]
    flow = (ROOT / "tests" / "web" / "nimbusimage_flow.js").read_text()
    server = make_server(job.release, port=0)
    server.start()
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(server.url + "static/blank.html")  # not the page: it would load its own sessions
            out = page.evaluate(
                flow, {"png": base64.b64encode(png.getvalue()).decode(), "prompts": prompts, "ep": "wasm"}
            )
    finally:
        server.shutdown()
        server.server_close()
    assert out["scaled"] == [1024, 683]
    x = np.frombuffer(base64.b64decode(out["image"]), np.float32).reshape(1, 3, 1024, 1024)
    assert np.allclose(
        x[0, :, 700:, :],
        (0 - np.float32([123.675, 116.28, 103.53])[:, None, None]) / np.float32([58.395, 57.12, 57.375])[:, None, None],
    )
    encoder = ort.InferenceSession(str(job.release / "encoder.ort"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(job.release / "decoder.onnx"), providers=["CPUExecutionProvider"])
    feats = dict(zip(C.names(C.ENCODER_OUTPUTS), encoder.run(None, {"image": x})))
    for prompt, r in zip(prompts, out["results"]):
        n = len(r["point_labels"])
        assert r["masks_dims"] == [1, 3, C.LOW_RES_SIZE, C.LOW_RES_SIZE]
        assert (r["point_labels"][-1] == -1) == ("box" not in prompt)  # the padding point NimbusImage adds
        masks, scores = decoder.run(
            ["masks", "iou_predictions"],
            feats
            | {
                "point_coords": np.float32(r["point_coords"]).reshape(1, n, 2),
                "point_labels": np.float32(r["point_labels"]).reshape(1, n),
                "mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32),
                "has_mask_input": np.zeros(1, np.float32),
            },
        )
        web = np.frombuffer(base64.b64decode(r["masks"]), np.float32).reshape(masks.shape)
        ious = [iou(a > 0, b > 0) for a, b in zip(web[0], masks[0])]
        assert min(ious) >= 0.9999 and np.abs(web - masks).max() <= 1e-3, (prompt, ious, np.abs(web - masks).max())
        assert np.abs(np.float32(r["iou_predictions"]) - scores.ravel()).max() <= 1e-4


def test_operator_config_covers_both_graphs(job):
    """The config a reduced build reads lists exactly the operators of the released .ort files,
    read out of the files themselves: none missing (the build could not run them), none extra."""
    lines = (job.release / "required_operators.config").read_text().splitlines()
    # the header names the released files, not the folder they were built in
    assert [line for line in lines if line.startswith("# - ")] == ["# - decoder.ort", "# - encoder.ort"]
    used = ort_file_ops([job.release / "encoder.ort", job.release / "decoder.ort"])
    assert used and used == config_ops(job.release / "required_operators.config")
    assert {domain for domain, _, _ in used} == {"ai.onnx"}  # no contrib ops: any reduced build has them
    assert all(1 <= opset <= 17 for _, opset, _ in used)  # the export's opset bounds each op's version


# --- refusals -----------------------------------------------------------------------------------


def test_release_refuses_random_weights_without_the_flag(job, tmp_path):
    err = _one_line_error(run_cli("release", job.art, "--out", tmp_path / "r"), 6)
    assert "seeded random weights (seed 0)" in err and "--allow-random-weights" in err
    assert list(tmp_path.iterdir()) == []  # no release, no staging folder


def test_release_without_a_browser_says_how_to_skip_the_check(job, tmp_path, monkeypatch):
    """No Chromium: refused before any work, with the way out, and nothing written."""
    monkeypatch.setenv("SAM2_ONNX_CHROMIUM", str(tmp_path / "no-chromium"))
    out = tmp_path / "r"
    err = _one_line_error(run_cli("release", job.art, "--out", out, "--allow-random-weights"), 1)
    assert "no-chromium is not an executable file" in err and "--no-browser-check" in err, err
    assert list(tmp_path.iterdir()) == []


def _drop_parity(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["parity"]  # as `sam2-onnx export` writes it: parity never ran
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _edit_report(folder: Path) -> None:
    report = json.loads((folder / "parity.json").read_text())
    report["cases"] = report["cases"][:1]  # still says "pass", but it is not the report that was recorded
    (folder / "parity.json").write_text(json.dumps(report, indent=2))


@pytest.mark.parametrize(
    "case, message",
    [
        ("no parity", "fp32: no parity report in"),
        ("failed parity", "fp32: parity failed (1 failing case(s))"),
        ("edited report", "is missing or not the one the manifest recorded"),
    ],
)
def test_release_refuses_without_a_passing_parity_report(job, tmp_path, case, message):
    if case == "failed parity":
        folder = job.failed_folder
    else:
        folder = tmp_path / VARIANT
        shutil.copytree(job.art, folder)
        (_drop_parity if case == "no parity" else _edit_report)(folder)
    out = tmp_path / "out" / "r"
    err = _one_line_error(run_cli("release", folder, "--out", out, "--allow-random-weights"), 6)
    assert message in err
    assert not out.parent.exists()


def test_release_refuses_a_tampered_graph(job, tmp_path):
    folder = tmp_path / VARIANT
    shutil.copytree(job.art, folder)
    _flip_byte(folder / "encoder.onnx", 50_000_000)
    out = tmp_path / "out" / "r"
    err = _one_line_error(run_cli("release", folder, "--out", out, "--allow-random-weights"), 3)
    assert f"{folder / 'encoder.onnx'}: sha256 differs from the manifest" in err
    assert not out.parent.exists()


def test_release_refuses_an_existing_out_without_force(job, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = _one_line_error(run_cli("release", job.art, "--out", out, "--allow-random-weights"), 1)
    assert f"{out} already exists; use --force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_release_force_replaces_out_and_ships_the_recorded_report(job, tmp_path):
    """Parity re-run with ``--report`` elsewhere: the release carries that report (the one the
    manifest recorded), not the older parity.json still lying in the model folder."""
    folder, reports = tmp_path / VARIANT, tmp_path / "reports"
    shutil.copytree(job.art, folder)
    run_cli(
        "parity",
        folder,
        "--random-weights",
        "--samples",
        "chelsea",
        "--kinds",
        "box",
        "--no-automask",
        "--report",
        reports,
        check=True,
    )
    assert sha256_file(reports / "parity.json") != sha256_file(folder / "parity.json")
    out = tmp_path / "r"
    out.mkdir()
    (out / "old.txt").write_text("an older release")
    proc = run_cli("release", folder, "--out", out, "--allow-random-weights", "--force", "--no-browser-check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("no browser check; RANDOM WEIGHTS (stamped in README.md)"), proc.stdout
    assert "## In the browser\n\nNot checked for these files" in (out / "README.md").read_text()
    assert {p.name for p in out.iterdir()} == RELEASE_FILES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # old folder and staging gone
    for name in ("parity.json", "parity.html"):
        assert sha256_file(out / name) == sha256_file(reports / name), name
    released = json.loads((out / "manifest.json").read_text())
    record = released["release"]["parity"]["fp32"]
    assert record["report"] == "parity.json" and record["cases"] == 2  # the encoder case and one box
    # the model folder's manifest points at the report elsewhere; the released one at its own copy
    assert Path(json.loads((folder / "manifest.json").read_text())["parity"]["fp32"]["report"]).parent == reports
    entry = released["parity"]["fp32"]
    assert entry["report"] == "parity.json" and entry["report_sha256"] == sha256_file(out / "parity.json")


# --- bench --------------------------------------------------------------------------------------


def test_bench_json_schema_and_chart(job, tmp_path):
    out = tmp_path / "bench"
    proc = run_cli("bench", job.art, "--runs", "1", "--warmup", "0", "--rounds", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    # two rounds, alternating the engines, each engine in a fresh process per round
    assert re.findall(r"^\[bench\] (.*) \.\.\.$", proc.stderr, re.M) == [
        f"round {i}/2: {e}" for i in (1, 2) for e in ("torch eager fp32", "onnxruntime fp32")
    ]
    bench = json.loads((out / "bench.json").read_text())
    manifest = json.loads((job.art / "manifest.json").read_text())
    assert {
        "schema",
        "schema_version",
        "variant",
        "weights",
        "artifacts_sha256",
        "machine",
        "threads",
        "warmup",
        "rounds",
        "settings",
        "image",
        "prompt",
        "results",
    } <= set(bench)
    assert (bench["schema"], bench["schema_version"], bench["variant"]) == ("sam2-onnx/bench", 2, VARIANT)
    assert bench["settings"] == {"runs": 1, "decoder_runs": 5, "warmup": 0, "threads": os.cpu_count(), "rounds": 2}
    assert bench["weights"] == manifest["weights"]
    # the image graphs it timed (the folder's video graphs are not benchmarked here)
    assert bench["artifacts_sha256"] == {name: sha256_file(job.art / name) for name in manifest["files"]}
    m = bench["machine"]
    assert isinstance(m["cpu"], str) and m["cpu"] and m["cores"] == os.cpu_count() and m["memory_gib"] > 0
    assert m["python"] == platform.python_version()
    assert m["date"] in {str(datetime.date.today()), str(datetime.date.today() - datetime.timedelta(days=1))}
    assert bench["threads"] == os.cpu_count() and bench["warmup"] == 0  # default: all cores
    h, w = np.asarray(Image.open(SAMPLE_PHOTO)).shape[:2]
    assert bench["image"] == {"name": SAMPLE_PHOTO.name, "height": h, "width": w}
    results = bench["results"]
    assert [(r["engine"], r["precision"]) for r in results] == [("torch", "fp32"), ("onnxruntime", "fp32")]
    torch_r, ort_r = results
    for r in results:
        assert {"engine", "precision", "encoder", "decoder", "load_s", "peak_rss_mb", "bytes", "vs_torch"} <= set(r)
        for graph, runs in (("encoder", 1), ("decoder", 5)):  # decoder: 5x --runs, per round
            t = r[graph]
            assert set(t) == {"min_ms", "median_ms", "max_ms", "runs", "round_medians_ms"}
            assert t["runs"] == 2 * runs and len(t["round_medians_ms"]) == 2  # pooled over the two rounds
            assert all(isinstance(t[k], float) for k in ("min_ms", "median_ms", "max_ms"))
            assert 0 < t["min_ms"] <= t["median_ms"] <= t["max_ms"]
            assert all(t["min_ms"] <= m <= t["max_ms"] for m in t["round_medians_ms"])
        # one encoder call per round: the pooled extremes are the rounds' calls, the median their mean
        enc = r["encoder"]
        assert (enc["min_ms"], enc["max_ms"]) == (min(enc["round_medians_ms"]), max(enc["round_medians_ms"]))
        assert enc["median_ms"] == pytest.approx(sum(enc["round_medians_ms"]) / 2, abs=1e-3)
        assert r["load_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["vs_torch"] == {
            g: pytest.approx(round(r[g]["median_ms"] / torch_r[g]["median_ms"], 3), abs=1e-9)
            for g in ("encoder", "decoder")
        }
    assert torch_r["vs_torch"] == {"encoder": 1.0, "decoder": 1.0} and torch_r["bytes"] is None
    assert ort_r["bytes"] == {
        "encoder": (job.art / "encoder.onnx").stat().st_size,
        "decoder": (job.art / "decoder.onnx").stat().st_size,
    }
    assert torch_r["torch_imported"] is True and ort_r["torch_imported"] is False  # onnxruntime runs torch-free
    assert ort_r["peak_rss_mb"] > ort_r["bytes"]["encoder"] / 2**20  # it holds the encoder's weights at least
    assert "| torch eager fp32 |" in proc.stdout and "| onnxruntime fp32 |" in proc.stdout
    with Image.open(out / "bench.png") as png:
        assert png.format == "PNG" and png.width > 0 and png.height > 0
        assert len(png.convert("RGB").getcolors(1 << 16) or range(1 << 16)) > 4  # bars and text, not blank
    # an existing report is refused before any timing, and left as it was
    before = _digests(out)
    again = run_cli("bench", job.art, "--runs", "1", "--warmup", "0", "--out", out)
    assert "bench.json already exists; use --force" in _one_line_error(again, 1)
    assert "[bench]" not in again.stderr  # no engine was started
    assert _digests(out) == before


def test_bench_peak_rss_is_the_workers_own(job):
    """A worker started from a process that once held 3 GiB (as the release job's is, after export
    and parity) reports its own peak memory, not the parent's."""
    ballast = np.ones(3 * 2**30 // 8)  # touched: 3 GiB resident
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 >= 3
    del ballast
    bench = run_bench(job.art, runs=1, warmup=0, decoder_runs=1, torch=False)
    (result,) = bench["results"]
    assert result["engine"] == "onnxruntime" and not result["torch_imported"]
    assert (job.art / "encoder.onnx").stat().st_size / 2**20 < result["peak_rss_mb"] < 2.5 * 1024, result
    # without torch there is no ratio to print: a dash, not "nanx"
    assert result["vs_torch"] is None
    row = next(line for line in table(bench).splitlines() if line.startswith("| onnxruntime fp32 |"))
    assert row.split(" | ")[3:5] == ["-", "-"] and "nan" not in row


def test_ort_copies_of_every_precision_match_their_twins(exported, tmp_path):
    """FP16 and INT8 too: each .ort copy decodes exactly what its .onnx twin does at the level baked
    into the copy (at FP16, onnxruntime's "basic" and "all" levels already differ by a few pixels,
    which the parity gates judge), and no copy grows past ORT_GROWTH_MAX of its .onnx file."""
    from exporter.release.build import ORT_GROWTH_MAX, check_ort_copies, convert_to_ort

    src = exported("tiny", "fp32,fp16,int8")
    manifest = json.loads((src / "manifest.json").read_text())
    for name in manifest["files"]:
        shutil.copy2(src / name, tmp_path / name)
    levels = convert_to_ort([tmp_path / name for name in manifest["files"]], tmp_path)
    assert sorted(levels) == sorted(Path(n).with_suffix(".ort").name for n in manifest["files"])
    assert set(levels.values()) <= {"basic", "disable"}
    for name in levels:
        assert (tmp_path / name).stat().st_size <= ORT_GROWTH_MAX * (tmp_path / name).with_suffix(
            ".onnx"
        ).stat().st_size
    # the one config covers every op of every precision's .ort file, read from the files
    used = ort_file_ops([tmp_path / name for name in levels])
    assert used == config_ops(tmp_path / "required_operators.config")
    assert {op for _, _, op in used} >= {"DequantizeLinear", "MatMul", "Conv"}  # INT8 and FP32 kernels both
    check = check_ort_copies(tmp_path, manifest, levels)
    assert sorted(check) == ["fp16", "fp32", "int8"]
    for precision, c in check.items():
        assert c["masks"] == 15 and c["mask_iou_min"] == 1.0 and c["iou_predictions_max_abs"] < 1e-5, precision
