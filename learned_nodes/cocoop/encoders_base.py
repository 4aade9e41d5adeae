"""Shared base of the prompt text towers (CLIP and BERT): prompt assembly around M placeholder
tokens, context initialisation and whole-sentence encoding. Every feature is L2-normalised."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from learned_nodes.cocoop.model import ClassPrompts

PLACEHOLDER = "X"


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class PromptTextEncoder(nn.Module):
    """Base of the text towers: prompt assembly around M placeholder tokens, shared by CLIP and BERT."""

    d_token: int
    embed_dim: int
    max_length: int

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def token_embedding(self) -> nn.Embedding:
        raise NotImplementedError

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor,
                name_start: int | torch.Tensor | None = None) -> torch.Tensor:
        """(N, L, d) token embeddings, (N, L) mask -> (N, D) L2-normalised text features;
        `name_start` (int or (N,)): where the class name starts (used by name pooling)."""
        raise NotImplementedError

    def _tokenize(self, texts: Sequence[str]):
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        dev = self.token_embedding().weight.device
        return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)

    @torch.no_grad()
    def class_prompts(self, names: Sequence[str], n_ctx: int) -> ClassPrompts:
        """Embeddings of "[SOS] X*M <name>. [EOS]" for each name, split around the X slots."""
        texts = [" ".join([PLACEHOLDER] * n_ctx) + " " + name.strip() + "." for name in names]
        ids, mask = self._tokenize(texts)                                   # (C, L)
        x_ids = self.tokenizer(PLACEHOLDER, add_special_tokens=False)["input_ids"]
        if len(x_ids) != 1 or not bool((ids[:, 1:1 + n_ctx] == x_ids[0]).all()):
            raise ValueError("the tokenizer does not map the placeholder to one token per slot")
        emb = self.token_embedding()(ids)                                   # (C, L, d)
        return ClassPrompts(tuple(names), emb[:, :1].clone(), emb[:, 1 + n_ctx:].clone(), mask)

    @torch.no_grad()
    def context_embeds(self, words: str, n_ctx: int) -> torch.Tensor:
        """(M, d) token embeddings of `words` (CoOp's "a photo of a" initialisation)."""
        ids = self.tokenizer(words, add_special_tokens=False)["input_ids"]
        if len(ids) != n_ctx:
            raise ValueError(f"'{words}' is {len(ids)} tokens, the prompt learner has {n_ctx} slots")
        weight = self.token_embedding().weight
        return weight[torch.tensor(ids, device=weight.device)].clone()

    @torch.no_grad()
    def encode_text(self, sentences: Sequence[str],
                    name_start: int | torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) features of whole sentences (hand-written prompts); `name_start` as in forward."""
        ids, mask = self._tokenize(sentences)
        return self(self.token_embedding()(ids), mask, name_start)
