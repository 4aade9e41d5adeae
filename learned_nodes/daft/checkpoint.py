"""Tuned backbone + head as a self-describing checkpoint (cocoop/checkpoint.py format: JSON + safetensors)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from learned_nodes.cocoop.checkpoint import load_tensors, read_config, save_checkpoint
from learned_nodes.daft.backbones import TunedClassifier, build_backbone

KIND = "daft_tuned_classifier"


def save_tuned(folder: str | Path, model: TunedClassifier, backbone: str, image_size: int,
               config: Mapping[str, Any] | None = None, info: Mapping[str, Any] | None = None) -> Path:
    """Write the model's state (backbone + head, BN running statistics included) and its config."""
    cfg = {"backbone": backbone, "num_classes": model.head.out_features,
           "feature_dim": model.head.in_features, "image_size": int(image_size),
           "pixel_mean": 127.0, "pixel_std": 128.0, "tune": dict(config or {})}
    return save_checkpoint(folder, model.state_dict(), KIND, cfg, info)


def load_tuned(folder: str | Path, device: str = "cpu") -> tuple[TunedClassifier, dict[str, Any]]:
    """(model in eval mode, checkpoint document); rebuilt from the config alone, shapes checked."""
    doc = read_config(folder, KIND)
    cfg = doc["config"]
    model = TunedClassifier(build_backbone(cfg["backbone"], pretrained=False), int(cfg["num_classes"]))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(load_tensors(folder, shapes))
    return model.to(device).eval(), doc
