"""`make eval-pruned`: a pruned model against the dense one on text no tuning step saw.

    python -m learned_nodes.loraprune.eval_pruned --model data/models/smollm2_pruned_20_mlp --out out/eval_pruned

Measures both models the way the benchmark does (bench_measure.evaluate, its token counts and judge
settings): pydoc validation / test
perplexity (the tuning corpus), held-out perplexity (learned_nodes.llm.heldout: licences, Shakespeare),
the instruction check judged by the dense model (learned_nodes.llm.instruction_eval) and greedy tokens/s;
then the targets of the pruned model's ratio (20 %: held-out within 1.15x dense, instruction scores
within 10 %; 50 %: held-out below 2x) and the status-report answers. Writes OUT/eval.json and OUT/eval.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eval-pruned", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the pruned folder")
    p.add_argument("--dense", default="", help="the dense model ('' = SmolLM2-135M GGUF)")
    p.add_argument("--out", default="out/eval_pruned")
    p.add_argument("--data", default="pydoc", help="the tuning corpus (its val / test splits)")
    p.add_argument("--eval-tokens", type=int, default=2048)
    p.add_argument("--heldout-tokens", type=int, default=2048)
    p.add_argument("--answer-tokens", type=int, default=48)
    p.add_argument("--judge-others", type=int, default=2)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--stride", type=int, default=256)
    p.add_argument("--gen-tokens", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    return p


def demo_status_reports(model, tok, args) -> list[dict]:
    """The demo's status prompt on the fixed facts: the greedy answer and whether it is correct."""
    from learned_nodes.llm.instruction_eval import (DEMO_STATUS_PROMPTS, STATUS_FACTS, greedy_answers,
                                                    status_report_correct)

    answers = greedy_answers(model, tok, DEMO_STATUS_PROMPTS, args.answer_tokens, args.device, not args.quiet)
    return [{"facts": f"{d:.1f} m, {w} of {s} scans degenerate", "answer": a,
             "correct": status_report_correct(a, (d, p, w, s, x))}
            for a, (d, p, w, s, x) in zip(answers, STATUS_FACTS)]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.instruct, args.instruct_ratios = True, [0.0]
    import torch

    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.bench_measure import evaluate, load_data
    from learned_nodes.loraprune.bench_report import run_table, targets

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        dense, tok = load_causal_lm(args.dense or None, device=args.device, dtype=torch.float32)
        pruned, _ = load_causal_lm(args.model, device=args.device, dtype=torch.float32)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"eval-pruned: {exc}") from None
    structure = getattr(pruned.config, "pruned_structure", None) or {}
    ratio = float(structure.get("target_ratio", 0.0))
    data = load_data(argparse.Namespace(**{**vars(args), "out": str(out)}), tok)
    runs = [{"label": "dense", "method": "dense", "ratio": 0.0,
             **evaluate(dense, data, args, tok, judge=dense)}]
    runs.append({"label": f"{structure.get('method', 'pruned')} ({args.model})",
                 "method": structure.get("method", "pruned"), "ratio": ratio,
                 "recovery": structure.get("recovery", "corpus"),
                 **evaluate(pruned, data, args, tok, judge=dense)})
    demo = {r["label"]: demo_status_reports(model, tok, args) for r, model in zip(runs, (dense, pruned))}
    results = {"settings": vars(args), "runs": runs, "demo_status": demo, "elapsed_s": time.perf_counter() - t0}
    (out / "eval.json").write_text(json.dumps(results, indent=2, default=str))
    lines = [f"# {args.model} against the dense model", "", *run_table(results), "", "## Targets", "",
             *targets(results), "", "## The demo's status report (suite_client's prompt, greedy)", ""]
    for name, rows in demo.items():
        n_ok = sum(r["correct"] for r in rows)
        lines += [f"- {name}: {n_ok} of {len(rows)} correct (distance and degeneracy stated, no invented "
                  "figure)", *[f"  - {r['facts']}: {r['answer']!r}" for r in rows]]
    lines += ["", f"{results['elapsed_s']:.0f} s on {args.device}, {args.threads} thread(s)."]
    (out / "eval.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
