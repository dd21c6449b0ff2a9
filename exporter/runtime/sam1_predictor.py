"""SAM1OnnxPredictor: SAM 1's SamPredictor API on ONNX Runtime, numpy in and out, no torch.

The graphs follow segment_anything's own ONNX contract (core/contract.py SAM1): the encoder
takes the padded, normalised image ``SamPredictor.set_image`` builds (runtime/sam1_transforms.py)
and the decoder, ``SamOnnxModel``, returns every token's mask at the original size; the
predictor builds the prompts as SamPredictor does (a (0, 0) padding point with label -1 unless
there is a box; box corners labelled 2 and 3 after the points) and picks tokens 1..3
(``multimask_output=True``) or token 0, as SamPredictor does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.errors import InputError, NotReadyError
from .inputs import as_rgb
from .sam1_transforms import preprocess, transform_boxes, transform_coords
from .sessions import load_sessions

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # masks, scores, low-res logits


@dataclass(frozen=True)
class Sam1Embedding:
    """One image's encoder output and the sizes SamPredictor keeps beside it."""

    image_embeddings: np.ndarray  # [1, 256, 64, 64] float32
    orig_hw: tuple[int, int]  # original (height, width)
    input_hw: tuple[int, int]  # (height, width) after resizing the longest side to 1024


