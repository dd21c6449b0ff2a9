"""Open an exported model folder: verify the files, create ONNX Runtime sessions, check I/O.

Every file is checked against ``manifest.json`` (size, then sha256) before it is handed to
ONNX Runtime, so a truncated download or an edited graph is refused with a clear error
instead of producing wrong masks. Each session's inputs and outputs are then compared with
the contract (names, order, dtypes, fixed and symbolic dims).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from ..core import contract as C
from ..core.errors import InputError, ManifestError, one_line
from ..core.manifest import GRAPHS, manifest_profile, read_manifest, verify_files

PRECISIONS = ("fp32", "fp16", "int8")
OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
# providers tried by default, in order, when present in this onnxruntime build
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
}


@dataclass
class Sessions:
    encoder: ort.InferenceSession
    decoder: ort.InferenceSession
    manifest: dict
    precision: str
    files: dict[str, str]  # role -> file name
    profile: C.Profile = C.SAMEXPORTER  # the folder's I/O contract


def graph_file(role: str, precision: str, manifest: dict | None = None) -> str:
    """The file of ``role`` at ``precision``: the manifest's ``precisions`` map when it has one
    (an INT8 export may keep the FP32 decoder), else ``encoder.onnx`` for fp32 and
    ``encoder.fp16.onnx`` / ``encoder.int8.onnx`` otherwise."""
    mapped = (manifest or {}).get("precisions", {}).get(precision, {}).get(role)
    if mapped:
        return mapped
    base = GRAPHS[role][0]
    return base if precision == "fp32" else base.replace(".onnx", f".{precision}.onnx")


# Roles whose thread pool must not spin. The encoder's kernels run for milliseconds to seconds,
# so spinning gains it nothing, while its spinning workers take cores from the decoder's pool:
# two sessions, one pool each. Measured on 2 cores (tiny, FP32, 2 threads): the decoder after
# the encoder took 50-52 ms with both pools spinning and 30-31 ms with only the decoder's.
NO_SPINNING = ("encoder",)


def session_options(threads: int | None, optimization: str, spinning: bool = True) -> ort.SessionOptions:
    if optimization not in OPTIMIZATION:
        raise InputError(f"optimization must be one of {', '.join(OPTIMIZATION)}, not {optimization!r}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, not {threads}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = OPTIMIZATION[optimization]
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return opts


def resolve_providers(providers: list[str] | None) -> list[str]:
    available = ort.get_available_providers()
    if providers is None:
        return [p for p in DEFAULT_PROVIDERS if p in available]
    missing = [p for p in providers if p not in available]
    if missing:
        raise InputError(
            f"execution provider(s) {', '.join(missing)} not in this onnxruntime "
            f"build (available: {', '.join(available)})"
        )
    return list(providers)


def _io(values) -> list[tuple[str, str, list]]:
    return [(v.name, _ORT_DTYPES.get(v.type, v.type), list(v.shape)) for v in values]


def load_sessions(
    model_dir: Path,
    precision: str = "fp32",
    providers: list[str] | None = None,
    threads: int | None = None,
    optimization: str = "all",
) -> Sessions:
    """Verify and open ``model_dir``'s encoder and decoder of ``precision``."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    profile = manifest_profile(manifest)
    files = {role: graph_file(role, precision, manifest) for role in GRAPHS}
    absent = [f for f in files.values() if f not in manifest["files"]]
    if absent:
        exported = sorted({e.get("precision", "?") for e in manifest["files"].values()})
        raise ManifestError(
            f"{model_dir}: no {precision} graphs ({', '.join(absent)} not in the manifest; "
            f"exported precisions: {', '.join(exported)})"
        )
    verify_files(model_dir, manifest, list(files.values()))
    chosen = resolve_providers(providers)
    sessions = {}
    for role, file in files.items():
        opts = session_options(threads, optimization, spinning=role not in NO_SPINNING)
        try:
            sessions[role] = ort.InferenceSession(str(model_dir / file), opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ManifestError(
                f"{model_dir / file}: onnxruntime cannot load it: {one_line(exc, 300, with_type=False)}"
            ) from None
        _, inputs, outputs = profile.graphs()[role]
        problems = C.mismatches(inputs, _io(sessions[role].get_inputs())) + C.mismatches(
            outputs, _io(sessions[role].get_outputs())
        )
        if problems:
            raise ManifestError(
                f"{model_dir / file} does not follow the {profile.name} I/O contract: " + "; ".join(problems[:3])
            )
    return Sessions(sessions["encoder"], sessions["decoder"], manifest, precision, files, profile)
