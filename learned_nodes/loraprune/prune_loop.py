"""The pruning runs: iterative LoRAPrune and the one-shot baselines, on one training path.

- loraprune: LoRA on all projections; every step: loss, backward (LoRA grads only), LoRA-guided
  importance folded into the moving average, AdamW step; every `prune_every` steps the masks follow
  the cubic ramp. LoRA keeps training between mask updates (recovery while pruning).
- taylor / magnitude / random: importance from the dense model (taylor: FULL weight gradients
  accumulated over `calib_batches` batches, as LLM-Pruner), one-shot masks at the target, then
  the same `steps` of LoRA training (the same budget as LoRAPrune's whole run). As LLM-Pruner,
  the baselines slice the pruned units away before the LoRA recovery: LoRA on the masked model
  trains the same function with the same per-element updates (the masked units' gradients are
  zero), the sliced one is just cheaper.
- streamed_taylor (ours): the loraprune run with the exact Taylor importance |W * dL/dW| that the
  LoRA backward streams out module by module (lora.track_taylor): no weight gradient is stored.
- lora_only: the same LoRA training on the dense model, nothing pruned (what recovery alone buys).
AdamW at a constant learning rate on the LoRA parameters only, for every method.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from learned_nodes.loraprune.config import PruneConfig
from learned_nodes.loraprune.importance import ImportanceEMA, model_unit_scores
from learned_nodes.loraprune.lora import inject_lora, lora_parameters, track_taylor
from learned_nodes.loraprune.masking import MaskHooks
from learned_nodes.loraprune.pruned_modules import slice_model
from learned_nodes.loraprune.schedule import cubic_sparsity, mask_update_steps
from learned_nodes.loraprune.structures import (LlamaGeometry, PruneMasks, pruned_layers,
                                                sparsity_report, update_masks)


@dataclass
class PruneResult:
    """The LoRA-adapted, masked model (hooks installed) and what the run did."""

    model: nn.Module
    masks: PruneMasks
    hooks: MaskHooks | None                 # None when the model is already sliced (baselines)
    geom: LlamaGeometry
    layers: list[int]
    history: dict = field(default_factory=dict)

    def report(self) -> dict:
        return sparsity_report(self.geom, self.masks, self.layers)


def grad_and_optimizer_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None
                             ) -> tuple[int, int]:
    """Bytes actually held right now by .grad tensors and by the optimiser state tensors."""
    grads = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    state = 0
    if optimizer is not None:
        for st in optimizer.state.values():
            state += sum(v.nbytes for v in st.values() if torch.is_tensor(v))
    return grads, state


def lm_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of a (B, T) batch."""
    return model(input_ids=x, labels=x, use_cache=False).loss


def full_gradient_taylor(model: nn.Module, geom: LlamaGeometry, layers: list[int], batches: Iterator,
                         n: int, device: str, progress: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """LLM-Pruner's estimate: gradients of EVERY weight accumulated over `n` batches (mean loss),
    then Taylor unit scores. Returns (heads (L, H), channels (L, I), bytes the .grad tensors held);
    the gradients are dropped and the model frozen again."""
    model.requires_grad_(True)
    model.train()
    model.zero_grad(set_to_none=True)
    for _ in tqdm(range(n), desc="taylor: calibration", disable=not progress, leave=False):
        (lm_loss(model, next(batches).to(device)) / n).backward()
    grad_bytes, _ = grad_and_optimizer_bytes(model, None)
    heads, channels = model_unit_scores(model, geom, layers, "taylor")
    model.zero_grad(set_to_none=True)
    model.requires_grad_(False)
    return heads, channels, grad_bytes


def one_shot_masks(model: nn.Module, geom: LlamaGeometry, layers: list[int], batches: Iterator,
                   cfg: PruneConfig, generator: torch.Generator, history: dict) -> PruneMasks:
    """Baseline masks at the target ratio from the dense model (taylor uses full gradients)."""
    t0 = time.perf_counter()
    if cfg.criterion == "taylor":
        heads, channels, history["calib_grad_bytes"] = full_gradient_taylor(
            model, geom, layers, batches, cfg.calib_batches, cfg.device, cfg.progress)
    else:
        heads, channels = model_unit_scores(model, geom, layers, cfg.criterion, generator)
    history["importance_s"] = time.perf_counter() - t0
    return update_masks(PruneMasks.full(geom), heads, channels, layers, geom, cfg.ratio)


def run_pruning(model: nn.Module, batches: Iterator[torch.Tensor], cfg: PruneConfig) -> PruneResult:
    """Prune `model` (a LlamaForCausalLM, modified in place) with `cfg.method`; batches are (B, T)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    geom = LlamaGeometry.from_config(model.config)
    layers = pruned_layers(geom.n_layers, cfg.skip_first_frac, cfg.skip_last)
    if not layers:
        raise ValueError(f"no layer to prune: {geom.n_layers} layers, skip_first_frac "
                         f"{cfg.skip_first_frac}, skip_last {cfg.skip_last}")
    model.to(cfg.device)
    history: dict = {"method": cfg.method, "loss": [], "ratio": [], "mask_updates": []}
    masks = PruneMasks.full(geom)
    hooks = None
    if cfg.prunes and not cfg.iterative:
        masks = one_shot_masks(model, geom, layers, batches, cfg, gen, history)
        slice_model(model, masks)
    inject_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, seed=cfg.seed)
    if cfg.iterative:
        hooks = MaskHooks(model, geom, masks)
        track_taylor(model, cfg.criterion == "streamed_taylor", layers)
    params = lora_parameters(model)
    history["trainable_params"] = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = ImportanceEMA(geom, cfg.ema)
    updates = set(mask_update_steps(cfg.steps, cfg.prune_every)) if cfg.iterative else set()
    ratio = cfg.ratio if cfg.prunes and not cfg.iterative else 0.0
    model.train()
    t0 = time.perf_counter()
    with tqdm(total=cfg.steps, desc=f"{cfg.method} {cfg.ratio:.0%}", disable=not cfg.progress,
              leave=False) as bar:
        for step in range(1, cfg.steps + 1):
            x = next(batches).to(cfg.device)                              # (B, T)
            loss = lm_loss(model, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if cfg.iterative:
                ema.update(*model_unit_scores(model, geom, layers, cfg.criterion))
            opt.step()
            if step == 1:
                history["grad_bytes"], history["optimizer_state_bytes"] = \
                    grad_and_optimizer_bytes(model, opt)
            if step in updates:
                ratio = cubic_sparsity(step, cfg.steps, cfg.ratio, cfg.warmup, cfg.cooldown)
                if ratio > 0:
                    masks = update_masks(masks, ema.heads, ema.channels, layers, geom, ratio,
                                         final_ratio=cfg.ratio)
                    hooks.update(masks)
                    history["mask_updates"].append({"step": step, "ratio": ratio})
            history["loss"].append(float(loss.item()))
            history["ratio"].append(ratio)
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", ratio=f"{ratio:.2f}")
    opt.zero_grad(set_to_none=True)
    track_taylor(model, False)
    history["train_s"] = time.perf_counter() - t0
    history["ema_skipped"] = ema.skipped
    model.eval()
    return PruneResult(model, masks, hooks, geom, layers, history)
