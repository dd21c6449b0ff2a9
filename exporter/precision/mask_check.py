"""INT8 candidates held to the parity gate on the export's own photos: masks against FP32.

A relative-L2 tolerance on the encoder outputs does not tell an INT8 graph that will pass
parity from one that will not: tiny's encoder with 7-bit weights measured 0.024 against a
0.025 tolerance, then missed the parity gate on one photo (mask IoU 0.942 < 0.97). So every
INT8 candidate is also decoded, as parity does, and held to the variant's parity gate
``parity.int8.mask_iou_min``: on each check photo (the calibration photos, at most
``MAX_PHOTOS``), five clicks spread over the frame and, for each, a refinement of boxes,
clicks and padding (labels 1, 0, 2, 3, -1) fed with the reference's own first masks (SAM 1:
SamPredictor's prompts, see ``_sam1_prompts``); the IoU of every low-res mask (256x256, logits > 0) of the candidate pair against the FP32 pair, over
the pixels the FP32 logits decide (``parity.int8.iou_band``, as parity measures it), and the
largest low-res logits error against half the parity gate ``parity.int8.logits_max_abs`` (the
room the parity photos, which export does not see, may need).
numpy + onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks.equivalence import cpu_session, decided_iou
from ..checks.sample_inputs import decoder_feed
from ..core import contract as C
from ..runtime.sam1_transforms import preprocess_shape
from .calibration import encoder_feed

MAX_PHOTOS = 8
CLICKS = ((256, 256), (512, 512), (768, 300), (300, 768), (512, 900))  # (x, y) in the 1024 frame


def _outputs(session, feed: dict) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


def _sam2_prompts(session, features: dict, hw) -> list[dict]:
    """Each click alone (L=1, N=1), then with boxes, clicks and padding refining its masks."""
    prompts = []
    for x, y in CLICKS:
        click = decoder_feed(features)
        click["point_coords"] = np.array([[[x, y]]], np.float32)
        prompts += [click, decoder_feed(features, _outputs(session, click)["masks"])]
    return prompts


def _sam1_prompts(session, features: dict, hw) -> list[dict]:
    """SamPredictor's prompts in the resized frame: each click with its padding point (labels
    1, -1), then a background point and a box (0, 2, 3) refining the click's first mask."""
    input_h, input_w = preprocess_shape(hw)
    prompts = []
    for i, (x, y) in enumerate(CLICKS):
        px, py = x * input_w / C.IMAGE_SIZE, y * input_h / C.IMAGE_SIZE
        bx, by = (v * s / C.IMAGE_SIZE for v, s in zip(CLICKS[(i + 1) % len(CLICKS)], (input_w, input_h)))
        base = {
            "image_embeddings": features["image_embeddings"],
            "mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
            C.ORIG_SIZE: np.asarray(hw, np.float32),
        }
        click = base | {
            "point_coords": np.array([[[px, py], [0, 0]]], np.float32),
            "point_labels": np.array([[C.LABEL_FG, C.LABEL_PAD]], np.float32),
        }
        box = [[max(px - 150, 0), max(py - 150, 0)], [min(px + 150, input_w), min(py + 150, input_h)]]
        refine = base | {
            "point_coords": np.array([[[bx, by], *box]], np.float32),
            "point_labels": np.array([[C.LABEL_BG, C.LABEL_BOX_TL, C.LABEL_BOX_BR]], np.float32),
            "mask_input": _outputs(session, click)["low_res_masks"][:, :1],
            "has_mask_input": np.ones(1, np.float32),
        }
        prompts += [click, refine]
    return prompts


class MaskCheck:
    """``check(encoder=..., decoder=...)`` compares that graph pair's masks with the FP32 pair's.

    The FP32 features and masks are computed once, here; each call runs only the candidate.
    ``profile`` says how the graphs are fed (SAM 2's or SAM 1's contract) and which output holds
    the low-res logits ([L, C, 256, 256]: ``masks``, or SAM 1's ``low_res_masks``).
    """

    def __init__(
        self,
        encoder: Path,
        decoder: Path,
        images: dict[str, np.ndarray],
        gate: float,
        band: float = 0.0,
        logits_limit: float | None = None,
        profile: C.Profile = C.SAMEXPORTER,
    ):
        self.fp32 = {"encoder": Path(encoder), "decoder": Path(decoder)}
        self.gate, self.band, self.logits_limit = gate, band, logits_limit
        sam1 = profile.family == "sam1"
        self.feature_keys = tuple(s.name for s in profile.encoder_outputs)
        self.low_res = "low_res_masks" if sam1 else "masks"
        names = sorted(images)[:MAX_PHOTOS]
        self.feeds = {name: encoder_feed(images[name], profile) for name in names}
        self.features = self._encode(self.fp32["encoder"])
        session, make = cpu_session(self.fp32["decoder"]), _sam1_prompts if sam1 else _sam2_prompts
        self.prompts = {  # prompt feeds without the features
            name: [
                {k: v for k, v in p.items() if k not in self.feature_keys}
                for p in make(session, self.features[name], images[name].shape[:2])
            ]
            for name in names
        }
        self.masks = self._decode(self.fp32["decoder"], self.features)

    def _encode(self, path: Path) -> dict[str, dict]:
        session = cpu_session(path)
        return {name: _outputs(session, feed) for name, feed in self.feeds.items()}

    def _decode(self, path: Path, features: dict[str, dict]) -> dict[str, list[np.ndarray]]:
        session = cpu_session(path)
        return {
            name: [
                _outputs(session, {**{k: features[name][k][:1] for k in self.feature_keys}, **p})[self.low_res]
                for p in self.prompts[name]
            ]
            for name in features
        }

    def __call__(self, encoder: Path | None = None, decoder: Path | None = None) -> dict:
        """``{"ok", "gate", "iou_min", "iou_median", "per_photo": {name: IoU min}, "failures"}``."""
        features = self.features if encoder is None else self._encode(Path(encoder))
        masks = self._decode(Path(decoder) if decoder is not None else self.fp32["decoder"], features)
        per_photo, ious, logits = {}, [], 0.0
        for name, mine in masks.items():
            values = [
                decided_iou(a, b, self.band)
                for ref, got in zip(self.masks[name], mine)
                for a, b in zip(ref.reshape(-1, *ref.shape[-2:]), got.reshape(-1, *got.shape[-2:]))
            ]
            per_photo[name] = min(values)
            ious += values
            logits = max([logits] + [float(np.abs(ref - got).max()) for ref, got in zip(self.masks[name], mine)])
        failures = [
            f"mask IoU {v:.4f} < {self.gate:g} on {name} (the parity gate, low-res masks vs FP32)"
            for name, v in per_photo.items()
            if v < self.gate
        ]
        if self.logits_limit is not None and logits > self.logits_limit:
            failures.append(f"low-res logits max abs error {logits:.3g} > {self.logits_limit:g} (half the parity gate)")
        return {
            "ok": not failures,
            "gate": self.gate,
            "band": self.band,
            "iou_min": min(ious),
            "iou_median": float(np.median(ious)),
            "logits_max_abs": logits,
            "logits_limit": self.logits_limit,
            "per_photo": per_photo,
            "failures": failures,
        }
