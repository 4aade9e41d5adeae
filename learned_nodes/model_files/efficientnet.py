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

    @torch.no_grad()
    def pretraining_feature_mean(self, nodes: int = 96) -> torch.Tensor:
        """(1280,) data-free estimate of the mean pooled feature over the pretraining images (ImageNet).

        The head is act(BN(conv(x))). Over the images BN's running statistics were gathered on, each
        channel's BN output has mean beta and standard deviation |gamma|; taking it as Gaussian, the
        channel's mean feature is E[act(beta + |gamma| z)], z ~ N(0, 1), computed here by Gauss-Hermite
        quadrature (spatial pooling does not change a mean). No image is needed.
        """
        import numpy as np

        z, w = np.polynomial.hermite_e.hermegauss(nodes)                     # probabilists' Hermite
        z = torch.as_tensor(z, dtype=torch.float32)                          # (K,)
        w = torch.as_tensor(w / w.sum(), dtype=torch.float32)                # (K,) weights, sum 1
        bn = self.net._bn1
        pre = bn.bias.float()[:, None] + bn.weight.float().abs()[:, None] * z[None, :]   # (C, K)
        return (self.net._swish(pre) * w[None, :]).sum(dim=1)                # (C,)
