"""SAM2OnnxPredictor: the official SAM2ImagePredictor's API on ONNX Runtime, numpy in and out.

Two ways to use it:

- stateful, as the official predictor: ``set_image`` / ``set_image_batch``, then ``predict`` /
  ``predict_batch``; ``get_image_embedding``, ``reset_predictor``;
- stateless, for servers: ``embed(image) -> Embedding`` and ``decode(embedding, ...)``. They
  touch no predictor state, so one predictor can serve many threads (ONNX Runtime sessions
  are thread-safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract as C
from ..errors import InputError, NotReadyError
from .graphs import load_graphs
from .inputs import as_rgb, prepare_prompts
from .transforms import preprocess, upsample_masks


@dataclass(frozen=True)
class Embedding:
    """One image's encoder outputs and its original size."""

    image_embed: np.ndarray        # [1, 256, 64, 64] float32
    high_res_feats_0: np.ndarray   # [1, 32, 256, 256]
    high_res_feats_1: np.ndarray   # [1, 64, 128, 128]
    orig_hw: tuple[int, int]       # original (height, width)

    def feeds(self) -> dict[str, np.ndarray]:
        return {"image_embed": self.image_embed, "high_res_feats_0": self.high_res_feats_0,
                "high_res_feats_1": self.high_res_feats_1}


class SAM2OnnxPredictor:
    """Prompted segmentation with exported SAM 2 graphs; no torch.

    ``model_dir`` is a folder written by ``sam2-onnx export``; its files are checked against
    the manifest's sha256 before loading. ``precision`` picks ``encoder[.fp16|.int8].onnx``;
    ``providers`` defaults to CUDA when present, then CPU; ``threads`` sets ONNX Runtime's
    intra-op threads (default: all cores); ``optimization`` is the graph optimisation level
    (disable, basic, extended, all).
    """

    def __init__(self, model_dir: str | Path, precision: str = "fp32", providers: list[str] | None = None,
                 threads: int | None = None, optimization: str = "all", mask_threshold: float = C.MASK_THRESHOLD):
        self.graphs = load_graphs(Path(model_dir), precision, providers, threads, optimization)
        self.model_dir = Path(model_dir)
        self.mask_threshold = mask_threshold
        self.reset_predictor()

    @property
    def manifest(self) -> dict:
        return self.graphs.manifest

    # --- stateless --------------------------------------------------------------------------

    def embed(self, image) -> Embedding:
        """Run the encoder on one image (HxWx3 uint8 RGB array or PIL image)."""
        return self.embed_batch([image])[0]

    def embed_batch(self, images: list) -> list[Embedding]:
        """One encoder call for several images (the graph's dynamic batch axis)."""
        if not isinstance(images, (list, tuple)) or not images:
            raise InputError("images must be a non-empty list of images")
        rgb = [as_rgb(im) for im in images]
        outs = self.encode_tensor(np.concatenate([preprocess(im) for im in rgb]))
        return [Embedding(outs["image_embed"][i:i + 1], outs["high_res_feats_0"][i:i + 1],
                          outs["high_res_feats_1"][i:i + 1], im.shape[:2]) for i, im in enumerate(rgb)]

    def encode_tensor(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder graph on an already preprocessed [B, 3, 1024, 1024] tensor; outputs by name."""
        return dict(zip(C.names(C.ENCODER_OUTPUTS), self.graphs.encoder.run(None, {C.ENCODER_INPUTS[0].name: x})))

    def decode(self, embedding: Embedding, point_coords=None, point_labels=None, box=None, mask_input=None,
               multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """Masks for one image's prompts; returns ``(masks, scores, low_res_logits)`` as
        ``SAM2ImagePredictor.predict``: [C, H, W], [C], [C, 256, 256] for one prompt,
        [B, C, H, W], [B, C], [B, C, 256, 256] for B prompts (C = 3, or 1 without multimask).
        Masks are float32 0/1 (or logits with ``return_logits``), as the official ones.
        """
        low_res, scores = self.decode_logits(embedding, point_coords, point_labels, box, mask_input,
                                             multimask_output, normalize_coords)
        masks = upsample_masks(low_res, embedding.orig_hw)   # from the unclamped logits
        low_res = np.clip(low_res, -C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)
        if not return_logits:
            masks = (masks > self.mask_threshold).astype(np.float32)
        if len(low_res) == 1:  # the official predictor squeezes a batch of one
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return masks, scores, low_res

    def decode_logits(self, embedding: Embedding, point_coords=None, point_labels=None, box=None,
                      mask_input=None, multimask_output: bool = True,
                      normalize_coords: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The decoder graph alone: unclamped low-res logits [L, C, 256, 256] and scores [L, C]
        for L prompts (arguments as ``decode``), without upsampling; what the automatic mask
        generator filters on before it upsamples the masks it keeps."""
        prompts = prepare_prompts(point_coords, point_labels, box, mask_input, embedding.orig_hw,
                                  normalize_coords)
        out = dict(zip(C.names(C.DECODER_OUTPUTS),
                       self.graphs.decoder.run(None, embedding.feeds() | prompts.feeds())))
        if multimask_output:
            return out["masks"], out["iou_predictions"]
        # SAM 2's stability-based single mask, chosen in the graph
        return out["single_masks"], out["single_iou_predictions"]

    # --- stateful, as SAM2ImagePredictor ----------------------------------------------------

    def reset_predictor(self) -> None:
        self._embeddings: list[Embedding] = []
        self._is_batch = False

    def set_image(self, image) -> None:
        self.reset_predictor()
        self._embeddings = [self.embed(image)]

    def set_image_batch(self, image_list: list) -> None:
        self.reset_predictor()
        self._embeddings = self.embed_batch(image_list)
        self._is_batch = True

    @property
    def _is_image_set(self) -> bool:
        return bool(self._embeddings)

    def _require_image(self, what: str) -> None:
        if not self._is_image_set:
            raise NotReadyError(f"an image must be set with {what}(...) before mask prediction")

    def get_image_embedding(self) -> np.ndarray:
        """image_embed of the set image(s): [B, 256, 64, 64]."""
        self._require_image("set_image")
        return np.concatenate([e.image_embed for e in self._embeddings])

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """As ``SAM2ImagePredictor.predict`` (on the last set image, as the official one)."""
        self._require_image("set_image")
        return self.decode(self._embeddings[-1], point_coords, point_labels, box, mask_input,
                           multimask_output, return_logits, normalize_coords)

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None,
                      mask_input_batch=None, multimask_output: bool = True, return_logits: bool = False,
                      normalize_coords: bool = True):
        """As ``SAM2ImagePredictor.predict_batch``: per image lists of masks, scores, logits."""
        self._require_image("set_image_batch")
        if not self._is_batch:
            raise NotReadyError("predict_batch needs images set with set_image_batch(...)")
        n = len(self._embeddings)
        per_image = []
        for name, value in (("point_coords_batch", point_coords_batch), ("point_labels_batch", point_labels_batch),
                            ("box_batch", box_batch), ("mask_input_batch", mask_input_batch)):
            if value is not None and len(value) != n:
                raise InputError(f"{name} has {len(value)} entries for {n} images")
            per_image.append(value if value is not None else [None] * n)
        results = [self.decode(e, *(v[i] for v in per_image), multimask_output, return_logits, normalize_coords)
                   for i, e in enumerate(self._embeddings)]
        return tuple(list(r) for r in zip(*results))
