"""`loraprune`: prune a LLaMA-architecture model and write a standalone checkpoint.

    loraprune --model PATH --ratio 0.5 --data pydoc --out DIR
              [--method loraprune|streamed_taylor|taylor|llm_pruner|magnitude|random|lora_only]
              [--recovery corpus|distill|corpus_kd] [--steps N] [--cooldown 0.5] [--seq-len 128]
              [--batch-size 4] [--device cpu|cuda] [--seed 0]

--recovery distill is data-free: the dense model writes its own training text (DIR/teacher_text.json,
reused when it exists for the same --conversations and --seed) and teaches the pruned one;
--recovery corpus_kd distils the dense model's token distributions on --data's text instead.
Writes DIR (model.safetensors + config.json with pruned_structure + tokenizer) and
DIR/prune_report.json (config, parameter counts, ratios, loss curve, mask updates, memory).
"""
from __future__ import annotations

import argparse
import time
from typing import Sequence

from learned_nodes.loraprune.config import METHODS, RECOVERIES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loraprune", description="LoRA-guided structured pruning "
                                "(LoRAPrune) of a LLaMA-architecture model, or a baseline criterion.")
    p.add_argument("--model", default="", help="HF folder or .gguf ('' = the SmolLM2-135M GGUF)")
    p.add_argument("--ratio", type=float, default=0.5,
                   help="fraction of the pruned layers' attention+MLP parameters to remove")
    p.add_argument("--data", default="pydoc", help="pydoc | shakespeare | a text file or folder")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--method", default="loraprune", choices=METHODS)
    p.add_argument("--recovery", default="corpus", choices=RECOVERIES,
                   help="corpus: next-token loss on --data; distill: data-free, the dense model's own text; "
                        "corpus_kd: the dense model's distributions on --data's text")
    p.add_argument("--kd-ce-weight", type=float, default=1.0,
                   help="distill / corpus_kd: weight of the next-token loss beside the KL")
    p.add_argument("--conversations", type=int, default=256,
                   help="distill: transcripts the teacher writes (~200 tokens each)")
    p.add_argument("--head-share", type=float, default=1.0,
                   help="share of the ratio taken as query heads (1: the reference's "
                        "round(ratio x heads); 0: MLP channels only)")
    p.add_argument("--global-cap", type=float, default=0.0,
                   help="one-shot scored methods: allocate the channels over the layers together, "
                        "a layer losing at most CAP x its uniform share (0: uniform per layer)")
    p.add_argument("--steps", type=int, default=100, help="optimiser steps (same budget per method)")
    p.add_argument("--cooldown", type=float, default=0.5,
                   help="final fraction of the steps at the final structure (every method)")
    p.add_argument("--prune-every", type=int, default=10, help="steps between mask updates (iterative)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-tokens", type=int, default=0,
                   help="also report test perplexity of the pruned model on N tokens (0: skip)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from learned_nodes.loraprune.config import PruneConfig

    try:
        cfg = PruneConfig(method=args.method, ratio=args.ratio, steps=args.steps, cooldown=args.cooldown,
                          recovery=args.recovery, kd_ce_weight=args.kd_ce_weight,
                          global_cap=args.global_cap, head_share=args.head_share,
                          prune_every=args.prune_every, seq_len=args.seq_len,
                          batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed,
                          progress=not args.quiet)
    except ValueError as exc:
        raise SystemExit(f"loraprune: {exc}") from None
    import torch

    from learned_nodes.llm.corpus import load_corpus, tokenize
    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.pipeline import prune_tokens, save_run, summary_line

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        model, tok = load_causal_lm(args.model or None, device=args.device, dtype=torch.float32)
        splits = load_corpus(args.data)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"loraprune: {exc}") from None
    teacher = None
    if cfg.uses_teacher:
        teacher, _ = load_causal_lm(args.model or None, device=args.device, dtype=torch.float32)
    if cfg.recovery == "distill":
        from pathlib import Path

        from learned_nodes.loraprune.distill import cached_conversations

        texts = cached_conversations(Path(args.out) / "teacher_text.json", teacher, tok,
                                     args.conversations, args.seed, args.device, not args.quiet)
        train_ids = tokenize(tok, texts)
    else:
        train_ids = tokenize(tok, splits.train)
    print(f"model: {args.model or 'default SmolLM2-135M'} loaded in {time.perf_counter() - t0:.1f} s; "
          f"training tokens ({cfg.recovery}): {train_ids.numel():,}")
    try:
        pruned, report = prune_tokens(model, train_ids, cfg, teacher)
    except ValueError as exc:
        raise SystemExit(f"loraprune: {exc}") from None
    print(f"parameters before: {report['params_before']:,}")
    print(f"parameters after:  {report['params_after']:,}")
    print(summary_line(report))
    if args.eval_tokens > 0:
        from learned_nodes.llm.perplexity import perplexity

        test_ids = tokenize(tok, splits.test)
        report["test_ppl"] = perplexity(pruned, test_ids, context=256, stride=256,
                                        max_tokens=args.eval_tokens, device=args.device,
                                        progress=not args.quiet)
        report["test_ppl_tokens"] = min(args.eval_tokens, int(test_ids.numel()))
        print(f"test perplexity (256-token windows, stride 256, {report['test_ppl_tokens']} tokens): "
              f"{report['test_ppl']:.3f}")
    report["model"] = str(args.model or "default")
    report["data"] = str(args.data)
    out = save_run(pruned, tok, args.out, report)
    print(f"wrote {out} ({(out / 'model.safetensors').stat().st_size / 1e6:.1f} MB) and "
          f"{out / 'prune_report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
