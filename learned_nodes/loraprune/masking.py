"""The masked model: pruned units are zeroed at the input of o_proj (query heads) and of down_proj
(MLP channels) by forward pre-hooks.

Zeroing a head's slice of the o_proj input removes exactly that head's contribution; the q rows
and the k/v rows that only it used then have no effect on the output, so the masked model computes
the same function as the physically sliced one (tested). Gradients of the pruned units' weights
become zero, so their importance stays at the bottom. Install the hooks AFTER `inject_lora` (the
hooks sit on the current o_proj / down_proj modules).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from learned_nodes.loraprune.lora import decoder_layers
from learned_nodes.loraprune.structures import LlamaGeometry, PruneMasks


class MaskHooks:
    """Forward pre-hooks applying `masks` to a LLaMA model; `update` swaps the masks in place."""

    def __init__(self, model: nn.Module, geom: LlamaGeometry, masks: PruneMasks) -> None:
        self.geom = geom
        self.model = model
        self._head_masks: list[torch.Tensor] = []
        self._channel_masks: list[torch.Tensor] = []
        self._handles = []
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        for i, layer in enumerate(decoder_layers(model)):
            hm = torch.ones(geom.n_heads * geom.head_dim, device=device, dtype=dtype)    # (H*hd,)
            cm = torch.ones(geom.intermediate, device=device, dtype=dtype)              # (I,)
            self._head_masks.append(hm)
            self._channel_masks.append(cm)
            self._handles.append(layer.self_attn.o_proj.register_forward_pre_hook(_scale_input(hm)))
            self._handles.append(layer.mlp.down_proj.register_forward_pre_hook(_scale_input(cm)))
        self.update(masks)

    def update(self, masks: PruneMasks) -> None:
        self.masks = masks.clone()
        for i in range(self.geom.n_layers):
            self._head_masks[i].copy_(masks.heads[i].repeat_interleave(self.geom.head_dim))
            self._channel_masks[i].copy_(masks.channels[i])

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def _scale_input(mask: torch.Tensor):
    def hook(module: nn.Module, args: tuple):
        return (args[0] * mask,) + tuple(args[1:])            # (..., features) * (features,)
    return hook