class SAM1OnnxPredictor:
    """Prompted segmentation with exported SAM 1 graphs (``sam2-onnx export sam_vit_b``).

    Args:
        model_dir: a folder written by ``sam2-onnx export`` for a SAM 1 variant; its files are
            checked against the manifest's sha256 before loading.
        precision, providers, threads, optimization: as :class:`SAM2OnnxPredictor`.
        mask_threshold: logit above which a pixel is in the mask (SAM 1's 0.0).
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
        if self.profile.family != "sam1":
            raise InputError(f"{model_dir}: holds SAM 2 graphs ({self.profile.name} profile); use SAM2OnnxPredictor")
        self.model_dir = Path(model_dir)
        self.mask_threshold = mask_threshold
        self.reset_image()

    @property
    def manifest(self) -> dict:
        return self.sessions.manifest

    @property
    def profile(self) -> C.Profile:
        return self.sessions.profile

    # --- stateless --------------------------------------------------------------------------

    def embed(self, image) -> Sam1Embedding:
        """The encoder on one HxWx3 uint8 RGB array or PIL image of any size."""
        rgb = as_rgb(image)
        x, input_hw = preprocess(rgb)
        return Sam1Embedding(self.encode_tensor(x)["image_embeddings"], rgb.shape[:2], input_hw)

    def encode_tensor(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder graph on ``input_image`` [1, 3, 1024, 1024] -> {"image_embeddings": [1, 256, 64, 64]}."""
        (out,) = self.sessions.encoder.run(None, {self.profile.encoder_inputs[0].name: x})
        return {"image_embeddings": out}

    def decode(
        self,
        embedding: Sam1Embedding,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> Prediction:
        """Masks for one image's prompt(s), as ``SamPredictor.predict``.

        Args:
            embedding: from :meth:`embed`.
            point_coords: [N, 2] x, y in original pixels, or [B, N, 2] for B prompts at once.
            point_labels: [N] (or [B, N]): 1 foreground, 0 background, -1 ignored.
            box: [4] (or [B, 4]) XYXY pixels.
            mask_input: [1, 256, 256] (or [B, 1, 256, 256]) low-res logits of an earlier call.
            multimask_output: tokens 1..3, else token 0 (SamPredictor's two answers); a ``sam1_single``
                folder serves False only, with the mask its graph chose.
            return_logits: float32 logits instead of bool masks.

        Returns:
            ``(masks, scores, low_res_logits)``: [C, H, W] bool (or logits), [C], [C, 256, 256]
            for one prompt; with a leading B for B prompts (C = 3, or 1 without multimask).
        """
        coords, labels, batched = self._prompts(point_coords, point_labels, box, embedding.orig_hw)
        out = self._calls(embedding, coords, labels, self._masks(mask_input, len(coords), batched))
        tokens = self._tokens(multimask_output)
        masks, scores, low_res = (o[:, tokens] for o in out)
        if not return_logits:
            masks = masks > self.mask_threshold
        if not batched:  # SamPredictor.predict returns the one prompt's arrays
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return masks, scores, low_res

    def decode_logits(
        self,
        embedding: Sam1Embedding,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Low-res logits and scores without the original-size masks: what the automatic mask
        generator filters on before it upsamples the masks it keeps.

        Args:
            embedding, point_coords, point_labels, box, mask_input, multimask_output: as :meth:`decode`,
                batched ([L, N, 2] points, ...).

        Returns:
            ``(low_res_logits, scores)``: [L, C, 256, 256] float32 and [L, C] (C = 3, or 1).
        """
        coords, labels, batched = self._prompts(point_coords, point_labels, box, embedding.orig_hw)
        # the graph also upsamples every token's mask to orig_im_size; asking for the resized
        # frame bounds that (unused) output to 1024 px whatever the photo's size
        masks_in = self._masks(mask_input, len(coords), batched)
        _, scores, low_res = self._calls(embedding, coords, labels, masks_in, embedding.input_hw)
        tokens = self._tokens(multimask_output)
        return low_res[:, tokens], scores[:, tokens]

    def _tokens(self, multimask_output: bool) -> slice:
        """Which of the graph's masks a call returns: tokens 1..3 or token 0 of the four; the one
        mask of a ``sam1_single`` decoder, which serves ``multimask_output=False`` only."""
        if not self.profile.multimask:
            if multimask_output:
                raise InputError(
                    f"this folder's decoder was exported with --profile {self.profile.name} (return_single_mask=True): "
                    "one mask per prompt, chosen in the graph; call with multimask_output=False"
                )
            return slice(0, 1)
        return slice(1, None) if multimask_output else slice(0, 1)

    def _calls(self, embedding: Sam1Embedding, coords, labels, masks_in, out_hw=None) -> list[np.ndarray]:
        """Decoder calls for B prompts: [B, N, 2], [B, N], [1 or B, 1, 1, 256, 256] or None ->
        masks, scores, low-res, each [B, 4, ...]."""
        if masks_in is not None and len(masks_in) > 1:  # the graph takes one mask_input per call
            calls = [
                self._run(embedding, coords[i : i + 1], labels[i : i + 1], m, out_hw) for i, m in enumerate(masks_in)
            ]
            return [np.concatenate(parts) for parts in zip(*calls)]
        return self._run(embedding, coords, labels, None if masks_in is None else masks_in[0], out_hw)

    def _run(self, embedding: Sam1Embedding, coords, labels, mask, out_hw=None) -> list[np.ndarray]:
        """One decoder call: [L, N, 2], [L, N], [1, 1, 256, 256] or None -> masks (at ``out_hw``,
        default the original size), scores, low-res."""
        feeds = {
            "image_embeddings": embedding.image_embeddings,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32) if mask is None else mask,
            "has_mask_input": np.array([0.0 if mask is None else 1.0], np.float32),
            C.ORIG_SIZE: np.asarray(out_hw or embedding.orig_hw, np.float32),
        }
        return self.sessions.decoder.run(None, feeds)

    @staticmethod
    def _prompts(point_coords, point_labels, box, orig_hw) -> tuple[np.ndarray, np.ndarray, bool]:
        """SamPredictor's prompt: points (plus its padding point without a box), then box corners,
        in the resized frame: coords [B, N, 2] float32, labels [B, N] float32, whether batched."""
        if point_coords is not None and point_labels is None:
            raise InputError("point_labels must be supplied if point_coords is supplied")
        if point_coords is None and point_labels is not None:
            raise InputError("point_coords must be supplied if point_labels is supplied")
        parts, batches = [], set()
        if point_coords is not None:
            coords, labels = np.asarray(point_coords, np.float64), np.asarray(point_labels, np.float64)
            if coords.ndim not in (2, 3) or coords.shape[-1] != 2 or labels.shape != coords.shape[:-1]:
                raise InputError(
                    f"point_coords must be [N, 2] or [B, N, 2] with point_labels [N] or [B, N]; "
                    f"got {list(coords.shape)} and {list(labels.shape)}"
                )
            batches.add(coords.ndim == 3)
            coords, labels = coords.reshape(-1, coords.shape[-2], 2), labels.reshape(-1, labels.shape[-1])
            parts.append((transform_coords(coords, orig_hw), labels))
        if box is not None:
            boxes = np.asarray(box, np.float64)
            if boxes.ndim not in (1, 2) or boxes.shape[-1] != 4:
                raise InputError(f"box must be [4] or [B, 4] (x0, y0, x1, y1), got {list(boxes.shape)}")
            batches.add(boxes.ndim == 2)
            corners = transform_boxes(boxes.reshape(-1, 4), orig_hw).reshape(-1, 2, 2)
            parts.append((corners, np.tile([C.LABEL_BOX_TL, C.LABEL_BOX_BR], (len(corners), 1))))
        elif parts:  # SAM 1's prompt encoder pads points with one "not a point" without a box
            count = len(parts[0][0])
            parts.append((np.zeros((count, 1, 2)), np.full((count, 1), C.LABEL_PAD)))
        if not parts:
            raise InputError("give point_coords with point_labels, or a box: the SAM 1 decoder needs a prompt")
        sizes = {len(c) for c, _ in parts}
        if len(sizes) > 1:
            raise InputError(f"points and boxes give different numbers of prompts ({sorted(sizes)})")
        coords = np.concatenate([c for c, _ in parts], axis=1).astype(np.float32)
        labels = np.concatenate([lab for _, lab in parts], axis=1).astype(np.float32)
        return coords, labels, True in batches

    @staticmethod
    def _masks(mask_input, count: int, batched: bool) -> np.ndarray | None:
        """mask_input as one graph input per call: [1 or count, 1, 1, 256, 256] float32, or None."""
        if mask_input is None:
            return None
        m = np.asarray(mask_input, np.float32)
        if m.shape[-3:] != (1, C.LOW_RES_SIZE, C.LOW_RES_SIZE) or m.ndim != (4 if batched else 3):
            raise InputError(
                f"mask_input must be [1, 256, 256] (or [B, 1, 256, 256] for B prompts), got {list(m.shape)}"
            )
        m = m.reshape(-1, 1, *m.shape[-3:])
        if len(m) not in (1, count):
            raise InputError(f"mask_input has {len(m)} masks for {count} prompts")
        return m

    # --- stateful, as SamPredictor ----------------------------------------------------------

    def reset_image(self) -> None:
        """Forget the set image, as SamPredictor."""
        self._embedding: Sam1Embedding | None = None

    def set_image(self, image, image_format: str = "RGB") -> None:
        """Embed ``image`` (HxWx3 uint8, ``image_format`` "RGB" or "BGR", or a PIL image)."""
        if image_format not in ("RGB", "BGR"):
            raise InputError(f"image_format must be 'RGB' or 'BGR', not {image_format!r}")
        if image_format == "BGR" and isinstance(image, np.ndarray):
            image = image[..., ::-1]
        self.reset_image()
        self._embedding = self.embed(image)

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def original_size(self) -> tuple[int, int]:
        return self._require().orig_hw

    @property
    def input_size(self) -> tuple[int, int]:
        return self._require().input_hw

    def _require(self) -> Sam1Embedding:
        if self._embedding is None:
            raise NotReadyError("An image must be set with .set_image(...) before mask prediction.")
        return self._embedding

    def get_image_embedding(self) -> np.ndarray:
        """The set image's embeddings: [1, 256, 64, 64]."""
        return self._require().image_embeddings

    def predict(
        self,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> Prediction:
        """As ``SamPredictor.predict`` on the set image; arguments and results as :meth:`decode`."""
        return self.decode(
            self._require(), point_coords, point_labels, box, mask_input, multimask_output, return_logits
        )
