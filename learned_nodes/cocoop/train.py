"""`cocoop-train`: few-shot prompt learning (CoCoOp or CoOp) on cached frozen image features.

    cocoop-train --data fashion-mnist --classes base --shots 16 --method cocoop --seed 1 \\
        --encoder learned_nodes/models/aligned_effl0_minilm --out out/cocoop_fmnist_base

Defaults follow the paper: M = 4 context vectors from "a photo of a", SGD lr 0.002 (momentum 0.9,
weight decay 5e-4), 1 warm-up epoch at 1e-5, cosine over 10 epochs, batch 1, 16 shots per class.
`reference_schedule` gives each method its own base-to-new schedule of the reference code
(CoCoOp: batch 1, 10 epochs; CoOp: batch 32, 200 epochs), optionally scaled in epochs.
Augmented views (random crop + flip) are encoded once and sampled per step.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class TrainConfig:
    method: str = "cocoop"     # cocoop | coop
    shots: int = 16
    epochs: int = 10
    lr: float = 0.002
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    batch_size: int = 1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    n_ctx: int = 4
    ctx_init: str = "a photo of a"
    views: int = 4             # encoded views per shot (1 = no augmentation)
    seed: int = 1
    drop_last: bool = True     # Dassl: the last incomplete batch is dropped (when n >= batch_size)
    logit_scale: float = 0.0   # 0 = the encoder's calibrated scale; CLIP's is 100
    learn_logit_scale: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("cocoop", "coop"):
            raise ValueError(f"method must be cocoop or coop, got '{self.method}'")
        if min(self.shots, self.epochs, self.batch_size, self.views, self.n_ctx) < 1 or self.lr <= 0:
            raise ValueError("shots, epochs, batch_size, views, n_ctx must be >= 1 and lr > 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs} of {self.epochs}")
        if not 0.0 <= self.logit_scale <= 100.0:
            raise ValueError(f"logit_scale must be in [0, 100], got {self.logit_scale}")


# The reference's base-to-new schedules (KaiyangZhou/CoOp, scripts/cocoop/base2new_train.sh):
# CoCoOp configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml, CoOp configs/trainers/CoOp/vit_b16_ctxv1.yaml.
# Both: SGD lr 0.002, cosine, 1 constant warm-up epoch at 1e-5, n_ctx 4 from "a photo of a", 16 shots.
REFERENCE_SCHEDULES = {"cocoop": {"batch_size": 1, "epochs": 10}, "coop": {"batch_size": 32, "epochs": 200}}


def reference_schedule(method: str, scale: float = 1.0, **overrides) -> TrainConfig:
    """`method`'s reference schedule with its epochs times `scale` (the same proportion of
    training samples for every method; at least warm-up + 1 epochs)."""
    if method not in REFERENCE_SCHEDULES:
        raise ValueError(f"method must be one of {sorted(REFERENCE_SCHEDULES)}, got '{method}'")
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"schedule scale must be in (0, 1], got {scale}")
    ref = REFERENCE_SCHEDULES[method]
    warmup = overrides.get("warmup_epochs", 1)
    epochs = max(int(round(ref["epochs"] * scale)), warmup + 1)
    return TrainConfig(**{"method": method, "batch_size": ref["batch_size"], "epochs": epochs, **overrides})


def steps_per_epoch(cfg: TrainConfig, n: int) -> int:
    """Dassl's loader: floor(n / batch) with drop_last (when n >= batch), else ceil."""
    if cfg.drop_last and n >= cfg.batch_size:
        return n // cfg.batch_size
    return math.ceil(n / cfg.batch_size)


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Constant warm-up, then cosine annealing over all epochs (stepped per epoch, as Dassl)."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


