"""Prunable structures of a LLaMA decoder with grouped-query attention (GQA), and their masks.

Units (the reference hard-codes 32 heads x 128 dims and breaks on GQA; here every size comes from
the config):
- attention unit = one QUERY HEAD: its head_dim rows of q_proj and head_dim columns of o_proj.
  head_dim never changes. The k/v rows of a KV head are removed only when ALL of the query heads
  that share it are gone. The sliced attention keeps a per-query-head index into its kept KV heads,
  so any subset of query heads works (k/v are gathered per query head instead of repeat_kv).
- MLP unit = one intermediate channel: a row of gate_proj and up_proj and a column of down_proj.

Pruning is uniform in PARAMETERS: every pruned layer loses the same number of query heads and
then as many MLP channels as bring the layer to the same parameter count. The first
`skip_first_frac` of the layers and (optionally) the last layer are never pruned.

Ratio: the fraction of the PRUNED layers' attention + MLP parameters (q, k, v, o, gate, up, down)
to remove. `plan_heads` removes round(head_share * ratio * heads) query heads per layer (head_share 1,
the reference's share; 0: MLP channels only); `channels_to_remove`
then counts the KV heads this freed (all their query heads gone) TOWARD the target and removes as
many channels as bring the layer's removed parameters to ratio * (attention + MLP parameters). So
every criterion removes the same number of parameters (up to one channel per layer), whichever
heads it chose -- a criterion that frees whole KV groups keeps more MLP channels instead of getting
the freed KV parameters for free. Reports always also give the parameters removed as a fraction of
the whole model, embeddings included.
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
    def kv_head_params(self) -> int:
        """Parameters of one KV head's k and v rows."""
        return 2 * self.head_dim * self.hidden + (2 * self.head_dim if self.attention_bias else 0)

    def dense_units_params(self) -> int:
        """Attention + MLP parameters of one unpruned layer (what the ratio is a fraction of)."""
        return self.attn_params(self.n_heads, self.n_kv_heads) + self.mlp_params(self.intermediate)

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


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")


def plan_heads(geom: LlamaGeometry, ratio: float, head_share: float = 1.0) -> int:
    """Query heads to remove in each pruned layer: round(head_share x ratio x heads), at least one
    head always kept (head_share 1: the reference's int(ratio x heads) rounded; 0: none, the MLP
    channels carry the whole ratio)."""
    _check_ratio(ratio)
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be in [0, 1], got {head_share}")
    return min(int(math.floor(head_share * ratio * geom.n_heads + 0.5)), geom.n_heads - 1)


def channels_to_remove(geom: LlamaGeometry, ratio: float, heads_removed: int, kv_removed: int) -> int:
    """MLP channels that bring one layer's removed attention+MLP parameters to `ratio` of them,
    given the query heads and the (freed) KV heads it has already lost."""
    _check_ratio(ratio)
    need = (ratio * geom.dense_units_params() - heads_removed * geom.head_params
            - kv_removed * geom.kv_head_params)
    return min(max(int(round(need / geom.channel_params)), 0), geom.intermediate - 1)


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
    dense_units = geom.dense_units_params() * len(layers)
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


def _remove_least_important(kept: torch.Tensor, importance: torch.Tensor, target: int) -> None:
    """In place: prune the least important still-kept units until `target` units are gone."""
    missing = target - int((~kept).sum())
    if missing <= 0:
        return
    score = importance.detach().float().cpu().clone()
    score[~kept] = float("inf")                          # never re-select (or revive) pruned units
    kept[torch.argsort(score, stable=True)[:missing]] = False


def _remove_global_channels(channels: torch.Tensor, importance: torch.Tensor, layers: list[int],
                            per_layer: dict[int, int], cap: float) -> None:
    """In place: remove sum(per_layer) channels over all `layers` together, the least important
    first (the scores compared across layers), no layer losing more than `cap` x its uniform share
    (and always keeping one channel). channels / importance (L, I)."""
    total = sum(per_layer.values())
    limit = {i: min(int(math.floor(cap * n + 1e-9)), channels.shape[1] - 1) for i, n in per_layer.items()}
    score = importance[layers].detach().float().cpu().clone()                 # (len(layers), I)
    score[~channels[layers]] = float("inf")
    order = torch.argsort(score.flatten(), stable=True).tolist()
    removed = {i: 0 for i in layers}
    width = score.shape[1]
    for flat in order:
        if total <= 0:
            break
        layer, ch = layers[flat // width], flat % width
        if removed[layer] < limit[layer] and channels[layer, ch]:
            channels[layer, ch] = False
            removed[layer] += 1
            total -= 1
    if total > 0:
        raise ValueError(f"global allocation: caps {cap} x the uniform share leave {total} channels")


def update_masks(masks: PruneMasks, head_importance: torch.Tensor, channel_importance: torch.Tensor,
                 layers: list[int], geom: LlamaGeometry, ratio: float,
                 final_ratio: float | None = None, global_cap: float = 0.0,
                 head_share: float = 1.0) -> PruneMasks:
    """Monotone mask update towards `ratio` (units already pruned stay pruned): in each pruned layer
    remove the least important query heads, then the least important channels until the layer's
    removed parameters, freed KV heads included, reach the ratio.

    On an iterative ramp towards `final_ratio` the head count follows the ramp
    (floor(ratio / final * final heads), as the reference's int(ratio * heads)); the channels make up
    the layer's parameters to `ratio` but never go beyond the fewest the final masks can need (every
    KV head the final heads could free counted), so a head or a KV head removed late cannot make the
    final count overshoot a one-shot plan.

    `global_cap` > 0 (one-shot only): the channels are allocated over the layers together instead
    (the same total, so the same parameter count): the least important channels of any pruned layer
    go first, a layer losing at most global_cap x its uniform share (the scores must be comparable
    across layers: LLM-Pruner's raw Taylor sums are). `head_share` scales the heads' part of the
    ratio (plan_heads); the channels make up the rest."""
    out = masks.clone()
    ramp = final_ratio is not None and ratio < final_ratio
    if ramp:
        final_heads = plan_heads(geom, final_ratio, head_share)
        n_heads = math.floor(ratio / final_ratio * final_heads + 1e-9)
        channel_cap = channels_to_remove(geom, final_ratio, final_heads, final_heads // geom.group_size)
    else:
        n_heads = plan_heads(geom, ratio, head_share)
    if global_cap > 0 and (ramp or bool((~masks.channels).any())):
        raise ValueError("global channel allocation is one-shot: from full masks at the target")
    per_layer = {}
    for layer in layers:
        _remove_least_important(out.heads[layer], head_importance[layer], n_heads)
        heads_removed = int((~out.heads[layer]).sum())
        kv_removed = geom.n_kv_heads - len(out.kept_kv_heads(layer, geom))
        n_channels = channels_to_remove(geom, ratio, heads_removed, kv_removed)
        if ramp:
            n_channels = min(n_channels, channel_cap)
        per_layer[layer] = n_channels
        if global_cap <= 0:
            _remove_least_important(out.channels[layer], channel_importance[layer], n_channels)
    if global_cap > 0:
        _remove_global_channels(out.channels, channel_importance, layers, per_layer, global_cap)
    return out
