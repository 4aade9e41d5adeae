"""Throughput of batched CoCoOp inference against the reference's per-image loop (same model, same
run): the prompt + text-encoder part, on cached image features.

    python -m learned_nodes.cocoop.bench --throughput-only      # on the shipped prompt learner
"""
from __future__ import annotations

import statistics
import time


def pad_prompts(prompts, length: int):
    """The reference pads every prompt to CLIP's 77 tokens; same prompts, padded, for comparison."""
    import torch

    from learned_nodes.cocoop.model import ClassPrompts

    c, s, d = prompts.suffix.shape
    extra = length - prompts.mask.shape[1]
    if extra <= 0:
        return prompts
    pad = prompts.suffix[:, -1:].expand(c, extra, d)  # any embedding: masked out
    mask = torch.cat([prompts.mask, torch.zeros(c, extra, dtype=prompts.mask.dtype)], 1)
    return ClassPrompts(prompts.names, prompts.prefix, torch.cat([prompts.suffix, pad], 1), mask)


def throughput(model, encoder, feats, class_names: list[str], batch: int, reps: int) -> dict:
    """Images/s of the prompt + text part (what differs) for: batched, per-image loop, and the
    per-image loop on prompts padded to 77 tokens as the reference does."""
    import torch

    prompts = encoder.text.class_prompts(class_names, model.cfg.n_ctx)
    f = feats[:batch]
    out = {}
    with torch.inference_mode():
        ref = model(f, prompts)
        assert torch.allclose(ref, model.forward_loop(f, prompts), atol=1e-4), "batched != loop"
        for name, fn in (("batched", lambda: model(f, prompts)),
                         ("per-image loop", lambda: model.forward_loop(f, prompts)),
                         ("per-image loop, 77-token prompts (reference)",
                          lambda: model.forward_loop(f, pad_prompts(prompts, 77)))):
            fn()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[name] = batch / statistics.median(times)
    return out


def throughput_table(tp: dict, args) -> str:
    import torch

    tl = ["# Batched CoCoOp inference vs the per-image loop (same model, same run)", "",
          f"Prompt + text-encoder part (image features cached), {args.tp_batch} images, median of "
          f"{args.tp_reps} runs, torch threads {torch.get_num_threads()}.", "",
          "| classes | formulation | images/s | speed-up of batched |", "| --- | --- | --- | --- |"]
    for n_cls, row in tp.items():
        for name, ips in row.items():
            tl.append(f"| {n_cls} | {name} | {ips:.1f} | {row['batched'] / ips:.2f}x |")
    return "\n".join(tl) + "\n"


def throughput_only(encoder, args) -> int:
    """Throughput on the shipped CoCoOp prompt learner and real Fashion-MNIST test features."""
    from learned_nodes.cocoop.data import FASHION_MNIST_CLASSES, fashion_mnist, per_class_subset
    from learned_nodes.cocoop.features import image_features
    from learned_nodes.cocoop.inference import load_prompt_learner
    from learned_nodes.cocoop.defaults import default_prompt_learner_path

    model, _ = load_prompt_learner(encoder, default_prompt_learner_path())
    test = fashion_mnist("test")
    idx = per_class_subset(test.labels, range(10), max(args.tp_batch // 10 + 1, 1), seed=0)
    feats = image_features(encoder, test, idx, cache_dir=args.cache, progress=not args.no_progress)[:, 0]
    tp = {n: throughput(model, encoder, feats, list(FASHION_MNIST_CLASSES[:n]), args.tp_batch, args.tp_reps)
          for n in (5, 10)}
    text = throughput_table(tp, args)
    (args.out / "throughput.md").write_text(text)
    print(text)
    return 0
