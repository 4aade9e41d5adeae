"""Serving a DAFT tuned checkpoint: load it (safetensors + JSON only), preprocess an image exactly
like the training data, and embed + classify a batch. No ROS; used by learned_nodes.backbone_node.

Preprocessing (learned_nodes.daft.data): grey (or RGB) -> 3 channels, bilinear resize to the
checkpoint's `image_size` (antialiased when shrinking), (x - pixel_mean) / pixel_std.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from learned_nodes.daft.checkpoint import load_tuned
from learned_nodes.model_files.checkpoint import CheckpointError

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma


def label_names(cfg: dict[str, Any], num_classes: int) -> list[str]:
    """Class names from the checkpoint config (`labels` / `class_names`, top level or under `tune`);
    else the class index as text ("0".."9" for the digits checkpoints)."""
    for section in (cfg, cfg.get("tune") or {}):
        for key in ("labels", "class_names"):
            names = section.get(key) if isinstance(section, dict) else None
            if names:
                if len(names) != num_classes:
                    raise CheckpointError(f"checkpoint config '{key}' has {len(names)} names for "
                                          f"{num_classes} classes")
                return [str(n) for n in names]
    return [str(i) for i in range(num_classes)]


def preprocess(rgb: np.ndarray, size: int, to_grey: bool = True, mean: float = 127.0,
               std: float = 128.0) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, size, size) float32 model input.

    Grey images are resized as one channel and repeated after. The two axes are resized in two
    separable passes (the same antialiased bilinear filter as one 2-D call), the longer axis first,
    so that the intermediate holds at most size x min(H, W) pixels per channel: the cost is bounded
    by the input and the output, not by the aspect ratio (1 x N and N x 1 included).
    """
    x = np.asarray(rgb, np.float32)
    x = (x @ GREY_WEIGHTS)[..., None] if to_grey else x                  # (H, W, C), C = 1 or 3
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]  # (1, C, H, W)
    h, w = t.shape[-2:]
    aa = size < h or size < w               # as one 2-D call would: antialias when any axis shrinks
    passes = [(h, size), (size, size)] if h <= w else [(size, w), (size, size)]
    for out_hw in passes:
        if tuple(t.shape[-2:]) != out_hw:
            t = F.interpolate(t, size=out_hw, mode="bilinear", align_corners=False, antialias=aa)
    t = (t.clamp(0, 255) - mean) / std
    if t.shape[1] == 1:
        t = t.expand(1, 3, size, size)
    return np.ascontiguousarray(t[0].numpy())


@dataclass
class Embedding:
    """One image's result: unit-norm backbone feature and the head's softmax over all classes."""

    embedding: np.ndarray   # (D,) float32, L2 norm 1
    probs: np.ndarray       # (C,) float32, sums to 1


class TunedServer:
    """A loaded tuned checkpoint in eval mode on `device`."""

    def __init__(self, model, doc: dict[str, Any], device: str = "cpu", to_grey: bool = True) -> None:
        cfg = doc["config"]
        self.model, self.doc, self.device, self.to_grey = model, doc, device, to_grey
        self.image_size = int(cfg["image_size"])
        if self.image_size < 1:
            raise CheckpointError(f"checkpoint image_size must be >= 1, got {self.image_size}")
        self.mean, self.std = float(cfg.get("pixel_mean", 127.0)), float(cfg.get("pixel_std", 128.0))
        self.feature_dim = int(model.head.in_features)
        self.num_classes = int(model.head.out_features)
        if int(cfg.get("feature_dim", self.feature_dim)) != self.feature_dim:
            raise CheckpointError(f"checkpoint config feature_dim {cfg.get('feature_dim')} != the "
                                  f"backbone's {self.feature_dim}")
        self.labels = label_names(cfg, self.num_classes)
        self.backbone_name = str(cfg["backbone"])

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu", threads: int = 0,
             to_grey: bool = True) -> "TunedServer":
        """CheckpointError (pickle, truncated, wrong kind or shape, missing file) or a ready server."""
        from learned_nodes.model_files.paths import resolve_path

        if threads > 0:
            torch.set_num_threads(threads)
        if not str(folder):
            raise CheckpointError("model.checkpoint_path is empty: set it to a checkpoint folder written "
                                  "by learned_nodes.daft.tune (<out>/checkpoint)")
        path = resolve_path(str(folder))
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such checkpoint folder")
        model, doc = load_tuned(path, device)
        server = cls(model, doc, device, to_grey)
        server.embed_many([np.zeros((3, server.image_size, server.image_size), np.float32)])  # warm up
        return server

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        return preprocess(rgb, self.image_size, self.to_grey, self.mean, self.std)

    @torch.no_grad()
    def embed_many(self, inputs: Sequence[np.ndarray]) -> tuple[list[Embedding], float]:
        """Preprocessed (3, S, S) inputs -> one Embedding each, and the model time in ms."""
        t0 = time.perf_counter()
        x = torch.from_numpy(np.stack(inputs)).to(self.device)
        feats = self.model.backbone(x)                                   # (B, D)
        probs = torch.softmax(self.model.head(feats).float(), dim=1)     # (B, C)
        emb = F.normalize(feats.float(), dim=1)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000.0
        emb_np, probs_np = emb.cpu().numpy(), probs.cpu().numpy()
        if not (np.isfinite(emb_np).all() and np.isfinite(probs_np).all()):
            raise RuntimeError("the model produced non-finite outputs")
        return [Embedding(e, p) for e, p in zip(emb_np, probs_np)], ms