def train_prompt_learner(encoder, features, labels: np.ndarray, class_names: Sequence[str],
                         cfg: TrainConfig, progress: bool = True):
    """Train on (N, V, D) cached features with labels in 0..C-1; returns (model, history)."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from learned_nodes.cocoop.inference import build_model, default_config

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pl_cfg = default_config(encoder, cfg.method, cfg.n_ctx, cfg.ctx_init, cfg.logit_scale,
                            cfg.learn_logit_scale)
    model = build_model(encoder, pl_cfg)
    model.text_encoder.eval()          # frozen: no dropout
    params = [p for p in model.prompt_learner.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    prompts = encoder.text.class_prompts(list(class_names), cfg.n_ctx)
    device = next(encoder.parameters()).device
    features = features.to(device)
    y_all = torch.as_tensor(np.asarray(labels), device=device)
    n, views = features.shape[0], features.shape[1]
    n_steps = steps_per_epoch(cfg, n)
    history = []
    bar = tqdm(total=cfg.epochs * n_steps, desc=f"{cfg.method} seed {cfg.seed}", unit="step",
               disable=not progress, leave=False, mininterval=1.0)
    t0 = time.monotonic()
    for epoch in range(cfg.epochs):
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, epoch)
        order = rng.permutation(n)
        total, correct, seen = 0.0, 0, 0
        model.prompt_learner.train()
        for s in range(n_steps):
            idx = torch.as_tensor(order[s * cfg.batch_size:(s + 1) * cfg.batch_size], device=device)
            v = torch.as_tensor(rng.integers(0, views, len(idx)), device=device)
            f, y = features[idx, v], y_all[idx]                           # (B, D), (B,)
            logits = model(f, prompts)                                     # (B, C)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(idx)
            bar.update(1)
        history.append({"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "loss": total / seen,
                        "train_acc": correct / seen, "logit_scale": float(model.logit_scale.detach()
                        if hasattr(model.logit_scale, "detach") else model.logit_scale)})
        bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{correct / seen:.2f}")
    bar.close()
    model.eval()
    history.append({"train_seconds": time.monotonic() - t0})
    return model, history


def select_classes(spec: str, class_names: Sequence[str]) -> list[int]:
    """'all', 'base', 'new' (CoCoOp's split) or comma-separated class names."""
    from learned_nodes.cocoop.data import base_new_split

    base, new = base_new_split(len(class_names))
    if spec in ("all", "base", "new"):
        return {"all": base + new, "base": base, "new": new}[spec]
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    missing = [w for w in wanted if w not in class_names]
    if missing:
        raise SystemExit(f"unknown class name(s) {missing}; the data set has {list(class_names)}")
    return [list(class_names).index(w) for w in wanted]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cocoop-train", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion-mnist",
                   help="'fashion-mnist' or a folder root/<class>/<images>")
    p.add_argument("--classes", default="base", help="all | base | new | comma-separated class names")
    p.add_argument("--encoder", default=None, help="encoder folder (default: the shipped aligned encoder)")
    p.add_argument("--image-mean", default="", choices=["", "stored", "pretraining"],
                   help="aligned encoder's image centre (serve with the same model.image_mean): pretraining "
                        "for natural photos, stored for the encoder folder's domain; '' = the folder's")
    p.add_argument("--out", type=Path, required=True, help="output folder of the prompt learner")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("out/feature_cache"), help="image feature cache")
    p.add_argument("--no-progress", action="store_true")
    for name, default in asdict(TrainConfig()).items():
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    args = p.parse_args(argv)
    cfg = TrainConfig(**{k: getattr(args, k) for k in asdict(TrainConfig())})

    import torch

    from learned_nodes.cocoop.data import few_shot_indices, load_dataset
    from learned_nodes.cocoop.encoders import load_encoder
    from learned_nodes.cocoop.features import image_features
    from learned_nodes.cocoop.inference import save_prompt_learner
    from learned_nodes.cocoop.defaults import default_encoder_path

    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data, "train")
    classes = select_classes(args.classes, data.class_names)
    names = [data.class_names[c] for c in classes]
    encoder = load_encoder(args.encoder or default_encoder_path(), args.device, args.image_mean)
    idx = few_shot_indices(data.labels, classes, cfg.shots, cfg.seed)
    remap = {c: i for i, c in enumerate(classes)}
    labels = np.asarray([remap[int(data.labels[i])] for i in idx])
    print(f"[cocoop-train] {cfg.method} on {data.name}: {len(names)} classes x {cfg.shots} shots "
          f"({cfg.views} views each), encoder {encoder.encoder_id}")
    feats = image_features(encoder, data, idx, cfg.views, cfg.seed, cache_dir=args.cache,
                           progress=not args.no_progress)
    model, history = train_prompt_learner(encoder, feats, labels, names, cfg, progress=not args.no_progress)
    info = {"data": data.name, "class_names": names, "train": asdict(cfg), "history": history}
    save_prompt_learner(model, args.out, info)
    last = [h for h in history if "loss" in h][-1]
    print(f"[cocoop-train] final loss {last['loss']:.3f}, train acc {last['train_acc']:.3f}, "
          f"{history[-1]['train_seconds']:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
