"""Benchmark: dense, lora_only, LoRAPrune, streamed Taylor, Taylor (LLM-Pruner), magnitude, random.

    python -m learned_nodes.loraprune.bench --out out/bench_loraprune [--steps 80] [--jobs 2] [--device cuda]

Every run gets the same `steps` of LoRA training (LoRAPrune: its whole iterative run; baselines:
recovery after one-shot pruning; lora_only: the dense model, nothing pruned) on the same training
windows (same seed), and every pruned run removes the same number of parameters (structures.py).
The iterative methods (LoRAPrune; streamed_taylor, ours: the same run with the exact Taylor
importance streamed out of the LoRA backward) run once per cool-down in --cooldowns (the fraction
of the budget spent at the final masks); the one compared with the baselines is chosen on
VALIDATION perplexity, never on test.
Measured: validation and test perplexity (fixed context / stride / token count), parameter counts,
greedy tokens/s (batch 1), checkpoint size on disk; and, each in its own subprocess, the memory of
the pruning stage of LoRAPrune and streamed Taylor vs full-gradient Taylor (bench_memory.py).
One run (prune, measure, save) is bench_measure.py.
--jobs N spreads the runs over N worker processes (one per core; bench_runs.py): their tokens/s are
then measured again, one model at a time, once every run is done. results.json is rewritten as
runs finish (partial results survive), results.md + results.png at the end. Targets at 20 and 50 %.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from learned_nodes.loraprune.bench_measure import evaluate, load_data, prune_and_measure, run_configs


def save_dense(model, tok, folder: Path) -> Path:
    """The dense model as a plain safetensors HF folder (GGUF quantisation info dropped)."""
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def run_memory(args, dense_dir: Path, train_ids, out: Path) -> dict:
    """LoRAPrune vs Taylor pruning-stage memory, each in a fresh subprocess on the same batches."""
    import torch
    from safetensors.torch import save_file

    from learned_nodes.llm.corpus import training_batches

    gen = torch.Generator().manual_seed(args.seed + 1)
    it = training_batches(train_ids, args.seq_len, args.batch_size, gen)
    batch_file = out / "memory_batches.safetensors"
    save_file({"ids": torch.stack([next(it) for _ in range(args.memory_steps)]).contiguous()}, str(batch_file))
    res = {}
    # default glibc malloc, then a fixed mmap threshold (no heap fragmentation from the dynamic one)
    for alloc, env in (("", {}), (" (MALLOC_MMAP_THRESHOLD_=65536)", {"MALLOC_MMAP_THRESHOLD_": "65536"})):
        for method in ("loraprune", "streamed_taylor", "taylor"):
            cmd = [sys.executable, "-m", "learned_nodes.loraprune.bench_memory", "--model", str(dense_dir),
                   "--batches", str(batch_file), "--method", method, "--device", args.device,
                   "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**os.environ, **env})
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            key = method + alloc
            res[key] = json.loads(lines[-1]) if proc.returncode == 0 and lines else \
                {"error": proc.stderr[-2000:]}
            print(f"memory {key}: {res[key]}", flush=True)
    return res


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="loraprune-bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/bench_loraprune")
    p.add_argument("--model", default="", help="dense model ('' = SmolLM2-135M GGUF)")
    p.add_argument("--data", default="pydoc")
    p.add_argument("--methods", nargs="*",
                   default=["loraprune", "streamed_taylor", "taylor", "llm_pruner", "magnitude", "random"])
    p.add_argument("--distill-methods", nargs="*", default=[],
                   help="methods also run with data-free (distillation) recovery ('' none)")
    p.add_argument("--kd-methods", nargs="*", default=[],
                   help="methods also run with corpus distillation recovery (the dense model's "
                        "distributions on the tuning corpus)")
    p.add_argument("--kd-ce-weight", type=float, default=1.0,
                   help="distillation recoveries: weight of the next-token loss beside the KL")
    p.add_argument("--conversations", type=int, default=256,
                   help="transcripts the dense teacher writes for data-free recovery")
    p.add_argument("--head-share", type=float, default=1.0,
                   help="share of the ratio taken as query heads (1: the reference's "
                        "round(ratio x heads); 0: MLP channels only)")
    p.add_argument("--global-cap", type=float, default=0.0,
                   help="one-shot scored methods: allocate the channels over the layers together, "
                        "a layer losing at most CAP x its uniform share (0: uniform per layer)")
    p.add_argument("--ratios", nargs="+", type=float, default=[0.5, 0.2])
    p.add_argument("--cooldown", type=float, default=0.5,
                   help="fraction of the steps at the final structure, every method (fair schedule)")
    p.add_argument("--no-lora-only", dest="lora_only", action="store_false",
                   help="skip the dense + same LoRA training row")
    p.add_argument("--steps", type=int, default=80, help="LoRA steps of every run (same budget)")
    p.add_argument("--prune-every", type=int, default=10, help="steps between mask updates (iterative)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--eval-tokens", type=int, default=16384, help="validation / test tokens for perplexity")
    p.add_argument("--heldout-tokens", type=int, default=4096,
                   help="tokens of each held-out corpus for perplexity (0: skip)")
    p.add_argument("--no-instruct", dest="instruct", action="store_false",
                   help="skip the instruction check (35 prompts, judged by the dense model)")
    p.add_argument("--instruct-ratios", nargs="*", type=float, default=[0.0, 0.2, 0.5],
                   help="targets whose runs get the instruction check (0: dense, lora_only)")
    p.add_argument("--answer-tokens", type=int, default=48, help="instruction check: greedy tokens per answer")
    p.add_argument("--judge-others", type=int, default=3,
                   help="instruction check: other prompts each answer is also scored after (off-prompt PMI)")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--stride", type=int, default=256)
    p.add_argument("--gen-tokens", type=int, default=32, help="greedy tokens per speed measurement")
    p.add_argument("--memory-steps", type=int, default=2, help="steps of each memory child (0: skip)")
    p.add_argument("--keep-best-20", default="",
                   help="where the 20 %% checkpoint with the best held-out perplexity is kept ('' = none)")
    p.add_argument("--dense-from", default="",
                   help="take the dense row from this results.json (same model and settings) instead of measuring it")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for the runs")
    p.add_argument("--worker", type=int, default=-1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--speed-pass", action="store_true",
                   help="only re-measure tokens/s of OUT/results.json's kept checkpoints, one at a time")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    try:
        run_configs(args)                                # every config valid before anything runs
    except ValueError as exc:
        p.error(str(exc))
    from learned_nodes.loraprune.bench_runs import keep_checkpoints, run_workers, speed_pass, worker

    if args.worker >= 0:
        return worker(args, args.worker)
    if args.speed_pass:
        return speed_pass(args)

    import torch

    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.bench_report import write_report

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("worker_*.json"):
        stale.unlink()
    t_start = time.perf_counter()
    model, tok = load_causal_lm(args.model or None, device=args.device, dtype=torch.float32)
    data = load_data(args, tok)
    results: dict[str, Any] = {"settings": {**vars(args), "train_tokens": int(data["train"].numel()),
                                            "val_tokens": int(data["val"].numel()),
                                            "test_tokens": int(data["test"].numel()),
                                            "torch_threads": torch.get_num_threads()}, "runs": []}

    def dump() -> None:
        results["elapsed_s"] = time.perf_counter() - t_start
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))

    dense_dir = save_dense(model, tok, out / "dense_model")
    if args.distill_methods:
        from learned_nodes.loraprune.distill import cached_conversations

        t0 = time.perf_counter()
        from learned_nodes.llm.corpus import tokenize

        data["generated"] = tokenize(tok, cached_conversations(out / "teacher_text.json", model, tok,
                                                               args.conversations, args.seed, args.device,
                                                               not args.quiet))
        results["settings"]["generated_tokens"] = int(data["generated"].numel())
        results["settings"]["teacher_text_s"] = time.perf_counter() - t0
    if args.dense_from:
        dense = next(r for r in json.loads(Path(args.dense_from).read_text())["runs"] if r["method"] == "dense")
        dense["measured_in"] = args.dense_from
    else:
        dense = {"label": "dense", "method": "dense", "ratio": 0.0, **evaluate(model, data, args, tok, model),
                 "disk_bytes": (dense_dir / "model.safetensors").stat().st_size}
    results["runs"].append(dense)
    print(f"dense: ppl val {dense['val_ppl']:.2f} test {dense['test_ppl']:.2f}, {dense['params']:,} "
          f"params, {dense['tokens_per_s']:.1f} tok/s", flush=True)
    del model
    dump()
    if args.memory_steps > 0:
        results["memory"] = run_memory(args, dense_dir, data["train"], out)
        dump()
    failed = []
    if args.jobs > 1:
        runs, failed = run_workers(args, argv, out)
        results["runs"] += runs
        results["failed_runs"] = failed
        dump()
        speed_pass(args, results["runs"])
    else:
        for cfg in run_configs(args):
            results["runs"].append(prune_and_measure(cfg, dense_dir, data, args, out))
            dump()
    keep_checkpoints(results["runs"], args)
    dump()
    write_report(results, out)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} in {time.perf_counter() - t_start:.0f} s")
    if failed:
        print(f"{len(failed)} run(s) FAILED: {[f['label'] for f in failed]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
