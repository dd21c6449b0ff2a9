"""`sam2-onnx export`: every variant through the real pipeline, checked against the torch wrappers.

Random weights (seed 0) stand in for official checkpoints, which cannot be downloaded here;
the errors measured below are graph-conversion errors and do not depend on the weights' values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import skimage.data
import torch
from sam2.utils.transforms import SAM2Transforms

from exporter.checkpoints.loading import load_checkpoint, random_model
from exporter.checks.equivalence import cpu_session, rel_l2, run_graph
from exporter.checks.sample_inputs import decoder_feed
from exporter.core import contract as C
from exporter.core import manifest as M
from exporter.core.digests import sha256_file
from exporter.core.variants import resolve, sam2_variants
from exporter.core.video_contract import VIDEO_GRAPHS
from exporter.export.onnx_steps import io_of, simplify_verified
from exporter.export.pipeline import export_variant
from exporter.wrappers import ImageEncoder, PromptDecoder

from .fixtures import run_cli, variant_params


def _file_io(path: Path) -> tuple[list, list]:
    return io_of(onnx.load(str(path), load_external_data=False).graph)


@pytest.fixture(scope="module")
def photos():
    """Two real photos of different aspect ratios, preprocessed by sam2's own transforms: [2, 3, 1024, 1024]."""
    t = SAM2Transforms(resolution=C.IMAGE_SIZE, mask_threshold=0.0)
    return torch.stack([t(skimage.data.chelsea()), t(skimage.data.coffee())])


# labels per prompt for N = 1 and N = 3: together they cover 1, 0, 2, 3 and -1 (padding)
LABELS = {1: [[1], [0], [2], [3]], 3: [[1, 0, -1], [2, 3, -1], [2, 3, 0], [1, 1, -1]]}


def _decoder_feeds(features, prompts: int, points: int, seed: int) -> tuple[torch.Tensor, ...]:
    """L prompts of N points at random places; mask_input on every other prompt."""
    g = torch.Generator().manual_seed(seed)
    f0, f1, embed = (f[:1] for f in features)
    return (
        embed,
        f0,
        f1,
        torch.rand(prompts, points, 2, generator=g) * C.IMAGE_SIZE,
        torch.tensor(LABELS[points][:prompts], dtype=torch.float32),
        torch.randn(prompts, 1, 256, 256, generator=g) * 4,
        (torch.arange(prompts) % 2).float(),
    )


@pytest.mark.parametrize("name", variant_params(v.name for v in sam2_variants()))
def test_export_matches_torch(exported, photos, name):
    folder = exported(name)
    for role, (file, inputs, outputs) in M.GRAPHS.items():  # the contract, read from the files
        got_in, got_out = _file_io(folder / file)
        assert C.mismatches(inputs, got_in) == [] and C.mismatches(outputs, got_out) == [], role
    model, _ = random_model(resolve(name), 0)
    encoder, decoder = ImageEncoder(model).eval(), PromptDecoder(model).eval()

    features = encoder(photos)  # B = 2 exercises the dynamic batch axis
    got = run_graph(folder / C.ENCODER_FILE, [{"image": photos.numpy()}])[0]
    for spec, want in zip(C.ENCODER_OUTPUTS, features):
        assert got[spec.name].shape == (2, *spec.shape[1:])
        assert rel_l2(got[spec.name], want.numpy()) < 1e-5, spec.name

    dec = cpu_session(folder / C.DECODER_FILE)
    for prompts, points in [(1, 1), (1, 3), (4, 1), (4, 3)]:
        feeds = _decoder_feeds(features, prompts, points, seed=prompts * 10 + points)
        for has in (feeds[-1], 1.0 - feeds[-1]):  # each prompt with and without its mask_input
            feeds = (*feeds[:-1], has)
            out = dec.run(None, {n: t.numpy() for n, t in zip(C.names(C.DECODER_INPUTS), feeds)})
            for spec, g, w in zip(C.DECODER_OUTPUTS, out, decoder(*feeds)):
                assert g.shape == tuple(w.shape)
                err = float(np.abs(g - w.numpy()).max())
                assert err < 1e-4, f"{spec.name} L={prompts} N={points}: max abs {err}"


