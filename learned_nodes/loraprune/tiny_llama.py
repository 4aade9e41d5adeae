"""A tiny random LLaMA with grouped-query attention, for tests and smoke runs (never the real model).

4 layers, hidden 64, 4 query heads sharing 2 KV heads, head_dim 16, MLP 96, vocab 128 by default.
"""
from __future__ import annotations

import torch


def tiny_llama_config(vocab_size: int = 128, layers: int = 4, tie: bool = True, **overrides):
    from transformers import LlamaConfig

    kw = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
              tie_word_embeddings=tie, rms_norm_eps=1e-6)
    kw.update(overrides)
    return LlamaConfig(**kw)


def tiny_llama(seed: int = 0, **config_kw):
    """A LlamaForCausalLM with random weights (std 0.1 so logits are not flat) in eval mode."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_kw))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.1)
    return model.eval()
