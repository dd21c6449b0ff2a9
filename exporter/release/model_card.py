"""The release folder's ``README.md``: a Hugging Face model card (YAML front matter + tables).

Everything in it is rendered from the manifest, the parity reports and ``bench.json``; nothing
is typed twice. Random-weight releases are stamped at the top, in a tag and in the title.
"""

from __future__ import annotations

import re

from ..core.manifest import manifest_profile, random_seed
from .mobile_check import mobile_text

LICENSE = "apache-2.0"  # SAM 2 / SAM 2.1 code and checkpoints are released under Apache 2.0
TAGS = ["sam2", "segment-anything", "onnx", "onnxruntime", "image-segmentation", "sam2-onnx"]


SAM1_REPOS = {
    "sam_vit_b": "facebook/sam-vit-base",
    "sam_vit_l": "facebook/sam-vit-large",
    "sam_vit_h": "facebook/sam-vit-huge",
}


def base_model(variant: str) -> str:
    """The official Hugging Face repo of a variant: sam2.1_hiera_base_plus -> facebook/sam2.1-hiera-base-plus,
    sam_vit_b -> facebook/sam-vit-base."""
    if variant in SAM1_REPOS:
        return SAM1_REPOS[variant]
    return "facebook/" + variant.replace("_hiera_", "-hiera-").replace("base_plus", "base-plus")


def _sam1_texts(manifest: dict) -> dict:
    """The parts of the card that differ for SAM 1 (segment_anything's SamOnnxModel contract)."""
    pre = manifest["preprocessing"]
    steps = "; ".join(pre["steps"])
    return {
        "title": "SAM",
        "model": "[Segment Anything](https://github.com/facebookresearch/segment-anything) (SAM 1)",
        "package": f"segment-anything {manifest['versions'].get('segment-anything')}",
        "preprocessing": f"""Preprocessing, as `SamPredictor.set_image`: {steps}; mean {pre["pixel_mean"]}, std
{pre["pixel_std"]}. Point coordinates: {pre["point_coords"]}; a box is {pre["boxes"]};
{pre["padding_point"]}. The decoder returns logits at `orig_im_size` (threshold at
{pre["mask_threshold"]}); {manifest["single_mask"]["rule"]}.
""",
        "usage": """```python
import numpy as np, onnxruntime as ort
enc = ort.InferenceSession("encoder.onnx")          # or encoder.ort with ONNX Runtime Mobile
dec = ort.InferenceSession("decoder.onnx")
(emb,) = enc.run(None, {"input_image": input_image})  # [1, 3, 1024, 1024], prepared as above
masks, scores, low_res = dec.run(None, {"image_embeddings": emb,
    "point_coords": np.array([[[512, 400], [0, 0]]], np.float32), "point_labels": np.array([[1, -1]], np.float32),
    "mask_input": np.zeros((1, 1, 256, 256), np.float32), "has_mask_input": np.zeros(1, np.float32),
    "orig_im_size": np.array([h, w], np.float32)})
```

Or, with the torch-free runtime of sam2-onnx: `SAM1OnnxPredictor(folder).set_image(image)`,
then `predict(point_coords=..., point_labels=...)` as with the official `SamPredictor`.""",
        "license": "The SAM weights and code are Apache-2.0 (Meta Platforms).",
    }


def front_matter(manifest: dict) -> str:
    variant = manifest["variant"]["name"]
    tags = TAGS + (["random-weights", "not-for-production"] if random_seed(manifest["weights"]) is not None else [])
    lines = (
        [
            "---",
            f"license: {LICENSE}",
            "library_name: onnx",
            "pipeline_tag: mask-generation",
            f"base_model: {base_model(variant)}",
            "tags:",
        ]
        + [f"- {t}" for t in tags]
        + ["---", ""]
    )
    return "\n".join(lines)


def _io_table(manifest: dict) -> str:
    rows = ["| graph | direction | name | dtype | shape | meaning |", "|---|---|---|---|---|---|"]
    for role, spec in manifest["io"].items():
        for direction in ("inputs", "outputs"):
            for t in spec[direction]:
                shape = "[" + ", ".join(str(d) for d in t["shape"]) + "]"
                rows.append(f"| {role} | {direction[:-1]} | `{t['name']}` | {t['dtype']} | {shape} | {t['meaning']} |")
    return "\n".join(rows)


