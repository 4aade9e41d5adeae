"""Importance of the prunable units (query heads, MLP channels) under five criteria.

Element scores of one projection weight W (out, in):
- "lora"      (LoRAPrune): W = W0 + s B A and the gradient of W estimated from the LoRA gradients
              only, G = dB A + B dA - dB dA, exactly as the reference (aim-uofa/LoRAPrune,
              utils.compute_sensitivity: no s or learning-rate factor; a global factor cancels in the
              per-module L2 normalisation below). Score |G * W|. W0 needs no gradient.
- "taylor"    (LLM-Pruner's first-order element score): |W * dL/dW| with the FULL weight gradient,
              grouped as below (LoRAPrune's grouping: per-module L2 normalisation).
- "taylor_raw" (LLM-Pruner's own grouping): the same |W * dL/dW|, summed raw over every weight of
              a unit's group across modules (group_reduction "sum", no per-module normalisation).
- "streamed_taylor" (ours): the same |W * dL/dW|, exact, but formed module by module inside the
              LoRA backward and reduced at once to row / column sums (lora.track_taylor): Taylor's
              quality at LoRA's memory (no stored weight gradient).
- "magnitude" |W|.
- "random"    uniform random unit scores (no weights involved).
Grouping (same for all criteria): rows of q_proj and columns of o_proj summed per query head; rows
of k_proj / v_proj per KV head, each query head taking a 1/group share of its KV head's score
(the KV rows go only when the whole group goes); rows of gate/up and columns of down per channel.
Each module's unit vector is L2-normalised (except "taylor_raw"), then summed within the attention
and the MLP group.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from learned_nodes.loraprune.lora import LoRALinear, decoder_layers, layer_linears
from learned_nodes.loraprune.structures import LlamaGeometry

CRITERIA = ("lora", "taylor", "taylor_raw", "streamed_taylor", "magnitude", "random")


def lora_weight_gradient(mod: LoRALinear) -> torch.Tensor:
    """G ~ dB A + B dA - dB dA (out, in) from the LoRA gradients of the last backward pass."""
    a, b = mod.lora_A.detach(), mod.lora_B.detach()
    ga, gb = mod.lora_A.grad, mod.lora_B.grad
    if ga is None or gb is None:
        raise RuntimeError("LoRA parameters have no gradient: run backward() first")
    return gb @ a + (b - gb) @ ga                             # == gb a + b ga - gb ga


def element_scores(mod: nn.Module, criterion: str) -> torch.Tensor:
    """Per-weight importance (out, in) of one projection (nn.Linear or LoRALinear)."""
    with torch.no_grad():
        w = mod.effective_weight() if isinstance(mod, LoRALinear) else mod.weight
        if criterion == "lora":
            if not isinstance(mod, LoRALinear):
                raise TypeError("the 'lora' criterion needs LoRA adapters (inject_lora)")
            return (lora_weight_gradient(mod) * w).abs()
        if criterion == "taylor":
            grad = mod.weight.grad
            if grad is None:
                raise RuntimeError("'taylor' needs full weight gradients (requires_grad on W)")
            return (w * grad).abs()
        if criterion == "magnitude":
            return w.abs()
    raise ValueError(f"unknown criterion '{criterion}' (choose from {CRITERIA})")


def unit_sums(mod: nn.Module, criterion: str, dim: int) -> torch.Tensor:
    """Element scores of one projection summed over `dim`: 1 -> per output row (out,), 0 -> per
    input column (in,)."""
    if criterion == "streamed_taylor":
        sums = getattr(mod, "taylor_sums", None)
        if sums is None:
            raise RuntimeError("'streamed_taylor' needs lora.track_taylor(model) and a backward pass")
        return sums[0] if dim == 1 else sums[1]
    return element_scores(mod, "taylor" if criterion == "taylor_raw" else criterion).sum(dim)


def _normalise(s: torch.Tensor) -> torch.Tensor:
    s = s.float()
    return s / (torch.linalg.vector_norm(s) + 1e-8)


def layer_unit_scores(layer: nn.Module, geom: LlamaGeometry, criterion: str
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads (H,), channels (I,)) importance of one decoder layer."""
    H, KV, hd, g = geom.n_heads, geom.n_kv_heads, geom.head_dim, geom.group_size
    norm = (lambda s: s.float()) if criterion == "taylor_raw" else _normalise
    mods = layer_linears(layer)
    q = unit_sums(mods["q_proj"], criterion, 1).view(H, hd).sum(1)                    # (H,)
    o = unit_sums(mods["o_proj"], criterion, 0).view(H, hd).sum(1)                    # (H,)
    k = unit_sums(mods["k_proj"], criterion, 1).view(KV, hd).sum(1)                   # (KV,)
    v = unit_sums(mods["v_proj"], criterion, 1).view(KV, hd).sum(1)                   # (KV,)
    kv_share = ((norm(k) + norm(v)) / g).repeat_interleave(g)                         # (H,)
    heads = norm(q) + norm(o) + kv_share
    gate = unit_sums(mods["gate_proj"], criterion, 1)                                 # (I,)
    up = unit_sums(mods["up_proj"], criterion, 1)                                     # (I,)
    down = unit_sums(mods["down_proj"], criterion, 0)                                 # (I,)
    channels = norm(gate) + norm(up) + norm(down)
    return heads.cpu(), channels.cpu()


def model_unit_scores(model: nn.Module, geom: LlamaGeometry, layers: list[int], criterion: str,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads (L, H), channels (L, I)) importance; zero for layers that are not pruned."""
    heads = torch.zeros(geom.n_layers, geom.n_heads)
    channels = torch.zeros(geom.n_layers, geom.intermediate)
    all_layers = decoder_layers(model)
    for i in layers:
        if criterion == "random":
            heads[i] = torch.rand(geom.n_heads, generator=generator)
            channels[i] = torch.rand(geom.intermediate, generator=generator)
        else:
            heads[i], channels[i] = layer_unit_scores(all_layers[i], geom, criterion)
    return heads, channels


class ImportanceEMA:
    """Moving average I <- beta I + (1 - beta) I_t of the unit importance (beta 0.9, zero start)."""

    def __init__(self, geom: LlamaGeometry, beta: float = 0.9) -> None:
        self.beta = beta
        self.heads = torch.zeros(geom.n_layers, geom.n_heads)
        self.channels = torch.zeros(geom.n_layers, geom.intermediate)
        self.updates = 0
        self.skipped = 0

    def update(self, heads: torch.Tensor, channels: torch.Tensor) -> bool:
        """Fold in one step's scores; a non-finite step is skipped (as the reference). True if used."""
        if not (torch.isfinite(heads).all() and torch.isfinite(channels).all()):
            self.skipped += 1
            return False
        self.heads.mul_(self.beta).add_(heads, alpha=1 - self.beta)
        self.channels.mul_(self.beta).add_(channels, alpha=1 - self.beta)
        self.updates += 1
        return True
