"""Real inputs for checking exported graphs: a bundled photo and prompts of every label kind.

Export verifies a simplified graph against the traced one on these (see onnx_steps.py).
The photo is scikit-image's "chelsea" (CC0, Stefan van der Walt), bundled so that export
needs no test dependencies.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..runtime.profiles import by_role, decoder_feeds, static_calls
from .equivalence import Feeds, Outputs, cpu_session, run_graph

SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "data" / "chelsea.jpg"


def encoder_feed() -> Feeds:
    """The bundled photo, preprocessed by sam2's own SAM2Transforms: image [1, 3, 1024, 1024]."""
    from PIL import Image
    from sam2.utils.transforms import SAM2Transforms

    image = np.array(Image.open(SAMPLE_PHOTO).convert("RGB"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sam2 scripts its transforms with torch.jit
        transforms = SAM2Transforms(resolution=C.IMAGE_SIZE, mask_threshold=C.MASK_THRESHOLD)
    return {"image": transforms(image)[None].numpy()}


def decoder_feed(features: Outputs, first_masks: np.ndarray | None = None) -> Feeds:
    """Prompts on one image's encoder outputs, covering labels 1, 0, 2, 3 and -1.

    Without ``first_masks``: one foreground click (L=1, N=1). With it ([1, 3, 256, 256], the
    first feed's ``masks``): four prompts of three points (L=4, N=3), two of them refining
    with its first mask as ``mask_input``.
    """
    feed = {s.name: features[s.name][:1] for s in C.DECODER_INPUTS[:3]}
    if first_masks is None:
        coords, labels = np.array([[[512.0, 400.0]]]), np.array([[C.LABEL_FG]])
        mask_input, has = np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE)), np.zeros(1)
    else:
        coords = np.array(
            [
                [[512, 400], [100, 900], [0, 0]],
                [[250, 90], [850, 980], [0, 0]],
                [[250, 90], [850, 980], [60, 1000]],
                [[512, 400], [700, 300], [1023, 1023]],
            ],
            dtype=np.float64,
        )
        labels = np.array(
            [
                [C.LABEL_FG, C.LABEL_BG, C.LABEL_PAD],
                [C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_PAD],
                [C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_BG],
                [C.LABEL_FG, C.LABEL_FG, C.LABEL_BG],
            ]
        )
        mask_input = np.repeat(first_masks[:, :1], 4, axis=0)
        has = np.array([0.0, 1.0, 0.0, 1.0])
    return feed | {
        "point_coords": coords.astype(np.float32),
        "point_labels": labels.astype(np.float32),
        "mask_input": mask_input.astype(np.float32),
        "has_mask_input": has.astype(np.float32),
    }


def reference_runs(
    encoder: Path, decoder: Path, profile: C.Profile = C.SAMEXPORTER
) -> dict[str, tuple[list[Feeds], list[Outputs]]]:
    """``{role: (feeds, outputs)}`` of the two graph files on the sample photo and prompts, fed
    and named as ``profile`` declares them (in calls of its static shapes, if it has them)."""
    from PIL import Image

    if profile.family == "sam1":
        from .sam1_inputs import sam1_reference_runs

        return sam1_reference_runs(encoder, decoder, SAMPLE_PHOTO)

    with Image.open(SAMPLE_PHOTO) as im:
        orig_hw = (im.height, im.width)
    enc_feeds = [{profile.encoder_inputs[0].name: encoder_feed()["image"]}]
    enc_outs = run_graph(encoder, enc_feeds)
    features = by_role(profile.encoder_outputs, list(enc_outs[0].values()))
    dec = cpu_session(decoder)
    names = [o.name for o in dec.get_outputs()]

    def run(feed: Feeds) -> tuple[list[Feeds], list[Outputs]]:  # static shapes: several calls
        calls = [decoder_feeds(profile, f, orig_hw) for f in static_calls(profile, feed, truncate=True)]
        return calls, [dict(zip(names, dec.run(None, c))) for c in calls]

    first, first_out = run(decoder_feed(features))
    low_res = by_role(profile.decoder_outputs, list(first_out[0].values()))
    first_masks = low_res.get("masks", low_res.get(C.LOW_RES_CLAMPED))[:1]
    second, second_out = run(decoder_feed(features, first_masks))
    return {"encoder": (enc_feeds, enc_outs), "decoder": (first + second, first_out + second_out)}
