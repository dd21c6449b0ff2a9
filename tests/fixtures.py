"""Shared fixtures for tests/ and parity_tests/, loaded once as a plugin (``-p tests.fixtures``
in pyproject), so session-scoped exports are made once and reused by both suites.

Official checkpoints cannot be downloaded in CI, so every test that needs one uses a variant
built with sam2's own initialisation under a fixed seed and saved as ``{"model": state_dict}``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.checkpoints.loading import random_model, save_checkpoint
from exporter.core.variants import resolve

# Tiers (``scripts/test.sh --fast`` runs what carries none of these marks): a test that uses a
# fixture which builds a model, exports or releases is marked ``export``; the reference-parity
# suite is ``parity``; other tests that take more than a few seconds say ``slow`` themselves.
EXPORTING_FIXTURES = {
    "random_checkpoint",
    "exported",
    "pair",
    "ready",
    "job",
    "rerun",
    "tiny",
    "photo",
    "emulated_runs",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if EXPORTING_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.export)
        if item.path.parent.name == "parity_tests":
            item.add_marker(pytest.mark.parity)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """``random_checkpoint(variant, seed=0) -> (path, WeightsSource)``, cached per session."""
    made: dict[tuple[str, int], tuple[Path, object]] = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def make(variant: str, seed: int = 0):
        key = (resolve(variant).name, seed)
        if key not in made:
            model, source = random_model(resolve(variant), seed)
            path = root / f"{key[0]}-seed{seed}.pt"
            save_checkpoint(model, path, random_seed=seed)
            made[key] = (path, source)
        return made[key]

    return make


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(variant, precisions="fp32") -> folder``: an export with random weights (seed 0),
    once per session and precision list (e.g. "fp32,fp16,int8").

    Tests must not modify the folder: later tests (and the parity suite) reuse it.
    """
    from exporter.export.pipeline import export_variant

    folders: dict[tuple[str, str], Path] = {}

    def make(variant: str, precisions: str = "fp32") -> Path:
        key = (resolve(variant).name, precisions)
        if key not in folders:
            root = tmp_path_factory.mktemp("artifacts")
            folders[key] = export_variant(
                resolve(key[0]), root, seed=0, precisions=precisions.split(","), stream=None
            ).folder
        return folders[key]

    return make


def run_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """The real ``sam2-onnx`` entry point in a fresh interpreter, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "exporter.cli", *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sam2-onnx {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def ort_file_ops(paths) -> set[tuple[str, int, str]]:
    """``{(domain, opset the op's schema dates from, op type)}`` of every node in the ORT-format
    files ``paths``, subgraphs included, read from the flatbuffers themselves (not through
    onnxruntime's config tooling)."""
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py import fbs

    found = set()
    for path in paths:
        model = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(
            bytearray(Path(path).read_bytes()), 0
        ).Model()

        def walk(graph):
            for i in range(graph.NodesLength()):
                node = graph.Nodes(i)
                domain = (node.Domain() or b"").decode() or "ai.onnx"
                found.add((domain, node.SinceVersion(), node.OpType().decode()))
                for j in range(node.AttributesLength()):
                    attribute = node.Attributes(j)
                    for sub in [attribute.G()] + [attribute.Graphs(k) for k in range(attribute.GraphsLength())]:
                        if sub is not None:
                            walk(sub)

        walk(model.Graph())
    return found


def config_ops(path) -> set[tuple[str, int, str]]:
    """``{(domain, opset, op type)}`` a ``required_operators.config`` declares (lines DOMAIN;OPSET;OP,OP...)."""
    declared = set()
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            domain, opset, ops = line.split(";")
            declared |= {(domain, int(opset), op) for op in ops.split(",")}
    return declared


def variant_params(names) -> list:
    """``names`` as pytest parameters, the release plan's marked ``release_plan`` (CI leaves
    them out; ``scripts/test.sh --release-plan`` runs them)."""
    from exporter.parity.plan import RELEASE_PLAN

    return [pytest.param(n, marks=pytest.mark.release_plan) if n in RELEASE_PLAN else n for n in names]
