"""daft-tune: fine-tune a backbone on MNIST with one method; writes the checkpoint and metrics.json.

    python -m learned_nodes.daft.tune --backbone efficientnet-lite0 --method daft --epochs 2 \
        --lr-backbone 1e-3 --lr-head 0.1 --seed 0 --out out/daft_effl0
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from learned_nodes.daft.backbones import BACKBONES, TunedClassifier, build_backbone
from learned_nodes.daft.checkpoint import save_tuned
from learned_nodes.daft.data import DigitsData, load_digits_data
from learned_nodes.daft.distortion import feature_distortion
from learned_nodes.daft.methods import METHODS, TuneConfig, accuracy, tune


def run(cfg: TuneConfig, backbone: str, data: DigitsData, out: Path | None = None) -> dict:
    """Build, tune, evaluate (ID / OOD / corrupted accuracy, OOD feature distortion), optionally save."""
    t0 = time.time()
    net = build_backbone(backbone, pretrained=True, seed=0)
    pretrained = copy.deepcopy(net).eval()
    model = TunedClassifier(net, int(data.train_y.max()) + 1)
    history = tune(model, data.train_x, data.train_y, cfg)
    metrics = {name: accuracy(model, x, y, device=cfg.device) for name, (x, y) in data.eval_sets().items()}
    metrics["distortion_ood"] = feature_distortion(pretrained, model.backbone, data.ood_x, cfg.device)
    metrics["final_loss"] = (history.get("ft_loss") or history.get("probe_loss") or [None])[-1]
    metrics["seconds"] = round(time.time() - t0, 1)
    result = {"method": cfg.method, "backbone": backbone, "seed": cfg.seed, "config": cfg.to_dict(),
              "image_size": data.image_size, "n_train": len(data.train_y), "metrics": metrics}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_tuned(out / "checkpoint", model, backbone, data.image_size, cfg.to_dict(), metrics)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", choices=BACKBONES, default="efficientnet-lite0")
    p.add_argument("--method", choices=sorted(METHODS), default="daft")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr-backbone", type=float, default=1e-3)
    p.add_argument("--lr-head", type=float, default=0.1)
    p.add_argument("--probe-epochs", type=int, default=10)
    p.add_argument("--probe-lr", type=float, default=None)
    p.add_argument("--bn-momentum", type=float, default=0.1, help="<= 0: keep the checkpoint's")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=None, help="subsample the 4000 training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    cfg = TuneConfig(method=a.method, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size,
                     lr_backbone=a.lr_backbone, lr_head=a.lr_head, probe_epochs=a.probe_epochs,
                     probe_lr=a.probe_lr, bn_momentum=a.bn_momentum if a.bn_momentum > 0 else None,
                     seed=a.seed, device=a.device, progress=not a.no_progress)
    data = load_digits_data(a.image_size, n_train=a.n_train)
    result = run(cfg, a.backbone, data, a.out)
    m = result["metrics"]
    print(f"{a.method}: ID {m['id']:.3f}  OOD digits {m['ood_digits']:.3f}  corrupted "
          f"{m['id_corrupted']:.3f}  OOD CKA {m['distortion_ood']['cka']:.3f}  ({m['seconds']} s) -> {a.out}")
    return result


if __name__ == "__main__":
    main()
