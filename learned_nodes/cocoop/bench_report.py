"""Reports of the CoCoOp benchmark (bench.py): markdown tables, results.json and a bar plot."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from learned_nodes.cocoop.train import REFERENCE_SCHEDULES, reference_schedule

METHODS = {"coop": "CoOp", "cocoop": "CoCoOp"}


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def cells(rows: list[dict], keys: tuple[str, ...]) -> str:
    return " | ".join(mean_sd([r[k] for r in rows]) for k in keys)


def schedule_lines(scale: float) -> list[str]:
    out = []
    for m in ("coop", "cocoop"):
        ref, cfg = REFERENCE_SCHEDULES[m], reference_schedule(m, scale)
        out.append(f"- {METHODS[m]}: reference batch {ref['batch_size']}, {ref['epochs']} epochs; run here: "
                   f"batch {cfg.batch_size}, {cfg.epochs} epochs (x{scale:g}), lr {cfg.lr}, "
                   f"{cfg.warmup_epochs} warm-up epoch at {cfg.warmup_lr}, SGD momentum {cfg.momentum}, "
                   f"weight decay {cfg.weight_decay}, cosine, n_ctx {cfg.n_ctx} from '{cfg.ctx_init}'.")
    return out


def shape_check(zs: dict, coop: list[dict], cocoop: list[dict]) -> dict[str, bool]:
    m = {"zs": zs, "coop": {k: statistics.mean(r[k] for r in coop) for k in ("base", "new", "hm")},
         "cocoop": {k: statistics.mean(r[k] for r in cocoop) for k in ("base", "new", "hm")}}
    return {"CoOp best on base": m["coop"]["base"] >= max(m["zs"]["base"], m["cocoop"]["base"]),
            "CoOp worst on new": m["coop"]["new"] <= min(m["zs"]["new"], m["cocoop"]["new"]),
            "CoCoOp HM above both": m["cocoop"]["hm"] > max(m["zs"]["hm"], m["coop"]["hm"])}


def write_reports(out: Path, s: dict, args) -> None:
    from learned_nodes.cocoop.throughput import throughput_table

    runs, zs, chosen, best = s["runs"], s["zero_shot"], s["chosen_pooling"], s["chosen_scale"]
    main_rows = {m: runs[f"{chosen}|{best[m]}"][m] for m in METHODS}
    shape = shape_check(zs[chosen], main_rows["coop"], main_rows["cocoop"])
    keys = ("base", "new", "hm")
    lines = [
        "# CoCoOp base-to-new on Fashion-MNIST (aligned EfficientNet-Lite0 + MiniLM encoder)", "",
        f"Base classes (trained on): {', '.join(s['base'])}. New classes (never trained on): {', '.join(s['new'])}.",
        f"16 shots per base class ({s['views']} encoded views each), seeds {s['seeds']}; test: {s['n_test']} "
        f"Fashion-MNIST test images; base = 5-way among base classes, new = 5-way among new classes. "
        f"Validation (for every choice): {s['n_val']} training images of the base classes outside every "
        f"seed's shots. {s['seconds'] / 60:.0f} min on {s['torch_threads']} torch thread(s).", "",
        "Schedules (the reference's base-to-new configs, epochs scaled in one proportion):",
        *schedule_lines(s["schedule_scale"]), "",
        f"## Main table (pooling '{chosen}', chosen on validation; logit scale per method: "
        f"CoOp {best['coop']}, CoCoOp {best['cocoop']}, chosen on validation)", "",
        "| method | base | new | HM |", "| --- | --- | --- | --- |",
        f"| zero-shot | {zs[chosen]['base']:.1f} | {zs[chosen]['new']:.1f} | {zs[chosen]['hm']:.1f} |"]
    lines += [f"| {METHODS[m]} | {cells(main_rows[m], keys)} |" for m in METHODS]
    lines += ["", "Paper's shape (CoCoOp paper, 11-data-set average): " +
              "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in shape.items()), "",
              "## Ablation 1: text pooling (logit scale: each encoder's calibrated one)", "",
              "Shared shift: ||mean_c d_c||^2 / mean_c ||d_c||^2 of the Meta-Net's change d_c of each class's "
              "text feature, 1 = one shift for all classes, 0.2 = class-specific (5 classes).", "",
              "| pooling | scale | method | base val | base | new | HM | shared shift |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for pl in zs:
        z = zs[pl]
        lines.append(f"| {pl} | {z['logit_scale']:.1f} | zero-shot | {z['val']:.1f} | {z['base']:.1f} | "
                     f"{z['new']:.1f} | {z['hm']:.1f} | |")
        for m in METHODS:
            rows = runs[f"{pl}|calibrated"][m]
            shift = mean_sd([r["shared_shift"] for r in rows]) if m == "cocoop" else ""
            lines.append(f"| {pl} | {z['logit_scale']:.1f} | {METHODS[m]} | {cells(rows, ('val',) + keys)} | {shift} |")
    lines += ["", "Mean base-validation accuracy of CoOp and CoCoOp: " +
              ", ".join(f"{pl} {v:.1f}" for pl, v in s["validation_by_pooling"].items()) + f" -> {chosen}.", "",
              f"## Ablation 2: logit scale (pooling '{chosen}')", "",
              "| logit scale | method | final scale | base val | base | new | HM |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for sc in ("calibrated", "fixed 100", "learned"):
        for m in METHODS:
            rows = runs[f"{chosen}|{sc}"][m]
            lines.append(f"| {sc} | {METHODS[m]} | {mean_sd([r['logit_scale'] for r in rows])} | "
                         f"{cells(rows, ('val',) + keys)} |")
    lines += ["", "## Per seed", "", "| pooling / scale | method | seed | base val | base | new | HM | train s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tag, r in runs.items():
        for m in METHODS:
            for seed, row in zip(s["seeds"], r[m]):
                lines.append(f"| {tag.replace('|', ' / ')} | {METHODS[m]} | {seed} | {row['val']:.1f} | "
                             f"{row['base']:.1f} | {row['new']:.1f} | {row['hm']:.1f} | {row['train_seconds']:.0f} |")
    lines += ["", "Caveat: most Fashion-MNIST names have near-twins among the ImageNet classes the encoder was "
              "aligned on, so 'new' means new to prompt learning, not new to the encoders."]
    (out / "base_to_new.md").write_text("\n".join(lines) + "\n")
    (out / "throughput.md").write_text(throughput_table(s["throughput"], args))
    (out / "results.json").write_text(json.dumps({**s, "shape": shape}, indent=2))
    plot(out, zs[chosen], main_rows)


def plot(out: Path, zs: dict, rows: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    series = {"zero-shot": [[zs[k]] for k in ("base", "new", "hm")],
              **{METHODS[m]: [[r[k] for r in rows[m]] for k in ("base", "new", "hm")] for m in METHODS}}
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(np.arange(3) + (i - 1) * 0.27, [np.mean(v) for v in vals], 0.27,
               yerr=[np.std(v) for v in vals], label=name, capsize=3)
    ax.set_xticks(range(3), ["base", "new", "harmonic mean"])
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Fashion-MNIST base-to-new, 16 shots")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "base_to_new.png", dpi=120)
    plt.close(fig)
