"""Benchmark: base-to-new generalisation on Fashion-MNIST (zero-shot, CoOp, CoCoOp; 3 seeds) and
throughput of batched CoCoOp inference vs the per-image loop of the reference, same model, same run.

    python -m learned_nodes.cocoop.bench --out out/bench_cocoop          # ~10-15 min on 2 cores

Writes base_to_new.md, throughput.md, results.json and base_to_new.png under --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np


def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def base_to_new(encoder, seeds: list[int], per_class: int, cfg, cache: Path, progress: bool) -> dict:
    from learned_nodes.cocoop.data import base_new_split, fashion_mnist, few_shot_indices, per_class_subset
    from learned_nodes.cocoop.evaluate import evaluate_base_new
    from learned_nodes.cocoop.features import image_features
    from learned_nodes.cocoop.inference import build_model, default_config
    from learned_nodes.cocoop.train import train_prompt_learner

    train, test = fashion_mnist("train"), fashion_mnist("test")
    base, new = base_new_split(len(train.class_names))
    test_idx = per_class_subset(test.labels, base + new, per_class, seed=0)
    test_feats = image_features(encoder, test, test_idx, cache_dir=cache, progress=progress)[:, 0]
    zs_model = build_model(encoder, default_config(encoder, "zero-shot"))
    zs = evaluate_base_new(zs_model, encoder, test, test_idx, test_feats, base, new)
    results: dict = {"zero-shot": [zs]}
    names = [train.class_names[c] for c in base]
    models = {}
    for seed in seeds:
        idx = few_shot_indices(train.labels, base, cfg.shots, seed)
        labels = np.asarray([base.index(int(train.labels[i])) for i in idx])
        feats = image_features(encoder, train, idx, cfg.views, seed, cache_dir=cache, progress=progress)
        for method in ("coop", "cocoop"):
            run_cfg = replace(cfg, method=method, seed=seed)
            model, hist = train_prompt_learner(encoder, feats, labels, names, run_cfg, progress=progress)
            res = evaluate_base_new(model, encoder, test, test_idx, test_feats, base, new)
            res["train_seconds"] = hist[-1]["train_seconds"]
            results.setdefault(method, []).append(res)
            models[(method, seed)] = model
            print(f"[bench] seed {seed} {method:7s} base {res['base']:.1f} new {res['new']:.1f} "
                  f"HM {res['hm']:.1f} ({res['train_seconds']:.0f} s)", flush=True)
    return {"results": results, "models": models, "test_feats": test_feats, "n_test": len(test_idx),
            "base": [test.class_names[c] for c in base], "new": [test.class_names[c] for c in new]}


def pad_prompts(prompts, length: int):
    """The reference pads every prompt to CLIP's 77 tokens; same prompts, padded, for comparison."""
    import torch

    from learned_nodes.cocoop.model import ClassPrompts

    c, s, d = prompts.suffix.shape
    extra = length - prompts.mask.shape[1]
    if extra <= 0:
        return prompts
    pad = prompts.suffix[:, -1:].expand(c, extra, d)  # any embedding: masked out
    mask = torch.cat([prompts.mask, torch.zeros(c, extra, dtype=prompts.mask.dtype)], 1)
    return ClassPrompts(prompts.names, prompts.prefix, torch.cat([prompts.suffix, pad], 1), mask)


def throughput(model, encoder, feats, class_names: list[str], batch: int, reps: int) -> dict:
    """Images/s of the prompt + text part (what differs) for: batched, per-image loop, and the
    per-image loop on prompts padded to 77 tokens as the reference does."""
    import torch

    prompts = encoder.text.class_prompts(class_names, model.cfg.n_ctx)
    f = feats[:batch]
    out = {}
    with torch.inference_mode():
        ref = model(f, prompts)
        assert torch.allclose(ref, model.forward_loop(f, prompts), atol=1e-4), "batched != loop"
        for name, fn in (("batched", lambda: model(f, prompts)),
                         ("per-image loop", lambda: model.forward_loop(f, prompts)),
                         ("per-image loop, 77-token prompts (reference)",
                          lambda: model.forward_loop(f, pad_prompts(prompts, 77)))):
            fn()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[name] = batch / statistics.median(times)
    return out


def throughput_table(tp: dict, args) -> str:
    import torch

    tl = ["# Batched CoCoOp inference vs the per-image loop (same model, same run)", "",
          f"Prompt + text-encoder part (image features cached), {args.tp_batch} images, median of "
          f"{args.tp_reps} runs, torch threads {torch.get_num_threads()}.", "",
          "| classes | formulation | images/s | speed-up of batched |", "| --- | --- | --- | --- |"]
    for n_cls, row in tp.items():
        for name, ips in row.items():
            tl.append(f"| {n_cls} | {name} | {ips:.1f} | {row['batched'] / ips:.2f}x |")
    return "\n".join(tl) + "\n"


