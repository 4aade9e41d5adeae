"""Configuration of backbone_node (`model.*`, `limits.*`, `top_k`, `autostart`), validated; no
rclpy, so offline tools and tests read config/backbone.yaml with it
(suite_tools.config_params.load_node_params + build)."""
from __future__ import annotations

from dataclasses import dataclass, field

from learned_nodes.server.limits import ServerLimits, check_device


@dataclass
class BackboneModelConfig:
    """`model.*`: what to load and where to run it."""

    # tuned checkpoint folder (config.json + model.safetensors); package:// ok. Default: the shipped
    # EfficientNet-Lite0 DAFT-tuned on MNIST (fp16 safetensors), labels "0".."9".
    checkpoint_path: str = "package://learned_nodes/models/daft_effl0_mnist"
    device: str = "cpu"         # cpu | cuda | cuda:N
    threads: int = 0            # torch intra-op threads; 0 = torch's default
    to_grey: bool = True        # RGB -> grey -> 3 channels, as the digits training data

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.threads < 0:
            raise ValueError("threads must be >= 0")


@dataclass
class BackboneNodeConfig:
    model: BackboneModelConfig = field(default_factory=BackboneModelConfig)
    limits: ServerLimits = field(default_factory=ServerLimits)
    top_k: int = 5              # labels returned per request (capped by the classes and limits.max_top_k)
    autostart: bool = True      # configure + activate at start-up

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
