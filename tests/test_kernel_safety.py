"""INT8 graphs whose integer kernels cannot overflow on any CPU: the static proof on graphs our
quantizer writes, and the same integer layers run natively and on emulated CPUs (QEMU user mode,
scripts/emulators.sh): an AVX2-only x86-64 (``-cpu Haswell``), whose u8s8 ``vpmaddubsw`` sums two
products in a saturating int16 lane; an ARM64 Cortex-A53 without dot product, whose ``smull`` +
``smlal`` sum two in a wrapping int16 lane; and an ARM64 CPU with dot product (int32 lanes).

Expected values come from arithmetic (2 x 255 x 127 = 64770 overflows int16, 2 x 255 x 64 =
32640 does not) and from numpy's exact int64 products, never from our own output. The test
CPU is named in every assertion message, so a failure says where it happened.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.core import cpu
from exporter.core.errors import ExportError
from exporter.precision import int8, kernel_safety
from exporter.precision.kernel_safety import INT16

K, N = 512, 64
SCHEMES = tuple(int8.WEIGHT_SCHEMES)  # uint8, int7, int8


def _dense(tmp_path, seed: int = 0):
    """x [8, K] float -> x @ W + b: one layer with weights spread over their whole range."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, size=(K, N)).astype(np.float32)
    b = rng.normal(size=N).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
            helper.make_node("Add", ["h", "b"], ["y"], name="bias"),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, N])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "dense.onnx"
    onnx.save(model, str(path))
    return path


def _quantized(tmp_path, scheme: str, seed: int = 0, zero_points: bool = True):
    """The dense layer quantized as export does it (``zero_points``: give_zero_points after)."""
    src = _dense(tmp_path, seed)
    dst = tmp_path / f"dense.{scheme}{'' if zero_points else '.no-zero-points'}.onnx"
    int8.quantize_dynamic(src, dst, per_channel=True, weights=scheme)
    if zero_points:
        int8.give_zero_points(dst)
    return dst


def _stored_weight(path) -> tuple[np.ndarray, np.ndarray]:
    """(quantized weight [K, N], its zero points [N]) as the quantizer stored them."""
    m = onnx.load(str(path))
    node = next(n for n in m.graph.node if n.op_type == "MatMulInteger")
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return inits[node.input[1]], inits[node.input[3]]


@pytest.mark.parametrize("seed", [0, 1])
def test_proof_on_each_weight_scheme(tmp_path, seed):
    for scheme in SCHEMES:
        path = _quantized(tmp_path, scheme, seed)
        weight, _ = _stored_weight(path)
        proof = kernel_safety.analyse(path)
        assert proof["layers"] == 1 and proof["activation"]["range"] == [0, 255], scheme
        assert proof["weights"]["range"] == [int(weight.min()), int(weight.max())], scheme
        rows = {r["kernel"]: r for r in proof["kernels"]}
        vpmaddubsw = next((r for name, r in rows.items() if "vpmaddubsw" in name and name.startswith("u8s8")), None)
        if scheme == "uint8":  # u8 x u8: every kernel widens to 32-bit lanes
            assert weight.dtype == np.uint8 and proof["kernel_safe"] and vpmaddubsw is None
            assert all(r["lane_range"] != list(INT16) for r in rows.values())
            continue
        bound = 2 * 255 * int(np.abs(weight.astype(np.int32)).max())
        assert vpmaddubsw["lane_sum"] == [-bound, bound] or vpmaddubsw["lane_sum"][1] == bound, scheme
        if scheme == "int7":
            assert bound <= 2 * 255 * 64 <= INT16[1] and proof["kernel_safe"], proof["problems"]
            # as the quantizer stores them (all zero points 0) they would take KleidiAI on SME CPUs
            bare = kernel_safety.analyse(_quantized(tmp_path, scheme, seed, zero_points=False))
            assert not bare["kernel_safe"] and bare["problems"] == [
                f"1 of 1 layers (first {bare['per_layer'][0]['layer']}): {kernel_safety.KLEIDIAI}"
            ]
            assert proof["per_layer"][0]["weight_zero_points"] == "stored"
        else:
            assert bound > INT16[1] and not proof["kernel_safe"]
            assert any("vpmaddubsw" in p and "AVX2" in p for p in proof["problems"])
            assert kernel_safety.summary(proof).startswith("NOT kernel-safe")


