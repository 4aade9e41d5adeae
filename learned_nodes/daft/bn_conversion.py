"""DAFT's BatchNorm conversion: re-centre BN on target statistics without changing the function.

Statistics are gathered with the model in EVAL mode (so each layer sees the inputs the pretrained
network produces), per BN layer the batch means and (biased) batch variances of its input are
averaged over the target batches, and every layer is rewritten as

    beta  <- beta + gamma (mu_new - mu_old) / sqrt(var_old + eps)
    gamma <- gamma sqrt(var_new + eps) / sqrt(var_old + eps)
    running_mean <- mu_new ; running_var <- var_new

so that eval-mode outputs are unchanged, while train-mode BN on target batches no longer jumps.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def bn_layers(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    """(name, module) of every BatchNorm layer, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]


def set_bn_momentum(model: nn.Module, momentum: float) -> int:
    """Set every BN layer's running-statistics momentum (EfficientNet-Lite0 ships 0.01); returns count."""
    if not 0.0 < momentum <= 1.0:
        raise ValueError(f"BN momentum must be in (0, 1], got {momentum}")
    layers = bn_layers(model)
    for _, m in layers:
        m.momentum = momentum
    return len(layers)


def set_bn_eval(model: nn.Module) -> None:
    """Put only the BN layers in eval mode (running statistics used and frozen); the rest unchanged."""
    for _, m in bn_layers(model):
        m.eval()


@torch.no_grad()
def collect_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor],
                     device: str | torch.device = "cpu") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per BN layer: (mean over batches of the input batch mean, mean of the biased batch variance).

    The model runs in eval mode; its train/eval state is restored afterwards.
    """
    layers = bn_layers(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layers")
    sums: dict[str, list] = {n: [None, None, 0] for n, _ in layers}

    def hook(name):
        def fn(module, inputs):
            x = inputs[0].detach().double()
            dims = [0] + list(range(2, x.dim()))                        # all but the channel axis
            mean = x.mean(dim=dims)                                     # (C,)
            var = x.var(dim=dims, unbiased=False)                       # (C,)
            s = sums[name]
            s[0] = mean if s[0] is None else s[0] + mean
            s[1] = var if s[1] is None else s[1] + var
            s[2] += 1
        return fn

    was_training = model.training
    handles = [m.register_forward_pre_hook(hook(n)) for n, m in layers]
    try:
        model.eval()
        for x in batches:
            model(x.to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = {}
    for name, (mean_sum, var_sum, count) in sums.items():
        if count == 0:
            raise ValueError(f"BN layer '{name}' saw no input (empty data or unused layer)")
        out[name] = (mean_sum / count, var_sum / count)
    return out


@torch.no_grad()
def apply_bn_conversion(model: nn.Module, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Rewrite affine parameters and running statistics of every BN layer from `stats`."""
    for name, m in bn_layers(model):
        if not (m.affine and m.track_running_stats):
            raise ValueError(f"BN layer '{name}' needs affine=True and running statistics")
        mu_new, var_new = (t.to(m.running_mean.device) for t in stats[name])
        mu_old, var_old = m.running_mean.double(), m.running_var.double()
        gamma, beta = m.weight.double(), m.bias.double()
        inv_old = torch.rsqrt(var_old + m.eps)
        m.bias.copy_(beta + gamma * (mu_new - mu_old) * inv_old)
        m.weight.copy_(gamma * torch.sqrt(var_new + m.eps) * inv_old)
        m.running_mean.copy_(mu_new)
        m.running_var.copy_(var_new)


def convert_bn(model: nn.Module, batches: Iterable[torch.Tensor],
               device: str | torch.device = "cpu") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Gather target statistics (eval mode) and convert every BN layer; returns the statistics."""
    stats = collect_bn_stats(model, batches, device)
    apply_bn_conversion(model, stats)
    return stats
