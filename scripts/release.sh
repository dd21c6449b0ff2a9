#!/usr/bin/env bash
# What a CI release job runs: bootstraps ./.venv (idempotent), then per variant
#   fetch -> export (all precisions) -> parity -> bench -> release [-> push]
# stopping with a non-zero exit at the first failed gate; re-running skips finished steps.
#   scripts/release.sh [--random-weights] [--precision LIST] [--push REPO_ID [--dry-run]] VARIANT...
# See scripts/release_job.py --help for every option.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/bootstrap.sh
exec python scripts/release_job.py "$@"
