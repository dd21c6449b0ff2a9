"""The browser runtime: a click-to-segment page on onnxruntime-web, and the server that hosts it.

    sam2-onnx serve artifacts/sam2.1_hiera_tiny          # http://127.0.0.1:8765/

Everything the page runs is in ``static/`` (plain ES modules, no build step); onnxruntime-web
comes from npm, pinned by ``package-lock.json`` beside this file and installed into
``node_modules/`` here by ``scripts/bootstrap.sh``. The server (``server.py``) is standard
library only and never imports torch: it serves the page, onnxruntime-web's files and the
model folder's manifest-listed files on 127.0.0.1, with the cross-origin isolation headers that
multi-threaded wasm needs. Inference happens in the browser.
"""
