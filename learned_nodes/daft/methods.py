"""Fine-tuning methods on one training path: lp, ft, lpft, daft and the two DAFT ablations.

| method               | BN conversion | head init        | head lr     | BN during FT | backbone |
| lp                   | -             | probe (= result) | lr_head     | -            | frozen   |
| ft                   | -             | random           | lr_backbone | train        | trained  |
| lpft                 | -             | probe            | lr_backbone | eval         | trained  |
| daft                 | yes           | zero             | lr_head     | train        | trained  |
| daft_conversion_only | yes           | random           | lr_backbone | train        | trained  |
| daft_fast_head_only  | -             | zero             | lr_head     | train        | trained  |

Every run: SGD momentum 0.9, cosine schedule over the run's steps, the same `epochs` budget of
backbone fine-tuning; the probe (lp, and lpft's first stage) is a torch linear head trained on raw
frozen features (no sklearn: its standardised-feature weights are huge) for `probe_epochs`.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from learned_nodes.daft.backbones import TunedClassifier
from learned_nodes.daft.bn_conversion import convert_bn, set_bn_eval, set_bn_momentum
from learned_nodes.daft.data import batches
from learned_nodes.daft.distortion import extract_features


@dataclass(frozen=True)
class MethodSpec:
    convert_bn: bool
    head_init: str          # "zero" | "random" | "probe"
    fast_head: bool         # head at lr_head (else lr_backbone)
    bn_train: bool          # BN layers in train mode while fine-tuning
    train_backbone: bool


METHODS: dict[str, MethodSpec] = {
    "lp": MethodSpec(False, "probe", True, False, False),
    "ft": MethodSpec(False, "random", False, True, True),
    "lpft": MethodSpec(False, "probe", False, False, True),
    "daft": MethodSpec(True, "zero", True, True, True),
    "daft_conversion_only": MethodSpec(True, "random", False, True, True),
    "daft_fast_head_only": MethodSpec(False, "zero", True, True, True),
}


@dataclass
class TuneConfig:
    """One fine-tuning run; validated on construction."""

    method: str = field(default="daft", metadata={"help": f"one of {sorted(METHODS)}"})
    epochs: int = field(default=2, metadata={"help": "backbone fine-tuning epochs (shared budget)"})
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimiser steps (smoke runs)"})
    batch_size: int = field(default=64, metadata={"help": "mini-batch size"})
    lr_backbone: float = field(default=1e-3, metadata={"help": "backbone learning rate"})
    lr_head: float = field(default=0.1, metadata={"help": "head lr of daft / fast-head runs and of lp"})
    probe_epochs: int = field(default=10, metadata={"help": "epochs of the linear probe (lp, lpft)"})
    probe_lr: float | None = field(default=None, metadata={"help": "probe lr (default: lr_head)"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "SGD weight decay"})
    bn_momentum: float | None = field(default=0.1, metadata={"help": "BN momentum (None: keep)"})
    seed: int = field(default=0, metadata={"help": "torch / numpy / python seed"})
    device: str = field(default="cpu", metadata={"help": "torch device"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bars"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}' (choose from {sorted(METHODS)})")
        if self.epochs < 1 or self.batch_size < 1 or self.probe_epochs < 1:
            raise ValueError("epochs, batch_size and probe_epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or None")
        for name in ("lr_backbone", "lr_head"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a positive finite number")
        if self.probe_lr is not None and not self.probe_lr > 0:
            raise ValueError("probe_lr must be positive")
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0:
            raise ValueError("momentum must be in [0, 1) and weight_decay >= 0")
        if self.bn_momentum is not None and not 0.0 < self.bn_momentum <= 1.0:
            raise ValueError("bn_momentum must be in (0, 1] or None")

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def init_head(head: nn.Linear, how: str, generator: torch.Generator) -> None:
    """'zero' (DAFT's integrated LP-FT) or 'random' (nn.Linear's default, seeded)."""
    with torch.no_grad():
        if how == "zero":
            head.weight.zero_()
            head.bias.zero_()
        elif how == "random":
            bound = 1.0 / math.sqrt(head.in_features)
            head.weight.uniform_(-bound, bound, generator=generator)
            head.bias.uniform_(-bound, bound, generator=generator)
        else:
            raise ValueError(f"unknown head init '{how}'")


def make_optimizer(model: TunedClassifier, cfg: TuneConfig) -> torch.optim.SGD:
    """SGD with two param groups: backbone at lr_backbone, head at lr_head (fast head) or lr_backbone."""
    head_lr = cfg.lr_head if cfg.spec.fast_head else cfg.lr_backbone
    groups = [{"params": [p for p in model.backbone.parameters() if p.requires_grad],
               "lr": cfg.lr_backbone, "name": "backbone"},
              {"params": list(model.head.parameters()), "lr": head_lr, "name": "head"}]
    return torch.optim.SGD(groups, lr=cfg.lr_backbone, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def sgd_loop(optimizer: torch.optim.Optimizer, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             epoch_batches: Callable[[], Iterator], steps_per_epoch: int, epochs: int,
             max_steps: int | None, desc: str, progress: bool,
             before_epoch: Callable[[], None] | None = None) -> list[float]:
    """The one training loop: cosine schedule over all steps, tqdm bar; returns per-step losses."""
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    losses: list[float] = []
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            if before_epoch is not None:
                before_epoch()
            for x, y in epoch_batches():
                loss = loss_fn(x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sched.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if len(losses) >= total:
                    return losses
    return losses


def train_probe(model: TunedClassifier, x: torch.Tensor, y: torch.Tensor, cfg: TuneConfig,
                generator: torch.Generator) -> list[float]:
    """Linear probe: zero head trained on raw frozen eval-mode features (torch, SGD, cosine)."""
    feats = extract_features(model.backbone, x, device=cfg.device)         # (N, D) on cpu
    init_head(model.head, "zero", generator)
    model.head.requires_grad_(True)
    lr = cfg.probe_lr if cfg.probe_lr is not None else cfg.lr_head
    opt = torch.optim.SGD([{"params": list(model.head.parameters()), "lr": lr, "name": "head"}],
                          lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    dev = cfg.device

    def loss_fn(f, t):
        return F.cross_entropy(model.head(f.to(dev)), t.to(dev))

    steps = math.ceil(len(feats) / cfg.batch_size)
    return sgd_loop(opt, loss_fn, lambda: batches(feats, cfg.batch_size, y, generator), steps,
                    cfg.probe_epochs, None, f"{cfg.method}: probe", cfg.progress)


def tune(model: TunedClassifier, train_x: torch.Tensor, train_y: torch.Tensor,
         cfg: TuneConfig) -> dict:
    """Fine-tune `model` in place with `cfg.method`; returns a history {probe_loss, ft_loss, ...}."""
    spec = cfg.spec
    gen = seed_everything(cfg.seed)
    model.to(cfg.device)
    history: dict = {"method": cfg.method}
    if spec.convert_bn:
        convert_bn(model.backbone, batches(train_x, cfg.batch_size), cfg.device)
        history["bn_converted"] = True
    if cfg.bn_momentum is not None:
        set_bn_momentum(model, cfg.bn_momentum)
    if spec.head_init == "probe":
        history["probe_loss"] = train_probe(model, train_x, train_y, cfg, gen)
    else:
        init_head(model.head, spec.head_init, gen)
    if not spec.train_backbone:
        model.backbone.requires_grad_(False)
        model.eval()
        return history
    model.requires_grad_(True)
    opt = make_optimizer(model, cfg)
    dev = cfg.device

    def set_modes() -> None:
        model.train()
        if not spec.bn_train:
            set_bn_eval(model)

    def loss_fn(x, y):
        return F.cross_entropy(model(x.to(dev)), y.to(dev))

    steps = len(train_x) // cfg.batch_size if len(train_x) >= cfg.batch_size else 1
    history["ft_loss"] = sgd_loop(
        opt, loss_fn, lambda: batches(train_x, cfg.batch_size, train_y, gen, drop_last=True),
        steps, cfg.epochs, cfg.max_steps, f"{cfg.method}: fine-tune", cfg.progress, set_modes)
    history["lr_groups"] = {g["name"]: g["initial_lr"] for g in opt.param_groups}
    model.eval()
    return history


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))
