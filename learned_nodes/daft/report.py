"""Benchmark report from runs.jsonl: markdown tables (mean +- std over seeds), results.json and
a grouped-bar plot (ID / OOD digits / corrupted accuracy per method, error bars = std)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLUMNS = {"val": "val (ID)", "id": "ID test", "ood_digits": "OOD digits", "id_corrupted": "corrupted",
           "cka": "OOD CKA", "cosine_distance": "OOD cos dist"}
SHOT_COLUMNS = {"ood_report_before": "OOD half before", "ood_report_after": "OOD half after SHOT",
                "id_after": "ID test after SHOT"}


def _value(metrics: dict, col: str) -> float:
    if col in ("cka", "cosine_distance"):
        return metrics["distortion_ood"][col]
    return metrics[col]


def summarise(runs: list[dict], stage: str, columns) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{method: {column: (mean, std, n)}} over seeds of one stage's runs (in first-seen order)."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        if r.get("stage") != stage:
            continue
        row = table.setdefault(r["method"], {c: [] for c in columns})
        for c in columns:
            row[c].append(_value(r["metrics"], c))
    return {k: {c: (float(np.mean(v)), float(np.std(v)), len(v)) for c, v in row.items()}
            for k, row in table.items()}


def rate_cell(method: str, rates: dict) -> str:
    """'lr backbone / head', '(edge)' when the winner lies on its grid's edge; lp: its probe's C."""
    if rates.get("lr_backbone") is None:
        c = rates.get("C")
        return f"C = {c:.3g}" if c is not None else "C sweep"
    edge = " (edge)" if rates.get("at_edge") or rates.get("backbone_at_edge") else ""
    return f"{rates['lr_backbone']:g} / {rates['lr_head']:g}{edge}"


def best_epochs(runs: list[dict]) -> dict[str, list[int]]:
    """{method: [best epoch of each compare run]} (lp: 0, nothing trained)."""
    out: dict[str, list[int]] = {}
    for r in runs:
        if r.get("stage") == "compare":
            out.setdefault(r["method"], []).append(int(r["metrics"].get("best_epoch", -1)))
    return out


def markdown(summary: dict, columns: dict, selected: dict | None = None) -> str:
    head = ["method"] + list(columns.values()) + (["lr backbone / head"] if selected else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for method, row in summary.items():
        cells = [f"{m:.3f} ± {s:.3f}" for m, s, _ in row.values()]
        if selected:
            cells.append(rate_cell(method, selected.get(method, {})))
        n = next(iter(row.values()))[2]
        lines.append(f"| {method} (n={n}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path, title: str) -> Path:
    """Grouped bars of ID / OOD / corrupted accuracy per method with std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("id", "ID test"), ("ood_digits", "OOD digits"), ("id_corrupted", "corrupted")]
    methods = list(summary)
    x = np.arange(len(methods))
    width = 0.27
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for i, (c, label) in enumerate(cols):
        means = [summary[m][c][0] for m in methods]
        stds = [summary[m][c][1] for m in methods]
        ax.bar(x + (i - 1) * width, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(x, [m.replace("daft_", "daft\n") for m in methods])
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.12)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: Path, runs: list[dict], selected: dict, args: dict) -> str:
    """results.md, results.json, results.png under `out`; returns the markdown."""
    summary = summarise(runs, "compare", COLUMNS)
    shot = summarise(runs, "shot", SHOT_COLUMNS)
    probe_c = [r["metrics"]["probe_c"] for r in runs
               if r.get("stage") == "compare" and r["method"] == "lp" and "probe_c" in r["metrics"]]
    if probe_c and "lp" in selected:
        selected = {**selected, "lp": {**selected["lp"], "C": probe_c[0]}}
    steps = ""
    if isinstance(args.get("n_train"), int) and isinstance(args.get("batch_size"), int):
        steps = f" ({args['n_train'] // args['batch_size'] * int(args.get('epochs', 1))} SGD steps)"
    budget = (f"{args.get('backbone')}, {args.get('n_train')} MNIST training images, "
              f"{args.get('epochs')} epochs{steps}, batch {args.get('batch_size')}, "
              f"{args.get('image_size')} px, seeds {args.get('seeds')}")
    epochs = "; ".join(f"{m} {e}" for m, e in best_epochs(runs).items())
    text = [f"## DAFT benchmark ({budget})", "", markdown(summary, COLUMNS, selected),
            f"Best epoch on validation per seed: {epochs}.", ""]
    if shot:
        text += ["### SHOT on the OOD digits (adapt on one half, unlabelled; report on the other)", "",
                 markdown(shot, SHOT_COLUMNS)]
    md = "\n".join(text)
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in args.items()}, "selected": selected, "summary": summary,
         "shot": shot}, indent=2) + "\n")
    if summary:
        plot(summary, out / "results.png", f"DAFT and baselines, {budget}")
    return md
