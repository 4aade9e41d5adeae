"""Tiny random causal LMs in the real on-disk formats, for tests and smoke runs.

- `tiny_llama()`: an in-memory LlamaForCausalLM with grouped-query attention (4 layers, hidden 64,
  4 query heads sharing 2 KV heads, head_dim 16, MLP 96, vocab 128; weights std 0.1 so logits are
  not flat), for the pruning tests.
- `make_tiny_lm(folder)` writes a Hugging Face folder (config.json + model.safetensors + a byte-level
  BPE tokenizer with a ChatML chat template, like SmolLM2's) holding a 2-layer model of the same
  config family. Loads in well under a second.
Never the real 135M model in tests.
"""
from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TRAINING_TEXT = (
    "The quick brown fox jumps over the lazy dog. A robot maps the tunnel with its lidar and camera. "
    "Python is a programming language; functions return values and modules import names. "
    "To be, or not to be, that is the question. Caf\u00e9 na\u00efve \u00fcber \u00e9t\u00e9 "
    "\u65e5\u672c\u8a9e \U0001f916 robots and \u00e7a va. ") * 4


def tiny_llama_config(vocab_size: int = 128, layers: int = 4, tie: bool = True, **overrides):
    """LlamaConfig of the tiny GQA model; keyword overrides go to LlamaConfig."""
    from transformers import LlamaConfig

    kw = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
              tie_word_embeddings=tie, rms_norm_eps=1e-6)
    kw.update(overrides)
    return LlamaConfig(**kw)


def tiny_llama(seed: int = 0, **config_kw):
    """A LlamaForCausalLM with random weights (std 0.1 so logits are not flat) in eval mode."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_kw))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.1)
    return model.eval()


def make_tiny_tokenizer(vocab_size: int = 384):
    """A byte-level BPE PreTrainedTokenizerFast (bytes never split into unknowns; multi-byte
    characters may span several tokens, which the streaming decoder must handle)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TRAINING_TEXT], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   bos_token="<|im_start|>", pad_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 128  # small on purpose: long-text tokenisation must not warn
    return fast


def make_tiny_lm(folder: str | Path, seed: int = 0, layers: int = 2, hidden: int = 64,
                 heads: int = 4, kv_heads: int = 2, tie_embeddings: bool = False,
                 max_positions: int = 2048) -> Path:
    """Write a tiny random LlamaForCausalLM + tokenizer as a Hugging Face folder; returns it.
    The special tokens' output rows are zero, so greedy decoding never stops at EOS (long
    generations for streaming / cancellation tests) and sampling rarely does."""
    import torch
    from transformers import LlamaForCausalLM

    folder = Path(folder)
    tok = make_tiny_tokenizer()
    cfg = tiny_llama_config(len(tok), layers, tie_embeddings, hidden_size=hidden,
                            intermediate_size=2 * hidden, num_attention_heads=heads,
                            num_key_value_heads=kv_heads, head_dim=hidden // heads,
                            max_position_embeddings=max_positions, bos_token_id=tok.bos_token_id,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger logits than the 0.02 init: sampling settings make a difference
        if not tie_embeddings:
            model.lm_head.weight.mul_(20.0)
            model.lm_head.weight[tok.convert_tokens_to_ids(SPECIAL_TOKENS)] = 0.0
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder
