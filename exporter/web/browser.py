"""Headless Chromium for the browser tests and benchmarks: the system's browser, driven by
Playwright.

Playwright's own browser downloads are not used (they fail offline): Debian's ``chromium``
package is launched instead (``scripts/browser.sh`` installs it). The flags keep a headless
browser from reaching for the network at start (component updates, sync, QUIC probes), which
a closed network answers with a stream of refused connections.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

from ..core.errors import SetupError

FLAGS = (
    "--no-sandbox",  # root in a container: the sandbox needs user namespaces
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# WebGPU on a machine without a GPU: Chromium's software adapter (SwiftShader over Vulkan).
SOFTWARE_WEBGPU = ("--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-webgpu-adapter=swiftshader")


def chromium_path() -> str:
    """The Chromium binary: ``$SAM2_ONNX_CHROMIUM``, else ``chromium`` on PATH."""
    path = os.environ.get("SAM2_ONNX_CHROMIUM")
    if path and not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SetupError(f"SAM2_ONNX_CHROMIUM={path} is not an executable file")
    path = path or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SetupError(
            "no Chromium found: run scripts/browser.sh (apt-get install chromium) or set SAM2_ONNX_CHROMIUM"
        )
    return path


@contextmanager
def chromium(software_webgpu: bool = False):
    """A headless Chromium (Playwright ``Browser``), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SetupError("Playwright is not installed: pip install playwright (the dev extra has it)") from None
    flags = list(FLAGS) + (list(SOFTWARE_WEBGPU) if software_webgpu else ["--disable-gpu"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=flags, headless=True)
        try:
            yield browser
        finally:
            browser.close()
