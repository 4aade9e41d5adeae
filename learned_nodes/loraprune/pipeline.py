"""One pruning job end to end, shared by the CLI and the benchmark: dense model + training tokens
-> pruned, merged, sliced model + a JSON-able report."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from learned_nodes.loraprune.config import PruneConfig
from learned_nodes.loraprune.prune_loop import run_pruning
from learned_nodes.loraprune.pruned_checkpoint import export_pruned, save_pruned
from learned_nodes.loraprune.structures import LlamaGeometry, count_params


def check_prunable(model: nn.Module) -> None:
    """Only dense LLaMA-architecture causal LMs are pruned."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        raise ValueError(f"LoRAPrune needs a LLaMA-architecture model, got "
                         f"{getattr(cfg, 'model_type', type(model).__name__)}")
    if getattr(cfg, "pruned_structure", None):
        raise ValueError("model is already pruned (config has pruned_structure): "
                         "start from the dense one")
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")


def n_params(model: nn.Module) -> int:
    """Parameters of a module, shared (tied) tensors counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def prune_tokens(model: nn.Module, train_ids: torch.Tensor, cfg: PruneConfig,
                 teacher: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Prune `model` (modified in place) on random windows of `train_ids` (N,) (recovery
    "distill": the teacher's own text; with distill / corpus_kd, `teacher` is the dense model); returns the
    standalone pruned model (LoRA merged, units sliced) and the report."""
    from learned_nodes.llm.corpus import training_batches

    check_prunable(model)
    geom = LlamaGeometry.from_config(model.config)
    before = n_params(model)
    if before != count_params(geom):
        raise ValueError(f"model has {before} parameters, its config describes {count_params(geom)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    batches = training_batches(train_ids, cfg.seq_len, cfg.batch_size, gen)
    t0 = time.perf_counter()
    result = run_pruning(model, batches, cfg, teacher)
    pruned = export_pruned(result)
    report: dict[str, Any] = {"config": cfg.to_dict(), **result.report(),
                              "params_counted_after": n_params(pruned),
                              "history": result.history, "prune_s": time.perf_counter() - t0}
    if report["params_counted_after"] != report["params_after"]:
        raise RuntimeError("sliced model's parameter count differs from the plan")
    return pruned, report


def save_run(pruned: nn.Module, tokenizer: Any, out: str | Path, report: dict, **extra: Any) -> Path:
    """The pruned checkpoint (the run's method, target and achieved ratios, + `extra`, in its
    config) and prune_report.json beside it; returns the folder."""
    out = Path(out)
    save_pruned(pruned, tokenizer, out, extra={
        "method": report["config"]["method"], "target_ratio": report["config"]["ratio"],
        "recovery": report["config"]["recovery"],
        "ratio_pruned_layers": report["ratio_pruned_layers"],
        "ratio_whole_model": report["ratio_whole_model"], **extra})
    (out / "prune_report.json").write_text(json.dumps(report, indent=2, default=str))
    return out


def summary_line(report: dict) -> str:
    return (f"parameters before {report['params_before']:,} -> after {report['params_after']:,} "
            f"(removed {report['ratio_pruned_layers']:.1%} of the pruned layers' attention+MLP, "
            f"{report['ratio_whole_model']:.1%} of the whole model incl. embeddings)")
