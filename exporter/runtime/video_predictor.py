"""Video object tracking with exported SAM 2 graphs: SAM2VideoPredictor's API and rules, no torch.

    predictor = SAM2OnnxVideoPredictor("artifacts/sam2.1_hiera_tiny")
    state = predictor.init_state("frames/")          # a JPEG folder, a list of images, or an MP4
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...                                          # masks [objects, 1, H, W] float32 logits

Each method follows sam2 1.1's ``SAM2VideoPredictor`` step by step (the same state, the same
order of memories, the same per-object slices), with the graph calls of video_graphs.py in place
of the torch modules; the memory-bank rules are video_memory.py's. The settings come from the
folder's manifest, recorded from the official model at export.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.errors import InputError
from .masks import small_components
from .transforms import upsample_masks
from .video_frames import Frames
from .video_memory import FrameOut, ObjectOutputs, memory_feeds, to_bfloat16
from .video_sessions import VideoSessions, load_video_sessions

NO_OBJ_SCORE = -1024.0  # sam2's logits for "no object here"
HOLE_FILL = 0.1  # the logit sam2 gives filled holes
_F32 = np.float32


@dataclass
class Points:
    """One object's clicks on one frame, in the 1024 frame: coords [1, N, 2], labels [1, N] int32."""

    coords: np.ndarray
    labels: np.ndarray


@dataclass
class VideoState:
    """What ``init_state`` returns (sam2's ``inference_state``), per object index."""

    frames: Frames
    num_frames: int
    video_height: int
    video_width: int
    obj_id_to_idx: OrderedDict = field(default_factory=OrderedDict)
    obj_idx_to_id: OrderedDict = field(default_factory=OrderedDict)
    obj_ids: list = field(default_factory=list)
    point_inputs_per_obj: dict = field(default_factory=dict)  # obj_idx -> {frame: Points}
    mask_inputs_per_obj: dict = field(default_factory=dict)  # obj_idx -> {frame: [1, 1, 1024, 1024]}
    output_dict_per_obj: dict = field(default_factory=dict)  # obj_idx -> ObjectOutputs
    temp_output_dict_per_obj: dict = field(default_factory=dict)  # obj_idx -> ObjectOutputs
    frames_tracked_per_obj: dict = field(default_factory=dict)  # obj_idx -> {frame: {"reverse": bool}}
    cached_features: dict = field(default_factory=dict)  # the latest frame only: {frame: feeds}


