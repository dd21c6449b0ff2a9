"""Real inputs for checking exported SAM 1 graphs: the bundled photo as ``SamPredictor`` prepares
it, and prompts of every label kind in the ``SamOnnxModel`` contract (core/contract.py SAM1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import contract as C
from ..runtime.inputs import read_image
from ..runtime.sam1_transforms import preprocess
from .equivalence import Feeds, Outputs, cpu_session, run_graph


def sam1_encoder_feed(photo: Path) -> tuple[Feeds, tuple[int, int]]:
    """``photo`` as SamPredictor prepares it (the runtime's numpy copy of its transforms, equal to
    them: tests/test_sam1_transforms.py): ({"input_image": [1, 3, 1024, 1024]}, original (H, W))."""
    image = read_image(photo)
    return {"input_image": preprocess(image)[0]}, image.shape[:2]


def sam1_decoder_feeds(embeddings: np.ndarray, orig_hw: tuple[int, int], first_low_res=None) -> Feeds:
    """Prompts on one image's embeddings, covering labels 1, 0, 2, 3 and -1.

    Without ``first_low_res``: one click and the padding point SamPredictor appends (L=1, N=2).
    With it ([1, 4, 256, 256], the first call's ``low_res_masks``): three prompts of three
    points (two boxes, one with a background point) refining with its best mask.
    """
    scale = C.IMAGE_SIZE / max(orig_hw)
    if first_low_res is None:
        coords, labels = [[[225.0 * scale, 150.0 * scale], [0.0, 0.0]]], [[C.LABEL_FG, C.LABEL_PAD]]
        mask, has = np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE)), 0.0
    else:
        coords = scale * np.array(
            [[[80, 60], [400, 280], [0, 0]], [[80, 60], [400, 280], [300, 70]], [[225, 150], [60, 250], [0, 0]]]
        )
        labels = [
            [C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_PAD],
            [C.LABEL_BOX_TL, C.LABEL_BOX_BR, C.LABEL_BG],
            [C.LABEL_FG, C.LABEL_BG, C.LABEL_PAD],
        ]
        mask, has = first_low_res[:, :1], 1.0
    return {
        "image_embeddings": embeddings,
        "point_coords": np.asarray(coords, np.float32),
        "point_labels": np.asarray(labels, np.float32),
        "mask_input": np.asarray(mask, np.float32),
        "has_mask_input": np.array([has], np.float32),
        C.ORIG_SIZE: np.asarray(orig_hw, np.float32),
    }


def sam1_reference_runs(encoder: Path, decoder: Path, photo: Path) -> dict[str, tuple[list[Feeds], list[Outputs]]]:
    """``{role: (feeds, outputs)}`` of the two SAM 1 graph files on ``photo`` and the prompts above."""
    enc_feed, orig_hw = sam1_encoder_feed(photo)
    enc_outs = run_graph(encoder, [enc_feed])
    dec = cpu_session(decoder)
    names = [o.name for o in dec.get_outputs()]
    first = sam1_decoder_feeds(enc_outs[0]["image_embeddings"], orig_hw)
    first_out = dict(zip(names, dec.run(None, first)))
    second = sam1_decoder_feeds(enc_outs[0]["image_embeddings"], orig_hw, first_out["low_res_masks"])
    second_out = dict(zip(names, dec.run(None, second)))
    return {"encoder": ([enc_feed], enc_outs), "decoder": ([first, second], [first_out, second_out])}
