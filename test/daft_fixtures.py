"""Shared DAFT test data: a tiny image folder of 3 classes and a tiny random HF ResNet folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CLASSES = ("circle", "cross", "square")
FAST = ["--epochs", "1", "--max-steps", "3", "--batch-size", "8", "--probe-cs", "3",
        "--image-size", "16", "--no-progress"]


def make_image_folder(root: Path) -> Path:
    """3 classes x 10 png images (20 x 24 px, grey) with a class-specific bright blob."""
    import cv2

    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(10):
            img = rng.integers(0, 40, (20, 24)).astype(np.uint8)
            img[2 + 5 * k: 7 + 5 * k, 4:12] = 230
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    (root / "notes.txt").write_text("ignored: not a class folder")
    return root


def make_hf_resnet(folder: Path) -> Path:
    """A tiny random transformers ResNet saved as config.json + model.safetensors, with
    non-trivial BN statistics and affine parameters."""
    import transformers

    from learned_nodes.daft.bn_conversion import bn_layers

    torch.manual_seed(0)
    cfg = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1],
                                    layer_type="basic")
    model = transformers.ResNetModel(cfg)
    with torch.no_grad():
        for _, m in bn_layers(model):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder
