"""SAM2OnnxPredictor: the official SAM2ImagePredictor's API on ONNX Runtime, numpy in and out.

Two ways to use it:

- stateful, as the official predictor: ``set_image`` / ``set_image_batch``, then ``predict`` /
  ``predict_batch``; ``get_image_embedding``, ``reset_predictor``;
- stateless, for servers: ``embed(image) -> Embedding`` and ``decode(embedding, ...)``. They
  touch no predictor state, so one predictor can serve many threads (ONNX Runtime sessions
  are thread-safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from ..core import contract as C
from ..core.errors import InputError, NotReadyError
from .inputs import as_rgb, prepare_prompts
from .profiles import by_role, decoder_feeds, join_calls, static_calls
from .sessions import load_sessions
from .transforms import preprocess, upsample_masks

if TYPE_CHECKING:
    from PIL.Image import Image

ImageLike = Union[np.ndarray, "Image"]  # HxWx3 uint8 RGB (HxW gray and HxWx4 RGBA are converted)
ArrayLike = np.ndarray | Sequence  # anything np.asarray takes
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # masks, scores, low-res logits


@dataclass(frozen=True)
class Embedding:
    """One image's encoder outputs and its original size."""

    image_embed: np.ndarray  # [1, 256, 64, 64] float32
    high_res_feats_0: np.ndarray  # [1, 32, 256, 256]
    high_res_feats_1: np.ndarray  # [1, 64, 128, 128]
    orig_hw: tuple[int, int]  # original (height, width)

    def feeds(self) -> dict[str, np.ndarray]:
        """The decoder graph's three feature inputs, by name."""
        return {
            "image_embed": self.image_embed,
            "high_res_feats_0": self.high_res_feats_0,
            "high_res_feats_1": self.high_res_feats_1,
        }


