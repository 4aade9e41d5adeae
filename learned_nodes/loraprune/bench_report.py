"""results.md (tables + whether the targets were met) and results.png from the benchmark's results."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from learned_nodes.loraprune.config import RECOVERIES


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}"


def label(run: dict[str, Any]) -> str:
    return run.get("label", run["method"])


def same(runs: list[dict[str, Any]], method: str, ratio: float, recovery: str = "corpus"
         ) -> dict[str, Any] | None:
    """The run of `method` at `ratio` with `recovery`, if it ran."""
    return next((r for r in runs if r["method"] == method and abs(r["ratio"] - ratio) < 1e-9
                 and r.get("recovery", "corpus") == recovery), None)


def _heldout_names(runs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(n for r in runs for n in (r.get("heldout_ppl") or {})))


def status_right(run: dict[str, Any]) -> float | None:
    """Share of the 5 status-report answers that are correct (instruction_eval.status_report_correct,
    recomputed from the stored answers so every row is judged by the same rule)."""
    from learned_nodes.llm.instruction_eval import STATUS_FACTS, STATUS_PROMPTS, status_report_correct

    answers = {a["prompt"]: a["answer"] for a in (run.get("instruct") or {}).get("answers", [])}
    if not all(p in answers for p in STATUS_PROMPTS):
        return None
    return sum(status_report_correct(answers[p], f) for p, f in zip(STATUS_PROMPTS, STATUS_FACTS)) / 5


def run_table(results: dict[str, Any]) -> list[str]:
    runs = results["runs"]
    dense = next((r for r in runs if r["method"] == "dense"), None)
    held = _heldout_names(runs)
    rows = ["| method | recovery | target | parameters | val ppl | test ppl | "
            + "".join(f"held-out {n} ppl | " for n in held)
            + "instruction loglik | ok | repetitive | off-prompt | status reports right | tokens/s | speed-up | "
            "train s |", "|---|---|---|---|---|---|" + "---|" * len(held) + "---|---|---|---|---|---|---|---|"]
    for r in runs:
        speed = r["tokens_per_s"] / dense["tokens_per_s"] if dense else float("nan")
        val = f"{r['val_ppl']:.2f}" if "val_ppl" in r else "-"
        hp = r.get("heldout_ppl") or {}
        ins = r.get("instruct") or {}
        cells = "".join(f"{hp[n]:.2f} | " if n in hp else "- | " for n in held)
        sr = status_right(r)
        inst = (f"{ins['mean_loglik']:.3f} | {ins['ok']:.0%} | {ins['repetitive']:.0%} | "
                f"{ins['off_prompt']:.0%} | {'-' if sr is None else f'{sr:.0%}'} | " if ins else "- | - | - | - | - | ")
        rows.append(f"| {label(r)} | {r.get('recovery', '-') if r['method'] != 'dense' else '-'} | "
                    f"{r['ratio']:.0%} | {r['params'] / 1e6:.2f}M | {val} | {r['test_ppl']:.2f} | "
                    f"{cells}{inst}{r['tokens_per_s']:.1f} | {speed:.2f}x | {r.get('train_s', 0.0):.0f} |")
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


def _geo(values: list[float]) -> float:
    import math

    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets and the paper's claims, each with the numbers it rests on."""
    out = []
    runs = results["runs"]
    dense = next((r for r in runs if r["method"] == "dense"), None)
    dh = (dense or {}).get("heldout_ppl") or {}
    di = (dense or {}).get("instruct") or {}
    for ratio, limit in ((0.2, 1.15), (0.5, 2.0)):
        cands = [r for r in runs if abs(r["ratio"] - ratio) < 1e-9 and r.get("heldout_ppl")]
        if not cands or not dh:
            continue
        best = min(cands, key=lambda r: _geo(list(r["heldout_ppl"].values())))
        worst = max(best["heldout_ppl"][n] / dh[n] for n in best["heldout_ppl"] if n in dh)
        out.append(f"- {ratio:.0%}: held-out perplexity within {limit:g}x dense: "
                   f"{'met' if worst <= limit else 'NOT met'} (best run by held-out perplexity: "
                   f"{label(best)}, {best.get('recovery')}; worst corpus at {worst:.2f}x dense: "
                   + ", ".join(f"{n} {best['heldout_ppl'][n]:.1f} vs {dh[n]:.1f}" for n in best["heldout_ppl"]
                               if n in dh) + ")")
        bi = best.get("instruct") or {}
        if ratio == 0.2 and bi and di:
            ok_rel = bi["ok"] / max(di["ok"], 1e-9)
            ll_rel = bi["mean_loglik"] / di["mean_loglik"]          # nats/token are negative
            met = ok_rel >= 0.9 and ll_rel <= 1.1
            out.append(f"- 20 %: instruction scores within 10 % of dense: {'met' if met else 'NOT met'} "
                       f"({label(best)}: ok {bi['ok']:.0%} vs {di['ok']:.0%}, judge log-likelihood "
                       f"{bi['mean_loglik']:.3f} vs {di['mean_loglik']:.3f} nats/token)")
    for ratio in sorted({r["ratio"] for r in runs if r["ratio"] > 0}, reverse=True):
        for rec in RECOVERIES:
            lp = same(runs, "loraprune", ratio, rec)
            for base in ("llm_pruner", "taylor"):
                b = same(runs, base, ratio, rec)
                if lp and b:
                    ho = ""
                    if lp.get("heldout_ppl") and b.get("heldout_ppl"):
                        ho = (f"; held-out geo-mean {_geo(list(lp['heldout_ppl'].values())):.2f} vs "
                              f"{_geo(list(b['heldout_ppl'].values())):.2f}")
                    out.append(f"- LoRAPrune below {label(b)} at {ratio:.0%} ({rec} recovery): "
                               f"{'yes' if lp['test_ppl'] < b['test_ppl'] else 'NO'} (test "
                               f"{lp['test_ppl']:.2f} vs {b['test_ppl']:.2f}{ho})")
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
    lines = ["# LoRAPrune benchmark (SmolLM2-135M), fair schedule", "",
             f"Data: {s['data']} ({s['train_tokens']:,} train tokens; data-free runs: "
             f"{s.get('generated_tokens', 0):,} tokens the dense model wrote). Every run: {s['steps']} "
             f"LoRA steps of {s['batch_size']} x {s['seq_len']} tokens, the last {s['cooldown']:.0%} at "
             "the final structure, learning rate decayed linearly to 0 (one window stream, seed "
             f"{s['seed']}; Taylor first draws its 4 calibration batches from it); every pruned run at a "
             "target removes the same parameter count (freed KV heads counted). "
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