def test_manifest_and_metadata(exported):
    folder = exported("tiny")
    manifest = M.read_manifest(folder)
    M.verify_files(folder, manifest)
    video = [file for file, _, _ in VIDEO_GRAPHS.values()]  # beside the image files (test_video_graphs.py)
    assert sorted(os.listdir(folder)) == sorted([C.ENCODER_FILE, C.DECODER_FILE, M.MANIFEST_FILE, *video])
    assert manifest["variant"]["name"] == "sam2.1_hiera_tiny"
    assert manifest["opset"] == 17
    assert set(manifest["versions"]) >= {"sam2", "torch", "onnx", "onnxruntime", "onnxsim"}
    _, source = random_model(resolve("tiny"), 0)
    assert {k: manifest["weights"][k] for k in ("source", "seed", "state_dict_sha256")} == {
        "source": "random",
        "seed": 0,
        "state_dict_sha256": source.state_dict_sha256,
    }
    assert manifest["io"] == M.io_spec()
    assert manifest["io"]["decoder"]["inputs"][3]["shape"] == ["L", "N", 2]  # symbolic dims kept
    # traced in the fast forms: LayerNorm2d as one LayerNormalization (no strided channel
    # ReduceMean), predict_masks without per-prompt copies of the image (no Tile), and the
    # decoder's cross-attentions with their weights applied on the prompt side
    assert manifest["options"]["fast_forms"] == [
        "layer_norm_2d",
        "predict_masks",
        "token_to_image_attention",
        "image_to_token_attention",
    ]
    decoder_ops = {n.op_type for n in onnx.load(str(folder / C.DECODER_FILE)).graph.node}
    assert "ReduceMean" not in decoder_ops and "Tile" not in decoder_ops
    for role in M.GRAPHS:
        simp = manifest["simplification"][role]
        assert simp["status"] == "applied" and simp["comparison"]["ok"]
        assert simp["nodes_after"] < simp["nodes_before"]
    for file, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(folder / file)
        props = {p.key: p.value for p in onnx.load(str(folder / file)).metadata_props}
        assert props["sam2_onnx.variant"] == "sam2.1_hiera_tiny"
        assert props["sam2_onnx.graph"] == entry["graph"]
        assert props["sam2_onnx.weights_sha256"] == source.state_dict_sha256
        assert json.loads(props["sam2_onnx.io"]) == M.io_spec()[entry["graph"]]


def test_reexport_is_byte_identical_and_force_replaces(exported, tmp_path):
    first = exported("tiny", "fp32,fp16,int8")  # FP16 / INT8 graphs and their records included
    (tmp_path / first.name).mkdir()
    (tmp_path / first.name / "mine.txt").write_text("user data")
    # the existing folder is refused without --force, and left as it was
    proc = run_cli("export", "tiny", "--random-weights", "--out", tmp_path)
    assert proc.returncode == 1 and "already exists" in proc.stderr and "--force" in proc.stderr
    assert (tmp_path / first.name / "mine.txt").read_text() == "user data"
    proc = run_cli(
        "export",
        "tiny",
        "--random-weights",
        "--seed",
        "0",
        "--out",
        tmp_path,
        "--force",
        "--precision",
        "int8,fp16",
        check=True,
    )
    assert "[17/17] publish" in proc.stderr  # one progress line per step (2 for the video graphs)
    second = tmp_path / first.name
    assert sorted(os.listdir(second)) == sorted(os.listdir(first))
    for f in os.listdir(first):
        assert sha256_file(second / f) == sha256_file(first / f), f
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no staging folders left behind


