"""Fine-tuning methods on one training path: lp, ft, lpft, daft and the two DAFT ablations,
configured as the reference code configures them (hsh1108/DAFT ft_sgd.py and configs_moco/cifar-*).

| method               | BN conversion | head init        | head lr     | mode in FT | reference config |
| lp                   | -             | probe (= result) | -           | -          | cifar-lp         |
| ft                   | -             | random           | lr_backbone | train      | cifar-ft         |
| lpft                 | -             | probe            | lr_backbone | eval       | cifar-lp_ft      |
| daft                 | yes           | zero             | lr_head     | train      | cifar-daft_2     |
| daft_conversion_only | yes           | zero             | lr_backbone | eval       | cifar-daft (1)   |
| daft_fast_head_only  | -             | zero             | lr_head     | eval       | cifar-daft (2)   |
(1) with --ablation only_bn_conversion, (2) with --ablation only_fast_headtrain (run-ablation.sh).

"mode" is the WHOLE network's (the reference calls net.eval() when `use_val_mode` is set, else
net.train()): in eval mode BN uses and keeps its running statistics. Both ablations run from
cifar-daft.yaml, which has `use_val_mode: True`; only DAFT itself (cifar-daft_2.yaml,
`use_val_mode: False`) and FT train with BN in train mode. The probe is the reference's logistic
regression with a C sweep on ID validation (`probe.py`). EfficientNet-Lite's drop-connect is set
to `drop_connect` (default 0, off) during fine-tuning in every method: the reference's backbones
(ResNet-50, CLIP) have no stochastic depth, so none of its methods trains with it.
Every run: SGD momentum 0.9, cosine schedule over the run's steps, `epochs` epochs; after every
epoch the model is scored on the ID validation split and the best epoch's weights are kept.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from learned_nodes.daft.backbones import TunedClassifier, set_drop_connect
from learned_nodes.daft.bn_conversion import convert_bn, set_bn_momentum
from learned_nodes.daft.data import batches
from learned_nodes.daft.distortion import extract_features
from learned_nodes.daft.probe import ProbeFit, fit_probe, set_head


@dataclass(frozen=True)
class MethodSpec:
    convert_bn: bool
    head_init: str          # "zero" | "random" | "probe"
    fast_head: bool         # head at lr_head (else lr_backbone)
    train_mode: bool        # whole network in train mode while fine-tuning (else eval mode)
    train_backbone: bool


METHODS: dict[str, MethodSpec] = {
    "lp": MethodSpec(False, "probe", False, False, False),
    "ft": MethodSpec(False, "random", False, True, True),
    "lpft": MethodSpec(False, "probe", False, False, True),
    "daft": MethodSpec(True, "zero", True, True, True),
    "daft_conversion_only": MethodSpec(True, "zero", False, False, True),
    "daft_fast_head_only": MethodSpec(False, "zero", True, False, True),
}


@dataclass
class TuneConfig:
    """One fine-tuning run; validated on construction."""

    method: str = field(default="daft", metadata={"help": f"one of {sorted(METHODS)}"})
    epochs: int = field(default=2, metadata={"help": "fine-tuning epochs (best one on val is kept)"})
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimiser steps (smoke runs)"})
    batch_size: int = field(default=32, metadata={"help": "mini-batch size"})
    lr_backbone: float = field(default=1e-4, metadata={"help": "backbone learning rate"})
    lr_head: float = field(default=1.0, metadata={"help": "head lr of daft and the fast-head ablation"})
    probe_cs: int = field(default=50, metadata={"help": "C values of the logistic probe's sweep"})
    probe_max_iter: int = field(default=200, metadata={"help": "lbfgs iterations per C"})
    drop_connect: float = field(default=0.0, metadata={"help": "EfficientNet drop-connect in FT (0: off)"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "SGD weight decay"})
    bn_momentum: float | None = field(default=0.1, metadata={"help": "BN momentum (None: keep)"})
    seed: int = field(default=0, metadata={"help": "torch / numpy / python seed"})
    device: str = field(default="cpu", metadata={"help": "torch device"})
    progress: bool = field(default=True, metadata={"help": "tqdm progress bars"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}' (choose from {sorted(METHODS)})")
        if min(self.epochs, self.batch_size, self.probe_cs, self.probe_max_iter) < 1:
            raise ValueError("epochs, batch_size, probe_cs and probe_max_iter must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or None")
        for name in ("lr_backbone", "lr_head"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a positive finite number")
        if not 0.0 <= self.drop_connect < 1.0:
            raise ValueError("drop_connect must be in [0, 1)")
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
             before_epoch: Callable[[], None] | None = None,
             after_epoch: Callable[[int], None] | None = None) -> list[float]:
    """The one training loop: cosine schedule over all steps, tqdm bar; returns per-step losses.
    `after_epoch(epoch)` (1-based) runs after every epoch, and after the last step when
    `max_steps` ends the run inside an epoch."""
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
    losses: list[float] = []
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for epoch in range(1, epochs + 1):
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
                    break
            if after_epoch is not None:
                after_epoch(epoch)
            if len(losses) >= total:
                break
    return losses


def probe_head(model: TunedClassifier, train: tuple[torch.Tensor, torch.Tensor],
               val: tuple[torch.Tensor, torch.Tensor], cfg: TuneConfig,
               cache: dict | None = None) -> ProbeFit:
    """Fit the logistic probe on the (pretrained, eval-mode) backbone's features and load it into
    the head. `cache` (optional) reuses a fit of the same data and settings: the probe of an
    unchanged pretrained backbone does not depend on the seed."""
    key = ("probe", id(train[0]), len(train[0]), id(val[0]), cfg.probe_cs, cfg.probe_max_iter)
    if cache is None or key not in cache:
        f_tr = extract_features(model.backbone, train[0], device=cfg.device)
        f_va = extract_features(model.backbone, val[0], device=cfg.device)
        fit = fit_probe(f_tr, train[1], f_va, val[1], model.head.out_features, cfg.probe_cs,
                        cfg.probe_max_iter)
        if cache is not None:
            cache[key] = fit
    fit = cache[key] if cache is not None else fit
    set_head(model.head, fit)
    return fit


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def tune(model: TunedClassifier, train_x: torch.Tensor, train_y: torch.Tensor, cfg: TuneConfig,
         val_x: torch.Tensor, val_y: torch.Tensor, cache: dict | None = None) -> dict:
    """Fine-tune `model` in place with `cfg.method`, keeping the epoch with the best validation
    accuracy; returns a history {val_per_epoch, best_epoch, ft_loss, probe_c, ...}."""
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
        fit = probe_head(model, (train_x, train_y), (val_x, val_y), cfg, cache)
        history.update(probe_c=fit.c, probe_val=fit.val_acc)
    else:
        init_head(model.head, spec.head_init, gen)
    if not spec.train_backbone:
        model.backbone.requires_grad_(False)
        model.eval()
        history.update(val_per_epoch=[accuracy(model, val_x, val_y, device=cfg.device)], best_epoch=0)
        return history
    model.requires_grad_(True)
    opt = make_optimizer(model, cfg)
    dev = cfg.device
    history["drop_connect_was"] = set_drop_connect(model.backbone, cfg.drop_connect)
    best: dict = {"acc": -1.0, "epoch": 0, "state": None}
    val_curve: list[float] = []

    def set_mode() -> None:
        model.train(spec.train_mode)           # the reference: net.train() or, use_val_mode, net.eval()

    def keep_best(epoch: int) -> None:
        acc = accuracy(model, val_x, val_y, device=dev)
        val_curve.append(acc)
        if acc > best["acc"]:                  # ties: the earlier epoch, as the reference's `>`
            best.update(acc=acc, epoch=epoch, state=copy.deepcopy(model.state_dict()))

    def loss_fn(x, y):
        return F.cross_entropy(model(x.to(dev)), y.to(dev))

    steps = len(train_x) // cfg.batch_size if len(train_x) >= cfg.batch_size else 1
    try:
        history["ft_loss"] = sgd_loop(
            opt, loss_fn, lambda: batches(train_x, cfg.batch_size, train_y, gen, drop_last=True),
            steps, cfg.epochs, cfg.max_steps, f"{cfg.method}: fine-tune", cfg.progress, set_mode,
            keep_best)
    finally:
        if history["drop_connect_was"] is not None:
            set_drop_connect(model.backbone, history["drop_connect_was"])
    model.load_state_dict(best["state"])
    history.update(lr_groups={g["name"]: g["initial_lr"] for g in opt.param_groups},
                   val_per_epoch=val_curve, best_epoch=best["epoch"])
    model.eval()
    return history
