"""Feature distortion of a tuned backbone vs the pretrained one (on OOD images): cosine, linear CKA."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


@torch.no_grad()
def extract_features(backbone: nn.Module, x: torch.Tensor, batch_size: int = 256,
                     device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, D) eval-mode features of (N, 3, S, S) images; the backbone's mode is restored."""
    was = backbone.training
    backbone.eval()
    try:
        feats = [backbone(x[i:i + batch_size].to(device)).float().cpu()
                 for i in range(0, len(x), batch_size)]
    finally:
        backbone.train(was)
    return torch.cat(feats)


def mean_cosine_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over samples of 1 - cos(a_i, b_i); (N, D) x (N, D)."""
    return float((1.0 - F.cosine_similarity(a.double(), b.double(), dim=1)).mean())


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019): ||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F), centred; 1 = same."""
    a = a.double() - a.double().mean(0, keepdim=True)                    # (N, Da)
    b = b.double() - b.double().mean(0, keepdim=True)                    # (N, Db)
    cross = (b.T @ a).norm() ** 2
    denom = (a.T @ a).norm() * (b.T @ b).norm()
    return float(cross / denom) if denom > 0 else float("nan")


def feature_distortion(pretrained: nn.Module, tuned: nn.Module, x: torch.Tensor,
                       device: str | torch.device = "cpu") -> dict[str, float]:
    """{cosine_distance, cka} between the two backbones' features of the same images."""
    fa = extract_features(pretrained, x, device=device)
    fb = extract_features(tuned, x, device=device)
    return {"cosine_distance": mean_cosine_distance(fa, fb), "cka": linear_cka(fa, fb)}
