"""Benchmark: base-to-new generalisation on Fashion-MNIST -- zero-shot, CoOp and CoCoOp, each on its
own reference schedule (scaled in one stated proportion), 3 seeds -- with two ablations chosen on a
base-class validation split carved from the training set (never test, never new classes):

1. text pooling (bert_text.POOLINGS; each with its own projection, built by aligned_encoder_train
   unless already under --encoders), at the encoder's calibrated logit scale;
2. logit scale on the chosen pooling: calibrated, fixed 100 (CLIP's), learned (from calibrated).

The pooling is chosen by the mean base-validation accuracy of CoOp and CoCoOp; the logit scale per
method by its own base-validation accuracy. Then throughput of batched CoCoOp vs the per-image loop.

    python -m learned_nodes.cocoop.bench --out out/bench_cocoop     # make bench-cocoop

Writes base_to_new.md, throughput.md, results.json and base_to_new.png under --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

SCALES = {"calibrated": (0.0, False), "fixed 100": (100.0, False), "learned": (0.0, True)}


def validation_indices(labels: np.ndarray, classes: list[int], exclude: np.ndarray, per_class: int,
                       seed: int = 12345) -> np.ndarray:
    """`per_class` training images of each base class that no seed trains on."""
    from learned_nodes.cocoop.data import per_class_subset

    masked = labels.copy()
    masked[exclude] = -1
    return per_class_subset(masked, classes, per_class, seed)


def encoder_for(pooling: str, args) -> Path:
    """The shipped encoder for mean pooling, else a projection fitted for `pooling` (built once)."""
    from learned_nodes.cocoop.aligned_encoder_train import main as build
    from learned_nodes.cocoop.defaults import default_encoder_path

    if pooling == "mean":
        return Path(args.encoder) if args.encoder else default_encoder_path()
    folder = args.encoders / pooling
    if not (folder / "model.safetensors").is_file():
        t0 = time.monotonic()
        build(["--out", str(folder), "--pooling", pooling, "--skip-transfer", "--no-progress"])
        print(f"[bench] built the {pooling}-pooling encoder in {time.monotonic() - t0:.0f} s", flush=True)
    return folder


def same_image_side(a, b, tol: float = 1e-4) -> bool:
    """Same image tower and preprocessing, image means equal within `tol` (a rebuild on another
    thread count differs by ~1e-6): then the image features of `b` serve `a` too."""
    import torch

    return (a.config["image_tower"] == b.config["image_tower"] and a.centre == b.centre
            and bool(torch.allclose(a.image_mean, b.image_mean, atol=tol)))


class Protocol:
    """Data, splits and cached features shared by every configuration."""

    def __init__(self, args) -> None:
        from learned_nodes.cocoop.data import base_new_split, fashion_mnist, few_shot_indices, per_class_subset

        self.args = args
        self.train, self.test = fashion_mnist("train"), fashion_mnist("test")
        self.base, self.new = base_new_split(len(self.train.class_names))
        self.test_idx = per_class_subset(self.test.labels, self.base + self.new, args.per_class, seed=0)
        self.shots = {s: few_shot_indices(self.train.labels, self.base, 16, s) for s in args.seeds}
        used = np.concatenate(list(self.shots.values()))
        self.val_idx = validation_indices(self.train.labels, self.base, used, args.val_per_class)
        assert not set(self.val_idx) & set(used), "validation overlaps the training shots"
        self.names = [self.train.class_names[c] for c in self.base]

    def features(self, encoder) -> dict:
        from learned_nodes.cocoop.features import image_features

        a, prog = self.args, not self.args.no_progress
        out = {"test": image_features(encoder, self.test, self.test_idx, cache_dir=a.cache, progress=prog)[:, 0],
               "val": image_features(encoder, self.train, self.val_idx, cache_dir=a.cache, progress=prog)[:, 0]}
        for s, idx in self.shots.items():
            out[s] = image_features(encoder, self.train, idx, a.views, s, cache_dir=a.cache, progress=prog)
        return out

    def evaluate(self, model, encoder, feats: dict) -> dict:
        from learned_nodes.cocoop.evaluate import accuracy, evaluate_base_new, shared_shift

        res = evaluate_base_new(model, encoder, self.test, self.test_idx, feats["test"], self.base, self.new)
        res["val"] = accuracy(model, encoder, self.train, self.val_idx, feats["val"], self.base)
        if model.prompt_learner.meta_net is not None:
            res["shared_shift"] = shared_shift(model, encoder, feats["test"][::20], self.names)
        return res

    def run(self, encoder, feats: dict, scale: str, tag: str) -> tuple[dict, dict]:
        """CoOp and CoCoOp on their reference schedules for every seed; (results, models)."""
        from learned_nodes.cocoop.train import reference_schedule, train_prompt_learner

        value, learn = SCALES[scale]
        results: dict = {"coop": [], "cocoop": []}
        models = {}
        for seed in self.args.seeds:
            labels = np.asarray([self.base.index(int(self.train.labels[i])) for i in self.shots[seed]])
            for method in ("coop", "cocoop"):
                cfg = reference_schedule(method, self.args.schedule_scale, seed=seed, views=self.args.views,
                                         logit_scale=value, learn_logit_scale=learn)
                model, hist = train_prompt_learner(encoder, feats[seed], labels, self.names, cfg,
                                                   progress=not self.args.no_progress)
                t0 = time.monotonic()
                res = self.evaluate(model, encoder, feats)
                res.update(train_seconds=hist[-1]["train_seconds"], eval_seconds=time.monotonic() - t0,
                           logit_scale=float(model.logit_scale),
                           epochs=cfg.epochs, batch_size=cfg.batch_size)
                results[method].append(res)
                models[(method, seed)] = model
                print(f"[bench] {tag} seed {seed} {method:6s} val {res['val']:.1f} base {res['base']:.1f} "
                      f"new {res['new']:.1f} HM {res['hm']:.1f} scale {res['logit_scale']:.1f} "
                      f"(train {res['train_seconds']:.0f} s, eval {res['eval_seconds']:.0f} s)", flush=True)
        return results, models


def partial(out: Path, zero_shot: dict, runs: dict) -> None:
    """Results so far (a long run can be inspected or cut short without losing them)."""
    doc = {"zero_shot": zero_shot, "runs": {f"{pl}|{sc}": r for (pl, sc), r in runs.items()}}
    (out / "partial.json").write_text(json.dumps(doc, indent=1))


def mean_of(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cocoop-bench", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_cocoop"))
    p.add_argument("--encoder", default=None, help="mean-pooled encoder (default: the shipped one)")
    p.add_argument("--encoders", type=Path, default=Path("out/encoders"),
                   help="where encoders for the other poolings are built / found")
    p.add_argument("--poolings", nargs="+", default=["mean", "name", "causal"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--per-class", type=int, default=100, help="test images per class")
    p.add_argument("--val-per-class", type=int, default=50, help="validation images per base class")
    p.add_argument("--schedule-scale", type=float, default=1.0,
                   help="epochs of both reference schedules times this (same proportion for both)")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tp-batch", type=int, default=32)
    p.add_argument("--tp-reps", type=int, default=5)
    p.add_argument("--cache", type=Path, default=Path("out/feature_cache"))
    p.add_argument("--throughput-only", action="store_true",
                   help="only the throughput part, on the shipped CoCoOp prompt learner")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    import torch

    from learned_nodes.cocoop.bench_report import write_reports
    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES
    from learned_nodes.cocoop.defaults import default_encoder_path
    from learned_nodes.cocoop.encoders import load_encoder
    from learned_nodes.cocoop.inference import build_model, default_config
    from learned_nodes.cocoop.throughput import throughput, throughput_only

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if args.throughput_only:
        return throughput_only(load_encoder(args.encoder or default_encoder_path()), args)
    if args.poolings[0] != "mean":
        raise SystemExit("--poolings must start with mean (the shipped encoder, the ablation's reference)")
    proto = Protocol(args)
    zero_shot, runs, models, encoders, feats = {}, {}, {}, {}, {}
    for pooling in args.poolings:                                   # 1. pooling, calibrated scale
        encoders[pooling] = load_encoder(encoder_for(pooling, args))
        same = pooling != "mean" and same_image_side(encoders[pooling], encoders["mean"])
        feats[pooling] = feats["mean"] if same else proto.features(encoders[pooling])
        zs = build_model(encoders[pooling], default_config(encoders[pooling], "zero-shot"))
        zero_shot[pooling] = proto.evaluate(zs, encoders[pooling], feats[pooling])
        zero_shot[pooling]["logit_scale"] = encoders[pooling].logit_scale
        runs[(pooling, "calibrated")], models[(pooling, "calibrated")] = proto.run(
            encoders[pooling], feats[pooling], "calibrated", f"{pooling}/calibrated")
        partial(args.out, zero_shot, runs)
    val = {pl: statistics.mean(mean_of(runs[(pl, "calibrated")][m], "val") for m in ("coop", "cocoop"))
           for pl in args.poolings}
    chosen = max(args.poolings, key=lambda pl: val[pl])
    print(f"[bench] pooling chosen on base validation: {chosen} ({json.dumps(val)})", flush=True)
    for scale in ("fixed 100", "learned"):                           # 2. logit scale, chosen pooling
        runs[(chosen, scale)], models[(chosen, scale)] = proto.run(
            encoders[chosen], feats[chosen], scale, f"{chosen}/{scale}")
        partial(args.out, zero_shot, runs)
    best = {m: max(SCALES, key=lambda s: mean_of(runs[(chosen, s)][m], "val")) for m in ("coop", "cocoop")}
    print(f"[bench] logit scale chosen on base validation: {json.dumps(best)}", flush=True)

    model = models[(chosen, best["cocoop"])][("cocoop", args.seeds[0])]
    tp = {n: throughput(model, encoders[chosen], feats[chosen]["test"], list(FASHION_MNIST_CLASSES[:n]),
                        args.tp_batch, args.tp_reps) for n in (5, 10)}
    summary = {"zero_shot": zero_shot, "runs": {f"{pl}|{sc}": r for (pl, sc), r in runs.items()},
               "validation_by_pooling": val, "chosen_pooling": chosen, "chosen_scale": best,
               "throughput": tp, "seeds": args.seeds, "schedule_scale": args.schedule_scale,
               "n_test": len(proto.test_idx), "n_val": len(proto.val_idx), "base": proto.names,
               "new": [proto.test.class_names[c] for c in proto.new], "views": args.views,
               "torch_threads": torch.get_num_threads(), "seconds": round(time.monotonic() - t0, 1)}
    write_reports(args.out, summary, args)
    print((args.out / "base_to_new.md").read_text())
    print((args.out / "throughput.md").read_text())
    print(f"[bench] done in {time.monotonic() - t0:.0f} s (torch threads {torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
