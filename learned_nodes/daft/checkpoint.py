"""Tuned backbone + head as a self-describing checkpoint (model_files/checkpoint.py format: JSON + safetensors).

The config carries everything needed to rebuild the model (backbone name, or a Hugging Face ResNet
config), the preprocessing, the class names and the tuning config. Weights may be stored in fp16
(`dtype="float16"`, half the size); the loader always returns an fp32 model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from learned_nodes.daft.backbones import TunedClassifier, backbone_spec, build_backbone
from learned_nodes.model_files.checkpoint import load_tensors, read_config, save_checkpoint

KIND = "daft_tuned_classifier"
DTYPES = {"float32": torch.float32, "float16": torch.float16}


def save_tuned(folder: str | Path, model: TunedClassifier, backbone: str, image_size: int,
               config: Mapping[str, Any] | None = None, info: Mapping[str, Any] | None = None,
               labels: Sequence[str] | None = None, dtype: str = "float32") -> Path:
    """Write the model's state (backbone + head, BN running statistics included) and its config."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype}")
    cfg = {**backbone_spec(backbone, model.backbone), "num_classes": model.head.out_features,
           "feature_dim": model.head.in_features, "image_size": int(image_size),
           "pixel_mean": 127.0, "pixel_std": 128.0, "dtype": dtype, "tune": dict(config or {})}
    if labels is not None:
        if len(labels) != model.head.out_features:
            raise ValueError(f"{len(labels)} labels for {model.head.out_features} classes")
        cfg["labels"] = [str(n) for n in labels]
    state = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    return save_checkpoint(folder, state, KIND, cfg, info)


def load_tuned(folder: str | Path, device: str = "cpu") -> tuple[TunedClassifier, dict[str, Any]]:
    """(fp32 model in eval mode, checkpoint document); rebuilt from the config alone, shapes checked."""
    doc = read_config(folder, KIND)
    cfg = doc["config"]
    net = build_backbone(cfg["backbone"], pretrained=False, hf_config=cfg.get("backbone_config"))
    model = TunedClassifier(net, int(cfg["num_classes"]))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tensors = load_tensors(folder, shapes)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    return model.to(device).eval(), doc
