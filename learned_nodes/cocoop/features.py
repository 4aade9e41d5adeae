"""Frozen image features, computed once and cached as safetensors (the image tower is the slow
part: ~24 ms per 224 px image on 2 cores; prompt learning on cached features takes minutes)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from learned_nodes.cocoop.data import augment
from learned_nodes.cocoop.encoders import DualEncoder


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False, mininterval=1.0)


@torch.inference_mode()
def image_features(encoder: DualEncoder, dataset, indices: Sequence[int], views: int = 1, seed: int = 0,
                   batch_size: int = 32, cache_dir: str | Path | None = None,
                   progress: bool = True) -> torch.Tensor:
    """(N, V, D) L2-normalised features of dataset images `indices`: view 0 is the image itself,
    views 1.. are random crops/flips (seeded). Cached under `cache_dir` when given."""
    indices = np.asarray(indices, int)
    key = hashlib.sha1(f"{encoder.image_id}|{encoder.image_size}|{getattr(dataset, 'name', '')}|{views}|"
                       f"{seed}|".encode() + indices.tobytes()).hexdigest()[:16]
    path = Path(cache_dir) / f"features_{key}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        from safetensors.torch import load_file

        return load_file(str(path))["features"]
    rng = np.random.default_rng(seed)
    out = torch.empty(len(indices), views, encoder.embed_dim)
    jobs = [(n, v) for n in range(len(indices)) for v in range(views)]
    bar = _progress(len(jobs), f"image features ({getattr(dataset, 'name', 'images')})", progress)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        imgs = []
        for n, v in chunk:
            img = dataset.image(int(indices[n]))
            imgs.append(img if v == 0 else augment(img, rng))
        feats = encoder.encode_image(encoder.preprocess(imgs)).float().cpu()
        for (n, v), f in zip(chunk, feats):
            out[n, v] = f
        bar.update(len(chunk))
    bar.close()
    if path is not None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"features": out.contiguous()}, str(path))
    return out
