"""EfficientNet-Lite as a feature tower: cocoop's aligned-encoder image tower and daft's backbone."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from learned_nodes.model_files.checkpoint import load_tensors


class EfficientNetTower(nn.Module):
    """EfficientNet-Lite feature extractor: global-average-pooled head features (B, 1280)."""

    def __init__(self, arch: str = "efficientnet-lite0") -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name(arch)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixels).mean(dim=(2, 3))

    @property
    def classifier(self) -> nn.Linear:
        return self.net._fc

    def load_weights(self, path: str | Path) -> EfficientNetTower:
        """Load a safetensors file of the network's own layout (shapes checked); returns self."""
        shapes = {k: tuple(v.shape) for k, v in self.net.state_dict().items()
                  if not k.endswith("num_batches_tracked")}
        self.net.load_state_dict(load_tensors(path, shapes), strict=False)
        return self