def test_export_from_checkpoint_records_its_digest(random_checkpoint, tmp_path, photos):
    path, source = random_checkpoint("sam2_hiera_small", seed=3)
    result = export_variant(
        resolve("sam2_hiera_small"), tmp_path, checkpoint=path, simplify=False, fast=False, stream=None
    )
    weights = result.manifest["weights"]
    assert {k: weights[k] for k in ("source", "checkpoint_file", "checkpoint_sha256", "state_dict_sha256")} == {
        "source": "checkpoint",
        "checkpoint_file": path.name,
        "checkpoint_sha256": sha256_file(path),
        "state_dict_sha256": source.state_dict_sha256,
    }
    assert weights["random_weights_seed"] == 3  # the file says it holds seeded random weights
    assert result.manifest["simplification"]["encoder"]["status"] == "skipped"
    # fast=False (--plain-graphs): sam2's LayerNorm2d as written, still the official outputs
    assert result.manifest["options"]["fast_forms"] == []
    assert "ReduceMean" in {n.op_type for n in onnx.load(str(result.folder / C.DECODER_FILE)).graph.node}
    model, _ = load_checkpoint(resolve("sam2_hiera_small"), path)
    feeds = _decoder_feeds(ImageEncoder(model).eval()(photos[:1]), 2, 3, seed=5)
    want = PromptDecoder(model).eval()(*feeds)
    got = run_graph(result.folder / C.DECODER_FILE, [{n: t.numpy() for n, t in zip(C.names(C.DECODER_INPUTS), feeds)}])
    assert float(np.abs(got[0]["masks"] - want[0].numpy()).max()) < 1e-4


@pytest.mark.export
def test_opset_16_exports_and_runs(tmp_path, photos):
    result = export_variant(resolve("tiny"), tmp_path, seed=1, opset=16, simplify=False, stream=None)
    assert result.manifest["opset"] == 16
    for file in (C.ENCODER_FILE, C.DECODER_FILE):
        model = onnx.load(str(result.folder / file))
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [16]
    model, _ = random_model(resolve("tiny"), 1)
    feeds = _decoder_feeds(ImageEncoder(model).eval()(photos[:1]), 2, 3, seed=5)
    want = PromptDecoder(model).eval()(*feeds)
    got = run_graph(result.folder / C.DECODER_FILE, [{n: t.numpy() for n, t in zip(C.names(C.DECODER_INPUTS), feeds)}])
    assert float(np.abs(got[0]["masks"] - want[0].numpy()).max()) < 1e-4


def test_simplification_that_changes_outputs_is_rejected(exported, tmp_path):
    """A simplified graph is kept only if it computes what the traced one did.

    Checked against the decoder of other weights (seed 0), the unsimplified decoder of seed 7
    looks exactly like a simplifier that changed the function.
    """
    other = export_variant(resolve("tiny"), tmp_path / "other", seed=7, simplify=False, stream=None).folder
    traced = tmp_path / "decoder.traced.onnx"
    traced.write_bytes((other / C.DECODER_FILE).read_bytes())
    encoder_out = run_graph(other / C.ENCODER_FILE, [{"image": np.zeros((1, 3, 1024, 1024), np.float32)}])[0]
    feeds = [decoder_feed(encoder_out)]
    record = simplify_verified(traced, "decoder", feeds, run_graph(exported("tiny") / C.DECODER_FILE, feeds))
    assert record["status"] == "rejected" and "outputs differ" in record["detail"]
    assert "would pass at" in record["detail"]
    assert traced.read_bytes() == (other / C.DECODER_FILE).read_bytes()  # left untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.traced.onnx", "other"]
    # against its own outputs, the same simplification is accepted and replaces the file
    record = simplify_verified(traced, "decoder", feeds, run_graph(traced, feeds))
    assert record["status"] == "applied" and record["nodes_after"] < record["nodes_before"]


# --- bad input: one line, non-zero exit, nothing left at the final path ------------------------


