"""The benchmark's runs in worker processes, the one-at-a-time speed pass and the checkpoints kept.

- `worker(args, k)`: `--worker K` runs configs K, K + jobs, ... of bench_measure.run_configs() on the saved
  dense model; each finished run (or its error) goes to OUT/worker_K.json, written atomically.
- `run_workers`: starts `--jobs` workers on the parent's own arguments, merges their runs in
  config order; failed runs and exit codes come back instead of silently missing rows.
- `speed_pass`: tokens/s measured in a worker shares the CPU with the other worker; this measures
  the dense model and every run's checkpoint again, one at a time, in one process.
- `keep_checkpoints`: keeps the 20 % checkpoint with the best held-out perplexity at --keep-best-20
  (replacing only an earlier pruned checkpoint there), deletes the others.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Sequence


def _write_json(path: Path, doc) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)


def worker(args, k: int) -> int:
    import torch

    from learned_nodes.llm.model_io import load_tokenizer
    from learned_nodes.loraprune.bench_measure import label_of, load_data, prune_and_measure, run_configs

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    dense_dir = out / "dense_model"
    data = load_data(args, load_tokenizer(dense_dir))
    doc: dict = {"runs": [], "failed": []}
    for cfg in run_configs(args)[k::args.jobs]:
        try:
            doc["runs"].append(prune_and_measure(cfg, dense_dir, data, args, out))
        except Exception as exc:  # noqa: BLE001 - one failed run must not end the others
            traceback.print_exc()
            doc["failed"].append({"label": label_of(cfg), "ratio": cfg.ratio, "error": repr(exc)})
        _write_json(out / f"worker_{k}.json", doc)
    return 1 if doc["failed"] else 0


def run_workers(args, argv: Sequence[str] | None, out: Path) -> tuple[list[dict], list[dict]]:
    """(runs in config order, failed runs) of `args.jobs` worker processes."""
    from learned_nodes.loraprune.bench_measure import label_of, run_configs

    base = list(sys.argv[1:] if argv is None else argv)
    procs = [subprocess.Popen([sys.executable, "-m", "learned_nodes.loraprune.bench", *base,
                               "--worker", str(k)]) for k in range(args.jobs)]
    codes = [p.wait() for p in procs]
    done, failed = {}, []
    for k in range(args.jobs):
        f = out / f"worker_{k}.json"
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            doc = {"runs": [], "failed": [{"label": f"worker {k}", "error": f"no results: {exc}"}]}
        done.update({(r["label"], r["ratio"]): r for r in doc["runs"]})
        failed += doc["failed"]
    runs = []
    for cfg in run_configs(args):
        key = (label_of(cfg), cfg.ratio)
        if key in done:
            runs.append(done[key])
        elif not any((f["label"], f.get("ratio")) == key for f in failed):
            failed.append({"label": key[0], "ratio": cfg.ratio, "error": "never ran (worker died)"})
    if any(codes):
        print(f"worker exit codes {codes}", flush=True)
    return runs, failed


def speed_pass(args, runs: list[dict] | None = None) -> int:
    """Re-measure tokens/s of the dense model and of each run's checkpoint, alone; with `runs`
    None, those of OUT/results.json (rewritten)."""
    import torch

    from learned_nodes.llm.corpus import load_corpus, tokenize
    from learned_nodes.llm.model_io import load_causal_lm, load_tokenizer
    from learned_nodes.loraprune.bench_measure import greedy_tokens_per_s

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = None
    if runs is None:
        results = json.loads((out / "results.json").read_text())
        runs = results["runs"]
    tok = load_tokenizer(out / "dense_model")
    prompt = tokenize(tok, load_corpus(args.data).test)[:32]          # as bench_measure.evaluate's prompt
    for r in runs:
        path = out / "dense_model" if r["method"] == "dense" else r.get("checkpoint")
        if not path or not Path(path).exists():
            continue
        model, _ = load_causal_lm(path, device=args.device, dtype=torch.float32)
        r.setdefault("tokens_per_s_in_worker", r.get("tokens_per_s"))
        r["tokens_per_s"] = greedy_tokens_per_s(model, prompt, args.gen_tokens, args.device)
        print(f"speed {r['label']} {r['ratio']:.0%}: {r['tokens_per_s']:.1f} tok/s (alone)", flush=True)
    if results is not None:
        _write_json(out / "results.json", results)
        from learned_nodes.loraprune.bench_report import write_report

        write_report(results, out)
    return 0


def heldout_score(run: dict) -> float:
    """How a run is ranked for the demo: the geometric mean of its held-out perplexities (inf
    without them); text no tuning step saw, so the pick cannot flatter the tuning data."""
    ppl = [v for v in (run.get("heldout_ppl") or {}).values() if v]
    return math.exp(sum(math.log(v) for v in ppl) / len(ppl)) if ppl else float("inf")


def keep_checkpoints(runs: list[dict], args) -> None:
    """Keep the 20 % run with the best held-out score at --keep-best-20 (replacing only an earlier
    pruned checkpoint there); delete every other checkpoint."""
    r20 = [r for r in runs if r["method"] not in ("dense", "lora_only") and abs(r["ratio"] - 0.2) < 1e-9]
    keep = min(r20, key=heldout_score) if r20 and args.keep_best_20 else None
    for r in runs:
        ckpt = Path(r["checkpoint"]) if r.get("checkpoint") else None
        if ckpt is None or not ckpt.exists():
            continue
        if r is keep:
            dest = Path(args.keep_best_20)
            if dest.exists():
                try:
                    earlier = "pruned_structure" in json.loads((dest / "config.json").read_text())
                except (OSError, ValueError):
                    earlier = False
                if not earlier:
                    raise FileExistsError(f"{dest} exists and is not a pruned checkpoint: not replaced")
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(ckpt), dest)
            r["checkpoint"] = str(dest)
            r["kept_as_best_20"] = True
        else:
            shutil.rmtree(ckpt)
            r["checkpoint"] = None
