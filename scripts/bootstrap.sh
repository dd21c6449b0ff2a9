#!/usr/bin/env bash
# Create or reuse ./.venv with exactly the versions pinned in pyproject.toml.
# Idempotent: a stamp holding the digest of pyproject.toml and this script lets a second
# run return at once; any change to either reinstalls.
# Source it (`. scripts/bootstrap.sh`) or run it; it leaves .venv/bin first on PATH when sourced.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.sam2-onnx-stamp"
python="${SAM2_ONNX_PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

want="$(cat "$root/pyproject.toml" "$root/scripts/bootstrap.sh" "$root/scripts/pins.py" | sha256sum | cut -d' ' -f1)"
# the editable install must point at this checkout (a moved or copied checkout keeps the old path)
installed_here() {
    "$venv/bin/python" -I -c "import importlib.util as u, sys; s = u.find_spec('exporter'); \
sys.exit(not s or s.origin != sys.argv[1])" "$root/exporter/__init__.py" 2>/dev/null
}
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/sam2-onnx" ]] && installed_here; then
    echo "[bootstrap] reusing $venv"
else
    t0=$(date +%s)
    echo "[bootstrap] installing into $venv (first run: a few minutes)"
    rm -f "$stamp"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    # (grep drops pip's notes about this machine's empty local find-links mirrors)
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$("$venv/bin/python" "$root/scripts/pins.py" installer)" \
        2> >(grep -v "it is neither a file nor a directory" >&2)
    uv=("$venv/bin/uv" pip install --python "$venv/bin/python" --quiet)
    # torch first: sam2 is an sdist whose setup.py imports torch, and building it in an
    # isolated environment would pull a second multi-GB torch.
    mapfile -t first < <("$venv/bin/python" "$root/scripts/pins.py" build-first)
    "${uv[@]}" "${first[@]}"
    SAM2_BUILD_CUDA=0 "${uv[@]}" --no-build-isolation-package sam2 \
        -e "$root[$("$venv/bin/python" "$root/scripts/pins.py" extras)]"
    # SAM2_BUILD_CUDA=0: sam2's setup.py would otherwise try to compile a CUDA extension.
    # Fail here, loudly, if anything did not install.
    "$venv/bin/python" -c "import torch, torchvision, sam2, segment_anything, onnx, onnxruntime, onnxsim, onnxconverter_common, skimage, playwright, exporter"
    echo "$want" > "$stamp"
    echo "[bootstrap] installed in $(( $(date +%s) - t0 )) s"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
# onnxruntime-web for `sam2-onnx serve` (npm ci, its own stamp)
. "$root/scripts/web_assets.sh"
