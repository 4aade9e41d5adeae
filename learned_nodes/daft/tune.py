"""daft-tune: fine-tune a backbone with one method; writes the checkpoint and metrics.json.

    daft-tune --backbone efficientnet-lite0 --method daft --epochs 2 --lr-backbone 1e-4 \
        --lr-head 1.0 --seed 0 --out out/daft_effl0                  # built-in MNIST digits
    daft-tune --backbone tiny --train my_images/ --method lpft --out out/mine   # class subfolders
--train: a folder of class subfolders or an .npz (learned_nodes.daft.folder_data); default: the
built-in MNIST split (learned_nodes.daft.data). --backbone: efficientnet-lite0|1|2, tiny, or the
path of a Hugging Face ResNet folder.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from learned_nodes.daft.backbones import BACKBONE_HELP, TunedClassifier, build_backbone, check_backbone
from learned_nodes.daft.checkpoint import save_tuned
from learned_nodes.daft.data import DigitsData, load_digits_data
from learned_nodes.daft.distortion import extract_features, linear_cka, mean_cosine_distance
from learned_nodes.daft.methods import METHODS, TuneConfig, tune


@torch.no_grad()
def evaluate(model: TunedClassifier, data: DigitsData, device: str = "cpu",
             pretrained_feats: torch.Tensor | None = None) -> dict:
    """ID / OOD / corrupted accuracy and the feature distortion (vs `pretrained_feats`) of the
    distortion split (OOD if present, else the ID test set); one backbone pass per image."""
    sets = data.eval_sets()
    dist_key = "ood_digits" if "ood_digits" in sets else "id"
    metrics: dict = {}
    for name, (x, y) in sets.items():
        feats = extract_features(model.backbone, x, device=device)          # (N, D)
        metrics[name] = float((model.head(feats.to(device)).argmax(1).cpu() == y).float().mean())
        if name == dist_key and pretrained_feats is not None:
            metrics[f"distortion_{'ood' if name == 'ood_digits' else 'id'}"] = {
                "cosine_distance": mean_cosine_distance(pretrained_feats, feats),
                "cka": linear_cka(pretrained_feats, feats)}
    return metrics


def distortion_images(data: DigitsData) -> torch.Tensor:
    return data.ood_x if data.ood_x is not None else data.test_x


def run(cfg: TuneConfig, backbone: str, data: DigitsData, out: Path | None = None,
        full_eval: bool = True, cache: dict | None = None, dtype: str = "float32") -> dict:
    """Build, tune (best epoch on val), evaluate (val; with full_eval also ID / OOD / corrupted and
    distortion), optionally save. `cache` keeps the pretrained distortion features and the
    logistic probe between runs."""
    t0 = time.time()
    net = build_backbone(backbone, pretrained=True, seed=0)
    cache = {} if cache is None else cache
    if full_eval and "pretrained_feats" not in cache:
        cache["pretrained_feats"] = extract_features(copy.deepcopy(net), distortion_images(data),
                                                     device=cfg.device)
    model = TunedClassifier(net, len(data.labels))
    history = tune(model, data.train_x, data.train_y, cfg, data.val_x, data.val_y, cache)
    metrics = {"val": max(history["val_per_epoch"]), "best_epoch": history["best_epoch"],
               "val_per_epoch": history["val_per_epoch"]}
    if "probe_c" in history:
        metrics["probe_c"] = history["probe_c"]
    if full_eval:
        metrics.update(evaluate(model, data, cfg.device, cache["pretrained_feats"]))
    metrics["final_loss"] = (history.get("ft_loss") or [None])[-1]
    metrics["seconds"] = round(time.time() - t0, 1)
    result = {"method": cfg.method, "backbone": backbone, "seed": cfg.seed, "config": cfg.to_dict(),
              "image_size": data.image_size, "n_train": len(data.train_y), "metrics": metrics}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_tuned(out / "checkpoint", model, backbone, data.image_size, cfg.to_dict(), metrics,
                   labels=data.labels, dtype=dtype)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="daft-tune", description=__doc__.splitlines()[0])
    p.add_argument("--backbone", type=check_backbone, default="efficientnet-lite0", help=BACKBONE_HELP)
    p.add_argument("--train", type=Path, default=None,
                   help="folder of class subfolders or .npz (x, y[, labels]); default: MNIST digits")
    p.add_argument("--method", choices=sorted(METHODS), default="daft")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr-backbone", type=float, default=1e-4)
    p.add_argument("--lr-head", type=float, default=1.0)
    p.add_argument("--probe-cs", type=int, default=50, help="C values of the logistic probe (lp, lpft)")
    p.add_argument("--drop-connect", type=float, default=0.0,
                   help="EfficientNet drop-connect while fine-tuning (0: off, as the reference)")
    p.add_argument("--bn-momentum", type=float, default=0.1, help="<= 0: keep the checkpoint's")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=None, help="subsample the training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="stored weight dtype (the loader returns fp32)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cfg = TuneConfig(method=a.method, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size,
                     lr_backbone=a.lr_backbone, lr_head=a.lr_head, probe_cs=a.probe_cs,
                     drop_connect=a.drop_connect, bn_momentum=a.bn_momentum if a.bn_momentum > 0 else None,
                     seed=a.seed, device=a.device, progress=not a.no_progress)
    if a.train is None:
        data = load_digits_data(a.image_size, n_train=a.n_train)
    else:
        from learned_nodes.daft.folder_data import load_training_dir

        data = load_training_dir(a.train, a.image_size, n_train=a.n_train)
    result = run(cfg, a.backbone, data, a.out, dtype=a.dtype)
    print(f"{a.method}: " + format_metrics(result["metrics"]) + f"  ({result['metrics']['seconds']} s)"
          f" -> {a.out / 'checkpoint'}")
    return result


def format_metrics(m: dict) -> str:
    """One line: the accuracies present and the distortion."""
    names = {"val": "val", "id": "ID", "ood_digits": "OOD digits", "id_corrupted": "corrupted"}
    parts = [f"{label} {m[k]:.3f}" for k, label in names.items() if k in m]
    for key in ("distortion_ood", "distortion_id"):
        if key in m:
            parts.append(f"{key.split('_')[1].upper()} CKA {m[key]['cka']:.3f} cosine "
                         f"{m[key]['cosine_distance']:.3f}")
    return "  ".join(parts)


if __name__ == "__main__":
    main()
