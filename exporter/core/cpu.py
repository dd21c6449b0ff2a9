"""What this CPU can do, recorded with every figure and verdict (bench.json, parity.json, manifest).

onnxruntime picks its kernels by CPU feature: the same graph runs other integer and float code
on an AVX2-only CPU than on one with AVX-512 VNNI or AMX, so a number means little without the
features it was measured with. The x86 features come from numpy's own cpuid probe, which sees
what the process sees (an emulated CPU included, unlike ``/proc/cpuinfo``, which always shows
the host); AMX and AVX-VNNI, which numpy does not probe, come from ``/proc/cpuinfo`` when the
two agree. Standard library + numpy only (the runtime may use it).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path

from .checkout import ROOT

# recorded names (as /proc/cpuinfo spells them) -> numpy's name, where numpy probes it
_NUMPY = {
    "avx2": "AVX2",
    "fma": "FMA3",
    "f16c": "F16C",
    "avx512f": "AVX512F",
    "avx512bw": "AVX512BW",
    "avx512_vnni": "AVX512VNNI",
    "avx512_bf16": "AVX512BF16",
    "avx512_fp16": "AVX512FP16",
    "asimd": "ASIMD",
    "asimddp": "ASIMDDP",
}
_CPUINFO_ONLY = ("avx_vnni", "amx_tile", "amx_int8", "i8mm", "sme")
FEATURES = tuple(_NUMPY) + _CPUINFO_ONLY


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo; ("", set()) elsewhere."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return platform.processor(), set()
    model, flags = "", set()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model or platform.processor(), flags


def _probed() -> dict[str, bool]:
    from numpy._core._multiarray_umath import __cpu_features__ as probed

    return {name: bool(probed.get(key, False)) for name, key in _NUMPY.items()}


def _emulated(probed: dict[str, bool], flags: set[str]) -> bool:
    """The process sees other features than the host's /proc/cpuinfo lists (an emulator)."""
    arch = ("avx2", "avx512f", "avx512_vnni") if platform.machine() in ("x86_64", "AMD64") else ("asimd",)
    return bool(flags) and any(probed[n] != (n in flags) for n in arch)


def cpu_features() -> dict[str, bool]:
    """``{feature: present}`` for every name in ``FEATURES``."""
    _, flags = _cpuinfo()
    out = _probed()
    emulated = _emulated(out, flags)
    for name in _CPUINFO_ONLY:  # known from the host's list only: unknown (absent) under an emulator
        out[name] = not emulated and name in flags
    return out


# The u8 x s8 kernel MLAS picks, best first: the first feature this CPU has decides
# (kernel_safety.KERNELS says how wide each one's lanes are).
INT8_KERNELS = (
    ("amx_int8", "AMX (tdpbusd, int32)"),
    ("avx512_vnni", "AVX-512 VNNI (vpdpbusds, int32)"),
    ("avx_vnni", "AVX-VNNI (vpdpbusds, int32)"),
    ("avx512bw", "AVX-512 without VNNI (vpmaddubsw, int16 saturating)"),
    ("avx2", "AVX2 (vpmaddubsw, int16 saturating)"),
    ("sme", "ARM64 SME (KleidiAI for signed weights without zero points, else sdot / udot, int32)"),
    ("asimddp", "ARM64 dot product (sdot / udot, int32)"),
    ("asimd", "ARM64 NEON (smull + smlal, int16)"),
)


def int8_kernel(features: dict[str, bool] | None = None) -> str:
    """The u8 x s8 GEMM kernel onnxruntime's MLAS picks here."""
    f = cpu_features() if features is None else features
    return next((kernel for feature, kernel in INT8_KERNELS if f.get(feature)), "portable C++ (int32)")


def describe() -> dict:
    """``{"cpu", "arch", "features": [present ones], "int8_kernel"}``: what to record with a figure."""
    model, flags = _cpuinfo()
    features = cpu_features()
    if _emulated(_probed(), flags):
        model = f"emulated CPU on {model}"
    return {
        "cpu": model,
        "arch": platform.machine(),
        "features": [n for n, on in features.items() if on],
        "int8_kernel": int8_kernel(features),
    }


