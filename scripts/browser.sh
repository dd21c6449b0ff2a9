#!/usr/bin/env bash
# What the browser tests need outside Python: Debian's chromium (Playwright drives the system
# browser; its own browser downloads fail offline) and onnxruntime-web from npm, pinned by
# exporter/web/package-lock.json. Idempotent: each is installed only when missing or, for npm,
# when the lockfile changed. Source it after scripts/bootstrap.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v chromium >/dev/null; then
    t0=$(date +%s)
    echo "[browser] installing chromium (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq chromium >/dev/null
    echo "[browser] chromium installed in $(( $(date +%s) - t0 )) s"
fi
echo "[browser] $(chromium --version 2>/dev/null | head -1)"
. "$root/scripts/web_assets.sh"
