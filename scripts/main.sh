#!/usr/bin/env bash
# The main job: bootstraps ./.venv (idempotent), then exports the default variant with seeded
# random weights and checks its parity, ending with a one-screen summary.
#   scripts/main.sh [VARIANT] [--seed N] [--out DIR]      (defaults: tiny, 0, ./artifacts)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/bootstrap.sh
exec python scripts/main_job.py "$@"
