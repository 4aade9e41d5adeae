"""Standalone pruned checkpoint: model.safetensors + config.json + tokenizer files; no pickle.

config.json = the model's Hugging Face LlamaConfig dict plus "pruned_structure":
{"unit": "query_head", "layers": [{"heads": [...], "kv_heads": [...], "intermediate_size": n}, ...],
 ...run info}. `load_pruned(path)` rebuilds a LlamaForCausalLM whose layers have the pruned shapes
(PrunedLlamaAttention + narrower LlamaMLP) in one call, without the original model or GGUF.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from learned_nodes.loraprune.lora import merge_lora
from learned_nodes.loraprune.pruned_modules import install_pruned_modules, slice_model

PRUNED_KEY = "pruned_structure"
WEIGHTS = "model.safetensors"
DROP_CONFIG_KEYS = ("quantization_config", "_name_or_path", "_model_name_or_path")


def export_pruned(result) -> nn.Module:
    """Merge LoRA into the weights, drop the mask hooks and physically slice the pruned units of a
    PruneResult's model (in place); returns the pruned LlamaForCausalLM."""
    if result.hooks is not None:
        result.hooks.remove()
    model = merge_lora(result.model)
    if not getattr(model.config, PRUNED_KEY, None):          # baselines are sliced already
        slice_model(model, result.masks)
    model.requires_grad_(False)
    return model.eval()


def config_dict(model: nn.Module, extra: dict | None = None) -> dict:
    """The HF config dict of a sliced model (+ pruned_structure, + extra run info inside it)."""
    doc = model.config.to_dict()
    for key in DROP_CONFIG_KEYS:
        doc.pop(key, None)
    structure = dict(getattr(model.config, PRUNED_KEY, None) or {})
    if "layers" not in structure:
        raise ValueError("model has no pruned_structure: slice it first (export_pruned)")
    structure.update(extra or {})
    doc[PRUNED_KEY] = structure
    doc["architectures"] = ["LlamaForCausalLM"]
    doc["model_type"] = "llama"
    doc["dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    return doc


def save_pruned(model: nn.Module, tokenizer: Any, out_dir: str | Path,
                extra: dict | None = None) -> Path:
    """Write `out_dir`/{model.safetensors, config.json, tokenizer files}; returns `out_dir`."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = config_dict(model, extra)
    state = {}
    seen: dict[int, str] = {}
    for name, t in model.state_dict().items():
        if t.data_ptr() in seen:                         # tied lm_head: stored once
            continue
        seen[t.data_ptr()] = name
        state[name] = t.detach().contiguous().cpu()
    save_file(state, str(out / WEIGHTS), metadata={"format": "pt"})
    (out / WEIGHTS).chmod(0o644)                         # readable like the tokenizer files
    (out / "config.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


def load_pruned(path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32
                ) -> tuple[nn.Module, Any]:
    """(pruned LlamaForCausalLM in eval mode, tokenizer or None) from a save_pruned folder."""
    from accelerate import init_empty_weights
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(path)
    cfg_file, weights = folder / "config.json", folder / WEIGHTS
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{folder}: needs config.json and {WEIGHTS}")
    doc = json.loads(cfg_file.read_text())
    if PRUNED_KEY not in doc or "layers" not in doc[PRUNED_KEY]:
        raise ValueError(f"{cfg_file}: no '{PRUNED_KEY}' entry (not a pruned checkpoint)")
    config = LlamaConfig.from_dict(doc)
    structure = doc[PRUNED_KEY]["layers"]
    if len(structure) != config.num_hidden_layers:
        raise ValueError(f"{cfg_file}: {len(structure)} layer entries for "
                         f"{config.num_hidden_layers} layers")
    with init_empty_weights():                           # parameters on meta: no random init
        model = LlamaForCausalLM(config)
        install_pruned_modules(model, structure)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"{weights}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.to(device=device, dtype=dtype).eval()
    tokenizer = None
    if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return model, tokenizer
