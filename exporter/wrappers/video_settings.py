"""The video predictor's settings, read from the built official model (never assumed).

The runtime's memory-bank rules read these from the manifest; the graphs read the rest of the
configuration (sigmoid scale, no_obj_embed_spatial, obj_ptr_tpos_proj, ...) from the modules.
"""

from __future__ import annotations

from torch import nn

from ..core.video_contract import DECODER_SETTINGS, SETTINGS


class UnsupportedVideoModel(ValueError):
    """The model's configuration is one the video graphs do not implement."""


def video_settings(model: nn.Module) -> dict:
    """{setting: value} for every name of video_contract.SETTINGS. ``model``: a SAM2VideoPredictor
    (the predictor-level options fill_hole_area, non_overlap_masks, ... exist only there).

    UnsupportedVideoModel for a configuration no released SAM 2 / 2.1 model has."""
    owners = {name: model.sam_mask_decoder if name in DECODER_SETTINGS else model for name in SETTINGS}
    missing = [name for name, owner in owners.items() if not hasattr(owner, name)]
    if missing:
        raise UnsupportedVideoModel(f"not a SAM2VideoPredictor: it lacks {', '.join(missing)}")
    values = {name: getattr(owner, name) for name, owner in owners.items()}
    values = {k: (v if isinstance(v, (bool, float)) else int(v)) for k, v in values.items()}
    needed = {
        "use_obj_ptrs_in_encoder": True,
        "directly_add_no_mem_embed": True,
        "use_mask_input_as_output_without_sam": True,
        "pred_obj_scores": True,
    }
    wrong = [f"{k}={values[k]}" for k, v in needed.items() if values[k] != v]
    if model.num_maskmem < 1 or not model.use_high_res_features_in_sam:
        wrong.append(
            f"num_maskmem={model.num_maskmem}, use_high_res_features_in_sam={model.use_high_res_features_in_sam}"
        )
    if wrong:
        raise UnsupportedVideoModel(
            f"video graphs need the SAM 2 / 2.1 configuration; this model has {'; '.join(wrong)}"
        )
    return values
