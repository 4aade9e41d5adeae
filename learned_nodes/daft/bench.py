"""Benchmark: learning-rate sweep on the ID validation split over the reference's grids
(`sweep.py`), then every method x seeds at the selected rates on one fixed budget (each run keeps
its best epoch on validation), then SHOT on the OOD digits for the DAFT- and FT-tuned models.

    python -m learned_nodes.daft.bench --backbone efficientnet-lite0 --n-train 1000 --epochs 2 \
        --seeds 0 1 2 --threads 1 --stage compare --out out/bench_daft
Stages (--stage): sweep, compare (sweep first if needed), shot, report, all (sweep, compare,
shot). Every run is appended to <out>/runs.jsonl
and skipped when rerun, so an interrupted benchmark resumes. The report (results.md,
results.json, docs-ready plot results.png) is rebuilt from runs.jsonl.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from learned_nodes.daft.backbones import BACKBONE_HELP, check_backbone
from learned_nodes.daft.data import DigitsData, load_digits_data, ood_halves
from learned_nodes.daft.methods import METHODS, TuneConfig, accuracy
from learned_nodes.daft.tune import format_metrics, run

SHOT_METHODS = ("daft", "ft")


class Runs:
    """runs.jsonl: one JSON object per finished run, keyed by `key`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    self.done[r["key"]] = r

    def add(self, key: str, result: dict) -> dict:
        result = {"key": key, **result}
        with self.path.open("a") as f:
            f.write(json.dumps(result) + "\n")
        self.done[key] = result
        return result


def make_cfg(a: argparse.Namespace, method: str, lrb: float | None, lrh: float | None,
             seed: int) -> TuneConfig:
    """The run's config; a rate of None (lp: no learning rate) keeps TuneConfig's default."""
    rates = {k: v for k, v in (("lr_backbone", lrb), ("lr_head", lrh)) if v is not None}
    return TuneConfig(method=method, epochs=a.epochs, batch_size=a.batch_size, probe_cs=a.probe_cs,
                      drop_connect=a.drop_connect, seed=seed, device=a.device,
                      progress=not a.no_progress, **rates)


def stage_sweep(a, data: DigitsData, runs: Runs, cache: dict) -> dict:
    from learned_nodes.daft.sweep import select_rates

    def one(method: str, lrb: float, lrh: float) -> float:
        key = f"sweep/{method}/lrb={lrb:g}/lrh={lrh:g}/s={a.sweep_seed}"
        if key not in runs.done:
            r = run(make_cfg(a, method, lrb, lrh, a.sweep_seed), a.backbone, data, full_eval=False,
                    cache=cache)
            runs.add(key, {"stage": "sweep", **r})
            print(f"[sweep] {key}: {format_metrics(r['metrics'])} ({r['metrics']['seconds']} s)", flush=True)
        return runs.done[key]["metrics"]["val"]

    selected = select_rates(one)
    (a.out / "selected.json").write_text(json.dumps(selected, indent=2) + "\n")
    return selected


def stage_compare(a, data: DigitsData, runs: Runs, selected: dict, cache: dict) -> None:
    for seed in a.seeds:                   # seed-major: a cut-short run still has whole seeds
        for method in a.methods:
            rates = selected[method]
            key = f"compare/{method}/s={seed}"
            if key in runs.done:
                continue
            out = a.out / "ckpt" / f"{method}_s{seed}" if method in SHOT_METHODS else None
            r = run(make_cfg(a, method, rates["lr_backbone"], rates["lr_head"], seed), a.backbone,
                    data, out=out, cache=cache)
            runs.add(key, {"stage": "compare", **r})
            print(f"[compare] {key}: {format_metrics(r['metrics'])} ({r['metrics']['seconds']} s)",
                  flush=True)


def stage_shot(a, data: DigitsData, runs: Runs) -> None:
    from learned_nodes.daft.checkpoint import load_tuned
    from learned_nodes.daft.shot import ShotConfig, shot_adapt

    adapt_idx, report_idx = ood_halves(len(data.ood_y))
    target_x = data.ood_x[adapt_idx]                       # unlabelled: ood_y[adapt_idx] never read
    rep_x, rep_y = data.ood_x[report_idx], data.ood_y[report_idx]
    for method in SHOT_METHODS:
        for seed in a.seeds:
            key = f"shot/{method}/s={seed}"
            if key in runs.done:
                continue
            t0 = time.time()
            model, _ = load_tuned(a.out / "ckpt" / f"{method}_s{seed}" / "checkpoint", a.device)
            before = accuracy(model, rep_x, rep_y, device=a.device)
            cfg = ShotConfig(epochs=a.shot_epochs, batch_size=a.batch_size, lr=a.shot_lr, seed=seed,
                             device=a.device, progress=not a.no_progress)
            hist = shot_adapt(model, target_x, cfg)
            m = {"ood_report_before": before,
                 "ood_report_after": accuracy(model, rep_x, rep_y, device=a.device),
                 "id_after": accuracy(model, data.test_x, data.test_y, device=a.device),
                 "pseudo_changed": hist["pseudo_changed"], "final_loss": hist["loss"][-1],
                 "seconds": round(time.time() - t0, 1)}
            runs.add(key, {"stage": "shot", "method": method, "seed": seed, "config": cfg.to_dict(),
                           "n_adapt": len(adapt_idx), "n_report": len(report_idx), "metrics": m})
            print(f"[shot] {key}: OOD half {before:.3f} -> {m['ood_report_after']:.3f}, "
                  f"ID after {m['id_after']:.3f} ({m['seconds']} s)", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="daft-bench", description=__doc__.splitlines()[0])
    p.add_argument("--backbone", type=check_backbone, default="efficientnet-lite0", help=BACKBONE_HELP)
    p.add_argument("--stage", choices=("sweep", "compare", "shot", "report", "all"), default="all")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--sweep-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--probe-cs", type=int, default=50, help="C values of the logistic probe")
    p.add_argument("--drop-connect", type=float, default=0.0,
                   help="EfficientNet drop-connect while fine-tuning (0: off, as the reference)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--shot-epochs", type=int, default=2)
    p.add_argument("--shot-lr", type=float, default=1e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the 2 cores are shared)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    runs = Runs(a.out / "runs.jsonl")
    (a.out / "bench_args.json").write_text(json.dumps(
        {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}, indent=2) + "\n")
    data = load_digits_data(a.image_size, n_train=a.n_train)
    cache: dict = {}                        # pretrained distortion features, the logistic probe
    if a.stage in ("sweep", "all") or not (a.out / "selected.json").is_file():
        selected = stage_sweep(a, data, runs, cache)
    else:
        selected = json.loads((a.out / "selected.json").read_text())
    if a.stage in ("compare", "all"):
        stage_compare(a, data, runs, selected, cache)
    if a.stage in ("shot", "all"):
        stage_shot(a, data, runs)
    from learned_nodes.daft.report import write_report

    print(write_report(a.out, list(runs.done.values()), selected, vars(a)))


if __name__ == "__main__":
    main()
