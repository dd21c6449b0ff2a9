"""The browser runtime at FP16 and INT8 in real headless Chromium: the page held to the
official predictor with each precision's gates, and its choice of execution provider for FP16
graphs (tiny, random weights seed 0).

A module of its own: test_web.py keeps one browser open for its whole module (a module-scoped
Playwright session), and Playwright's sync API cannot start a second one beside it.
"""

from __future__ import annotations

import pytest

from exporter.core.variants import resolve
from exporter.parity.cases import KINDS
from exporter.parity.engine import run_parity
from exporter.web.predictor import BrowserPredictor


def test_fp16_encoders_leave_webgpu_for_wasm_on_an_adapter_without_shader_f16(exported):
    """onnxruntime-web's WebGPU provider cannot build FP16 shaders on an adapter without the
    shader-f16 feature (docs/release.md, measured on the decoders): the page, left to choose
    (``auto``), runs an FP16 encoder on wasm there and an FP32 one on WebGPU, and refuses WebGPU
    for FP16 when it is asked for. Chromium's SwiftShader adapter, the one here, lacks it."""
    folder = exported("tiny", "fp32,fp16,int8")
    with BrowserPredictor(folder, "fp32", ep="auto") as fp32:
        assert fp32.backend["encoder"] == "webgpu" and "swiftshader" in fp32.backend["adapter"].lower()
        assert fp32.page.evaluate("navigator.gpu.requestAdapter().then(a => a.features.has('shader-f16'))") is False
    with BrowserPredictor(folder, "fp16", ep="auto") as fp16:
        assert fp16.backend["encoder"] == "wasm" and fp16.files["encoder"] == "encoder.fp16.onnx"
        assert "lacks shader-f16" in fp16.backend["note"] and "lacks shader-f16" in fp16.page.inner_text("#status")
    with pytest.raises(Exception, match="lacks shader-f16, which FP16 graphs need there: use wasm"):
        BrowserPredictor(folder, "fp16", ep="webgpu")


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_in_the_browser_passes_its_parity_gates(exported, precision):
    """The page at FP16 and INT8 (wasm) against the official predictor, every prompt kind on
    one photo, held to the precision's gates (configs/: parity.<precision>), as the Python
    runtime is by parity_tests/."""
    folder = exported("tiny", "fp32,fp16,int8")
    result = run_parity(folder, precision, runtime="web", samples=["coffee"], stream=None)
    assert result.passed, "\n".join(result.failures())
    assert result.gates == resolve("tiny").parity[precision]
    assert {c.kind for c in result.cases} == set(KINDS) | {"encoder"}
    summary = result.summary()
    assert summary["files"]["encoder"] == f"encoder.{precision}.onnx" and result.runtime["encoder"] == "wasm"
