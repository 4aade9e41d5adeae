"""Benchmark: every method x seeds on one fixed budget; writes results.json and a markdown table.

    python -m learned_nodes.daft.bench --backbone efficientnet-lite0 --seeds 0 1 2 --epochs 2 --out out/bench_daft
Reports mean +- std over seeds of ID, OOD-digits and corrupted accuracy and OOD feature CKA.
(Not run in full here: on 2 CPU cores an EfficientNet epoch at 64 px takes ~30-60 s per method.)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from learned_nodes.daft.backbones import BACKBONES
from learned_nodes.daft.data import load_digits_data
from learned_nodes.daft.methods import METHODS, TuneConfig
from learned_nodes.daft.tune import run

COLUMNS = ("id", "ood_digits", "id_corrupted", "cka")


def summarise(results: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """{method: {column: (mean, std)}} over seeds."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in results:
        m = r["metrics"]
        row = table.setdefault(r["method"], {c: [] for c in COLUMNS})
        for c in COLUMNS:
            row[c].append(m["distortion_ood"]["cka"] if c == "cka" else m[c])
    return {k: {c: (float(np.mean(v)), float(np.std(v))) for c, v in row.items()} for k, row in table.items()}


def markdown(summary: dict) -> str:
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for method, row in summary.items():
        lines.append(f"| {method} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in row.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", choices=BACKBONES, default="efficientnet-lite0")
    p.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=sorted(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--lr-backbone", type=float, default=1e-3)
    p.add_argument("--lr-head", type=float, default=0.1)
    p.add_argument("--probe-lr", type=float, default=None)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    data = load_digits_data(a.image_size, n_train=a.n_train)
    results = []
    for method in a.methods:
        for seed in a.seeds:
            cfg = TuneConfig(method=method, epochs=a.epochs, max_steps=a.max_steps,
                             lr_backbone=a.lr_backbone, lr_head=a.lr_head, probe_lr=a.probe_lr,
                             seed=seed, device=a.device)
            results.append(run(cfg, a.backbone, data))
    summary = summarise(results)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps({"runs": results, "summary": summary}, indent=2) + "\n")
    (a.out / "results.md").write_text(markdown(summary))
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
