"""One benchmark run and what it measures, shared by bench.py (one process) and bench_runs.py (workers).

- `run_configs(args)`: the PruneConfig of every run, in order; `label_of(cfg)` its row name;
- `load_data(args, tok)`: train / validation / test token ids;
- `prune_and_measure(cfg, ...)`: prune the dense model, evaluate, save the checkpoint;
- `evaluate`, `greedy_tokens_per_s`: perplexities, parameter count, greedy tokens/s.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def greedy_tokens_per_s(model, prompt_ids, new_tokens: int, device: str, repeats: int = 2) -> float:
    """Best of `repeats` timed greedy generations (batch 1, KV cache) after a short warm-up."""
    import torch

    ids = prompt_ids[None].to(device)                                         # (1, P)
    kw = dict(do_sample=False, pad_token_id=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    best = 0.0
    with torch.no_grad():
        model.generate(ids, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(ids, **kw)
            dt = time.perf_counter() - t0
            best = max(best, (out.shape[1] - ids.shape[1]) / dt)
    return best


def evaluate(model, data: dict, args) -> dict[str, Any]:
    """Validation + test perplexity, parameters, greedy tokens/s; `data` from load_data()."""
    from learned_nodes.llm.perplexity import perplexity_stats
    from learned_nodes.loraprune.pipeline import n_params

    t0 = time.perf_counter()
    val_ppl, _ = perplexity_stats(model, data["val"], args.context, args.stride, args.eval_tokens,
                                  args.device, progress=not args.quiet)
    ppl, scored = perplexity_stats(model, data["test"], args.context, args.stride, args.eval_tokens,
                                   args.device, progress=not args.quiet)
    prompt_ids = data["test"][:32]
    return {"test_ppl": ppl, "val_ppl": val_ppl, "ppl_tokens_scored": scored,
            "ppl_s": time.perf_counter() - t0, "params": n_params(model),
            "tokens_per_s": greedy_tokens_per_s(model, prompt_ids, args.gen_tokens, args.device)}


def label_of(cfg) -> str:
    """Row name of a run: iterative runs (loraprune, streamed_taylor) carry their cool-down."""
    return f"{cfg.method} (cool-down {cfg.cooldown:g})" if cfg.iterative else cfg.method


def run_configs(args) -> list:
    from learned_nodes.loraprune.config import ITERATIVE, PruneConfig

    common = dict(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size,
                  device=args.device, seed=args.seed, progress=not args.quiet)
    cfgs = [PruneConfig(method="lora_only", ratio=0.0, **common)] if args.lora_only else []
    for r in args.ratios:
        for m in args.methods:
            for cd in (args.cooldowns if m in ITERATIVE else [0.1]):
                cfgs.append(PruneConfig(method=m, ratio=r, cooldown=cd, **common))
    return cfgs


def load_data(args, tok) -> dict:
    from learned_nodes.llm.corpus import load_corpus, tokenize

    splits = load_corpus(args.data)
    return {"train": tokenize(tok, splits.train), "val": tokenize(tok, splits.validation),
            "test": tokenize(tok, splits.test)}


def prune_and_measure(cfg, dense_dir: Path, data: dict, args, out: Path) -> dict[str, Any]:
    """One run: prune the dense model, evaluate, save its checkpoint (bench_runs.keep_checkpoints
    deletes all but the kept one at the end)."""
    import torch

    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.pipeline import prune_tokens, save_run, summary_line

    model, tok = load_causal_lm(dense_dir, device=args.device, dtype=torch.float32)
    pruned, report = prune_tokens(model, data["train"], cfg)
    run = {"label": label_of(cfg), "method": cfg.method, "ratio": cfg.ratio, "cooldown": cfg.cooldown,
           **evaluate(pruned, data, args)}
    ckpt = save_run(pruned, tok, out / "checkpoints" / f"{cfg.method}_{cfg.ratio}_{cfg.cooldown:g}",
                    report, test_ppl=run["test_ppl"])
    run["disk_bytes"] = (ckpt / "model.safetensors").stat().st_size
    run["checkpoint"] = str(ckpt)
    hist = report.pop("history")
    run.update({k: v for k, v in report.items() if not k.endswith("_per_layer") and k != "config"})
    run.update({"final_loss": sum(hist["loss"][-10:]) / len(hist["loss"][-10:]),
                "train_s": hist["train_s"], "grad_bytes": hist.get("grad_bytes"),
                "optimizer_state_bytes": hist.get("optimizer_state_bytes"),
                "calib_grad_bytes": hist.get("calib_grad_bytes"), "loss_curve": hist["loss"],
                "heads_kept_per_layer": report["heads_kept_per_layer"],
                "kv_heads_kept_per_layer": report["kv_heads_kept_per_layer"],
                "channels_kept_per_layer": report["channels_kept_per_layer"]})
    print(f"{run['label']} {cfg.ratio:.0%}: ppl val {run['val_ppl']:.2f} test {run['test_ppl']:.2f}; "
          f"{summary_line(report)}; {run['tokens_per_s']:.1f} tok/s; train {hist['train_s']:.0f} s",
          flush=True)
    return run
