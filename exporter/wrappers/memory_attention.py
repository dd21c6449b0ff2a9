"""Memory attention graph: the current frame's features attending to the object's memory bank.

What ``SAM2Base._prepare_memory_conditioned_features`` computes on a frame that does not start
the object, from the bank the runtime assembled (which memories and pointers, in which order,
is the runtime's: exporter/runtime/video_memory.py). The memory tokens are concatenated here
from their parts, so the number of memories T and of object pointers P are dynamic, with no
padding; RoPE is applied in real arithmetic (rope.py), to the spatial memories only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.video_contract import EMBED
from .rope import cos_sin, rotate


def _sine_pe(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """sam2_utils.get_1d_sine_pe: positions [P] -> [P, dim] (sin then cos), the same operations."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / half)  # a constant: folded at export
    pe = positions.unsqueeze(-1) / dim_t
    return torch.cat([pe.sin(), pe.cos()], dim=-1)


class MemoryAttentionGraph(nn.Module):
    """forward(image_embed [1, 256, 64, 64], maskmem_features [T, 64, 64, 64] float32,
               maskmem_t_pos [T] int64, obj_ptrs [P, 256], obj_ptr_tpos [P] float32) ->
        pix_feat [1, 256, 64, 64]

    Memory tokens, in sam2's order: the T frames' 4096 tokens each (position: the memory
    encoder's sine encoding + ``maskmem_tpos_enc[num_maskmem - 1 - t_pos]``), then each pointer
    split into hidden_dim / mem_dim tokens (position: sine encoding of ``obj_ptr_tpos``, through
    ``obj_ptr_tpos_proj``; zeros when the model adds none).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.attention = model.memory_attention
        self.hidden, self.mem_dim, self.num_maskmem = model.hidden_dim, model.mem_dim, model.num_maskmem
        self.add_tpos = model.add_tpos_enc_to_obj_ptrs
        self.tpos_dim = self.hidden if model.proj_tpos_enc_in_obj_ptrs else self.mem_dim
        self.obj_ptr_tpos_proj = model.obj_ptr_tpos_proj
        self.maskmem_tpos_enc = model.maskmem_tpos_enc  # [num_maskmem, 1, 1, mem_dim]
        side = EMBED[-1]
        # Input-independent encodings (PositionEmbeddingSine reads only the shape), as constants:
        # the current frame's (the neck's, level 2) and every memory's (the memory encoder's).
        with torch.no_grad():
            curr_pos = model.image_encoder.neck.position_encoding(torch.zeros(EMBED))
            mem_pos = model.memory_encoder.position_encoding(torch.zeros(1, self.mem_dim, side, side))
        self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, -1, 1, 1).clone(), persistent=False)
        self.register_buffer("curr_pos", curr_pos.flatten(2).permute(2, 0, 1).contiguous(), persistent=False)
        self.register_buffer("mem_pos", mem_pos.flatten(2).permute(0, 2, 1).contiguous(), persistent=False)
        # RoPE tables of every RoPEAttention (all 64x64 in SAM 2): real and imaginary parts
        for i, layer in enumerate(self.attention.layers):
            for name in ("self_attn", "cross_attn_image"):
                c, s = cos_sin(getattr(layer, name).freqs_cis)
                self.register_buffer(f"cos_{i}_{name}", c, persistent=False)
                self.register_buffer(f"sin_{i}_{name}", s, persistent=False)

    @torch.no_grad()
    def forward(self, image_embed, maskmem_features, maskmem_t_pos, obj_ptrs, obj_ptr_tpos):
        # [4096, 1, C]: sam2's sequence-first layout; the raw features, as the predictor holds them
        curr = (image_embed - self.no_mem_embed).flatten(2).permute(2, 0, 1)
        spatial = maskmem_features.flatten(2).permute(0, 2, 1)  # [T, 4096, mem_dim]
        tpos = self.maskmem_tpos_enc[self.num_maskmem - 1 - maskmem_t_pos].reshape(-1, 1, self.mem_dim)
        spatial_pos = (self.mem_pos + tpos).reshape(-1, 1, self.mem_dim)
        spatial = spatial.reshape(-1, 1, self.mem_dim)
        split = self.hidden // self.mem_dim
        if self.add_tpos:
            ptr_pos = self.obj_ptr_tpos_proj(_sine_pe(obj_ptr_tpos, self.tpos_dim))
        else:  # zeros, as sam2 does; the input still feeds the graph so that its contract holds
            ptr_pos = obj_ptrs[:, : self.mem_dim] * 0.0 + obj_ptr_tpos[:, None] * 0.0
        # each pointer as `split` tokens of mem_dim channels, each with the pointer's position
        ptrs = obj_ptrs.reshape(-1, split, self.mem_dim).reshape(-1, 1, self.mem_dim)
        ptr_pos = ptr_pos[:, None, :].expand(-1, split, self.mem_dim).reshape(-1, 1, self.mem_dim)
        out = self._attend(curr, spatial, spatial_pos, ptrs, ptr_pos)
        return out.permute(1, 2, 0).reshape(EMBED)

    def _attend(self, curr, spatial, spatial_pos, ptrs, ptr_pos):
        """MemoryAttention.forward with the keys' RoPE part kept apart from the pointer tokens."""
        attn = self.attention
        output = curr + 0.1 * self.curr_pos if attn.pos_enc_at_input else curr
        if attn.batch_first:  # [1, tokens, C]
            output, curr_pos = output.transpose(0, 1), self.curr_pos.transpose(0, 1)
            spatial, spatial_pos = spatial.transpose(0, 1), spatial_pos.transpose(0, 1)
            ptrs, ptr_pos = ptrs.transpose(0, 1), ptr_pos.transpose(0, 1)
        else:
            curr_pos = self.curr_pos
        for i, layer in enumerate(attn.layers):
            # self-attention (MemoryAttentionLayer._forward_sa)
            tgt2 = layer.norm1(output)
            q = k = tgt2 + curr_pos if layer.pos_enc_at_attn else tgt2
            output = output + self._rope_attention(layer.self_attn, q, k, tgt2, None, None, i, "self_attn")
            # cross-attention to the memories (_forward_ca)
            tgt2 = layer.norm2(output)
            q = tgt2 + curr_pos if layer.pos_enc_at_cross_attn_queries else tgt2
            keys = (spatial + spatial_pos, ptrs + ptr_pos) if layer.pos_enc_at_cross_attn_keys else (spatial, ptrs)
            attended = self._rope_attention(
                layer.cross_attn_image, q, keys[0], spatial, keys[1], ptrs, i, "cross_attn_image"
            )
            output = output + attended
            # feed-forward
            tgt2 = layer.linear2(layer.activation(layer.linear1(layer.norm3(output))))
            output = output + tgt2
        normed = attn.norm(output)
        return normed.transpose(0, 1) if attn.batch_first else normed

    def _rope_attention(self, module, q, k, v, k_plain, v_plain, layer: int, name: str):
        """RoPEAttention.forward: q, k, v [1, tokens, C]; ``k_plain`` / ``v_plain`` (or None) are
        tokens appended after ``k`` / ``v`` without RoPE (sam2's ``num_k_exclude_rope``)."""
        cos, sin = getattr(self, f"cos_{layer}_{name}"), getattr(self, f"sin_{layer}_{name}")
        heads = module.num_heads
        q = rotate(module._separate_heads(module.q_proj(q), heads), cos, sin)
        k = rotate(module._separate_heads(module.k_proj(k), heads), cos, sin)
        v = module._separate_heads(module.v_proj(v), heads)
        if k_plain is not None:
            k = torch.cat([k, module._separate_heads(module.k_proj(k_plain), heads)], dim=2)
            v = torch.cat([v, module._separate_heads(module.v_proj(v_plain), heads)], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)
        return module.out_proj(module._recombine_heads(out))