def test_proof_reads_static_qdq_graphs(tmp_path):
    src = _dense(tmp_path)
    feeds = [{"x": np.random.default_rng(5).uniform(0, 1, size=(8, K)).astype(np.float32)}]
    for scheme, safe in (("uint8", True), ("int8", False)):
        dst = tmp_path / f"qdq.{scheme}.onnx"
        int8.quantize_static(src, dst, per_channel=True, calibration=feeds, weights=scheme)
        proof = kernel_safety.analyse(dst)
        assert proof["layers"] == 1 and proof["kernel_safe"] is safe, (scheme, proof["problems"])
        assert "QuantizeLinear" in " ".join(proof["activation"]["source"])


def test_proof_refuses_what_it_cannot_trace(tmp_path):
    """An integer layer whose activation comes from an op the proof does not know is not 'safe'."""
    w = np.full((K, N), 3, np.int8)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["q"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", ["q", "w"], ["y"]),
        ],
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2, N])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    proof = kernel_safety.analyse(path)
    assert not proof["kernel_safe"] and "cannot trace" in proof["problems"][0]


def test_build_refuses_unsafe_candidates(tmp_path):
    """Full-range int8 weights never ship, however accurate they are on this CPU."""
    src = _dense(tmp_path)
    feeds = [{"x": np.random.default_rng(2).uniform(0, 1, size=(8, K)).astype(np.float32)}]
    from exporter.checks.equivalence import Tolerance, run_graph

    reference = run_graph(src, feeds)
    loose = Tolerance(rel_l2=1.0)
    with pytest.raises(ExportError, match="NOT kernel-safe"):
        int8.build(src, tmp_path / "out.onnx", ["dynamic"], feeds, reference, loose, weights="int8")
    fallback = int8.build(src, tmp_path / "out.onnx", ["dynamic", "fp32"], feeds, reference, loose, weights="int8")
    assert fallback.chosen == "fp32" and not (tmp_path / "out.onnx").exists()
    safe = int8.build(src, tmp_path / "out.onnx", ["dynamic"], feeds, reference, loose, weights="uint8")
    assert safe.chosen == "dynamic" and safe.kernel_safety["kernel_safe"]
    assert safe.as_dict()["kernel_safety"]["layers"] == 1
    # schemes are tried in order within a mode: the unsafe one is refused, the next ships
    ordered = int8.build(src, tmp_path / "out.onnx", ["dynamic"], feeds, reference, loose, weights=["int8", "uint8"])
    assert list(ordered.candidates) == ["dynamic/int8", "dynamic/uint8"] and ordered.weights == "uint8"
    assert ordered.candidate == "dynamic/uint8" and not ordered.candidates["dynamic/int8"]["accepted"]
    assert ordered.kernel_safety["weights"]["dtype"] == "uint8"
    with pytest.raises(ExportError, match="int8 weights must be"):
        int8.build(src, tmp_path / "out.onnx", ["dynamic"], feeds, reference, loose, weights=["int6"])


# ------------------------------------------------------------------ the same layers on emulated CPUs

_RUNNER = """
import json, sys
import numpy as np, onnxruntime as ort
sys.path.insert(0, {root!r})
from exporter.core import cpu
data = np.load({npz!r})
for name in json.loads({names!r}):
    sess = ort.InferenceSession({folder!r} + "/" + name + ".onnx", providers=["CPUExecutionProvider"])
    feed = {{i.name: data[name + ":" + i.name] for i in sess.get_inputs()}}
    np.save({folder!r} + "/" + name + "." + {tag!r} + ".npy", sess.run(None, feed)[0])
print(json.dumps(cpu.describe()))
"""
# Where a layer must go wrong, from arithmetic alone: full-range int8 weights (|w| = 127) against
# uint8 activations reach 2 x 255 x 127 = 64770 in AVX2's saturating int16 lanes; weights of -128
# against activations of 0, which ARM64's kernel flips to -128, reach 2 x 128 x 128 = 32768 in its
# wrapping int16 lanes (x86 multiplies the 0 as it is). Every other pair fits, so must be exact.
MUST_FAIL = {("mm_int8", "avx2"), ("mm_adversarial", "arm64")}
KINDS = tuple(cpu.EMULATED)  # avx2, arm64, arm64-dotprod, arm64-sme