class SAM2OnnxPredictor:
    """Prompted segmentation with exported SAM 2 graphs; no torch.

    Args:
        model_dir: a folder written by ``sam2-onnx export``; its files are checked against the
            manifest's sha256 before loading (IntegrityError / ManifestError otherwise).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``: which of the folder's graphs to load.
        providers: ONNX Runtime execution providers; default CUDA when present, then CPU.
        threads: ONNX Runtime intra-op threads; default all cores.
        optimization: graph optimisation level: ``disable``, ``basic``, ``extended`` or ``all``.
        mask_threshold: logit above which a pixel is in the mask (the official 0.0).
    """

    def __init__(
        self,
        model_dir: str | Path,
        precision: str = "fp32",
        providers: list[str] | None = None,
        threads: int | None = None,
        optimization: str = "all",
        mask_threshold: float = C.MASK_THRESHOLD,
    ):
        self.sessions = load_sessions(Path(model_dir), precision, providers, threads, optimization)
        if self.sessions.profile.family != "sam2":
            raise InputError(f"{model_dir}: holds SAM 1 graphs; use SAM1OnnxPredictor")
        self.model_dir = Path(model_dir)
        self.mask_threshold = mask_threshold
        self.reset_predictor()

    @property
    def manifest(self) -> dict:
        """The model folder's manifest.json (variant, weights, files, precisions, checks)."""
        return self.sessions.manifest

    @property
    def profile(self) -> C.Profile:
        """The folder's I/O profile (``core/contract.py``): which consumer's graphs these are."""
        return self.sessions.profile

    # --- stateless --------------------------------------------------------------------------

    def embed(self, image: ImageLike) -> Embedding:
        """Run the encoder on one image.

        Args:
            image: HxWx3 uint8 RGB array or PIL image, any size.

        Returns:
            Its :class:`Embedding`: features [1, 256, 64, 64], [1, 32, 256, 256],
            [1, 64, 128, 128] and the original (H, W).
        """
        return self.embed_batch([image])[0]

    def embed_batch(self, images: Sequence[ImageLike]) -> list[Embedding]:
        """One encoder call for B images (the graph's dynamic batch axis; one call per image in a
        static-shape folder).

        Args:
            images: a non-empty list of HxWx3 uint8 RGB arrays or PIL images (sizes may differ).

        Returns:
            One :class:`Embedding` per image, in order.
        """
        if not isinstance(images, (list, tuple)) or not images:
            raise InputError("images must be a non-empty list of images")
        rgb = [as_rgb(im) for im in images]
        outs = self.encode_tensor(np.concatenate([preprocess(im) for im in rgb]))
        return [
            Embedding(
                outs["image_embed"][i : i + 1],
                outs["high_res_feats_0"][i : i + 1],
                outs["high_res_feats_1"][i : i + 1],
                im.shape[:2],
            )
            for i, im in enumerate(rgb)
        ]

    def encode_tensor(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder graph on an already preprocessed tensor.

        Args:
            x: float32 [B, 3, 1024, 1024], as ``runtime.transforms.preprocess`` makes it.

        Returns:
            ``{"high_res_feats_0": [B, 32, 256, 256], "high_res_feats_1": [B, 64, 128, 128],
            "image_embed": [B, 256, 64, 64]}``.
        """
        p = self.profile
        name = p.encoder_inputs[0].name
        step = 1 if p.static else len(x)  # a static-shape encoder takes one image per call
        outs = [self.sessions.encoder.run(None, {name: x[i : i + step]}) for i in range(0, len(x), step)]
        return by_role(p.encoder_outputs, join_calls(outs, len(x)))

    def decode(
        self,
        embedding: Embedding,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        box: ArrayLike | None = None,
        mask_input: ArrayLike | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> Prediction:
        """Masks for one image's prompts, as ``SAM2ImagePredictor.predict``.

        Args:
            embedding: from :meth:`embed`.
            point_coords: [N, 2] or [B, N, 2] x, y in the original image's pixels.
            point_labels: [N] or [B, N]: 1 foreground, 0 background.
            box: [4] or [B, 4] XYXY pixels; two corner points labelled 2 and 3 in the graph.
            mask_input: [1, 256, 256] or [B, 1, 256, 256] low-res logits of an earlier call.
            multimask_output: three masks per prompt, else SAM 2's single stability-chosen one.
            return_logits: masks as float32 logits instead of 0/1.
            normalize_coords: True (the official default): coordinates are original-image
                pixels; False: they are already relative, in [0, 1].

        Returns:
            ``(masks, scores, low_res_logits)``: [C, H, W], [C], [C, 256, 256] for one prompt,
            [B, C, H, W], [B, C], [B, C, 256, 256] for B prompts (C = 3, or 1 without
            multimask). Masks are float32 0/1 (or logits), low-res logits clamped to +-32, as
            the official ones. A profile whose graph thresholds its masks (onnxruntime) has no
            logits to return; one without multimask (cvat, onnxruntime) serves
            ``multimask_output=False`` only: both raise InputError otherwise.
        """
        if self.profile.masks != "low_res_logits":
            return self._decode_in_graph(
                embedding,
                point_coords,
                point_labels,
                box,
                mask_input,
                multimask_output,
                return_logits,
                normalize_coords,
            )
        low_res, scores = self.decode_logits(
            embedding, point_coords, point_labels, box, mask_input, multimask_output, normalize_coords
        )
        masks = upsample_masks(low_res, embedding.orig_hw)  # from the unclamped logits
        low_res = np.clip(low_res, -C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)
        if not return_logits:
            masks = (masks > self.mask_threshold).astype(np.float32)
        if len(low_res) == 1:  # the official predictor squeezes a batch of one
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return masks, scores, low_res

    def decode_logits(
        self,
        embedding: Embedding,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        box: ArrayLike | None = None,
        mask_input: ArrayLike | None = None,
        multimask_output: bool = True,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The decoder graph alone, without upsampling: what the automatic mask generator
        filters on before it upsamples the masks it keeps.

        Args:
            embedding, point_coords, point_labels, box, mask_input, multimask_output,
            normalize_coords: as :meth:`decode`.

        Returns:
            ``(low_res_logits, scores)``: unclamped [L, C, 256, 256] float32 and [L, C] for L
            prompts (C = 3, or 1 without multimask).
        """
        if self.profile.masks != "low_res_logits":
            raise InputError(
                f"the {self.profile.name} profile's decoder returns masks at the original size and clamped "
                "low-res logits; unclamped low-res logits (the automatic mask generator's) need a "
                f"folder exported with --profile {C.DEFAULT_PROFILE}"
            )
        out = self._run_decoder(embedding, point_coords, point_labels, box, mask_input, normalize_coords)
        if multimask_output:
            return out["masks"], out["iou_predictions"]
        # SAM 2's stability-based single mask, chosen in the graph
        return out["single_masks"], out["single_iou_predictions"]

    def _run_decoder(self, embedding, point_coords, point_labels, box, mask_input, normalize_coords) -> dict:
        """The decoder graph on the prompts, in the folder's profile; outputs keyed by role."""
        prompts = prepare_prompts(point_coords, point_labels, box, mask_input, embedding.orig_hw, normalize_coords)
        feeds = embedding.feeds() | prompts.feeds()
        calls = static_calls(self.profile, feeds)  # one call, unless the folder has static shapes
        outs = [self.sessions.decoder.run(None, decoder_feeds(self.profile, f, embedding.orig_hw)) for f in calls]
        return by_role(self.profile.decoder_outputs, join_calls(outs, len(feeds["point_labels"])))

    def _decode_in_graph(
        self, embedding, point_coords, point_labels, box, mask_input, multimask_output, return_logits, normalize_coords
    ) -> Prediction:
        """:meth:`decode` for profiles whose graph upsamples (and maybe thresholds) the masks."""
        p = self.profile
        if multimask_output and not p.multimask:
            raise InputError(
                f"the {p.name} profile's decoder returns one mask per prompt (SAM 2's multimask_output=False); "
                f"pass multimask_output=False, or export with --profile {C.DEFAULT_PROFILE} for three"
            )
        if return_logits and p.masks == "original_bool":
            raise InputError(f"the {p.name} profile's decoder thresholds its masks in the graph: no logits to return")
        out = self._run_decoder(embedding, point_coords, point_labels, box, mask_input, normalize_coords)
        masks, scores, low_res = out[C.MASKS_AT_ORIGINAL], out["single_iou_predictions"], out[C.LOW_RES_CLAMPED]
        if p.masks == "original_bool":
            masks = masks.astype(np.float32)
        elif not return_logits:
            masks = (masks > self.mask_threshold).astype(np.float32)
        if len(low_res) == 1:  # the official predictor squeezes a batch of one
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return masks, scores, low_res

    # --- stateful, as SAM2ImagePredictor ----------------------------------------------------

    def reset_predictor(self) -> None:
        """Forget the set image(s), as the official predictor."""
        self._embeddings: list[Embedding] = []
        self._is_batch = False

    def set_image(self, image: ImageLike) -> None:
        """Embed ``image`` (HxWx3 uint8 RGB or PIL) for the following :meth:`predict` calls."""
        self.reset_predictor()
        self._embeddings = [self.embed(image)]

    def set_image_batch(self, image_list: Sequence[ImageLike]) -> None:
        """Embed several images in one encoder call for :meth:`predict_batch`."""
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

    def predict(
        self,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        box: ArrayLike | None = None,
        mask_input: ArrayLike | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> Prediction:
        """As ``SAM2ImagePredictor.predict``, on the last set image.

        Args:
            point_coords, point_labels, box, mask_input, multimask_output, return_logits,
            normalize_coords: as :meth:`decode`.

        Returns:
            ``(masks, scores, low_res_logits)`` with the shapes :meth:`decode` gives.
        """
        self._require_image("set_image")
        return self.decode(
            self._embeddings[-1],
            point_coords,
            point_labels,
            box,
            mask_input,
            multimask_output,
            return_logits,
            normalize_coords,
        )

    def predict_batch(
        self,
        point_coords_batch: Sequence | None = None,
        point_labels_batch: Sequence | None = None,
        box_batch: Sequence | None = None,
        mask_input_batch: Sequence | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """As ``SAM2ImagePredictor.predict_batch``, on the images of :meth:`set_image_batch`.

        Args:
            point_coords_batch, point_labels_batch, box_batch, mask_input_batch: one entry per
                image (or None), each as :meth:`decode` takes it.
            multimask_output, return_logits, normalize_coords: as :meth:`decode`.

        Returns:
            ``(masks, scores, low_res_logits)``: lists with one array per image, shaped as
            :meth:`decode` returns them.
        """
        self._require_image("set_image_batch")
        if not self._is_batch:
            raise NotReadyError("predict_batch needs images set with set_image_batch(...)")
        n = len(self._embeddings)
        per_image = []
        for name, value in (
            ("point_coords_batch", point_coords_batch),
            ("point_labels_batch", point_labels_batch),
            ("box_batch", box_batch),
            ("mask_input_batch", mask_input_batch),
        ):
            if value is not None and len(value) != n:
                raise InputError(f"{name} has {len(value)} entries for {n} images")
            per_image.append(value if value is not None else [None] * n)
        results = [
            self.decode(e, *(v[i] for v in per_image), multimask_output, return_logits, normalize_coords)
            for i, e in enumerate(self._embeddings)
        ]
        return tuple(list(r) for r in zip(*results))