def short(info: dict | None = None) -> str:
    """One line for tables: ``AMD EPYC (avx2, avx512f, avx512_vnni)``; ``info`` is ``describe()``'s
    or a bench machine record (``cpu_features``)."""
    info = describe() if info is None else info
    present = info.get("features", info.get("cpu_features")) or []
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm") if f in present]
    return f"{info['cpu']} ({', '.join(shown) or 'no AVX2 / AVX-512 / VNNI / AMX / dot product'})"


# CPU kinds this machine can run by emulation (QEMU user mode; scripts/emulators.sh sets them up):
# name -> (QEMU program, CPU model, the /proc/cpuinfo file the process sees or None). QEMU's TCG
# has no AVX-512, so the x86-64 kind is AVX2-only, whose u8s8 kernels (vpmaddubsw) sum products
# in int16; AVX-512 VNNI needs a real CPU. The ARM64 kinds run Debian's arm64 Python with the
# pinned aarch64 numpy + onnxruntime: Cortex-A53 has no dot product (smull + smlal, int16
# lanes), Neoverse-N1 (AWS Graviton2) has it (sdot / udot, int32 lanes). QEMU's "max" CPU adds
# SVE, i8mm and SME: there onnxruntime 1.31 sends DynamicQuantizeMatMul layers whose signed
# weights have no (or all-zero) zero points to KleidiAI kernels, which come out wrong under QEMU
# 7.2; whether the emulation or the kernels are at fault needs the hardware to tell, so no INT8
# graph that ships takes that path (kernel_safety.py, docs/precision.md).
EMULATED = {
    "avx2": ("qemu-x86_64", "Haswell-v4", None),
    "arm64": ("qemu-aarch64", "cortex-a53", "cpuinfo.cortex-a53"),
    "arm64-dotprod": ("qemu-aarch64", "neoverse-n1", "cpuinfo.neoverse-n1"),
    "arm64-sme": ("qemu-aarch64", "max", "cpuinfo.max"),
}
ARM64_ROOT = ROOT / ".cache" / "emulators" / "arm64"


def emulator(kind: str = "avx2") -> list[str]:
    """The command prefix that runs a Python on an emulated ``kind`` CPU (the script and its
    arguments follow). Raises RuntimeError, saying what to run, if it cannot be built here."""
    if kind not in EMULATED:
        raise RuntimeError(f"unknown CPU kind {kind!r}; emulated kinds: {', '.join(EMULATED)}")
    if platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"CPU emulation is set up for x86-64 hosts only, this is {platform.machine()}")
    program, model, cpuinfo = EMULATED[kind]
    qemu = shutil.which(program)
    if qemu is None:
        raise RuntimeError(f"{program} is not installed: run scripts/emulators.sh (Debian's qemu-user)")
    if cpuinfo is None:
        return [qemu, "-cpu", model, sys.executable]
    if not (ARM64_ROOT / ".stamp").is_file():
        raise RuntimeError(f"no ARM64 userland in {ARM64_ROOT}: run scripts/emulators.sh")
    # a private mount namespace shows the worker an ARM /proc/cpuinfo; onnxruntime's probe reads it
    return [
        "unshare",
        "--mount",
        "sh",
        "-c",
        f'mount --bind "{ARM64_ROOT / cpuinfo}" /proc/cpuinfo && exec "$@"',
        "sh",
        "env",
        f"PYTHONPATH={ARM64_ROOT / 'site'}",
        qemu,
        "-L",
        str(ARM64_ROOT / "root"),
        "-cpu",
        model,
        str(ARM64_ROOT / "root" / "usr" / "bin" / "python3.11"),
    ]


def machine() -> dict:
    """CPU model and features, cores, memory, Python and date: what a reader needs to compare numbers."""
    mem = (
        next(
            (
                int(line.split()[1])
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            0,
        )
        if Path("/proc/meminfo").exists()
        else 0
    )
    info = describe()
    return {
        "cpu": info["cpu"],
        "cpu_features": info["features"],
        "int8_kernel": info["int8_kernel"],
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**20, 1),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