def _integer_layer(weight: np.ndarray, zero: np.ndarray, folder, name: str) -> np.ndarray:
    """MatMulInteger over ``weight`` [K, N] with zero points [N]: uint8 activations in, exact int32 out."""
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "", "wz"], ["y"])],
        name,
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [16, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [16, N])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(zero, "wz")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / f"{name}.onnx"))
    return weight.astype(np.int64) - zero.astype(np.int64)


def _run(folder, names: list[str], tag: str, prefix: list[str]) -> dict:
    import sys
    from pathlib import Path

    root = str(Path(cpu.__file__).resolve().parents[1])
    code = _RUNNER.format(
        root=root, npz=str(folder / "feeds.npz"), names=json.dumps(names), folder=str(folder), tag=tag
    )
    proc = subprocess.run((prefix or [sys.executable]) + ["-c", code], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def emulated_runs(tmp_path_factory):
    """Integer layers of every weight scheme plus an adversarial one, and the float dense graphs,
    run natively and on every emulated kind: ``(folder, exact, proofs, {kind: cpu described})``."""
    folder = tmp_path_factory.mktemp("emulated")
    prefixes = {kind: cpu.emulator(kind) for kind in KINDS}  # fails, not skips, where scripts/emulators.sh did not run
    rng = np.random.default_rng(7)
    a = np.concatenate([np.full((8, K), 255, np.uint8), rng.integers(0, 256, size=(8, K), dtype=np.uint8)])
    exact, feeds, names, proofs = {}, {}, [], {}
    for scheme in SCHEMES:
        path = _quantized(folder, scheme)
        proofs[f"mm_{scheme}"] = kernel_safety.analyse(path)
        exact[f"mm_{scheme}"] = a.astype(np.int64) @ _integer_layer(*_stored_weight(path), folder, f"mm_{scheme}")
        feeds[f"mm_{scheme}:a"] = a
        # the float graph itself, with dynamic activation quantization (DynamicQuantizeMatMul)
        (folder / f"dense_{scheme}.onnx").write_bytes(path.read_bytes())
        feeds[f"dense_{scheme}:x"] = rng.uniform(0, 4, size=(8, K)).astype(np.float32)
        names += [f"mm_{scheme}", f"dense_{scheme}"]
    # int7 as the quantizer stores it, every zero point 0: the KleidiAI path on SME CPUs
    bare = _quantized(folder, "int7", zero_points=False)
    proofs["dense_int7_no_zero_points"] = kernel_safety.analyse(bare)
    (folder / "dense_int7_no_zero_points.onnx").write_bytes(bare.read_bytes())
    feeds["dense_int7_no_zero_points:x"] = feeds["dense_int7:x"]
    names.append("dense_int7_no_zero_points")
    zeros = np.zeros((16, K), np.uint8)
    exact["mm_adversarial"] = zeros.astype(np.int64) @ _integer_layer(
        np.full((K, N), -128, np.int8), np.zeros(N, np.int8), folder, "mm_adversarial"
    )
    proofs["mm_adversarial"] = kernel_safety.analyse(folder / "mm_adversarial.onnx")
    feeds["mm_adversarial:a"] = zeros
    names.append("mm_adversarial")
    np.savez(folder / "feeds.npz", **feeds)
    seen = {"native": _run(folder, names, "native", [])}
    seen |= {kind: _run(folder, names, kind, prefix) for kind, prefix in prefixes.items()}
    return folder, exact, proofs, seen


def test_emulated_cpus_take_the_kernels_they_stand_for(emulated_runs):
    _, _, _, seen = emulated_runs
    assert "vpmaddubsw" in seen["avx2"]["int8_kernel"] and "avx512f" not in seen["avx2"]["features"], seen
    assert seen["arm64"]["arch"] == "aarch64" and "smull" in seen["arm64"]["int8_kernel"], seen
    assert "asimddp" in seen["arm64-dotprod"]["features"] and "dot product" in seen["arm64-dotprod"]["int8_kernel"]
    assert "sme" in seen["arm64-sme"]["features"] and "KleidiAI" in seen["arm64-sme"]["int8_kernel"], seen


@pytest.mark.parametrize("kind", KINDS)
def test_integer_layers_are_exact_wherever_the_proof_says_they_fit(emulated_runs, kind):
    """Each layer is exact on ``kind`` unless arithmetic says that kind's kernel overflows, and
    then it is wrong there and the proof names that kernel: the emulator reaches the real kernel,
    and the proof flags what goes wrong."""
    folder, exact, proofs, seen = emulated_runs
    where = f"{kind}: {seen[kind]['cpu']}, kernel {seen[kind]['int8_kernel']}; native: {seen['native']['int8_kernel']}"
    for name, want in exact.items():
        got = np.load(folder / f"{name}.{kind}.npy").astype(np.int64)
        if (name, kind) in MUST_FAIL:
            assert (got != want).any(), (name, where)
            flagged = " ".join(proofs[name]["problems"])
            assert ("vpmaddubsw" if kind == "avx2" else "smull") in flagged, (name, flagged)
        else:
            assert (got == want).all(), (name, where)
    for scheme in ("uint8", "int7"):  # the schemes that ship are safe: the whole float graph agrees too
        assert proofs[f"mm_{scheme}"]["kernel_safe"]
        native, emulated = (np.load(folder / f"dense_{scheme}.{t}.npy") for t in ("native", kind))
        assert float(np.abs(native - emulated).max()) <= 1e-5 * float(np.abs(native).max()), (scheme, where)
    # int7 without zero points: fine on every kernel the lanes proof covers, wrong where
    # onnxruntime takes KleidiAI (SME), and refused by the proof for that reason
    native, emulated = (np.load(folder / f"dense_int7_no_zero_points.{t}.npy") for t in ("native", kind))
    off = float(np.linalg.norm(emulated - native) / np.linalg.norm(native))
    assert (off > 0.1) if kind == "arm64-sme" else (off <= 1e-5), (off, where)
    assert kernel_safety.KLEIDIAI in " ".join(proofs["dense_int7_no_zero_points"]["problems"])


def test_native_cpu_is_exact_on_the_safe_schemes(emulated_runs):
    folder, exact, _, seen = emulated_runs
    for scheme in ("uint8", "int7"):
        got = np.load(folder / f"mm_{scheme}.native.npy").astype(np.int64)
        assert (got == exact[f"mm_{scheme}"]).all(), (scheme, seen["native"])


def test_release_proves_again_and_refuses_unsafe_or_unproved_int8(exported, tmp_path):
    """`sam2-onnx release` re-proves each INT8 file: a full-range int8 encoder swapped in (its
    manifest entry updated, so only the proof can tell), or a manifest without the proof, is refused."""
    import shutil

    from exporter.core.errors import ReleaseRefused
    from exporter.core.manifest import file_entry, read_manifest, write_manifest
    from exporter.release.build import kernel_proofs

    folder = exported("tiny", "fp32,fp16,int8")
    manifest = read_manifest(folder)
    proofs = kernel_proofs(folder, manifest)
    assert list(proofs) == ["encoder.int8.onnx"] and proofs["encoder.int8.onnx"].startswith("kernel-safe: ")
    from exporter.release.model_card import _int8_text  # the card's section: the proof, and where the check ran

    card = _int8_text(manifest, {"int8_kernel_proofs": proofs})
    assert card.startswith("## INT8 on every CPU") and proofs["encoder.int8.onnx"] in card
    assert "AVX2" in card and "ARM64" in card and manifest["int8"]["checked_on"]["cpu"] in card
    # and what speed to expect where, for the weight scheme the encoder shipped with
    scheme = {"int7": "stored as\n7-bit signed integers", "uint8": "stored as uint8"}
    assert scheme[manifest["int8"]["encoder"]["weights"]] in card
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy2(folder / "manifest.json", copy / "manifest.json")
    int8.prepare(folder / "encoder.onnx", tmp_path / "prepared.onnx")
    int8.quantize_dynamic(tmp_path / "prepared.onnx", copy / "encoder.int8.onnx", per_channel=True, weights="int8")
    unsafe = read_manifest(copy)
    unsafe["files"]["encoder.int8.onnx"] = file_entry(copy / "encoder.int8.onnx", "encoder", "int8")
    write_manifest(copy, unsafe)
    with pytest.raises(ReleaseRefused, match=r"encoder\.int8\.onnx is not kernel-safe \(u8s8 vpmaddubsw"):
        kernel_proofs(copy, read_manifest(copy))
    del unsafe["int8"]["kernel_safe"]  # as an export from before the proof existed
    with pytest.raises(ReleaseRefused, match="carries no kernel-safety proof"):
        kernel_proofs(copy, unsafe)
