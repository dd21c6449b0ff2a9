"""One engine of ``sam2-onnx bench``, in a process of its own.

    python -m exporter.bench.worker '{"engine": "onnxruntime", "precision": "int8", ...}'

The parent (:mod:`exporter.bench.benchmark`) starts one of these per engine and precision, so each
peak RSS belongs to that engine alone and the onnxruntime processes never import torch (the
torch engine is the only one that does). Prints one JSON line: every timed call's ms, load time, peak RSS.

Both engines get the same preprocessed image tensor (``image.npy``, [1, 3, 1024, 1024]) and
the same prompt: one foreground click at the centre, multimask output, no mask input.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

CLICK_1024 = (512.0, 512.0)  # the benchmark prompt, in the 1024x1024 input frame


def sample(fn, warmup: int, runs: int) -> list[float]:
    """``warmup`` untimed calls, then the times of ``runs`` timed ones, ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def summarize(times_ms: list[float]) -> dict:
    """min / median / max of call times in ms, and how many calls."""
    return {
        "min_ms": round(min(times_ms), 3),
        "median_ms": round(statistics.median(times_ms), 3),
        "max_ms": round(max(times_ms), 3),
        "runs": len(times_ms),
    }


def timed(fn, warmup: int, runs: int) -> dict:
    """``warmup`` untimed calls, then ``runs`` timed ones: min / median / max in ms."""
    return summarize(sample(fn, warmup, runs))


def _onnxruntime(job: dict, image: np.ndarray):
    """Encoder and decoder calls of the exported graphs through ONNX Runtime (files verified)."""
    from ..core import contract as C
    from ..runtime.profiles import static_calls
    from ..runtime.sessions import load_sessions

    sessions = load_sessions(Path(job["model_dir"]), job["precision"], ["CPUExecutionProvider"], job["threads"])
    if sessions.profile.family == "sam1":  # SamOnnxModel: the click and SamPredictor's padding point
        (embeddings,) = sessions.encoder.run(None, {"input_image": image})
        feed = {
            "image_embeddings": embeddings,
            "point_coords": np.array([[CLICK_1024, (0.0, 0.0)]], np.float32),
            "point_labels": np.array([[C.LABEL_FG, C.LABEL_PAD]], np.float32),
            "mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
            C.ORIG_SIZE: np.array([C.IMAGE_SIZE, C.IMAGE_SIZE], np.float32),
        }
        return (lambda: sessions.encoder.run(None, {"input_image": image}), lambda: sessions.decoder.run(None, feed))
    enc_in = C.ENCODER_INPUTS[0].name
    names = C.names(C.ENCODER_OUTPUTS)
    feats = dict(zip(names, sessions.encoder.run(None, {enc_in: image})))
    feed = {
        **feats,
        "point_coords": np.array([[CLICK_1024]], np.float32),
        "point_labels": np.array([[C.LABEL_FG]], np.float32),
        "mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    feed = static_calls(sessions.profile, feed)[0]  # a static-shape folder: the click padded to its N points
    return (lambda: sessions.encoder.run(None, {enc_in: image}), lambda: sessions.decoder.run(None, feed))


def _torch(job: dict, image: np.ndarray):
    """The official predictor's model calls in torch eager FP32 (``SAM2ImagePredictor.set_image``
    after preprocessing, and ``_predict`` before upsampling), on the variant's architecture with
    seeded random weights: latency does not depend on the weights' values."""
    import warnings

    import torch

    from ..checkpoints.loading import random_model
    from ..core.variants import resolve
    from ..wrappers.encoder import ImageEncoder

    torch.set_num_threads(job["threads"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = random_model(resolve(job["variant"]), 0)[0].eval()
    if resolve(job["variant"]).is_sam1:
        return _torch_sam1(model, torch.from_numpy(image))
    encoder = ImageEncoder(model)  # forward_image + _prepare_backbone_features + no_mem_embed, as set_image
    x = torch.from_numpy(image)
    with torch.inference_mode():
        hr0, hr1, embed = encoder(x)
    points = (torch.tensor([[CLICK_1024]]), torch.tensor([[1]], dtype=torch.int))

    @torch.inference_mode()
    def decode():  # SAM2ImagePredictor._predict with one click and multimask_output=True
        sparse, dense = model.sam_prompt_encoder(points=points, boxes=None, masks=None)
        return model.sam_mask_decoder(
            image_embeddings=embed,
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=[hr0, hr1],
        )

    return torch.inference_mode()(lambda: encoder(x)), decode


def _torch_sam1(model, x):
    """SamPredictor's model calls: ``set_torch_image``'s encoder, and ``predict_torch``'s prompt
    encoder, mask decoder and ``postprocess_masks`` (the exported decoder upsamples in its graph)."""
    import torch

    with torch.inference_mode():
        embeddings = model.image_encoder(x)
    points = (torch.tensor([[CLICK_1024]]), torch.tensor([[1]], dtype=torch.int))

    @torch.inference_mode()
    def decode():
        sparse, dense = model.prompt_encoder(points=points, boxes=None, masks=None)
        low_res, scores = model.mask_decoder(
            image_embeddings=embeddings,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        size = (x.shape[-2], x.shape[-1])
        return model.postprocess_masks(low_res, size, size), scores

    return torch.inference_mode()(lambda: model.image_encoder(x)), decode


def run(job: dict) -> dict:
    image = np.load(job["image"])
    t0 = time.perf_counter()
    encode, decode = (_torch if job["engine"] == "torch" else _onnxruntime)(job, image)
    load_s = time.perf_counter() - t0
    # raw call times: the parent pools them over rounds
    result = {
        "encoder_ms": sample(encode, job["warmup"], job["runs"]),
        "decoder_ms": sample(decode, job["warmup"], job["decoder_runs"]),
    }
    return result | {
        "load_s": round(load_s, 2),
        "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
        "torch_imported": "torch" in sys.modules,
    }


def peak_rss_kb() -> int:
    """Peak resident memory of this process, KiB.

    VmHWM where /proc has it: ``ru_maxrss`` survives ``exec``, so a worker started by a parent
    that once held gigabytes (a release job that exported and ran parity first) would report
    the parent's peak instead of its own.
    """
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main() -> int:
    from ..core.errors import Sam2OnnxError

    try:
        print(json.dumps(run(json.loads(sys.argv[1]))))
    except Sam2OnnxError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
