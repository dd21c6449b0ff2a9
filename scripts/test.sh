#!/usr/bin/env bash
# The test suite CI runs: bootstraps ./.venv (idempotent), then runs pytest on tests/ and
# parity_tests/, all but the release plan. Extra arguments go to pytest (e.g. scripts/test.sh -k fetch).
#   scripts/test.sh --fast           the unit tier only (contract, configs, lock, fetch, RLE, NMS, masks,
#                                    CLI parsing, manifest): tests marked neither export, parity nor slow
#   scripts/test.sh --release-plan   the release plan only: the large variants' export and parity
#                                    (exporter/parity/plan.py RELEASE_PLAN), which the release job runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/bootstrap.sh
if [[ "${1:-}" == "--fast" ]]; then
    shift
    exec python -m pytest -m "not export and not parity and not slow and not release_plan" "$@"
fi
if [[ "${1:-}" == "--release-plan" ]]; then
    shift
    exec python -m pytest -m release_plan "$@"
fi
# tests/test_kernel_safety.py runs INT8 layers on emulated CPUs (QEMU user mode): set up once.
. scripts/emulators.sh
# tests/test_web.py drives the page in Debian's chromium.
. scripts/browser.sh
exec python -m pytest -m "not release_plan" "$@"
