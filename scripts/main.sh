#!/usr/bin/env bash
# The main job: bootstraps ./.venv (idempotent), then exports the default variant with seeded
# random weights at FP32, FP16 and INT8 and checks the parity of each, ending with a summary.
#   scripts/main.sh [VARIANT] [--seed N] [--out DIR] [--precision LIST]
#   (defaults: tiny, 0, ./artifacts, fp32,fp16,int8)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/bootstrap.sh
exec python scripts/main_job.py "$@"
