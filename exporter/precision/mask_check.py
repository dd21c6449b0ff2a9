"""INT8 candidates held to the parity gate on the export's own photos: masks against FP32.

A relative-L2 tolerance on the encoder outputs does not tell an INT8 graph that will pass
parity from one that will not: tiny's encoder with 7-bit weights measured 0.024 against a
0.025 tolerance, then missed the parity gate on one photo (mask IoU 0.942 < 0.97). So every
INT8 candidate is also decoded, as parity does, and held to the variant's parity gate
``parity.int8.mask_iou_min``: on each check photo (the calibration photos, at most
``MAX_PHOTOS``), five clicks spread over the frame and, for each, a refinement of boxes,
clicks and padding (labels 1, 0, 2, 3, -1) fed with the reference's own first masks; the IoU
of every low-res mask (256x256, logits > 0) of the candidate pair against the FP32 pair, over
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
from ..runtime.transforms import preprocess

MAX_PHOTOS = 8
CLICKS = ((256, 256), (512, 512), (768, 300), (300, 768), (512, 900))  # (x, y) in the 1024 frame


def _outputs(session, feed: dict) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


class MaskCheck:
    """``check(encoder=..., decoder=...)`` compares that graph pair's masks with the FP32 pair's.

    The FP32 features and masks are computed once, here; each call runs only the candidate.
    """

    def __init__(
        self,
        encoder: Path,
        decoder: Path,
        images: dict[str, np.ndarray],
        gate: float,
        band: float = 0.0,
        logits_limit: float | None = None,
    ):
        self.fp32 = {"encoder": Path(encoder), "decoder": Path(decoder)}
        self.gate, self.band, self.logits_limit = gate, band, logits_limit
        names = sorted(images)[:MAX_PHOTOS]
        self.feeds = {name: {"image": preprocess(images[name])} for name in names}
        self.features = self._encode(self.fp32["encoder"])
        self.prompts = {name: self._prompts(f) for name, f in self.features.items()}
        self.masks = self._decode(self.fp32["decoder"], self.features)

    def _encode(self, path: Path) -> dict[str, dict]:
        session = cpu_session(path)
        return {name: _outputs(session, feed) for name, feed in self.feeds.items()}

    def _prompts(self, features: dict) -> list[dict]:
        """Prompt feeds without the features: clicks, then refinements on the FP32 masks."""
        session, prompts = cpu_session(self.fp32["decoder"]), []
        for x, y in CLICKS:
            click = decoder_feed(features)
            click["point_coords"] = np.array([[[x, y]]], np.float32)
            first = _outputs(session, click)["masks"]
            prompts += [click, decoder_feed(features, first)]
        keys = ("high_res_feats_0", "high_res_feats_1", "image_embed")
        return [{k: v for k, v in p.items() if k not in keys} for p in prompts]

    def _decode(self, path: Path, features: dict[str, dict]) -> dict[str, list[np.ndarray]]:
        session = cpu_session(path)
        keys = ("high_res_feats_0", "high_res_feats_1", "image_embed")
        return {
            name: [
                _outputs(session, {**{k: features[name][k][:1] for k in keys}, **p})["masks"]
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
