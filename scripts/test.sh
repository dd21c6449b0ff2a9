#!/usr/bin/env bash
# The whole test suite: bootstraps ./.venv (idempotent), then runs pytest on tests/ and
# parity_tests/. Extra arguments go to pytest (e.g. scripts/test.sh -k fetch).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
. scripts/bootstrap.sh
# tests/test_kernel_safety.py runs INT8 layers on emulated CPUs (QEMU user mode): set up once.
. scripts/emulators.sh
exec python -m pytest "$@"
