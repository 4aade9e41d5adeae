"""results.md (tables + whether the targets were met) and results.png from the benchmark's results."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}"


def label(run: dict[str, Any]) -> str:
    return run.get("label", run["method"])


def chosen(runs: list[dict[str, Any]], method: str, ratio: float) -> dict[str, Any] | None:
    """The `method` run at `ratio` with the lowest VALIDATION perplexity (test never selects)."""
    cands = [r for r in runs if r["method"] == method and abs(r["ratio"] - ratio) < 1e-9]
    return min(cands, key=lambda r: r.get("val_ppl", float("inf"))) if cands else None


def run_table(results: dict[str, Any]) -> list[str]:
    runs = results["runs"]
    dense = next((r for r in runs if r["method"] == "dense"), None)
    rows = ["| method | target | removed (pruned layers) | removed (whole model) | parameters | "
            "val ppl | test ppl | tokens/s (greedy, batch 1) | speed-up | disk MB | train s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        speed = r["tokens_per_s"] / dense["tokens_per_s"] if dense else float("nan")
        val = f"{r['val_ppl']:.2f}" if "val_ppl" in r else "-"
        rows.append(f"| {label(r)} | {r['ratio']:.0%} | {r.get('ratio_pruned_layers', 0.0):.1%} | "
                    f"{r.get('ratio_whole_model', 0.0):.1%} | {r['params'] / 1e6:.2f}M | "
                    f"{val} | {r['test_ppl']:.2f} | {r['tokens_per_s']:.1f} | {speed:.2f}x | "
                    f"{_mb(r.get('disk_bytes'))} | {r.get('train_s', 0.0):.0f} |")
    return rows


def memory_table(mem: dict[str, Any]) -> list[str]:
    rows = ["| pruning stage | grad + optimiser MB | trainable params | peak RSS MB (process) | "
            "peak RSS MB (stage only) | s / step |", "|---|---|---|---|---|---|"]
    for name, m in mem.items():
        if "error" in m:
            rows.append(f"| {name} | failed | | | | |")
            continue
        rows.append(f"| {name} | {_mb(m['grad_plus_optimizer_bytes'])} | {m['trainable_params'] / 1e6:.2f}M | "
                    f"{_mb(m['peak_rss_bytes'])} | {_mb(m.get('stage_peak_rss_bytes'))} | "
                    f"{m['seconds_per_step']:.2f} |")
    return rows


def targets(results: dict[str, Any]) -> list[str]:
    out = []
    runs = results["runs"]
    for method, name in (("loraprune", "LoRAPrune"), ("streamed_taylor", "streamed Taylor (ours)")):
        for ratio in sorted({r["ratio"] for r in runs if r["method"] == method}, reverse=True):
            lp, ty = chosen(runs, method, ratio), chosen(runs, "taylor", ratio)
            if lp and ty:
                met = lp["test_ppl"] < ty["test_ppl"]
                target = " (the target)" if method == "loraprune" and abs(ratio - 0.5) < 1e-9 else ""
                out.append(f"- {name} test perplexity below LLM-Pruner-style Taylor's at {ratio:.0%}"
                           f"{target}: {'yes' if met else 'NO'} ({lp['test_ppl']:.2f} vs "
                           f"{ty['test_ppl']:.2f}; {label(lp)} chosen on validation; parameters "
                           f"{lp['params'] / 1e6:.2f}M vs {ty['params'] / 1e6:.2f}M)")
    mem = results.get("memory", {})
    b = mem.get("taylor", {})
    for name in ("streamed_taylor",):
        a = mem.get(name, {})
        if "grad_plus_optimizer_bytes" in a and "grad_plus_optimizer_bytes" in b:
            grad_ratio = a['grad_plus_optimizer_bytes'] / b['grad_plus_optimizer_bytes']
            out.append(f"- {name}: grad + optimiser {grad_ratio:.3f}x "
                       f"Taylor's, peak RSS {_mb(a['peak_rss_bytes'])} vs {_mb(b['peak_rss_bytes'])} MB")
    a = mem.get("loraprune", {})
    if "grad_plus_optimizer_bytes" in a and "grad_plus_optimizer_bytes" in b:
        ratio = a["grad_plus_optimizer_bytes"] / b["grad_plus_optimizer_bytes"]
        out.append(f"- grad + optimiser bytes < 0.1x Taylor's: {'met' if ratio < 0.1 else 'NOT met'} "
                   f"({ratio:.3f}x)")
        lower = a["peak_rss_bytes"] < b["peak_rss_bytes"]
        out.append(f"- peak RSS lower than Taylor's: {'met' if lower else 'NOT met'} "
                   f"({_mb(a['peak_rss_bytes'])} vs {_mb(b['peak_rss_bytes'])} MB, whole process; "
                   f"stage only {_mb(a.get('stage_peak_rss_bytes'))} vs {_mb(b.get('stage_peak_rss_bytes'))} MB)")
        fixed = " (MALLOC_MMAP_THRESHOLD_=65536)"
        a2, b2 = mem.get("loraprune" + fixed, {}), mem.get("taylor" + fixed, {})
        if "peak_rss_bytes" in a2 and "peak_rss_bytes" in b2:
            out.append(f"- same with a fixed malloc mmap threshold: {_mb(a2['peak_rss_bytes'])} vs "
                       f"{_mb(b2['peak_rss_bytes'])} MB "
                       f"({'lower' if a2['peak_rss_bytes'] < b2['peak_rss_bytes'] else 'not lower'})")
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if r["ratio"] > 0]
    flat = {label(r): r for r in results["runs"] if r["ratio"] == 0}      # dense, lora_only
    ratios = sorted({r["ratio"] for r in runs})
    labels = list(dict.fromkeys(label(r) for r in runs))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(len(labels), 1)
    for j, name in enumerate(labels):
        pts = [(i + j * width, r["test_ppl"]) for i, ra in enumerate(ratios) for r in runs
               if label(r) == name and r["ratio"] == ra]
        ax.bar([x for x, _ in pts], [y for _, y in pts], width, label=name)
    for (name, r), style in zip(flat.items(), ("--", ":")):
        ax.axhline(r["test_ppl"], color="k", ls=style, lw=1, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(ratios))], [f"{r:.0%}" for r in ratios])
    ax.set_yscale("log")
    ax.set_ylabel("test perplexity (log)")
    ax.set_xlabel("target pruning ratio (pruned layers' attention + MLP)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: dict[str, Any], out: Path) -> None:
    s = results["settings"]
    lines = ["# LoRAPrune benchmark (SmolLM2-135M)", "",
             f"Data: {s['data']} ({s['train_tokens']:,} train tokens). Every run: {s['steps']} "
             f"LoRA steps of {s['batch_size']} x {s['seq_len']} tokens (one window stream, seed {s['seed']}; "
             "Taylor first draws its 4 calibration batches from it); every pruned run at a target removes "
             "the same parameter count (freed KV heads counted). The cool-down (steps at the "
             "final masks) of each iterative method (loraprune, streamed_taylor) is chosen on validation perplexity. "
             f"Perplexity on the first {s['eval_tokens']:,} validation / test tokens, {s['context']}-token windows, "
             f"stride {s['stride']}. Device {s['device']}, {s['torch_threads']} torch thread(s); tokens/s "
             "measured with one model at a time (after the runs when they ran in parallel workers).", "",
             *run_table(results), ""]
    if results.get("memory"):
        lines += ["## Memory of the pruning stage (same model, same batches, one process each)", "",
                  *memory_table(results["memory"]), ""]
    lines += ["## Targets", "", *targets(results), ""]
    (out / "results.md").write_text("\n".join(lines))
    try:
        plot(results, out / "results.png")
    except Exception as exc:  # noqa: BLE001 - the plot is optional
        print(f"plot skipped: {exc}")
