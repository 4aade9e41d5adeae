"""Physically pruned LLaMA modules: attention over any subset of query heads, narrower MLPs.

PrunedLlamaAttention holds q/o for the kept query heads only, k/v for the kept KV heads only, and a
buffer kv_index (n_q,) giving each kept query head's position among the kept KV heads. After RoPE
and the KV-cache update, k/v are gathered per query head (index_select) instead of repeat_kv, so
heads of one group may be partly pruned. The KV cache stores only the kept KV heads.
The MLP is a stock LlamaMLP with a per-layer intermediate size.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (LlamaAttention, LlamaMLP, apply_rotary_pos_emb,
                                                      eager_attention_forward)

from learned_nodes.loraprune.lora import LoRALinear, decoder_layers
from learned_nodes.loraprune.structures import LlamaGeometry, PruneMasks


class PrunedLlamaAttention(LlamaAttention):
    """LlamaAttention restricted to `heads` (query heads kept) and `kv_heads` (KV heads kept)."""

    def __init__(self, config, layer_idx: int, heads: list[int], kv_heads: list[int]) -> None:
        nn.Module.__init__(self)                         # not LlamaAttention's full-size projections
        geom = LlamaGeometry.from_config(config)
        if not heads:
            raise ValueError(f"layer {layer_idx}: at least one query head must be kept")
        group = [h // geom.group_size for h in heads]
        if sorted(set(group)) != sorted(kv_heads):
            raise ValueError(f"layer {layer_idx}: kv heads {kv_heads} do not match the query "
                             f"heads {heads}")
        self.config, self.layer_idx, self.is_causal = config, layer_idx, True
        self.head_dim, self.scaling = geom.head_dim, geom.head_dim ** -0.5
        self.attention_dropout = config.attention_dropout
        self.num_key_value_groups = 1                    # k/v are gathered to one per query head
        self.kept_heads, self.kept_kv_heads = list(heads), list(kv_heads)
        nq, nkv, d, hd = len(heads), len(kv_heads), geom.hidden, geom.head_dim
        bias = geom.attention_bias
        self.q_proj = nn.Linear(d, nq * hd, bias=bias)
        self.k_proj = nn.Linear(d, nkv * hd, bias=bias)
        self.v_proj = nn.Linear(d, nkv * hd, bias=bias)
        self.o_proj = nn.Linear(nq * hd, d, bias=bias)
        index = torch.tensor([kv_heads.index(g) for g in group], dtype=torch.long)
        self.register_buffer("kv_index", index, persistent=False)                   # (nq,)
        self._identity = nq == nkv and index.tolist() == list(range(nq))

    def forward(self, hidden_states: torch.Tensor,
                position_embeddings: tuple[torch.Tensor, torch.Tensor],
                attention_mask: torch.Tensor | None = None, cache: Any = None, **kwargs: Any
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if cache is None:
            cache = kwargs.pop("past_key_values", None)
        else:
            kwargs.pop("past_key_values", None)
        B, T = hidden_states.shape[:-1]
        q = self.q_proj(hidden_states).view(B, T, -1, self.head_dim).transpose(1, 2)   # (B, nq, T, hd)
        k = self.k_proj(hidden_states).view(B, T, -1, self.head_dim).transpose(1, 2)   # (B, nkv, T, hd)
        v = self.v_proj(hidden_states).view(B, T, -1, self.head_dim).transpose(1, 2)
        cos, sin = position_embeddings
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)                  # (B, nkv, S, hd)
        if not self._identity:
            k = k.index_select(1, self.kv_index)                                       # (B, nq, S, hd)
            v = v.index_select(1, self.kv_index)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                       eager_attention_forward)
        out, weights = attend(self, q, k, v, attention_mask,
                              dropout=0.0 if not self.training else self.attention_dropout,
                              scaling=self.scaling, **kwargs)                          # (B, T, nq, hd)
        return self.o_proj(out.reshape(B, T, -1).contiguous()), weights


def pruned_mlp(config, intermediate: int) -> LlamaMLP:
    cfg = copy.copy(config)
    cfg.intermediate_size = intermediate
    return LlamaMLP(cfg)


def structure_from_masks(geom: LlamaGeometry, masks: PruneMasks) -> list[dict]:
    """Per layer: query heads kept, KV heads kept (original indices), intermediate size."""
    return [{"heads": masks.kept_heads(i), "kv_heads": masks.kept_kv_heads(i, geom),
             "intermediate_size": int(masks.channels[i].sum())} for i in range(geom.n_layers)]


def install_pruned_modules(model: nn.Module, structure: list[dict]) -> nn.Module:
    """Replace every layer's attention and MLP by empty modules of the pruned shapes (for loading)."""
    for i, (layer, st) in enumerate(zip(decoder_layers(model), structure)):
        layer.self_attn = PrunedLlamaAttention(model.config, i, st["heads"], st["kv_heads"])
        layer.mlp = pruned_mlp(model.config, st["intermediate_size"])
    return model


def _rows(lin: nn.Linear, idx: torch.Tensor, dst: nn.Linear) -> None:
    dst.weight.data = lin.weight.data.index_select(0, idx).clone()
    if lin.bias is not None:
        dst.bias.data = lin.bias.data.index_select(0, idx).clone()


def _cols(lin: nn.Linear, idx: torch.Tensor, dst: nn.Linear) -> None:
    dst.weight.data = lin.weight.data.index_select(1, idx).clone()
    if lin.bias is not None:
        dst.bias.data = lin.bias.data.clone()


def slice_model(model: nn.Module, masks: PruneMasks) -> nn.Module:
    """Physically remove the masked units of a MERGED model (plain nn.Linear), in place; the config
    gets `pruned_structure`. Returns `model`."""
    geom = LlamaGeometry.from_config(model.config)
    structure = structure_from_masks(geom, masks)
    hd = geom.head_dim
    for i, (layer, st) in enumerate(zip(decoder_layers(model), structure)):
        old_attn, old_mlp = layer.self_attn, layer.mlp
        if any(isinstance(m, LoRALinear) for m in (old_attn.q_proj, old_mlp.down_proj)):
            raise ValueError("merge the LoRA adapters (merge_lora) before slicing")
        ref = old_attn.q_proj.weight
        q_idx = torch.tensor([h * hd + j for h in st["heads"] for j in range(hd)], device=ref.device)
        kv_idx = torch.tensor([g * hd + j for g in st["kv_heads"] for j in range(hd)],
                              device=ref.device)
        ch_idx = torch.nonzero(masks.channels[i]).flatten().to(ref.device)
        attn = PrunedLlamaAttention(model.config, i, st["heads"], st["kv_heads"])
        attn = attn.to(ref.device, ref.dtype)
        _rows(old_attn.q_proj, q_idx, attn.q_proj)
        _rows(old_attn.k_proj, kv_idx, attn.k_proj)
        _rows(old_attn.v_proj, kv_idx, attn.v_proj)
        _cols(old_attn.o_proj, q_idx, attn.o_proj)
        mlp = pruned_mlp(model.config, st["intermediate_size"]).to(ref.device, ref.dtype)
        _rows(old_mlp.gate_proj, ch_idx, mlp.gate_proj)
        _rows(old_mlp.up_proj, ch_idx, mlp.up_proj)
        _cols(old_mlp.down_proj, ch_idx, mlp.down_proj)
        layer.self_attn, layer.mlp = attn, mlp
    model.config.pruned_structure = {"unit": "query_head", "layers": structure}
    return model
