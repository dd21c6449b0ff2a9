#!/usr/bin/env bash
# The emulated CPUs the kernel-safety tests and scripts/bench_cpu_kinds.py run on (exporter/core/cpu.py):
#   - QEMU user mode (Debian's qemu-user): qemu-x86_64 -cpu Haswell is an AVX2-only x86-64 CPU;
#   - an ARM64 userland in .cache/emulators/arm64: Debian's arm64 Python 3.11 and its libraries
#     (unpacked, not installed), the pinned numpy + onnxruntime aarch64 wheels, and the
#     /proc/cpuinfo files the workers see (onnxruntime's CPU probe reads it; the host's x86 one
#     crashes it), for qemu-aarch64 -cpu cortex-a53 (no dot product), -cpu neoverse-n1 (dot product)
#     and -cpu max (dot product, i8mm, SVE, SME).
# Idempotent: a stamp holding the pins and this script's digest makes a second run return at once.
# Source it after scripts/bootstrap.sh (it needs .venv's python for pip download).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "$(uname -m)" != "x86_64" ]]; then
    echo "[emulators] not an x86-64 host: the emulated-CPU setup is for x86-64 machines only" >&2
    return 0 2>/dev/null || exit 0
fi
arm="$root/.cache/emulators/arm64"
want="$( (cat "$root/scripts/emulators.sh"; "$root/.venv/bin/python" "$root/scripts/pins.py" emulated) | sha256sum | cut -d' ' -f1)"
if command -v qemu-x86_64 >/dev/null && command -v qemu-aarch64 >/dev/null && [[ -f "$arm/.stamp" && "$(cat "$arm/.stamp")" == "$want" ]]; then
    echo "[emulators] reusing qemu-user and $arm"
    return 0 2>/dev/null || exit 0
fi
t0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
if ! command -v qemu-x86_64 >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    echo "[emulators] installing qemu-user (Debian)"
    apt-get update -qq >/dev/null
    apt-get install -y -qq qemu-user >/dev/null
fi
echo "[emulators] building the ARM64 userland in $arm"
rm -rf "$arm"
mkdir -p "$arm/debs" "$arm/root" "$arm/site"
dpkg --add-architecture arm64
apt-get update -qq >/dev/null
packages=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g libexpat1
          libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libcrypt1
          libnsl2 libtirpc3 libdb5.3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1)
(cd "$arm/debs" && apt-get download -qq "${packages[@]/%/:arm64}" 2> >(grep -v "unsandboxed" >&2))
for deb in "$arm"/debs/*.deb; do dpkg -x "$deb" "$arm/root"; done
mapfile -t pins < <("$root/.venv/bin/python" "$root/scripts/pins.py" emulated)
"$root/.venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 -d "$arm/debs" "${pins[@]}" \
    2> >(grep -v "it is neither a file nor a directory" >&2)
for wheel in "$arm"/debs/*.whl; do "$root/.venv/bin/python" -m zipfile -e "$wheel" "$arm/site"; done
# what each emulated ARM64 CPU's /proc/cpuinfo says (the real files list these fields)
features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
printf 'processor\t: 0\nmodel name\t: emulated Cortex-A53 (QEMU)\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd03\nCPU revision\t: 4\n\n' \
    "$features" > "$arm/cpuinfo.cortex-a53"
printf 'processor\t: 0\nmodel name\t: emulated Neoverse-N1 (QEMU)\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' \
    "$features atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs" > "$arm/cpuinfo.neoverse-n1"
# (max has no MIDR of its own that onnxruntime's probe knows: it crashes on an unknown part, so N1's)
printf 'processor\t: 0\nmodel name\t: emulated max CPU with SME (QEMU)\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' \
    "$features atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs sve i8mm bf16 sme" > "$arm/cpuinfo.max"
rm -rf "$arm/debs"
echo "$want" > "$arm/.stamp"
echo "[emulators] ready in $(( $(date +%s) - t0 )) s"
