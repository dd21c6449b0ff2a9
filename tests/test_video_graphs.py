"""The video graphs: real-arithmetic RoPE vs sam2's complex one, each wrapper vs the official
SAM2VideoPredictor method it replaces, the exported files vs the wrappers at every dynamic size
(P = 0 pointers included), and the manifest's video part.

Random weights (two seeds) stand in for checkpoints, which cannot be downloaded here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from exporter.checkpoints.loading import random_model, video_predictor
from exporter.checks.equivalence import cpu_session, rel_l2
from exporter.core.manifest import read_manifest, verify_files
from exporter.core.variants import resolve
from exporter.core.video_contract import SETTINGS, VIDEO_GRAPHS
from exporter.export.pipeline import export_variant
from exporter.wrappers.mask_prompt import MaskPromptGraph
from exporter.wrappers.memory_attention import MemoryAttentionGraph
from exporter.wrappers.memory_encoder import MemoryEncoderGraph
from exporter.wrappers.rope import cos_sin, rotate
from exporter.wrappers.video_decoder import VideoDecoderGraph
from exporter.wrappers.video_settings import video_settings


def test_real_rope_equals_sam2_complex_rope():
    from sam2.modeling.position_encoding import apply_rotary_enc, compute_axial_cis

    gen = torch.Generator().manual_seed(3)
    freqs = compute_axial_cis(dim=256, end_x=64, end_y=64)
    cos, sin = cos_sin(freqs)
    q = torch.randn(1, 1, 4096, 256, generator=gen) * 3
    for repeats in (1, 2, 7):  # a query, then keys of 2 and 7 memories (repeat_freqs_k)
        k = torch.randn(1, 1, repeats * 4096, 256, generator=gen)
        q_ref, k_ref = apply_rotary_enc(q, k, freqs, repeat_freqs_k=True)
        # the same products and sums in float32: equal up to how the CPU rounds a complex product
        torch.testing.assert_close(rotate(q, cos, sin), q_ref, rtol=0, atol=4e-6)
        torch.testing.assert_close(rotate(k, cos, sin), k_ref, rtol=0, atol=2e-6)
    assert not torch.equal(rotate(q, cos, -sin), q_ref)  # the check can fail: conjugate rotation


@pytest.fixture(scope="module", params=[0, 1])
def official(request):
    """(SAM2VideoPredictor of tiny with random weights of the seed, generator for inputs)."""
    variant = resolve("tiny")
    model, _ = random_model(variant, seed=request.param)
    return video_predictor(variant, model), torch.Generator().manual_seed(10 + request.param)


def _frame(vp, gen):
    """(raw lowest-level features [1, 256, 64, 64], image_embed = raw + no_mem_embed as the
    encoder graph makes it, high-res features)."""
    raw = torch.randn(1, 256, 64, 64, generator=gen)
    embed = (raw.permute(0, 2, 3, 1) + vp.no_mem_embed).permute(0, 3, 1, 2).contiguous()
    return raw, embed, [torch.randn(1, 32, 256, 256, generator=gen), torch.randn(1, 64, 128, 128, generator=gen)]


def _close(ours, ref, bound=1e-5):
    err = rel_l2(np.asarray(ours), np.asarray(ref))
    assert err <= bound, f"rel L2 {err:.2e} > {bound:.0e}"


@pytest.mark.export
@torch.no_grad()
def test_memory_attention_equals_sam2(official):
    from sam2.modeling.sam2_utils import get_1d_sine_pe

    vp, gen = official
    raw, embed, _ = _frame(vp, gen)
    graph = MemoryAttentionGraph(vp).eval()
    for t_pos, ptr_pos in (([0, 5, 6], [0, 1, 2, 3, 7]), ([0], []), ([0, 0, 1, 2, 3, 4, 5, 6], list(range(16)))):
        feats = torch.randn(len(t_pos), 64, 64, 64, generator=gen).bfloat16().float()
        ptrs = torch.randn(len(ptr_pos), 256, generator=gen)
        tpos = torch.tensor(ptr_pos, dtype=torch.float32) / 15
        # memory and its positions assembled as _prepare_memory_conditioned_features does
        mem_pe = vp.memory_encoder.position_encoding(torch.zeros(1, 64, 64, 64)).flatten(2).permute(2, 0, 1)
        memory = [feats[i : i + 1].flatten(2).permute(2, 0, 1) for i in range(len(t_pos))]
        memory_pos = [mem_pe + vp.maskmem_tpos_enc[vp.num_maskmem - t - 1] for t in t_pos]
        if ptr_pos:
            memory.append(ptrs.reshape(-1, 1, 4, 64).permute(0, 2, 1, 3).flatten(0, 1))
            memory_pos.append(
                vp.obj_ptr_tpos_proj(get_1d_sine_pe(tpos, dim=256)).unsqueeze(1).repeat_interleave(4, dim=0)
            )
        curr_pos = vp.image_encoder.neck.position_encoding(torch.zeros(1, 256, 64, 64)).flatten(2).permute(2, 0, 1)
        ref = vp.memory_attention(
            curr=[raw.flatten(2).permute(2, 0, 1)],
            curr_pos=[curr_pos],
            memory=torch.cat(memory),
            memory_pos=torch.cat(memory_pos),
            num_obj_ptr_tokens=4 * len(ptr_pos),
        )
        ours = graph(embed, feats, torch.tensor(t_pos), ptrs, tpos)
        _close(ours, ref.permute(1, 2, 0).reshape(1, 256, 64, 64))


@pytest.mark.export
@torch.no_grad()
def test_memory_encoder_equals_sam2(official):
    vp, gen = official
    raw, embed, _ = _frame(vp, gen)
    mask = torch.randn(1, 1, 256, 256, generator=gen) * 4
    high_res = F.interpolate(mask, size=(1024, 1024), mode="bilinear", align_corners=False)
    graph = MemoryEncoderGraph(vp).eval()
    for score in (-0.5, 0.7):  # no_obj_embed_spatial added only when the object is absent
        for from_points in (True, False):  # binarized (clicks) or sigmoid
            s = torch.tensor([[score]])
            ref, _ = vp._encode_new_memory([raw.flatten(2).permute(2, 0, 1)], [(64, 64)], high_res, s, from_points)
            ours = graph(embed, mask, s, torch.tensor([float(from_points)]))
            _close(ours, ref)


@pytest.mark.export
@torch.no_grad()
def test_video_decoder_equals_sam_heads(official):
    vp, gen = official
    _, embed, high_res = _frame(vp, gen)
    graph = VideoDecoderGraph(vp).eval()
    prompts = [
        (torch.tensor([[[500.0, 300.0]]]), torch.tensor([[1]])),  # a click
        (torch.tensor([[[100.0, 80.0], [700.0, 650.0], [300.0, 300.0]]]), torch.tensor([[2, 3, 0]])),  # box + bg
        (torch.zeros(1, 1, 2), -torch.ones(1, 1, dtype=torch.int32)),  # tracking: no prompt
    ]
    previous = torch.randn(1, 1, 256, 256, generator=gen) * 8
    for coords, labels in prompts:
        for mask_input in (None, previous):
            inputs = {"point_coords": coords, "point_labels": labels.int()}
            has = torch.ones(1) if mask_input is not None else torch.zeros(1)
            masks, ious, ptrs, score = graph(
                embed, *high_res, coords, labels.float(), previous if mask_input is not None else previous * 0, has
            )
            for multimask in (True, False):
                ref = vp._forward_sam_heads(embed, inputs, mask_input, high_res, multimask_output=multimask)
                _close(score, ref[6])
                if multimask:  # tokens 1..3, the pointer of the best one
                    _close(masks[:, 1:], ref[0])
                    _close(ious[:, 1:], ref[2])
                    best = 1 + int(ious[0, 1:].argmax())
                    _close(ptrs[:, best], ref[5])
                else:  # the stability rule's mask (a runtime choice), token 0's pointer
                    assert any(rel_l2(masks[:, k : k + 1].numpy(), ref[0].numpy()) <= 1e-5 for k in range(4))
                    _close(ptrs[:, 0], ref[5])


@pytest.mark.export
@torch.no_grad()
def test_mask_prompt_equals_use_mask_as_output(official):
    vp, gen = official
    raw, embed, high_res = _frame(vp, gen)
    graph = MaskPromptGraph(vp).eval()
    square = torch.zeros(1, 1, 1024, 1024)
    square[..., 200:640, 300:777] = 1.0
    for mask in (square, torch.zeros(1, 1, 1024, 1024)):  # an empty mask takes the no-object pointer
        low, ptr, score = graph(embed, mask)
        ref = vp._use_mask_as_output(raw, high_res, mask)
        _close(low, ref[0], 1e-6)
        _close(ptr, ref[5])
        assert torch.equal(score, ref[6])


@pytest.mark.export
def test_settings_are_read_from_the_model(official):
    vp, _ = official
    settings = video_settings(vp)
    assert list(settings) == list(SETTINGS)
    assert settings["num_maskmem"] == vp.num_maskmem == 7
    assert settings["fill_hole_area"] == 8 and settings["binarize_mask_from_pts_for_mem_enc"] is True
    sam2_0 = video_settings(video_predictor(resolve("sam2_hiera_tiny"), random_model(resolve("sam2_hiera_tiny"))[0]))
    assert settings["use_signed_tpos_enc_to_obj_ptrs"] and not sam2_0["use_signed_tpos_enc_to_obj_ptrs"]
    assert settings["add_tpos_enc_to_obj_ptrs"] and not sam2_0["add_tpos_enc_to_obj_ptrs"]


def _feeds(role, gen, memories=2, pointers=3, points=2):
    r = np.random.default_rng(gen)
    f32 = np.float32
    embed = r.standard_normal((1, 256, 64, 64)).astype(f32)
    high = {
        "high_res_feats_0": r.standard_normal((1, 32, 256, 256)).astype(f32),
        "high_res_feats_1": r.standard_normal((1, 64, 128, 128)).astype(f32),
    }
    if role == "memory_attention":
        return {
            "image_embed": embed,
            "maskmem_features": r.standard_normal((memories, 64, 64, 64)).astype(f32),
            "maskmem_t_pos": np.array(([0] + list(range(1, 7)) * 2)[:memories], np.int64),
            "obj_ptrs": r.standard_normal((pointers, 256)).astype(f32),
            "obj_ptr_tpos": (np.arange(pointers) / 15).astype(f32),
        }
    if role == "memory_encoder":
        return {
            "image_embed": embed,
            "mask_logits": (r.standard_normal((1, 1, 256, 256)) * 4).astype(f32),
            "object_score_logits": np.array([[-0.2]], f32),
            "binarize": np.array([float(memories % 2)], f32),
        }
    if role == "video_decoder":
        return {
            "pix_feat": embed,
            **high,
            "point_coords": (r.random((1, points, 2)) * 1024).astype(f32),
            "point_labels": np.array([[1, 0, 2, 3, -1][:points]], f32),
            "mask_input": r.standard_normal((1, 1, 256, 256)).astype(f32),
            "has_mask_input": np.array([float(points % 2)], f32),
        }
    mask = np.zeros((1, 1, 1024, 1024), f32)
    mask[..., 100:500, 333:900] = 1
    return {"image_embed": embed, "mask": mask}


@pytest.mark.export
@torch.no_grad()
def test_exported_video_graphs_equal_the_wrappers(exported):
    """Each file against its wrapper at several dynamic sizes, including no pointers at all
    (a frame before the only prompted one) and the full bank (7 memories, 16 pointers)."""
    folder = exported("tiny")
    variant = resolve("tiny")
    vp = video_predictor(variant, random_model(variant, seed=0)[0])
    wrappers = {
        "memory_attention": MemoryAttentionGraph(vp),
        "memory_encoder": MemoryEncoderGraph(vp),
        "video_decoder": VideoDecoderGraph(vp),
        "mask_prompt": MaskPromptGraph(vp),
    }
    sizes = {
        "memory_attention": [(1, 0), (2, 3), (7, 16), (8, 1)],
        "memory_encoder": [(1, 0), (2, 0)],
        "video_decoder": [(0, 0, 1), (0, 0, 2), (0, 0, 5)],
        "mask_prompt": [()],
    }
    for role, (file, _, outputs) in VIDEO_GRAPHS.items():
        sess = cpu_session(folder / file)
        for i, size in enumerate(sizes[role]):
            kwargs = dict(zip(("memories", "pointers", "points"), size))
            feeds = _feeds(role, i, **kwargs)
            got = sess.run(None, feeds)
            want = wrappers[role](*(torch.from_numpy(v) for v in feeds.values()))
            want = want if isinstance(want, tuple) else (want,)
            assert len(got) == len(want) == len(outputs)
            for spec, g, w in zip(outputs, got, want):
                assert g.shape == tuple(w.shape), (role, spec.name, g.shape)
                err = rel_l2(g, w.numpy())
                assert err <= 1e-4, f"{role} {spec.name} at {size}: rel L2 {err:.2e}"


@pytest.mark.export
def test_manifest_video_part(exported, tmp_path):
    folder = exported("tiny")
    manifest = read_manifest(folder)
    video = manifest["video"]
    assert set(video["files"]) == {file for file, _, _ in VIDEO_GRAPHS.values()}
    verify_files(folder, manifest, entries=video["files"])
    assert all(video["simplification"][role]["status"] == "applied" for role in VIDEO_GRAPHS)
    variant = resolve("tiny")
    assert video["settings"] == video_settings(video_predictor(variant, random_model(variant, seed=0)[0]))
    assert [s["name"] for s in video["io"]["memory_attention"]["inputs"]] == [
        s.name for s in VIDEO_GRAPHS["memory_attention"][1]
    ]
    # the image files are the same bytes with or without the video graphs
    plain = export_variant(variant, tmp_path, seed=0, video=False, stream=None)
    assert "video" not in plain.manifest
    assert plain.manifest["files"] == manifest["files"]
    assert not any((plain.folder / file).exists() for file, _, _ in VIDEO_GRAPHS.values())
