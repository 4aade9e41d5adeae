"""Sliding-window perplexity of a causal LM on a token stream, and the `lm-eval-ppl` tool.

    lm-eval-ppl --model DIR_OR_GGUF --data pydoc --split test --context 256 --stride 256 --max-tokens 20000
    lm-eval-ppl --model DIR_OR_GGUF --data licenses --max-tokens 16384   # a held-out corpus (heldout.py)
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any, Sequence


def perplexity(model: Any, ids: Any, context: int = 256, stride: int = 256, max_tokens: int | None = None,
               device: str = "cpu", progress: bool = True) -> float:
    """exp(mean next-token NLL) of `ids` (N,) under `model`, Hugging Face style sliding windows.

    Windows of `context` tokens start every `stride` tokens (stride <= context). Each token is
    scored once: in a window only the tokens not already scored by the previous window (the last
    `stride`, fewer for the final window) count, with the rest of the window as their context. The
    very first token has no context and is never scored; with stride == context the windows are
    disjoint and the first token of every window is unscored (N - windows tokens count).
    `max_tokens` keeps the first max_tokens ids.
    """
    return perplexity_stats(model, ids, context, stride, max_tokens, device, progress)[0]


def perplexity_stats(model: Any, ids: Any, context: int = 256, stride: int = 256,
                     max_tokens: int | None = None, device: str = "cpu", progress: bool = True
                     ) -> tuple[float, int]:
    """(perplexity, number of scored tokens); see `perplexity`."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if context < 2 or not 1 <= stride <= context:
        raise ValueError(f"need context >= 2 and 1 <= stride <= context, got {context}, {stride}")
    ids = ids.reshape(-1)[: max_tokens or None].long()                        # (N,)
    n = int(ids.numel())
    if n < 2:
        raise ValueError(f"need at least 2 tokens, got {n}")
    was_training = model.training
    model.eval()
    nll_sum, counted, scored_end = 0.0, 0, 1     # tokens [1, scored_end) are scored so far
    starts = list(range(0, max(n - context, 0) + stride, stride))
    try:
        with torch.no_grad():
            for begin in tqdm(starts, desc="perplexity", unit="window", disable=not progress):
                end = min(begin + context, n)
                if end <= scored_end:
                    break
                window = ids[begin:end].to(device)[None]                      # (1, T)
                logits = model(input_ids=window, use_cache=False).logits[0]   # (T, V)
                first = max(scored_end - begin, 1)                            # first new target in window
                targets = window[0, first:]                                   # (K,)
                nll = F.cross_entropy(logits[first - 1:-1].float(), targets, reduction="sum")
                nll_sum += float(nll)
                counted += int(targets.numel())
                scored_end = end
    finally:
        model.train(was_training)
    return math.exp(nll_sum / counted), counted


def heldout_perplexities(model: Any, tokenizer: Any, names: Sequence[str] | None = None,
                         context: int = 256, stride: int = 256, max_tokens: int | None = 16384,
                         device: str = "cpu", progress: bool = True) -> dict[str, float]:
    """{name: perplexity} of `model` on each held-out corpus (sliding windows, perplexity_stats).
    A corpus whose data are missing (FileNotFoundError) is left out, with a line saying why. `names`
    None: every corpus of learned_nodes.llm.heldout.HELDOUT_CORPORA."""
    from learned_nodes.llm.heldout import HELDOUT_CORPORA, heldout_ids

    out: dict[str, float] = {}
    for name in (list(HELDOUT_CORPORA) if names is None else names):
        try:
            ids = heldout_ids(name, tokenizer, max_tokens)                 # (N,)
        except FileNotFoundError as exc:
            print(f"held-out corpus '{name}' skipped: {exc}", flush=True)
            continue
        out[name] = perplexity_stats(model, ids, context, stride, None, device, progress)[0]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lm-eval-ppl", description="Perplexity of a causal LM on a text "
                                "corpus split (sliding windows, Hugging Face style).")
    p.add_argument("--model", default="", help="HF folder, .gguf file, pruned folder ('' = SmolLM2 GGUF)")
    p.add_argument("--data", default="pydoc", help="pydoc | shakespeare | a text file or folder | "
                   "held-out:NAME (licenses, shakespeare: the whole corpus, --split ignored)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--stride", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=None, help="score only the first N tokens")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    import torch

    from learned_nodes.llm.corpus import load_corpus, tokenize
    from learned_nodes.llm.heldout import HELDOUT_CORPORA, heldout_documents, heldout_ids
    from learned_nodes.llm.model_io import load_causal_lm, resolve_model_path
    from learned_nodes.server.limits import check_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        check_device(args.device)
        heldout = args.data.removeprefix("held-out:") if args.data.startswith("held-out:") else None
        if heldout is not None and heldout not in HELDOUT_CORPORA:
            raise ValueError(f"unknown held-out corpus '{heldout}'; known: {', '.join(HELDOUT_CORPORA)}")
        docs = heldout_documents(heldout) if heldout else load_corpus(args.data).get(args.split)
        path = resolve_model_path(args.model)
        t0 = time.perf_counter()
        model, tok = load_causal_lm(path, device=args.device, dtype=args.dtype)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"lm-eval-ppl: {exc}") from None
    load_s = time.perf_counter() - t0
    ids = heldout_ids(heldout, tok, args.max_tokens) if heldout else tokenize(tok, docs)
    t0 = time.perf_counter()
    ppl, counted = perplexity_stats(model, ids, args.context, args.stride, args.max_tokens,
                                    args.device, progress=not args.quiet)
    eval_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {path} ({params / 1e6:.1f}M parameters, loaded in {load_s:.1f} s)")
    part = "all documents, held out" if heldout else f"split {args.split}"
    print(f"data: {args.data} {part} ({len(docs)} documents, {ids.numel()} tokens)")
    print(f"perplexity: {ppl:.3f}")
    print(f"tokens scored: {counted}  context: {args.context}  stride: {args.stride}  "
          f"({eval_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