class SAM2OnnxVideoPredictor:
    """Promptable video segmentation with a folder written by ``sam2-onnx export``.

    Args:
        model_dir: an export folder with video graphs (the manifest's ``video`` part).
        precision: "fp32" (the video graphs' precision; the encoder of that precision is used).
        providers, threads, optimization: as :class:`SAM2OnnxPredictor`.
        fill_hole_area: fill holes of at most this many low-res pixels in every mask (None: the
            model's setting, 8; 0: off). sam2 needs its compiled extension for this and, without
            it, warns and skips: pass 0 to compare with such an install.
    """

    def __init__(
        self,
        model_dir: str | Path,
        precision: str = "fp32",
        providers: list[str] | None = None,
        threads: int | None = None,
        optimization: str = "all",
        fill_hole_area: int | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.sessions: VideoSessions = load_video_sessions(self.model_dir, precision, providers, threads, optimization)
        self.settings = dict(self.sessions.settings)
        if fill_hole_area is not None:
            if fill_hole_area < 0:
                raise InputError(f"fill_hole_area must be >= 0, not {fill_hole_area}")
            self.settings["fill_hole_area"] = int(fill_hole_area)
        self.image_size = C.IMAGE_SIZE

    @property
    def manifest(self) -> dict:
        return self.sessions.manifest

    # --- session ----------------------------------------------------------------------------

    def init_state(self, video, offload_video_to_cpu=False, offload_state_to_cpu=False, async_loading_frames=False):
        """A tracking session over ``video``: a folder of JPEG frames named by index, a video
        file (MP4 ..., decoded with PyAV) or a list of HxWx3 uint8 RGB arrays / PIL images.
        The offload flags are accepted for sam2's signature; frames are read when needed and the
        state lives in host memory anyway."""
        frames = Frames(video)
        h, w = frames.size
        state = VideoState(frames=frames, num_frames=len(frames), video_height=int(h), video_width=int(w))
        self._features(state, 0)  # as sam2, which warms up on frame 0
        return state

    def reset_state(self, state: VideoState) -> None:
        """Forget every object and prompt (the frames stay)."""
        self._reset_tracking_results(state)
        for d in (state.obj_id_to_idx, state.obj_idx_to_id, state.point_inputs_per_obj, state.mask_inputs_per_obj):
            d.clear()
        state.obj_ids.clear()
        state.output_dict_per_obj.clear()
        state.temp_output_dict_per_obj.clear()
        state.frames_tracked_per_obj.clear()

    def _reset_tracking_results(self, state: VideoState) -> None:
        for d in (*state.point_inputs_per_obj.values(), *state.mask_inputs_per_obj.values()):
            d.clear()
        for outs in (*state.output_dict_per_obj.values(), *state.temp_output_dict_per_obj.values()):
            outs.clear()
        for d in state.frames_tracked_per_obj.values():
            d.clear()

    def _obj_id_to_idx(self, state: VideoState, obj_id) -> int:
        idx = state.obj_id_to_idx.get(obj_id)
        if idx is not None:
            return idx
        idx = len(state.obj_id_to_idx)
        state.obj_id_to_idx[obj_id] = idx
        state.obj_idx_to_id[idx] = obj_id
        state.obj_ids = list(state.obj_id_to_idx)
        state.point_inputs_per_obj[idx] = {}
        state.mask_inputs_per_obj[idx] = {}
        state.output_dict_per_obj[idx] = ObjectOutputs()
        state.temp_output_dict_per_obj[idx] = ObjectOutputs()
        state.frames_tracked_per_obj[idx] = {}
        return idx

    def _check_frame(self, state: VideoState, frame_idx) -> int:
        if not isinstance(frame_idx, (int, np.integer)) or not 0 <= frame_idx < state.num_frames:
            raise InputError(f"frame_idx must be an integer in 0..{state.num_frames - 1}, not {frame_idx!r}")
        return int(frame_idx)

    # --- prompts ----------------------------------------------------------------------------

    def add_new_points_or_box(
        self, state, frame_idx, obj_id, points=None, labels=None, clear_old_points=True, normalize_coords=True, box=None
    ):
        """Clicks (``points`` [N, 2] x,y with ``labels`` [N], 1 fg / 0 bg) and/or a ``box``
        [x0, y0, x1, y1] for ``obj_id`` on ``frame_idx``, in video pixels (``normalize_coords``)
        or already in the 1024 frame. Returns (frame_idx, obj_ids, masks [objects, 1, H, W])."""
        frame_idx = self._check_frame(state, frame_idx)
        if (points is not None) != (labels is not None):
            raise InputError("points and labels must be provided together")
        if points is None and box is None:
            raise InputError("at least one of points or box must be provided as input")
        pts = np.zeros((0, 2), _F32) if points is None else np.asarray(points, _F32)
        lab = np.zeros(0, np.int32) if labels is None else np.asarray(labels, np.int32)
        pts = pts[None] if pts.ndim == 2 else pts
        lab = lab[None] if lab.ndim == 1 else lab
        if pts.ndim != 3 or pts.shape[0] != 1 or pts.shape[-1] != 2 or lab.shape != pts.shape[:2]:
            raise InputError(f"points must be [N, 2] with labels [N]; got {pts.shape} and {lab.shape}")
        if not np.isfinite(pts).all():
            raise InputError("points must be finite numbers")
        if box is not None:
            if not clear_old_points:
                raise InputError("cannot add a box without clearing old points (a box comes before any click)")
            box_arr = np.asarray(box, _F32)
            if box_arr.size != 4 or not np.isfinite(box_arr).all():
                raise InputError(f"box must be [x0, y0, x1, y1], not {box!r}")
            pts = np.concatenate([box_arr.reshape(1, 2, 2), pts], axis=1)
            lab = np.concatenate([np.array([[C.LABEL_BOX_TL, C.LABEL_BOX_BR]], np.int32), lab], axis=1)
        obj_idx = self._obj_id_to_idx(state, obj_id)
        if normalize_coords:
            pts = pts / np.array([state.video_width, state.video_height], _F32)
        pts = (pts * _F32(self.image_size)).astype(_F32)
        per_frame = state.point_inputs_per_obj[obj_idx]
        old = per_frame.get(frame_idx) if not clear_old_points else None
        if old is not None:  # sam2's concat_points
            pts, lab = np.concatenate([old.coords, pts], axis=1), np.concatenate([old.labels, lab], axis=1)
        per_frame[frame_idx] = Points(pts, lab)
        state.mask_inputs_per_obj[obj_idx].pop(frame_idx, None)
        return self._prompted(state, obj_idx, frame_idx, per_frame[frame_idx], None)

    def add_new_mask(self, state, frame_idx, obj_id, mask):
        """A mask ([H, W] bool, any size; resized to 1024 as sam2 does) for ``obj_id`` on
        ``frame_idx``. Returns (frame_idx, obj_ids, masks [objects, 1, H, W])."""
        frame_idx = self._check_frame(state, frame_idx)
        mask = np.asarray(mask)
        if mask.ndim != 2 or 0 in mask.shape:
            raise InputError(f"mask must be a 2-D [H, W] array, not shape {mask.shape}")
        obj_idx = self._obj_id_to_idx(state, obj_id)
        m = mask.astype(bool).astype(_F32)
        if m.shape != (self.image_size, self.image_size):
            from .transforms import _aa_taps, _resample

            # F.interpolate(bilinear, antialias=True) to 1024, then >= 0.5, as add_new_mask
            m = _resample(m, 1, _aa_taps(m.shape[1], self.image_size))
            m = _resample(m, 0, _aa_taps(m.shape[0], self.image_size))
            m = (m >= 0.5).astype(_F32)
        mask_inputs = m[None, None]
        state.mask_inputs_per_obj[obj_idx][frame_idx] = mask_inputs
        state.point_inputs_per_obj[obj_idx].pop(frame_idx, None)
        return self._prompted(state, obj_idx, frame_idx, None, mask_inputs)

    def _prompted(self, state, obj_idx, frame_idx, point_inputs, mask_inputs):
        """The common tail of add_new_points_or_box / add_new_mask: run the frame, keep the answer
        as a temporary output, return every object's mask on the frame at video size."""
        tracked = state.frames_tracked_per_obj[obj_idx]
        is_init = frame_idx not in tracked
        reverse = False if is_init else tracked[frame_idx]["reverse"]
        outputs, temp = state.output_dict_per_obj[obj_idx], state.temp_output_dict_per_obj[obj_idx]
        is_cond = is_init or self.settings["add_all_frames_to_correct_as_cond"]
        store = temp.cond if is_cond else temp.non_cond
        prev_logits = None
        if point_inputs is not None:
            prev = store.get(frame_idx)
            if prev is None:
                prev = outputs.get(frame_idx)
            if prev is not None and prev.pred_masks is not None:
                prev_logits = np.clip(prev.pred_masks, -32.0, 32.0)
        out, _ = self._run_single_frame(
            state, outputs, frame_idx, is_init, point_inputs, mask_inputs, reverse, False, prev_logits
        )
        store[frame_idx] = out
        masks = self._consolidate(state, frame_idx, is_cond)
        return frame_idx, list(state.obj_ids), masks

    def _consolidate(self, state, frame_idx, is_cond) -> np.ndarray:
        """Every object's mask on ``frame_idx`` at video size ([objects, 1, H, W]), NO_OBJ_SCORE
        for objects without one (sam2's _consolidate_temp_output_across_obj at video resolution)."""
        h, w = state.video_height, state.video_width
        masks = np.full((len(state.obj_idx_to_id), 1, h, w), NO_OBJ_SCORE, _F32)
        for obj_idx in range(len(state.obj_idx_to_id)):
            temp = state.temp_output_dict_per_obj[obj_idx]
            out = (temp.cond if is_cond else temp.non_cond).get(frame_idx)
            if out is None:
                out = state.output_dict_per_obj[obj_idx].get(frame_idx)
            if out is not None:
                masks[obj_idx] = upsample_masks(out.pred_masks[0], (h, w))
        return self._video_res(masks)

    def _video_res(self, masks: np.ndarray) -> np.ndarray:
        """sam2's _get_orig_video_res_output on masks already at video size."""
        return self._non_overlapping(masks) if self.settings["non_overlap_masks"] else masks

    @staticmethod
    def _non_overlapping(masks: np.ndarray) -> np.ndarray:
        """Keep each pixel for the highest-scoring object; others' logits clamped to <= -10."""
        if masks.shape[0] == 1:
            return masks
        keep = np.argmax(masks, axis=0)[None] == np.arange(masks.shape[0])[:, None, None, None]
        return np.where(keep, masks, np.minimum(masks, -10.0)).astype(_F32)

    def clear_all_prompts_in_frame(self, state, frame_idx, obj_id, need_output=True):
        """Remove ``obj_id``'s clicks or mask on ``frame_idx`` (its answer there becomes a tracked
        frame's). Returns (frame_idx, obj_ids, masks) unless ``need_output`` is False."""
        frame_idx = self._check_frame(state, frame_idx)
        obj_idx = self._obj_id_to_idx(state, obj_id)
        state.point_inputs_per_obj[obj_idx].pop(frame_idx, None)
        state.mask_inputs_per_obj[obj_idx].pop(frame_idx, None)
        temp = state.temp_output_dict_per_obj
        temp[obj_idx].cond.pop(frame_idx, None)
        temp[obj_idx].non_cond.pop(frame_idx, None)
        outputs = state.output_dict_per_obj[obj_idx]
        out = outputs.cond.pop(frame_idx, None)
        if out is not None:
            outputs.non_cond[frame_idx] = out
            state.frames_tracked_per_obj[obj_idx].pop(frame_idx, None)
        if not need_output:
            return None
        is_cond = any(frame_idx in t.cond for t in temp.values())
        return frame_idx, list(state.obj_ids), self._consolidate(state, frame_idx, is_cond)

    def remove_object(self, state, obj_id, strict=False, need_output=True):
        """Forget ``obj_id`` (KeyError-free unless ``strict``). Returns (obj_ids, [(frame_idx,
        masks)] for the frames it had prompts on)."""
        old_idx = state.obj_id_to_idx.get(obj_id)
        if old_idx is None:
            if not strict:
                return list(state.obj_ids), []
            raise InputError(f"cannot remove object id {obj_id}: it does not exist (objects: {state.obj_ids})")
        if len(state.obj_id_to_idx) == 1:
            self.reset_state(state)
            return list(state.obj_ids), []
        prompted = set(state.point_inputs_per_obj[old_idx]) | set(state.mask_inputs_per_obj[old_idx])
        for frame_idx in prompted:
            self.clear_all_prompts_in_frame(state, frame_idx, obj_id, need_output=False)
        remaining = [i for i in range(len(state.obj_ids)) if i != old_idx]
        new_ids = [state.obj_ids[i] for i in remaining]
        state.obj_id_to_idx = OrderedDict((oid, i) for i, oid in enumerate(new_ids))
        state.obj_idx_to_id = OrderedDict(enumerate(new_ids))
        state.obj_ids = new_ids
        for name in (
            "point_inputs_per_obj",
            "mask_inputs_per_obj",
            "output_dict_per_obj",
            "temp_output_dict_per_obj",
            "frames_tracked_per_obj",
        ):
            old = getattr(state, name)
            setattr(state, name, {new: old[i] for new, i in enumerate(remaining)})
        updated = []
        if need_output:
            for frame_idx in prompted:
                is_cond = any(frame_idx in t.cond for t in state.temp_output_dict_per_obj.values())
                updated.append((frame_idx, self._consolidate(state, frame_idx, is_cond)))
        return list(state.obj_ids), updated

    # --- tracking ---------------------------------------------------------------------------

    def propagate_in_video_preflight(self, state: VideoState) -> None:
        """Encode the memories of newly prompted frames and move them into the outputs."""
        if not state.obj_idx_to_id:
            raise InputError("no points or masks were added for any object; add prompts first")
        for obj_idx in range(len(state.obj_idx_to_id)):
            outputs, temp = state.output_dict_per_obj[obj_idx], state.temp_output_dict_per_obj[obj_idx]
            for is_cond in (False, True):
                source, target = (temp.cond, outputs.cond) if is_cond else (temp.non_cond, outputs.non_cond)
                for frame_idx, out in source.items():
                    if out.maskmem is None:  # sam2 encodes a prompted frame as if from clicks
                        out.maskmem = self._encode_memory(
                            state, frame_idx, out.pred_masks, out.object_score_logits, True
                        )
                    target[frame_idx] = out
                    if self.settings["clear_non_cond_mem_around_input"]:
                        self._clear_non_cond_mem_around_input(state, frame_idx, obj_idx)
                source.clear()
            if not outputs.cond:
                obj_id = state.obj_idx_to_id[obj_idx]
                raise InputError(f"no points or masks were added for object id {obj_id}; add prompts first")
            for frame_idx in outputs.cond:
                outputs.non_cond.pop(frame_idx, None)

    def propagate_in_video(
        self, state: VideoState, start_frame_idx=None, max_frame_num_to_track=None, reverse=False
    ) -> Iterator[tuple[int, list, np.ndarray]]:
        """Track every object through the video from ``start_frame_idx`` (default: the first
        prompted frame), forward or ``reverse``, for at most ``max_frame_num_to_track`` frames.
        Yields (frame_idx, obj_ids, masks [objects, 1, H, W] float32 logits) per frame."""
        self.propagate_in_video_preflight(state)
        num_frames, objects = state.num_frames, len(state.obj_idx_to_id)
        if start_frame_idx is None:
            start_frame_idx = min(t for outs in state.output_dict_per_obj.values() for t in outs.cond)
        start_frame_idx = self._check_frame(state, start_frame_idx)
        if max_frame_num_to_track is None:
            max_frame_num_to_track = num_frames
        if reverse:
            end = max(start_frame_idx - max_frame_num_to_track, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else []
        else:
            end = min(start_frame_idx + max_frame_num_to_track, num_frames - 1)
            order = range(start_frame_idx, end + 1)
        h, w = state.video_height, state.video_width
        for frame_idx in order:
            low_res = []
            for obj_idx in range(objects):
                outputs = state.output_dict_per_obj[obj_idx]
                if frame_idx in outputs.cond:
                    pred_masks = outputs.cond[frame_idx].pred_masks
                    if self.settings["clear_non_cond_mem_around_input"]:
                        self._clear_non_cond_mem_around_input(state, frame_idx, obj_idx)
                else:
                    out, pred_masks = self._run_single_frame(
                        state, outputs, frame_idx, False, None, None, reverse, True, None
                    )
                    outputs.non_cond[frame_idx] = out
                state.frames_tracked_per_obj[obj_idx][frame_idx] = {"reverse": reverse}
                low_res.append(pred_masks)
            masks = upsample_masks(np.concatenate(low_res)[:, 0], (h, w))[:, None]
            yield frame_idx, list(state.obj_ids), self._video_res(masks)

    def _clear_non_cond_mem_around_input(self, state, frame_idx, obj_idx) -> None:
        """Drop the object's tracked frames within num_maskmem (times the stride) of a prompted
        one (sam2 1.1 calls a per-object method here that it does not define; this is its intent)."""
        r = self.settings["memory_temporal_stride_for_eval"] * self.settings["num_maskmem"]
        for t in range(frame_idx - r, frame_idx + r + 1):
            state.output_dict_per_obj[obj_idx].non_cond.pop(t, None)

    # --- one frame --------------------------------------------------------------------------

    def _features(self, state: VideoState, frame_idx: int) -> dict:
        """The encoder's outputs on one frame, kept for the latest frame only (as sam2)."""
        feats = state.cached_features.get(frame_idx)
        if feats is None:
            enc = self.sessions.encoder
            names = [o.name for o in enc.get_outputs()]
            feats = dict(zip(names, enc.run(None, {"image": state.frames.frame(frame_idx)})))
            state.cached_features = {frame_idx: feats}
        return feats

    def _run_single_frame(
        self, state, outputs, frame_idx, is_init, point_inputs, mask_inputs, reverse, run_mem_encoder, prev_logits
    ) -> tuple[FrameOut, np.ndarray]:
        """sam2's _run_single_frame_inference for one object: (its FrameOut, its low-res mask
        before the memory copy, [1, 1, 256, 256])."""
        feats = self._features(state, frame_idx)
        s = self.sessions
        if mask_inputs is not None:  # use_mask_input_as_output_without_sam
            low, ptr, score = s.run("mask_prompt", image_embed=feats["image_embed"], mask=mask_inputs)
        else:
            if is_init:  # directly_add_no_mem_embed: the encoder's image_embed is the frame's input
                pix_feat = feats["image_embed"]
            else:
                memory = memory_feeds(self.settings, frame_idx, outputs, state.num_frames, reverse)
                (pix_feat,) = s.run("memory_attention", image_embed=feats["image_embed"], **memory)
            low, ptr, score = self._decode(feats, pix_feat, point_inputs, prev_logits, is_init)
        maskmem = None
        if run_mem_encoder:  # from the chosen mask before hole filling, as track_step
            maskmem = self._encode_memory(state, frame_idx, low, score, point_inputs is not None)
        pred_masks = low
        if self.settings["fill_hole_area"] > 0:
            holes = small_components(pred_masks[0] <= 0, self.settings["fill_hole_area"])[None]
            pred_masks = np.where(holes, _F32(HOLE_FILL), pred_masks).astype(_F32)
        return FrameOut(pred_masks, ptr, score, maskmem), pred_masks

    def _decode(self, feats, pix_feat, point_inputs, prev_logits, is_init):
        """The SAM heads on one frame: (chosen low-res mask [1, 1, 256, 256], object pointer
        [1, 256], object score [1, 1]), the token chosen as _forward_sam_heads does."""
        if point_inputs is None:  # no clicks: one padding point, as sam2 adds
            coords, labels = np.zeros((1, 1, 2), _F32), np.full((1, 1), C.LABEL_PAD, _F32)
        else:
            coords, labels = point_inputs.coords, point_inputs.labels.astype(_F32)
        has = prev_logits is not None
        masks, ious, ptrs, score = self.sessions.run(
            "video_decoder",
            pix_feat=pix_feat,
            high_res_feats_0=feats["high_res_feats_0"],
            high_res_feats_1=feats["high_res_feats_1"],
            point_coords=coords,
            point_labels=labels,
            mask_input=prev_logits if has else np.zeros((1, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), _F32),
            has_mask_input=np.array([1.0 if has else 0.0], _F32),
        )
        st = self.settings
        points = 0 if point_inputs is None else point_inputs.labels.shape[1]
        multimask = (
            st["multimask_output_in_sam"]
            and (is_init or st["multimask_output_for_tracking"])
            and st["multimask_min_pt_num"] <= points <= st["multimask_max_pt_num"]
        )
        if multimask:
            token = 1 + int(np.argmax(ious[0, 1:]))
            ptr_token = token if st["use_multimask_token_for_obj_ptr"] else 0
        else:
            token, ptr_token = 0, 0
            if st["dynamic_multimask_via_stability"] and not self._stable(masks[0, 0]):
                token = 1 + int(np.argmax(ious[0, 1:]))
        return masks[:, token : token + 1], ptrs[:, ptr_token], score

    def _stable(self, logits: np.ndarray) -> bool:
        """MaskDecoder._get_stability_scores(token 0) >= the threshold, in float32."""
        delta = self.settings["dynamic_multimask_stability_delta"]
        inner = _F32(np.count_nonzero(logits > delta))
        outer = _F32(np.count_nonzero(logits > -delta))
        score = inner / outer if outer > 0 else _F32(1.0)
        return bool(score >= _F32(self.settings["dynamic_multimask_stability_thresh"]))

    def _encode_memory(self, state, frame_idx, low_res, score, from_points: bool) -> np.ndarray:
        """The memory_encoder graph on one frame's mask -> bfloat16 bits [1, 64, 64, 64]."""
        feats = self._features(state, frame_idx)
        binarize = self.settings["binarize_mask_from_pts_for_mem_enc"] and from_points
        (maskmem,) = self.sessions.run(
            "memory_encoder",
            image_embed=feats["image_embed"],
            mask_logits=low_res,
            object_score_logits=score,
            binarize=np.array([1.0 if binarize else 0.0], _F32),
        )
        return to_bfloat16(maskmem)
