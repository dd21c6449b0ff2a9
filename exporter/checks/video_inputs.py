"""Real inputs for checking the video graphs: the sample photo's features, chained through them.

One click on the photo (video_decoder), its mask encoded (memory_encoder) and read back as a
two-frame memory with three object pointers (memory_attention), the tracked frame decoded with
no prompt, and a rectangle as a mask prompt (mask_prompt). Each graph's feeds are what the graphs
before it answered, so a check runs on values like the tracker's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.video_contract import VIDEO_GRAPHS
from .equivalence import Feeds, Outputs, cpu_session


def _run(path: Path, feeds: list[Feeds]) -> list[Outputs]:
    sess = cpu_session(path)
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, f))) for f in feeds]


def video_reference_runs(graphs: dict[str, Path], features: Outputs) -> dict[str, tuple[list[Feeds], list[Outputs]]]:
    """``{role: (feeds, outputs)}`` of the four video graph files (``graphs``: role -> path) on the
    sample photo's encoder outputs (``features``: the image contract's names)."""
    f32 = np.float32
    image = {k: features[k][:1] for k in ("image_embed", "high_res_feats_0", "high_res_feats_1")}
    no_mask = {"mask_input": np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), f32), "has_mask_input": np.zeros(1, f32)}
    click = {
        "pix_feat": image["image_embed"],
        "high_res_feats_0": image["high_res_feats_0"],
        "high_res_feats_1": image["high_res_feats_1"],
        "point_coords": np.array([[[512.0, 400.0], [100.0, 900.0]]], f32),
        "point_labels": np.array([[C.LABEL_FG, C.LABEL_BG]], f32),
        **no_mask,
    }
    (clicked,) = _run(graphs["video_decoder"], [click])
    encode = [
        {
            "image_embed": image["image_embed"],
            "mask_logits": clicked["masks"][:, 1:2],
            "object_score_logits": clicked["object_score_logits"],
            "binarize": np.array([b], f32),
        }
        for b in (1.0, 0.0)
    ]
    encoded = _run(graphs["memory_encoder"], encode)
    memory = np.concatenate([e["maskmem_features"] for e in encoded])
    attend = [
        {
            "image_embed": image["image_embed"],
            "maskmem_features": memory,
            "maskmem_t_pos": np.array([0, 6], np.int64),
            "obj_ptrs": clicked["obj_ptrs"][0, :3],
            "obj_ptr_tpos": np.array([0.0, 1.0, 2.0], f32) / 15,
        }
    ]
    attended = _run(graphs["memory_attention"], attend)
    track = {
        **click,
        "pix_feat": attended[0]["pix_feat"],
        "point_coords": np.zeros((1, 1, 2), f32),
        "point_labels": np.full((1, 1), C.LABEL_PAD, f32),
    }
    refine = {**click, "mask_input": np.clip(clicked["masks"][:, 1:2], -32, 32), "has_mask_input": np.ones(1, f32)}
    decoded = _run(graphs["video_decoder"], [track, refine])
    rectangle = np.zeros((1, 1, C.IMAGE_SIZE, C.IMAGE_SIZE), f32)
    rectangle[..., 300:700, 200:800] = 1.0
    prompt = [{"image_embed": image["image_embed"], "mask": rectangle}]
    prompted = _run(graphs["mask_prompt"], prompt)
    runs = {
        "video_decoder": ([click, track, refine], [clicked, *decoded]),
        "memory_encoder": (encode, encoded),
        "memory_attention": (attend, attended),
        "mask_prompt": (prompt, prompted),
    }
    assert set(runs) == set(VIDEO_GRAPHS)
    return runs
