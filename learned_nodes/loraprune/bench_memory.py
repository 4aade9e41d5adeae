"""Memory of the pruning stage, measured in its own process (run by bench.py, one child per method).

    python -m learned_nodes.loraprune.bench_memory --model DENSE_DIR --batches batch.safetensors --method loraprune

- loraprune: LoRA on all projections, per step: forward, backward (LoRA grads only), LoRA-guided
  importance, AdamW step. streamed_taylor: the same with the exact Taylor sums formed in the
  LoRA backward.
- taylor (LLM-Pruner): every weight trainable, per batch: forward, backward (full gradients
  accumulated), then first-order Taylor importance; no optimiser in LLM-Pruner's pruning stage.
All three see the same (steps, B, T) token batches. Printed as one JSON line: bytes held by .grad tensors
and optimiser state (summed over the live tensors at the end of the stage; Taylor: before its
gradients are dropped), peak RSS of the process
(getrusage ru_maxrss: loading included) and the peak RSS of the stage alone (VmHWM after resetting
it through /proc/self/clear_refs, where the kernel allows), seconds per step.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Sequence


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="dense HF folder")
    p.add_argument("--batches", required=True, help="safetensors file with 'ids' (steps, B, T)")
    p.add_argument("--method", choices=["loraprune", "streamed_taylor", "taylor"], required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch
    from safetensors.torch import load_file

    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.importance import ImportanceEMA, model_unit_scores
    from learned_nodes.loraprune.config import CRITERION_OF
    from learned_nodes.loraprune.lora import inject_lora, lora_parameters, track_taylor
    from learned_nodes.loraprune.prune_loop import full_gradient_taylor, grad_and_optimizer_bytes, lm_loss
    from learned_nodes.loraprune.structures import LlamaGeometry, pruned_layers

    torch.set_num_threads(args.threads)
    batches = load_file(args.batches)["ids"]                                  # (S, B, T)
    model, _ = load_causal_lm(args.model, device=args.device, dtype=torch.float32)
    geom = LlamaGeometry.from_config(model.config)
    layers = pruned_layers(geom.n_layers)
    rss_loaded = _status_kb("VmRSS")
    reset = _reset_peak_rss()
    opt = None
    t0 = time.perf_counter()
    model.train()
    if args.method in ("loraprune", "streamed_taylor"):
        inject_lora(model)
        track_taylor(model, args.method == "streamed_taylor", layers)
        params = lora_parameters(model)
        opt = torch.optim.AdamW(params, lr=3e-4)
        ema = ImportanceEMA(geom)
        for x in batches:
            loss = lm_loss(model, x.to(args.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            ema.update(*model_unit_scores(model, geom, layers, CRITERION_OF[args.method]))
            opt.step()
        grad_bytes, opt_bytes = grad_and_optimizer_bytes(model, opt)
        trainable = sum(p.numel() for p in params)
    else:                                          # LLM-Pruner: every weight's gradient, no optimiser
        _, _, grad_bytes = full_gradient_taylor(model, geom, layers, iter(batches), len(batches),
                                                args.device)
        opt_bytes, trainable = 0, sum(p.numel() for p in model.parameters())
    seconds = time.perf_counter() - t0
    out = {"method": args.method, "steps": int(batches.shape[0]), "batch": list(batches.shape[1:]),
           "grad_bytes": grad_bytes, "optimizer_state_bytes": opt_bytes,
           "grad_plus_optimizer_bytes": grad_bytes + opt_bytes,
           "trainable_params": trainable,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "rss_after_load_bytes": (rss_loaded or 0) * 1024,
           "stage_peak_rss_bytes": (_status_kb("VmHWM") or 0) * 1024 if reset else None,
           "seconds_per_step": seconds / max(int(batches.shape[0]), 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
