"""The MiniLM (BERT) prompt text tower of the aligned dual encoder, with a choice of pooling.

CLIP's text tower is causal and pools at the end-of-sequence token, so the class name (after the
context slots) shapes how the context is read. MiniLM is bidirectional and the sentence-transformers
recipe mean-pools every token, context slots included: a shift added to the context then moves
every class's text feature nearly the same way. The poolings here:

- "mean":   mean over every real token ([CLS], context, name, '.', [SEP]) -- the MiniLM recipe;
- "name":   mean over the class-name tokens through [SEP] (positions >= name_start), so the pooled
            tokens are the name's, each having attended to the context;
- "eos":    the [SEP] (last real token) output, bidirectional attention;
- "causal": a causal attention mask (each token sees only itself and earlier ones, as in CLIP) and
            the [SEP] output.

Every pooling needs its own projection into the image space (aligned_encoder_train --pooling).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from learned_nodes.cocoop.encoders_base import PromptTextEncoder
from learned_nodes.model_files.checkpoint import CheckpointError

POOLINGS = ("mean", "name", "eos", "causal")


def pool_mask(mask: torch.Tensor, pooling: str, name_start: int | torch.Tensor | None) -> torch.Tensor:
    """(N, L) weights of the tokens a pooling averages (rows sum to 1)."""
    n, length = mask.shape
    m = mask.to(torch.float32)
    if pooling == "mean":
        w = m
    elif pooling == "name":
        if name_start is None:
            raise ValueError("pooling 'name' needs the position where the class name starts")
        start = torch.as_tensor(name_start, device=mask.device).reshape(-1, 1)          # (N or 1, 1)
        w = m * (torch.arange(length, device=mask.device)[None] >= start).float()
    elif pooling in ("eos", "causal"):
        w = F.one_hot(mask.sum(1).long() - 1, length).float()                            # last real token
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
    return w / w.sum(1, keepdim=True).clamp_min(1e-9)


class BertPromptEncoder(PromptTextEncoder):
    """A sentence-transformers style BERT (MiniLM): pooled, normalised, then projected."""

    def __init__(self, bert, tokenizer, projection: nn.Linear | None, max_length: int = 64,
                 pooling: str = "mean") -> None:
        super().__init__(tokenizer)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
        self.bert = bert
        self.projection = projection
        self.pooling = pooling
        self.d_token = bert.config.hidden_size
        self.embed_dim = projection.out_features if projection is not None else self.d_token
        self.max_length = max_length

    def token_embedding(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def hidden_states(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, L, d) last hidden states; causal attention for the 'causal' pooling."""
        attn: torch.Tensor = mask
        if self.pooling == "causal":
            length = mask.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
            attn = (causal[None] & mask.bool()[:, None, :])[:, None]                       # (N, 1, L, L)
        return self.bert(inputs_embeds=embeds, attention_mask=attn).last_hidden_state

    def sentence_embedding(self, embeds: torch.Tensor, mask: torch.Tensor,
                           name_start: int | torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) the pooled, normalised tower output, before projection."""
        h = self.hidden_states(embeds, mask)                                               # (N, L, d)
        w = pool_mask(mask, self.pooling, name_start).to(h.dtype)                          # (N, L)
        return F.normalize(torch.einsum("nl,nld->nd", w, h), dim=-1)

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor,
                name_start: int | torch.Tensor | None = None) -> torch.Tensor:
        s = self.sentence_embedding(embeds, mask, name_start)
        return F.normalize(self.projection(s) if self.projection is not None else s, dim=-1)

    @torch.no_grad()
    def name_starts(self, templates_prefixes: list[str]) -> torch.Tensor:
        """(N,) position of the first token after each prefix ("a photo of a") in a tokenised
        "<prefix> <name>." sentence: 1 ([CLS]) + the prefix's token count."""
        counts = [len(self.tokenizer(p.strip(), add_special_tokens=False)["input_ids"]) if p.strip() else 0
                  for p in templates_prefixes]
        return torch.tensor(counts) + 1


def load_minilm(folder: Path, proj: dict, max_length: int, pooling: str = "mean") -> BertPromptEncoder:
    from transformers import AutoTokenizer, BertModel

    from learned_nodes.cocoop.encoders_base import quiet_transformers

    quiet_transformers()
    try:
        bert = BertModel.from_pretrained(str(folder), use_safetensors=True, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot load the text tower ({exc})") from None
    bert.eval().requires_grad_(False)
    projection = nn.Linear(int(proj["in_dim"]), int(proj["out_dim"]))
    return BertPromptEncoder(bert, tokenizer, projection, max_length, pooling)
