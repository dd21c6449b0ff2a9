#!/usr/bin/env bash
# onnxruntime-web for the page `sam2-onnx serve` hosts: `npm ci` in exporter/web, exactly the
# versions of its package-lock.json. Idempotent: a stamp holding the lockfile's digest makes a
# second run return at once. Sourced by scripts/bootstrap.sh.
set -euo pipefail
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/exporter/web"
want="$(cat "$web/package.json" "$web/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$web/node_modules/.sam2-onnx-stamp" && "$(cat "$web/node_modules/.sam2-onnx-stamp")" == "$want" ]]; then
    echo "[web] reusing $web/node_modules"
elif ! command -v npm >/dev/null; then
    echo "[web] npm not found: sam2-onnx serve and the browser tests need Node.js and npm" >&2
else
    echo "[web] npm ci in $web"
    (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" > "$web/node_modules/.sam2-onnx-stamp"
fi