def _nothing_written(out: Path) -> bool:
    return not out.exists() or list(out.iterdir()) == []


def test_wrong_variant_checkpoint_is_refused(random_checkpoint, tmp_path):
    path, _ = random_checkpoint("sam2_hiera_tiny")
    proc = run_cli("export", "tiny", "--checkpoint", path, "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "sam2_hiera_tiny" in proc.stderr  # names what the file really is
    assert _nothing_written(tmp_path / "out")


@pytest.mark.slow
def test_garbage_checkpoint_with_force_keeps_the_previous_export(tmp_path):
    out = tmp_path / "out"
    (out / "sam2.1_hiera_tiny").mkdir(parents=True)
    (out / "sam2.1_hiera_tiny" / "encoder.onnx").write_bytes(b"previous")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(4096))
    proc = run_cli("export", "tiny", "--checkpoint", bad, "--out", out, "--force")
    assert proc.returncode == 1 and "error:" in proc.stderr
    assert (out / "sam2.1_hiera_tiny" / "encoder.onnx").read_bytes() == b"previous"
    assert sorted(p.name for p in out.iterdir()) == ["sam2.1_hiera_tiny"]  # staging removed


def test_unwritable_output_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = run_cli("export", "tiny", "--random-weights", "--out", blocker / "sub")
    assert proc.returncode == 1
    assert "cannot write to" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("opset", ["15", "21"])
def test_unsupported_opset_is_refused(tmp_path, opset):
    proc = run_cli("export", "tiny", "--random-weights", "--opset", opset, "--out", tmp_path)
    assert proc.returncode == 1 and f"opset {opset} is not supported: use 16 to 20" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "exactly one of --checkpoint"),
        (["--random-weights", "--checkpoint", "x.pt"], "exactly one of --checkpoint"),
        (["--seed", "3", "--checkpoint", "x.pt"], "--seed only applies"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    proc = run_cli("export", "tiny", *args, "--out", tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def test_current_export_rule(exported, tmp_path):
    """One rule answers "is this export current?" for the benchmarks and the release job: the
    same weights, the precisions asked (exactly, for a release), the same export forms, and
    every file intact."""
    import shutil

    from exporter.export.current import checkpoint_weights, random_weights, stale_reason

    folder = exported("tiny", "fp32,fp16,int8")
    assert stale_reason(folder, random_weights(0), ["fp32", "fp16", "int8"], exact=True) is None
    assert stale_reason(folder, random_weights(0), ["fp32"]) is None  # holds it, among others
    assert "asked for fp32" in stale_reason(folder, random_weights(0), ["fp32"], exact=True)
    assert "other weights (seed 0)" in stale_reason(folder, random_weights(1), ["fp32"])
    assert "other weights" in stale_reason(folder, checkpoint_weights("ab" * 32), ["fp32"])
    assert stale_reason(folder, random_weights(0), ["fp32"], fast=False) == "traced with other export forms"
    assert "asked for fp32,int8" in stale_reason(exported("tiny"), random_weights(0), ["fp32", "int8"])
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    with open(copy / "decoder.onnx", "r+b") as f:  # one flipped byte: not the export it claims
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert "sha256" in stale_reason(copy, random_weights(0), ["fp32"])
    assert "not a directory" in stale_reason(tmp_path / "nothing-here", random_weights(0), ["fp32"])
    (tmp_path / "empty").mkdir()
    assert "manifest.json: missing" in stale_reason(tmp_path / "empty", random_weights(0), ["fp32"])
    # derived graphs made under other settings (an edited weight scheme) are not the configs' own
    edited = tmp_path / "edited" / folder.name
    shutil.copytree(folder, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["options"]["quantization"]["int8"]["weights"] = ["uint8"]
    (edited / "manifest.json").write_text(json.dumps(manifest))
    assert "other quantization settings" in stale_reason(edited, random_weights(0), ["fp32"])
