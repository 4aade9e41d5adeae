"""SHOT source-free adaptation (Liang et al., ICML 2020) of a tuned classifier to a new domain.

The source head is FROZEN; only the feature extractor adapts, on UNLABELLED target images:

    loss = mean_i H(p_i)  -  H(mean_i p_i)  +  beta * CE(logits, pseudo_labels)

(information maximisation: confident per-sample predictions, diverse over the batch) with
pseudo-labels from cosine nearest-centroid clustering of the target features, recomputed at the
start of every epoch (soft centroids from the current predictions, then one hard refinement).
`shot_adapt` takes images only: target labels cannot be used.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from learned_nodes.daft.backbones import TunedClassifier
from learned_nodes.daft.bn_conversion import set_bn_momentum
from learned_nodes.daft.data import batches
from learned_nodes.daft.distortion import extract_features
from learned_nodes.daft.methods import seed_everything, sgd_loop


@dataclass
class ShotConfig:
    """One adaptation run; validated on construction."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3            # feature-extractor learning rate (SGD, momentum, cosine)
    momentum: float = 0.9
    beta: float = 0.3           # weight of the pseudo-label cross-entropy
    bn_momentum: float | None = 0.1
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.beta < 0:
            raise ValueError("lr must be positive and beta >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def information_maximisation(logits: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean per-sample entropy, entropy of the batch-mean prediction) of (B, C) logits."""
    p = logits.softmax(dim=1)                                              # (B, C)
    entropy = -(p * torch.log(p + eps)).sum(dim=1).mean()
    p_mean = p.mean(dim=0)                                                 # (C,)
    diversity = -(p_mean * torch.log(p_mean + eps)).sum()
    return entropy, diversity


def shot_loss(logits: torch.Tensor, pseudo: torch.Tensor, beta: float) -> torch.Tensor:
    """entropy - diversity + beta * CE(pseudo-labels); minimised."""
    entropy, diversity = information_maximisation(logits)
    loss = entropy - diversity
    return loss + beta * F.cross_entropy(logits, pseudo) if beta > 0 else loss


@torch.no_grad()
def cluster_pseudo_labels(feats: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """(N, D) features, (N, C) softmax -> (N,) labels by cosine nearest centroid (SHOT):
    centroids weighted by the predictions, then recomputed once from the hard labels."""
    f = F.normalize(torch.cat([feats, torch.ones(len(feats), 1)], dim=1).double(), dim=1)  # (N, D+1)
    weights = probs.double()                                               # (N, C)
    labels = torch.zeros(len(f), dtype=torch.long)
    for _ in range(2):
        centroids = weights.T @ f / (weights.sum(0)[:, None] + 1e-8)       # (C, D+1)
        cos = f @ F.normalize(centroids, dim=1).T                          # (N, C)
        cos[:, weights.sum(0) <= 0] = -math.inf                            # empty clusters never win
        labels = cos.argmax(dim=1)
        weights = F.one_hot(labels, probs.shape[1]).double()
    return labels


def shot_adapt(model: TunedClassifier, target_x: torch.Tensor, cfg: ShotConfig) -> dict:
    """Adapt `model.backbone` in place on unlabelled (N, 3, S, S) images; the head never changes.
    Returns {loss, pseudo_changed (per epoch, fraction of pseudo-labels that changed)}."""
    gen = seed_everything(cfg.seed)
    dev = cfg.device
    model.to(dev)
    model.head.requires_grad_(False)
    model.backbone.requires_grad_(True)
    if cfg.bn_momentum is not None:
        set_bn_momentum(model.backbone, cfg.bn_momentum)
    params = [p for p in model.backbone.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    state: dict = {"pseudo": None, "changed": []}

    def before_epoch() -> None:
        feats = extract_features(model.backbone, target_x, device=dev)    # (N, D), eval mode
        with torch.no_grad():
            probs = model.head(feats.to(dev)).softmax(1).cpu()             # (N, C)
        pseudo = cluster_pseudo_labels(feats, probs)
        if state["pseudo"] is not None:
            state["changed"].append(float((pseudo != state["pseudo"]).float().mean()))
        state["pseudo"] = pseudo
        model.train()                                                      # BN on target batches

    def epoch_batches():
        idx = torch.arange(len(target_x))
        for i in batches(idx, cfg.batch_size, generator=gen, drop_last=True):
            yield target_x[i], state["pseudo"][i]

    def loss_fn(x: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
        return shot_loss(model(x.to(dev)), pseudo.to(dev), cfg.beta)

    steps = max(1, len(target_x) // cfg.batch_size)
    losses = sgd_loop(opt, loss_fn, epoch_batches, steps, cfg.epochs, None, "shot", cfg.progress,
                      before_epoch)
    model.eval()
    model.head.requires_grad_(True)
    return {"loss": losses, "pseudo_changed": state["changed"]}