def throughput_only(encoder, args) -> int:
    """Throughput on the shipped CoCoOp prompt learner and real Fashion-MNIST test features."""
    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES, fashion_mnist, per_class_subset
    from learned_nodes.cocoop.features import image_features
    from learned_nodes.cocoop.inference import load_prompt_learner
    from learned_nodes.cocoop.defaults import default_prompt_learner_path

    model, _ = load_prompt_learner(encoder, default_prompt_learner_path())
    test = fashion_mnist("test")
    idx = per_class_subset(test.labels, range(10), max(args.tp_batch // 10 + 1, 1), seed=0)
    feats = image_features(encoder, test, idx, cache_dir=args.cache, progress=not args.no_progress)[:, 0]
    tp = {n: throughput(model, encoder, feats, list(FASHION_MNIST_CLASSES[:n]), args.tp_batch, args.tp_reps)
          for n in (5, 10)}
    text = throughput_table(tp, args)
    (args.out / "throughput.md").write_text(text)
    print(text)
    return 0


def write_reports(out: Path, bn: dict, tp: dict, cfg, args) -> None:
    res = bn["results"]
    lines = [
        "# CoCoOp base-to-new on Fashion-MNIST (aligned EfficientNet-Lite0 + MiniLM encoder)", "",
        f"Base classes (trained on): {', '.join(bn['base'])}. New classes (never trained on): "
        f"{', '.join(bn['new'])}.",
        f"{cfg.shots} shots per base class, seeds {args.seeds}; test: {bn['n_test']} Fashion-MNIST test "
        f"images ({args.per_class} per class); base = 5-way among base classes, new = 5-way among new "
        "classes.",
        f"Training: {json.dumps({k: v for k, v in asdict(cfg).items() if k not in ('method', 'seed')})}.", "",
        "| method | base | new | HM |", "| --- | --- | --- | --- |"]
    for method in ("zero-shot", "coop", "cocoop"):
        rows = res[method]
        cells = [_mean_std([r[k] for r in rows]) for k in ("base", "new", "hm")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed:", "", "| method | seed | base | new | HM |", "| --- | --- | --- | --- | --- |"]
    for method in ("coop", "cocoop"):
        for seed, r in zip(args.seeds, res[method]):
            lines.append(f"| {method} | {seed} | {r['base']:.1f} | {r['new']:.1f} | {r['hm']:.1f} |")
    mean = {m: {k: statistics.mean(r[k] for r in res[m]) for k in ("base", "new", "hm")} for m in res}
    shape = {
        "CoOp best on base": mean["coop"]["base"] >= max(mean["zero-shot"]["base"], mean["cocoop"]["base"]),
        "CoOp worst on new": mean["coop"]["new"] <= min(mean["zero-shot"]["new"], mean["cocoop"]["new"]),
        "CoCoOp HM above both": mean["cocoop"]["hm"] > max(mean["zero-shot"]["hm"], mean["coop"]["hm"]),
    }
    lines += ["", "Paper's shape (CoCoOp paper, 11-data-set average): " +
              "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in shape.items()), "",
              "Caveat: most Fashion-MNIST names have near-twins among the ImageNet classes the encoder was "
              "aligned on, so 'new' means new to prompt learning, not new to the encoders."]
    (out / "base_to_new.md").write_text("\n".join(lines) + "\n")
    (out / "throughput.md").write_text(throughput_table(tp, args))
    (out / "results.json").write_text(json.dumps({"base_to_new": res, "shape": shape, "throughput": tp,
                                                  "config": asdict(cfg), "seeds": args.seeds}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for i, method in enumerate(("zero-shot", "coop", "cocoop")):
            vals = [[r[k] for r in res[method]] for k in ("base", "new", "hm")]
            ax.bar(np.arange(3) + (i - 1) * 0.27, [np.mean(v) for v in vals], 0.27,
                   yerr=[np.std(v) for v in vals], label=method, capsize=3)
        ax.set_xticks(range(3), ["base", "new", "harmonic mean"])
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Fashion-MNIST base-to-new, 16 shots")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "base_to_new.png", dpi=120)
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    from learned_nodes.cocoop.train import TrainConfig

    p = argparse.ArgumentParser(prog="cocoop-bench", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_cocoop"))
    p.add_argument("--encoder", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--per-class", type=int, default=200, help="test images per class")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--tp-batch", type=int, default=32)
    p.add_argument("--tp-reps", type=int, default=5)
    p.add_argument("--cache", type=Path, default=Path("out/feature_cache"))
    p.add_argument("--throughput-only", action="store_true",
                   help="only the throughput part, on the shipped CoCoOp prompt learner")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    import torch

    from learned_nodes.cocoop.encoders import load_encoder
    from learned_nodes.cocoop.defaults import default_encoder_path

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    encoder = load_encoder(args.encoder or default_encoder_path())
    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES

    if args.throughput_only:
        return throughput_only(encoder, args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, views=args.views)
    bn = base_to_new(encoder, args.seeds, args.per_class, cfg, args.cache, not args.no_progress)
    model = bn["models"][("cocoop", args.seeds[0])]

    tp = {}
    for n_cls in (5, 10):
        tp[n_cls] = throughput(model, encoder, bn["test_feats"], list(FASHION_MNIST_CLASSES[:n_cls]),
                               args.tp_batch, args.tp_reps)
        print(f"[bench] throughput, {n_cls} classes: " +
              ", ".join(f"{k} {v:.1f} img/s" for k, v in tp[n_cls].items()), flush=True)
    write_reports(args.out, bn, tp, cfg, args)
    print((args.out / "base_to_new.md").read_text())
    print((args.out / "throughput.md").read_text())
    print(f"[bench] done in {time.monotonic() - t0:.0f} s (torch threads {torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
