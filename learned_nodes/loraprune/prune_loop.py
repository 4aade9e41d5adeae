"""The pruning runs: iterative LoRAPrune and the one-shot baselines, on one fair schedule.

Every method: `steps` optimiser steps in all, the last `final_steps` of them at its final structure
(config.py), AdamW on the LoRA parameters with the same learning-rate schedule (linear decay).
- loraprune: LoRA on all projections; every step: loss, backward (LoRA grads only), LoRA-guided
  importance folded into the moving average, AdamW step; every `prune_every` steps the masks follow
  the cubic ramp, which reaches the target at `structure_step`; then the masks stay, and LoRA
  recovers for `final_steps`.
- taylor / llm_pruner / magnitude / random: LoRA trains the dense model for `structure_step` steps
  (what the iterative methods spend ramping), is merged, then importance from that model (taylor,
  llm_pruner: FULL weight gradients accumulated over `calib_batches` batches, as LLM-Pruner),
  one-shot masks at the target, the units sliced away (as LLM-Pruner; LoRA on the masked model
  would train the same function), and fresh LoRA recovers for `final_steps`.
- streamed_taylor (ours): the loraprune run with the exact Taylor importance |W * dL/dW| that the
  LoRA backward streams out module by module (lora.track_taylor): no weight gradient is stored.
- lora_only: the same LoRA training on the dense model, nothing pruned (what recovery alone buys).
The loss is the corpus next-token loss, or with a teacher the distillation loss (distill.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from learned_nodes.loraprune.config import PruneConfig
from learned_nodes.loraprune.distill import LossFn, lm_loss, make_loss
from learned_nodes.loraprune.importance import ImportanceEMA, model_unit_scores
from learned_nodes.loraprune.lora import inject_lora, lora_parameters, merge_lora, track_taylor
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


def full_gradient_taylor(model: nn.Module, geom: LlamaGeometry, layers: list[int], batches: Iterator,
                         n: int, device: str, progress: bool = False, criterion: str = "taylor",
                         loss_fn: LossFn = lm_loss) -> tuple[torch.Tensor, torch.Tensor, int]:
    """LLM-Pruner's estimate: gradients of EVERY weight accumulated over `n` batches (mean loss),
    then Taylor unit scores. Returns (heads (L, H), channels (L, I), bytes the .grad tensors held);
    the gradients are dropped and the model frozen again."""
    model.requires_grad_(True)
    model.train()
    model.zero_grad(set_to_none=True)
    for _ in tqdm(range(n), desc="taylor: calibration", disable=not progress, leave=False):
        (loss_fn(model, next(batches).to(device)) / n).backward()
    grad_bytes, _ = grad_and_optimizer_bytes(model, None)
    heads, channels = model_unit_scores(model, geom, layers, criterion)
    model.zero_grad(set_to_none=True)
    model.requires_grad_(False)
    return heads, channels, grad_bytes


def one_shot_masks(model: nn.Module, geom: LlamaGeometry, layers: list[int], batches: Iterator,
                   cfg: PruneConfig, generator: torch.Generator, history: dict,
                   loss_fn: LossFn = lm_loss) -> PruneMasks:
    """Baseline masks at the target ratio from the (unpruned) model; taylor and llm_pruner use
    full gradients of the training loss."""
    t0 = time.perf_counter()
    if cfg.criterion in ("taylor", "taylor_raw"):
        heads, channels, history["calib_grad_bytes"] = full_gradient_taylor(
            model, geom, layers, batches, cfg.calib_batches, cfg.device, cfg.progress, cfg.criterion,
            loss_fn)
    else:
        heads, channels = model_unit_scores(model, geom, layers, cfg.criterion, generator)
    history["importance_s"] = time.perf_counter() - t0
    return update_masks(PruneMasks.full(geom), heads, channels, layers, geom, cfg.ratio,
                        global_cap=cfg.global_cap, head_share=cfg.head_share)


class _Trainer:
    """AdamW on the LoRA parameters of `model`, steps numbered over the whole run (the learning
    rate follows cfg.lr_at(step)); an optional `after_backward(step)` sees the gradients."""

    def __init__(self, model: nn.Module, cfg: PruneConfig, loss_fn: LossFn, history: dict) -> None:
        self.model, self.cfg, self.loss_fn, self.history = model, cfg, loss_fn, history
        self.params = lora_parameters(model)
        history.setdefault("trainable_params", sum(p.numel() for p in self.params))
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(self, step: int, x: torch.Tensor, after_backward=None) -> float:
        loss = self.loss_fn(self.model, x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        if after_backward is not None:
            after_backward(step)
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr_at(step)
        self.opt.step()
        if "grad_bytes" not in self.history:
            self.history["grad_bytes"], self.history["optimizer_state_bytes"] = \
                grad_and_optimizer_bytes(self.model, self.opt)
        self.history["loss"].append(float(loss.item()))
        self.history["lr"].append(self.cfg.lr_at(step))
        return self.history["loss"][-1]

    def close(self) -> None:
        self.opt.zero_grad(set_to_none=True)


def run_pruning(model: nn.Module, batches: Iterator[torch.Tensor], cfg: PruneConfig,
                teacher: nn.Module | None = None) -> PruneResult:
    """Prune `model` (a LlamaForCausalLM, modified in place) with `cfg.method`; batches are (B, T).
    With `teacher` (the dense model) the loss is the distillation loss (recovery distill / corpus_kd)."""
    if (teacher is not None) != cfg.uses_teacher:
        raise ValueError(f"recovery '{cfg.recovery}' {'needs' if teacher is None else 'takes no'} teacher")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    geom = LlamaGeometry.from_config(model.config)
    layers = pruned_layers(geom.n_layers, cfg.skip_first_frac, cfg.skip_last)
    if not layers:
        raise ValueError(f"no layer to prune: {geom.n_layers} layers, skip_first_frac "
                         f"{cfg.skip_first_frac}, skip_last {cfg.skip_last}")
    model.to(cfg.device)
    loss_fn = make_loss(teacher, cfg.kd_ce_weight)
    history: dict = {"method": cfg.method, "recovery": cfg.recovery, "loss": [], "lr": [], "ratio": [],
                     "mask_updates": [], "structure_step": cfg.structure_step if cfg.prunes else 0}
    masks = PruneMasks.full(geom)
    hooks = None
    one_shot = cfg.prunes and not cfg.iterative
    last_dense = cfg.structure_step if one_shot else cfg.steps     # one-shot: dense LoRA, then prune
    inject_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, seed=cfg.seed)
    ema = ImportanceEMA(geom, cfg.ema)
    state = {"ratio": 0.0}
    after_backward = None
    if cfg.iterative:
        hooks = MaskHooks(model, geom, masks)
        track_taylor(model, cfg.criterion == "streamed_taylor", layers)
        updates = set(mask_update_steps(cfg.structure_step, cfg.prune_every))
        ramp_cooldown = cfg.final_steps / cfg.steps

        def after_backward(step: int) -> None:
            nonlocal masks
            if step > cfg.structure_step:                           # final structure: recovery only
                return
            ema.update(*model_unit_scores(model, geom, layers, cfg.criterion))
            if step in updates:
                ratio = cubic_sparsity(step, cfg.steps, cfg.ratio, cfg.warmup, ramp_cooldown)
                if ratio > 0:
                    masks = update_masks(masks, ema.heads, ema.channels, layers, geom, ratio,
                                         final_ratio=cfg.ratio, head_share=cfg.head_share)
                    hooks.update(masks)
                    history["mask_updates"].append({"step": step, "ratio": ratio})
                    state["ratio"] = ratio
    trainer = _Trainer(model, cfg, loss_fn, history)
    model.train()
    t0 = time.perf_counter()
    with tqdm(total=cfg.steps, desc=f"{cfg.method} {cfg.ratio:.0%} ({cfg.recovery})",
              disable=not cfg.progress, leave=False) as bar:
        for step in range(1, cfg.steps + 1):
            if one_shot and step == last_dense + 1:                  # prune, slice, fresh LoRA
                trainer.close()
                merge_lora(model)
                masks = one_shot_masks(model, geom, layers, batches, cfg, gen, history, loss_fn)
                slice_model(model, masks)
                inject_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, seed=cfg.seed + 1)
                trainer = _Trainer(model, cfg, loss_fn, history)
                state["ratio"] = cfg.ratio
                model.train()
            history["ratio"].append(state["ratio"])              # the structure this step trains
            trainer.step(step, next(batches).to(cfg.device), after_backward)
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", ratio=f"{state['ratio']:.2f}")
    trainer.close()
    track_taylor(model, False)
    history["train_s"] = time.perf_counter() - t0
    history["ema_skipped"] = ema.skipped
    model.eval()
    return PruneResult(model, masks, hooks, geom, layers, history)
