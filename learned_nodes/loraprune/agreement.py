"""How well does the LoRA-guided importance rank units, compared with full-gradient Taylor?

    python -m learned_nodes.loraprune.agreement --model DENSE_DIR [--steps 40] [--out out/agreement.json]

On the dense model: Taylor unit scores (query heads, MLP channels) from FULL weight gradients on
`--calib` batches (the LLM-Pruner baseline's estimate), and a second Taylor estimate on other
batches (how much Taylor agrees with itself: the noise ceiling). Then LoRA is trained as in a
LoRAPrune run (no masks) and, after steps 1, 5, 10, 20, 40, ..., the moving average of the
LoRA-guided scores is compared with the first Taylor estimate, and so is the moving average of the
streamed Taylor scores of the same steps (exact |W * dL/dW| out of the LoRA backward, what the
streamed_taylor method uses). Magnitude and random scores are the floor. Agreement per pruned
layer, averaged over layers:
- spearman: rank correlation of the unit scores;
- overlap: |A & B| / |A| of the sets each criterion would remove at 50 % (lowest half).
Prints a table, writes JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import torch


def agreement(a: torch.Tensor, b: torch.Tensor, layers: list[int]) -> dict[str, float]:
    """Mean over `layers` of the Spearman correlation and the 50 %-removal overlap of (L, U) scores."""
    from scipy.stats import spearmanr

    rho, over = [], []
    for i in layers:
        x, y = a[i].double().numpy(), b[i].double().numpy()
        rho.append(float(spearmanr(x, y).statistic))
        k = len(x) // 2
        lo_a = set(torch.argsort(a[i], stable=True)[:k].tolist())
        lo_b = set(torch.argsort(b[i], stable=True)[:k].tolist())
        over.append(len(lo_a & lo_b) / max(k, 1))
    return {"spearman": sum(rho) / len(rho), "overlap": sum(over) / len(over)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="loraprune-agreement", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="dense HF folder (e.g. out/bench_loraprune/dense_model)")
    p.add_argument("--data", default="pydoc")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--calib", type=int, default=4, help="Taylor batches (as the benchmark's baseline)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/loraprune_agreement.json")
    args = p.parse_args(argv)
    from tqdm.auto import tqdm

    from learned_nodes.llm.corpus import load_corpus, tokenize, training_batches
    from learned_nodes.llm.model_io import load_causal_lm
    from learned_nodes.loraprune.config import PruneConfig
    from learned_nodes.loraprune.importance import ImportanceEMA, model_unit_scores
    from learned_nodes.loraprune.lora import inject_lora, lora_parameters, track_taylor
    from learned_nodes.loraprune.prune_loop import full_gradient_taylor, lm_loss
    from learned_nodes.loraprune.structures import LlamaGeometry, pruned_layers

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = PruneConfig(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size)
    model, tok = load_causal_lm(args.model, device=args.device, dtype=torch.float32)
    geom = LlamaGeometry.from_config(model.config)
    layers = pruned_layers(geom.n_layers, cfg.skip_first_frac, cfg.skip_last)
    train = tokenize(tok, load_corpus(args.data).train)
    batches = training_batches(train, args.seq_len, args.batch_size,
                               torch.Generator().manual_seed(args.seed))
    other = training_batches(train, args.seq_len, args.batch_size,
                             torch.Generator().manual_seed(args.seed + 1000))
    model.train()
    ref = full_gradient_taylor(model, geom, layers, batches, args.calib, args.device)[:2]
    ceiling = full_gradient_taylor(model, geom, layers, other, args.calib, args.device)[:2]
    gen = torch.Generator().manual_seed(args.seed)
    rows = {"taylor (other batches)": ceiling,
            "magnitude": model_unit_scores(model, geom, layers, "magnitude"),
            "random": model_unit_scores(model, geom, layers, "random", gen)}
    inject_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, seed=args.seed)
    params = lora_parameters(model)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    track_taylor(model)
    ema, ema_streamed = ImportanceEMA(geom, cfg.ema), ImportanceEMA(geom, cfg.ema)
    marks = sorted({1, 5, 10, 20, 40, 80, args.steps} & set(range(1, args.steps + 1)))
    for step in tqdm(range(1, args.steps + 1), desc="LoRA steps"):
        loss = lm_loss(model, next(batches).to(args.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        ema.update(*model_unit_scores(model, geom, layers, "lora"))
        ema_streamed.update(*model_unit_scores(model, geom, layers, "streamed_taylor"))
        opt.step()
        if step in marks:
            rows[f"lora-guided, EMA after {step} steps"] = (ema.heads.clone(), ema.channels.clone())
            rows[f"streamed Taylor, EMA after {step} steps"] = (ema_streamed.heads.clone(),
                                                                ema_streamed.channels.clone())
    result = {}
    print(f"agreement with full-gradient Taylor ({args.calib} batches), mean over {len(layers)} layers")
    print(f"{'criterion':38s} {'heads rho':>9s} {'heads 50%':>9s} {'chan rho':>9s} {'chan 50%':>9s}")
    for name, (h, c) in rows.items():
        ah, ac = agreement(h, ref[0], layers), agreement(c, ref[1], layers)
        result[name] = {"heads": ah, "channels": ac}
        print(f"{name:38s} {ah['spearman']:9.3f} {ah['overlap']:9.3f} {ac['spearman']:9.3f} "
              f"{ac['overlap']:9.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "agreement": result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
