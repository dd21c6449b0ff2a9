"""The I/O contract of SAM 2's video graphs, declared once: what SAM2VideoPredictor runs per frame.

The image encoder is shared with the image contract (``contract.py``, unchanged): its
``image_embed`` is the lowest-resolution features plus ``no_mem_embed``, which is what the
predictor uses on a frame that starts an object; the memory graphs take it and remove
``no_mem_embed`` themselves (the raw features, to float32 rounding). Input-independent tensors
(the sine positional encodings of the current frame and of the memories) are constants inside
the graphs. Everything is one object per call (batch 1), as SAM2VideoPredictor tracks each
object on its own slice.

Symbolic dims: ``T`` spatial memories (conditioning frames plus recent frames), ``P`` object
pointers, ``N`` points of a prompt. Standard library only, like ``contract.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import ENCODER_FILE, IMAGE_SIZE, LOW_RES_SIZE, TensorSpec

EMBED = (1, 256, 64, 64)  # image_embed / pix_feat: [1, C=hidden_dim, 64, 64]
MEM_DIM = 64  # memory encoder channels (mem_dim) of every SAM 2 / 2.1 size
MEMORY = ("T", MEM_DIM, 64, 64)
HIDDEN = 256  # hidden_dim: object pointers and the decoder's tokens
TOKENS = 4  # mask tokens: 0 (single mask), 1..3 (multimask)

MEMORY_ATTENTION_FILE = "memory_attention.onnx"
MEMORY_ENCODER_FILE = "memory_encoder.onnx"
VIDEO_DECODER_FILE = "video_decoder.onnx"
MASK_PROMPT_FILE = "mask_prompt.onnx"

_IMAGE_EMBED = TensorSpec("image_embed", "float32", EMBED, "the frame's encoder output (features + no_mem_embed)")
_HIGH_RES = (
    TensorSpec("high_res_feats_0", "float32", (1, 32, 256, 256), "the frame's encoder output"),
    TensorSpec("high_res_feats_1", "float32", (1, 64, 128, 128), "the frame's encoder output"),
)

MEMORY_ATTENTION_INPUTS = (
    _IMAGE_EMBED,
    TensorSpec(
        "maskmem_features", "float32", MEMORY, "memories of T frames (memory_encoder outputs, bfloat16-rounded)"
    ),
    TensorSpec(
        "maskmem_t_pos",
        "int64",
        ("T",),
        "each memory's temporal slot t_pos: 0 for conditioning frames, num_maskmem - k for k frames away",
    ),
    TensorSpec("obj_ptrs", "float32", ("P", HIDDEN), "object pointers of P frames (video_decoder obj_ptrs)"),
    TensorSpec(
        "obj_ptr_tpos",
        "float32",
        ("P",),
        "each pointer's temporal offset divided by (min(frames, max_obj_ptrs_in_encoder) - 1)",
    ),
)
MEMORY_ATTENTION_OUTPUTS = (TensorSpec("pix_feat", "float32", EMBED, "the frame's features conditioned on memory"),)

MEMORY_ENCODER_INPUTS = (
    _IMAGE_EMBED,
    TensorSpec("mask_logits", "float32", (1, 1, LOW_RES_SIZE, LOW_RES_SIZE), "the frame's chosen low-res mask logits"),
    TensorSpec("object_score_logits", "float32", (1, 1), "the frame's object score (video_decoder output)"),
    TensorSpec("binarize", "float32", (1,), "1: encode (mask > 0), as for a frame with clicks; 0: its sigmoid"),
)
MEMORY_ENCODER_OUTPUTS = (
    TensorSpec(
        "maskmem_features", "float32", (1, MEM_DIM, 64, 64), "the frame's memory (the bank rounds it to bfloat16)"
    ),
)

VIDEO_DECODER_INPUTS = (
    TensorSpec("pix_feat", "float32", EMBED, "image_embed on a frame that starts an object, else memory_attention's"),
    *_HIGH_RES,
    TensorSpec("point_coords", "float32", (1, "N", 2), "x,y in the 1024x1024 frame; one (0,0) label -1 if none"),
    TensorSpec("point_labels", "float32", (1, "N"), "1 fg, 0 bg, 2 box top-left, 3 box bottom-right, -1 padding"),
    TensorSpec("mask_input", "float32", (1, 1, LOW_RES_SIZE, LOW_RES_SIZE), "previous low-res logits (clamped +-32)"),
    TensorSpec("has_mask_input", "float32", (1,), "1 if mask_input is used, else 0"),
)
VIDEO_DECODER_OUTPUTS = (
    TensorSpec(
        "masks",
        "float32",
        (1, TOKENS, LOW_RES_SIZE, LOW_RES_SIZE),
        "low-res logits of tokens 0..3, -1024 everywhere when the object score is <= 0",
    ),
    TensorSpec("iou_predictions", "float32", (1, TOKENS), "predicted IoU of tokens 0..3"),
    TensorSpec("obj_ptrs", "float32", (1, TOKENS, HIDDEN), "object pointer of each token (no-object pointer blended)"),
    TensorSpec("object_score_logits", "float32", (1, 1), "> 0: the object is visible in the frame"),
)

MASK_PROMPT_INPUTS = (  # the heads run for the pointer only: the high-res features do not reach it
    _IMAGE_EMBED,
    TensorSpec("mask", "float32", (1, 1, IMAGE_SIZE, IMAGE_SIZE), "the prompt mask at 1024x1024, 0 or 1"),
)
MASK_PROMPT_OUTPUTS = (
    TensorSpec("masks", "float32", (1, 1, LOW_RES_SIZE, LOW_RES_SIZE), "low-res logits: the mask as +-10, downsampled"),
    TensorSpec("obj_ptr", "float32", (1, HIDDEN), "the object pointer of the mask"),
    TensorSpec("object_score_logits", "float32", (1, 1), "10 if the mask has a pixel, else -10"),
)

# role -> (fp32 file, inputs, outputs); the encoder is the image contract's own file
VIDEO_GRAPHS = {
    "memory_attention": (MEMORY_ATTENTION_FILE, MEMORY_ATTENTION_INPUTS, MEMORY_ATTENTION_OUTPUTS),
    "memory_encoder": (MEMORY_ENCODER_FILE, MEMORY_ENCODER_INPUTS, MEMORY_ENCODER_OUTPUTS),
    "video_decoder": (VIDEO_DECODER_FILE, VIDEO_DECODER_INPUTS, VIDEO_DECODER_OUTPUTS),
    "mask_prompt": (MASK_PROMPT_FILE, MASK_PROMPT_INPUTS, MASK_PROMPT_OUTPUTS),
}
SHARED_ENCODER = ENCODER_FILE


@dataclass(frozen=True)
class GraphSet:
    """The video graphs as the export steps read a profile: a name and ``graphs()``."""

    name: str = "video"
    static: None = None
    family: str = "sam2"

    def graphs(self) -> dict:
        return VIDEO_GRAPHS


VIDEO = GraphSet()

# SAM2VideoPredictor's settings the runtime needs, read from the built model at export (never guessed)
SETTINGS = (
    "num_maskmem",
    "max_obj_ptrs_in_encoder",
    "max_cond_frames_in_attn",
    "memory_temporal_stride_for_eval",
    "use_obj_ptrs_in_encoder",
    "add_tpos_enc_to_obj_ptrs",
    "use_signed_tpos_enc_to_obj_ptrs",
    "only_obj_ptrs_in_the_past_for_eval",
    "directly_add_no_mem_embed",
    "multimask_output_in_sam",
    "multimask_output_for_tracking",
    "multimask_min_pt_num",
    "multimask_max_pt_num",
    "use_multimask_token_for_obj_ptr",
    "binarize_mask_from_pts_for_mem_enc",
    "use_mask_input_as_output_without_sam",
    "non_overlap_masks",
    "non_overlap_masks_for_mem_enc",
    "fill_hole_area",
    "clear_non_cond_mem_around_input",
    "add_all_frames_to_correct_as_cond",
    "pred_obj_scores",
    # the mask decoder's (build_sam2_video_predictor sets them): multimask_output=False's rule
    "dynamic_multimask_via_stability",
    "dynamic_multimask_stability_delta",
    "dynamic_multimask_stability_thresh",
)
DECODER_SETTINGS = SETTINGS[-3:]  # read from model.sam_mask_decoder