def _files_table(manifest: dict, release: dict) -> str:
    rows = ["| file | graph | precision | format | bytes | sha256 |", "|---|---|---|---|---:|---|"]
    for name, e in manifest["files"].items():
        rows.append(f"| `{name}` | {e['graph']} | {e['precision']} | ONNX | {e['bytes']:,} | `{e['sha256'][:16]}…` |")
        if "external_data" in e:
            d = e["external_data"]
            rows.append(
                f"| `{d['file']}` | {e['graph']} | {e['precision']} | its weights (ONNX external data) "
                f"| {d['bytes']:,} | `{d['sha256'][:16]}…` |"
            )
    for name, e in release["ort_format"]["files"].items():
        level = "basic optimisations" if e["optimization"] == "basic" else "unoptimised (basic would grow the file)"
        rows.append(
            f"| `{name}` | {name.split('.')[0]} | {_precision_of(name)} | ORT, {level} "
            f"| {e['bytes']:,} | `{e['sha256'][:16]}…` |"
        )
    return "\n".join(rows)


def _precision_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) == 3 else "fp32"


def _parity_table(parity: dict) -> str:
    rows = [
        "| precision | verdict | cases | photos | worst mask IoU | median mask IoU | automask IoU min | report |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for precision, r in parity.items():
        s = r["summary"]
        fmt = lambda v: "-" if v is None else f"{v:.6f}"
        rows.append(
            f"| {precision} | **pass** | {r['cases']} | {len(r['images'])} | {fmt(s.get('iou_min'))} | "
            f"{fmt(s.get('iou_median'))} | {fmt(s.get('automask_iou_min'))} | [{r['html']}]({r['html']}) |"
        )
    return "\n".join(rows)


def _ort_table(release: dict) -> str:
    rows = [
        "| precision | masks compared | mask IoU min (.ort vs .onnx) | iou_predictions max abs diff |",
        "|---|---:|---:|---:|",
    ]
    for precision, c in release["ort_format"]["check"].items():
        rows.append(f"| {precision} | {c['masks']} | {c['mask_iou_min']:.6f} | {c['iou_predictions_max_abs']:.2e} |")
    for name, why in release["ort_format"].get("not_converted", {}).items():
        rows.append(f"\nNo `.ort` copy of `{name}`: {why}; the check ran it as `.onnx`.")
    return "\n".join(rows)


def _browser_cell(result: dict | None) -> str:
    if result is None:
        return "not checked"
    if result["verdict"] == "pass":
        return f"runs (mask IoU {result['mask_iou_min']:.6f})"
    return f"fails ({result['stage']}): {_last_sentence(result['reason'])}"


def _last_sentence(error: str) -> str:
    """What onnxruntime-web's message says, without what it says it with: its last sentence,
    from after the last ``file.cc:LINE Function`` it names (the manifest keeps it all)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(error.split())) if s]
    text = sentences[-1] if sentences else error
    text = re.sub(r"^.*\b[\w/.-]+\.(?:cc|cpp|h):\d+\s+(?:[A-Za-z_]\w*\s+(?=[A-Z]))?", "", text)
    return text[:200].replace("|", "\\|")


def browser_table(web: dict) -> str:
    """File x execution provider: what onnxruntime-web did with each graph file (a ``browser`` record)."""
    eps = web["eps"]
    rows = ["| file | single file | " + " | ".join(eps) + " |", "|---|---|" + "---|" * len(eps)]
    for name, r in web["files"].items():
        cells = [_browser_cell(r.get(ep)) for ep in eps]
        rows.append(f"| `{name}` | {'yes' if r['single_file'] else 'no (external data)'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _webgpu_note(web: dict) -> str:
    if "webgpu" not in web["eps"]:
        return " WebGPU was not checked (`sam2-onnx release --browser-ep wasm --browser-ep webgpu` checks it)."
    adapter = web.get("adapter")
    if not adapter:
        return " WebGPU found no adapter in that browser, so nothing ran on it."
    software = "swiftshader" in adapter.lower()
    return f" WebGPU ran on the adapter `{adapter}`" + (
        ", Chromium's software renderer (a CPU emulating a GPU): a real GPU may support more or less."
        if software
        else "."
    )


def _static_note(manifest: dict) -> str:
    static = manifest_profile(manifest).static
    if not static:
        return ""
    return (
        f"\nEvery dim is fixed: the encoder takes one image, the decoder exactly {static[0]} prompt(s) of "
        f"{static[1]} point(s). Pad shorter prompts with label -1 points at (0, 0) after their own, and fill "
        "a call by repeating a prompt. The masks are the official model's for the padded prompt, which "
        "differ from an unpadded prompt's: export N as the number of points the app sends.\n"
    )


def _mobile_text(manifest: dict, release: dict) -> str:
    """ONNX Runtime Mobile's execution providers on each graph (releases made before the check: nothing)."""
    if not release.get("mobile"):
        return ""
    forms = manifest.get("options", {}).get("mobile_forms")
    profile = manifest_profile(manifest)
    return mobile_text(
        release["mobile"], bool(profile.static), manifest.get("mobile_rewrites"), forms, profile.family == "sam1"
    )


def _browser_text(manifest: dict, release: dict) -> str:
    """Which graph files a browser page can run, on which onnxruntime-web execution provider."""
    web = release.get("browser")
    if not web and manifest_profile(manifest).static:
        return """## In the browser

Not checked: these static-shape files are for ONNX Runtime Mobile. A web page takes the files of
the same variant exported without `--static-shapes`, which accept any number of prompts and points.

"""
    external = [e["external_data"]["file"] for e in manifest["files"].values() if "external_data" in e]
    why = []
    if not web and manifest_profile(manifest).family == "sam1":
        why.append("the browser check's page runs SAM 2's contract, not SAM 1's")
    if not web and external:
        why.append(
            f"{', '.join(f'`{f}`' for f in external)} {'hold' if len(external) > 1 else 'holds'} weights as "
            "external data, which the check's page "
            "does not load (an onnxruntime-web session takes them through its `externalData` option)"
        )
    if why:
        return "## In the browser\n\nNot checked: " + "; ".join(why) + ".\n\n"
    if not web:
        return """## In the browser

Not checked for these files (released with `--no-browser-check`).

"""
    return f"""## In the browser

Every graph file loaded by onnxruntime-web {web["onnxruntime_web"]} in headless {web["browser"]}
and run on the sample photo and prompts; "runs" means its masks equal the Python onnxruntime's
on the same file (IoU >= {web["mask_iou_min"]} on every mask, over the pixels the Python logits
decide by the precision's parity band).{_webgpu_note(web)}

{browser_table(web)}

For a web page: {", ".join(f"`{n}`" for n in web["for_web"]) or "none"}.

"""


def _speed_text(manifest: dict) -> str:
    """What INT8 speed to expect where, from the weight scheme the encoder shipped with."""
    if manifest.get("int8", {}).get("encoder", {}).get("weights") == "int7":
        return """the weights are stored as
7-bit signed integers, which meet onnxruntime's u8 x s8 kernels: one `vpdpbusds` per 64
products on AVX-512 VNNI CPUs (where the INT8 encoder speed-up below was measured, if its
machine has `avx512_vnni`), `vpmaddubsw` on AVX2 ones (less of a gain: AVX2 has no integer
instruction much faster than its float FMA), `sdot` on ARM64 CPUs with the dot-product extension."""
    return """the weights are stored as uint8,
which meet onnxruntime's u8 x u8 kernels: on x86-64 they widen both operands to 16 bits
(`vpmaddwd`) on AVX2 and AVX-512 alike, since VNNI's `vpdpbusds` takes signed weights only, so
expect about the INT8 encoder speed-up below on any x86-64 CPU, and more on ARM64 CPUs with
the dot-product extension (`udot`)."""


def _int8_text(manifest: dict, release: dict) -> str:
    """Which CPUs the INT8 figures hold on, and why: the kernel-safety proof of each INT8 graph."""
    proofs = release.get("int8_kernel_proofs") or {}
    if not proofs:
        return ""
    checked = manifest.get("int8", {}).get("checked_on", {})
    lines = "\n".join(f"- `{name}`: {text}" for name, text in proofs.items())
    return f"""## INT8 on every CPU

{lines}

onnxruntime picks its integer kernels by CPU. Some (x86-64 AVX2 and AVX-512 without VNNI:
`vpmaddubsw`; ARM64 without the dot-product extension: `smull` + `smlal`) add two products in a
16-bit lane before widening; the rest accumulate in 32 bits. The ranges above were proved, from
the stored weights and the activations' types, to fit every such lane, so every kernel computes
the same integers and only float rounding differs, as at FP32: the INT8 parity above holds on
AVX2, AVX-512, AVX-512 VNNI, AMX and ARM64 CPUs alike. Speed does differ: {_speed_text(manifest)}
The export's own check ran on {checked.get("cpu", "an unrecorded CPU")} (its u8 x s8 kernel:
{checked.get("int8_kernel", "unrecorded")}).

"""


def _sam2_texts(manifest: dict) -> dict:
    """The parts of the card that differ by family, for SAM 2 (the samexporter contract)."""
    pre = manifest["preprocessing"]
    return {
        "title": "SAM 2",
        "model": "[SAM 2](https://github.com/facebookresearch/sam2)",
        "package": f"sam2 {manifest['versions'].get('sam2')}",
        "preprocessing": f"""Preprocessing: RGB uint8 → float32 / 255 → resize to {pre["image_size"]}x{pre["image_size"]} (bilinear, antialias,
aspect ratio not kept) → subtract mean {pre["pixel_mean"]}, divide by std {pre["pixel_std"]}. Point
coordinates are pixels scaled to the {pre["image_size"]} frame; a box is two points labelled 2 and 3; pad
prompts with label -1. Masks are logits: upsample to the image size (bilinear) and threshold at
{pre["mask_threshold"]}. `single_masks` serves `multimask_output=False`: {manifest["single_mask"]["rule"]}.
""",
        "usage": """```python
import numpy as np, onnxruntime as ort
enc = ort.InferenceSession("encoder.onnx")          # or encoder.ort with ONNX Runtime Mobile
dec = ort.InferenceSession("decoder.onnx")
feats = dict(zip(["high_res_feats_0", "high_res_feats_1", "image_embed"], enc.run(None, {"image": image})))
masks, scores = dec.run(["masks", "iou_predictions"], {**feats,
    "point_coords": np.array([[[512, 400]]], np.float32), "point_labels": np.array([[1]], np.float32),
    "mask_input": np.zeros((1, 1, 256, 256), np.float32), "has_mask_input": np.zeros(1, np.float32)})
```

Or, with the torch-free runtime of sam2-onnx: `SAM2OnnxPredictor(folder).set_image(image)`,
then `predict(point_coords=..., point_labels=...)` as with the official `SAM2ImagePredictor`.""",
        "license": "The SAM 2 weights and code are Apache-2.0 (Meta Platforms).",
    }


def model_card(manifest: dict, parity: dict, bench: dict | None, release: dict) -> str:
    from ..bench.benchmark import describe, table

    variant = manifest["variant"]
    weights = manifest["weights"]
    seed = random_seed(weights)
    title = f"# SAM 2 ONNX: {variant['name']}" + (" (RANDOM WEIGHTS, NOT A MODEL)" if seed is not None else "")
    stamp = (
        f"> **WARNING: these graphs hold seeded random weights (seed {seed}), not {base_model(variant['name'])}.**\n"
        "> They segment nothing useful. This folder exists to test a release pipeline; do not use or publish it.\n\n"
        if seed is not None
        else ""
    )
    source = (
        f"seeded random weights, seed {seed}"
        if seed is not None
        else f"checkpoint `{weights.get('checkpoint_file')}` (sha256 `{weights.get('checkpoint_sha256')}`)"
    )
    bench_text = (
        f"Measured {describe(bench)}.\n\n{table(bench)}\n![benchmark](bench.png)\n"
        if bench
        else "Not measured for these files: run `sam2-onnx bench` on the model folder before releasing.\n"
    )
    v = manifest["versions"]
    texts = _sam1_texts(manifest) if manifest_profile(manifest).family == "sam1" else _sam2_texts(manifest)
    title = title.replace("# SAM 2 ONNX", f"# {texts['title']} ONNX")
    return f"""{front_matter(manifest)}
{title}

{stamp}ONNX export of Meta's {texts["model"]} `{variant["name"]}`
({variant["parameters"]:,} parameters) as two graphs: an image encoder (once per image) and a prompt
decoder (points, boxes, previous masks; many prompts per call). Made and checked with
sam2-onnx {v.get("sam2-onnx-exporter")}: every precision below passed the
reference-parity suite against the official PyTorch predictor on real photos.

- **Weights:** {source}
- **State dict sha256:** `{weights["state_dict_sha256"]}`
- **Exported with:** {texts["package"]}, torch {v.get("torch")}, onnx {v.get("onnx")}, opset {manifest["opset"]}; simplified with onnxsim {v.get("onnxsim")}
- **ORT format:** `.ort` copies for ONNX Runtime Mobile, with `{release["ort_format"]["operators_config"]}`
  for a reduced build (`build.sh --include_ops_by_config`)

## Files

{_files_table(manifest, release)}

`sha256sum -c SHA256SUMS` checks every file; `manifest.json` records how each graph was made.

## Inputs and outputs

{_io_table(manifest)}

{texts["preprocessing"]}{_static_note(manifest)}
## Parity with the official PyTorch predictor

{_parity_table(parity)}

The `.ort` copies decode the same masks as the `.onnx` files opened at the optimisation level
baked into each copy (sample photo, a click and four prompts of every label kind):

{_ort_table(release)}

{_int8_text(manifest, release)}{_mobile_text(manifest, release)}{_browser_text(manifest, release)}## Speed and memory

{bench_text}
## Usage

{texts["usage"]}

## License

{texts["license"]} These graphs are a format conversion
of them.
"""
