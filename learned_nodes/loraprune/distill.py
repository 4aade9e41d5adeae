"""Data-free recovery: the dense model teaches the pruned one on text it generates itself.

- `teacher_conversations`: no external corpus. The teacher first writes the user turns (sampled
  from its chat template's opening of a user message: the template's default system prompt, then
  "user"), then answers each one through the same template. Plain ancestral sampling (temperature
  1, top-p 0.95), batched, seeded: the same seed gives the same text.
- `distill_loss`: KL(teacher || student) of the next-token distributions, averaged over the
  tokens, + `ce_weight` x the next-token cross-entropy on the teacher's own sampled tokens. The
  KL alone has a zero gradient while the student still equals the teacher (the dense start of
  every method), so importance scores would all be zero before the first mask; the hard-label
  term on the teacher's samples gives the gradient that the corpus loss gives, with no corpus.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def lm_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of a (B, T) batch."""
    return model(input_ids=x, labels=x, use_cache=False).loss


def distill_loss(student: nn.Module, teacher: nn.Module, x: torch.Tensor, ce_weight: float = 1.0
                 ) -> torch.Tensor:
    """Mean over the B x (T-1) predicted tokens of KL(p_teacher || p_student) + ce_weight x CE(x)."""
    with torch.no_grad():
        t_logp = F.log_softmax(teacher(input_ids=x, use_cache=False).logits[:, :-1].float(), -1)
    s_logits = student(input_ids=x, use_cache=False).logits[:, :-1].float()   # (B, T-1, V)
    s_logp = F.log_softmax(s_logits, -1)
    kl = F.kl_div(s_logp.flatten(0, 1), t_logp.flatten(0, 1), log_target=True, reduction="batchmean")
    if ce_weight == 0:
        return kl
    ce = F.nll_loss(s_logp.flatten(0, 1), x[:, 1:].flatten())
    return kl + ce_weight * ce


def make_loss(teacher: nn.Module | None, ce_weight: float = 1.0) -> LossFn:
    """The training loss: corpus next-token loss without a teacher, distillation with one."""
    if teacher is None:
        return lm_loss
    teacher.eval().requires_grad_(False)
    return lambda model, x: distill_loss(model, teacher, x, ce_weight)


def _user_opening(tokenizer: Any) -> str:
    """The chat template's text up to where a user message begins (system prompt included)."""
    marker = "\u2063USER\u2063"
    text = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False)
    if marker not in text:
        raise ValueError("the tokenizer's chat template does not place the user message")
    return text[:text.index(marker)]


@torch.no_grad()
def _sample(model: nn.Module, tokenizer: Any, prompts: list[str], max_new: int, gen: int,
            device: str) -> list[str]:
    """Sampled continuations (new text only, special tokens dropped) of a batch of prompts."""
    torch.manual_seed(gen)
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=0.95, top_k=0,
                         max_new_tokens=max_new, pad_token_id=pad)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def teacher_conversations(teacher: nn.Module, tokenizer: Any, n: int, seed: int = 0,
                          prompt_tokens: int = 48, answer_tokens: int = 160, batch: int = 32,
                          device: str = "cpu", progress: bool = True) -> list[str]:
    """`n` chat transcripts (template applied) written entirely by the teacher."""
    if n < 1:
        raise ValueError("n must be >= 1")
    teacher.eval()
    opening = _user_opening(tokenizer)
    texts: list[str] = []
    for start in tqdm(range(0, n, batch), desc="teacher: writing text", disable=not progress):
        k = min(batch, n - start)
        users = [u.strip() or "Hello." for u in
                 _sample(teacher, tokenizer, [opening] * k, prompt_tokens, seed * 100003 + start, device)]
        chats = [tokenizer.apply_chat_template([{"role": "user", "content": u}], tokenize=False,
                                               add_generation_prompt=True) for u in users]
        answers = _sample(teacher, tokenizer, chats, answer_tokens, seed * 100003 + start + 1, device)
        texts += [c + a.strip() for c, a in zip(chats, answers)]
    return texts


def cached_conversations(path: str | Path, teacher: nn.Module, tokenizer: Any, n: int, seed: int = 0,
                         device: str = "cpu", progress: bool = True) -> list[str]:
    """The teacher's transcripts from the JSON cache at `path` when it was written for the same
    (n, seed); generated and written otherwise."""
    path = Path(path)
    if path.exists():
        doc = json.loads(path.read_text())
        if doc.get("n") == n and doc.get("seed") == seed:
            return doc["texts"]
    texts = teacher_conversations(teacher, tokenizer, n, seed, device=device, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"n": n, "seed": seed, "texts": texts}, indent=1))
    return texts
