"""Prunable structures of a LLaMA decoder with grouped-query attention (GQA), and their masks.

Units (the reference hard-codes 32 heads x 128 dims and breaks on GQA; here every size comes from
the config):
- attention unit = one QUERY HEAD: its head_dim rows of q_proj and head_dim columns of o_proj.
  head_dim never changes. The k/v rows of a KV head are removed only when ALL of the query heads
  that share it are gone. The sliced attention keeps a per-query-head index into its kept KV heads,
  so any subset of query heads works (k/v are gathered per query head instead of repeat_kv).
- MLP unit = one intermediate channel: a row of gate_proj and up_proj and a column of down_proj.

Pruning is uniform: every pruned layer loses the same number of query heads and of channels. The
first `skip_first_frac` of the layers and (optionally) the last layer are never pruned.

Ratio: the fraction of the PRUNED layers' attention + MLP parameters (q, k, v, o, gate, up, down)
to remove. `plan_counts` removes round(ratio * heads) query heads and then as many channels as
bring the removed q/o + MLP parameters to ratio * (attention + MLP parameters); KV heads that lose
all their query heads are removed on top (reported in the achieved ratio). Reports always also
give the parameters removed as a fraction of the whole model, embeddings included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LlamaGeometry:
    """Sizes of a LlamaForCausalLM that pruning needs."""

    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    attention_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config) -> "LlamaGeometry":
        head_dim = (getattr(config, "head_dim", None)
                    or config.hidden_size // config.num_attention_heads)
        return cls(config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                   config.num_key_value_heads, head_dim, config.intermediate_size, config.vocab_size,
                   bool(getattr(config, "tie_word_embeddings", False)),
                   bool(getattr(config, "attention_bias", False)),
                   bool(getattr(config, "mlp_bias", False)))

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.n_heads // self.n_kv_heads

    def attn_params(self, q_heads: int, kv_heads: int) -> int:
        d, hd = self.hidden, self.head_dim
        n = 2 * q_heads * hd * d + 2 * kv_heads * hd * d
        if self.attention_bias:
            n += (q_heads + 2 * kv_heads) * hd + d
        return n

    def mlp_params(self, channels: int) -> int:
        return 3 * self.hidden * channels + ((2 * channels + self.hidden) if self.mlp_bias else 0)

    @property
    def head_params(self) -> int:
        """Parameters of one query head's q rows and o columns (without its KV share)."""
        return 2 * self.head_dim * self.hidden + (self.head_dim if self.attention_bias else 0)

    @property
    def channel_params(self) -> int:
        return 3 * self.hidden + (2 if self.mlp_bias else 0)

    def non_layer_params(self) -> int:
        """Embeddings (+ untied lm_head) + final norm."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    def layer_params(self, q_heads: int, kv_heads: int, channels: int) -> int:
        return self.attn_params(q_heads, kv_heads) + self.mlp_params(channels) + 2 * self.hidden


def pruned_layers(n_layers: int, skip_first_frac: float = 0.1, skip_last: bool = True) -> list[int]:
    """Indices of the layers that are pruned (as the reference: int(0.1 L) first layers and the last
    one are spared)."""
    first = int(n_layers * skip_first_frac)
    last = n_layers - 1 if skip_last else n_layers
    return list(range(first, last))


def plan_counts(geom: LlamaGeometry, ratio: float) -> tuple[int, int]:
    """(query heads, MLP channels) to remove in each pruned layer for `ratio` of its attention+MLP."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    heads = min(int(math.floor(ratio * geom.n_heads + 0.5)), geom.n_heads - 1)
    total = geom.attn_params(geom.n_heads, geom.n_kv_heads) + geom.mlp_params(geom.intermediate)
    need = ratio * total - heads * geom.head_params
    channels = int(round(need / geom.channel_params))
    return heads, min(max(channels, 0), geom.intermediate - 1)


@dataclass
class PruneMasks:
    """Kept units: heads (L, H) bool over query heads, channels (L, I) bool over MLP channels."""

    heads: torch.Tensor
    channels: torch.Tensor

    @classmethod
    def full(cls, geom: LlamaGeometry) -> "PruneMasks":
        return cls(torch.ones(geom.n_layers, geom.n_heads, dtype=torch.bool),
                   torch.ones(geom.n_layers, geom.intermediate, dtype=torch.bool))

    def clone(self) -> "PruneMasks":
        return PruneMasks(self.heads.clone(), self.channels.clone())

    def kept_heads(self, layer: int) -> list[int]:
        return torch.nonzero(self.heads[layer]).flatten().tolist()

    def kept_kv_heads(self, layer: int, geom: LlamaGeometry) -> list[int]:
        """KV heads still used by at least one kept query head."""
        used = self.heads[layer].view(geom.n_kv_heads, geom.group_size).any(dim=1)
        return torch.nonzero(used).flatten().tolist()

    def kept_channels(self, layer: int) -> list[int]:
        return torch.nonzero(self.channels[layer]).flatten().tolist()


def count_params(geom: LlamaGeometry, masks: PruneMasks | None = None) -> int:
    """Total parameters of the model (tied embeddings counted once) once `masks` are sliced away."""
    total = geom.non_layer_params()
    for layer in range(geom.n_layers):
        if masks is None:
            total += geom.layer_params(geom.n_heads, geom.n_kv_heads, geom.intermediate)
        else:
            total += geom.layer_params(int(masks.heads[layer].sum()),
                                       len(masks.kept_kv_heads(layer, geom)),
                                       int(masks.channels[layer].sum()))
    return total


def sparsity_report(geom: LlamaGeometry, masks: PruneMasks, layers: list[int]) -> dict:
    """Parameters before/after, the achieved ratio over the pruned layers' attention+MLP and over
    the whole model (embeddings included)."""
    dense_layer = geom.attn_params(geom.n_heads, geom.n_kv_heads) + geom.mlp_params(geom.intermediate)
    dense_units = dense_layer * len(layers)
    kept_units = sum(geom.attn_params(int(masks.heads[i].sum()), len(masks.kept_kv_heads(i, geom)))
                     + geom.mlp_params(int(masks.channels[i].sum())) for i in layers)
    before, after = count_params(geom), count_params(geom, masks)
    return {"params_before": before, "params_after": after, "params_removed": before - after,
            "ratio_pruned_layers": (dense_units - kept_units) / max(dense_units, 1),
            "ratio_whole_model": (before - after) / before,
            "heads_kept_per_layer": [int(masks.heads[i].sum()) for i in range(geom.n_layers)],
            "kv_heads_kept_per_layer": [len(masks.kept_kv_heads(i, geom))
                                        for i in range(geom.n_layers)],
            "channels_kept_per_layer": [int(masks.channels[i].sum()) for i in range(geom.n_layers)]}


def update_masks(masks: PruneMasks, head_importance: torch.Tensor, channel_importance: torch.Tensor,
                 layers: list[int], n_heads: int, n_channels: int) -> PruneMasks:
    """Monotone mask update: in each pruned layer remove the least important still-kept units until
    `n_heads` heads and `n_channels` channels are gone (units already pruned stay pruned)."""
    out = masks.clone()
    for layer in layers:
        for kept, imp, target in ((out.heads[layer], head_importance[layer], n_heads),
                                  (out.channels[layer], channel_importance[layer], n_channels)):
            missing = target - int((~kept).sum())
            if missing <= 0:
                continue
            score = imp.detach().float().cpu().clone()
            score[~kept] = float("inf")                  # never re-select (or revive) pruned units
            kept[torch.argsort(score, stable=True)[:missing]] = False
    return out
