"""Instruction following of a (pruned) chat LM, judged by the dense model, and `lm-eval-instruct`.

    lm-eval-instruct --model data/models/smollm2_pruned_20_mlp --out out/instruct_20.json

The model answers the fixed PROMPTS (greedy, chat template, at most 48 new tokens). Each answer is
scored with the DENSE model as judge (a callable `loglik(pairs) -> list[float]`, so tests can stub it):
- loglik: the judge's mean log-likelihood per token (nats/token) of the answer's tokens followed by
  the end-of-turn token (the tokenizer's EOS, <|im_end|> for SmolLM2), given the chat-templated
  prompt. The end token is always scored: every answer is judged as the whole reply, so a finished
  answer and one cut off at max_new_tokens are comparable (the cut one pays for ending abruptly).
  An empty answer is the end token alone.
- empty: no non-whitespace character.
- repetitive (`is_repetitive`): over the answer's lower-cased tokens (words, with contractions such
  as "robot's" one word, and single punctuation marks), the share of 3-grams that repeat an earlier
  3-gram exceeds 0.3, or some 4-gram occurs >= 4 times. (>= 3 times flagged fluent answers of the
  dense model that name the prompt's subject three times in 48 tokens, "the boiling point of water";
  the loops of degenerate text, "a gentle rain, a gentle rain", "1.1.1.1", pass 0.3 by far.)
- off_prompt: PMI = loglik(answer | own prompt) - mean loglik(answer | K=5 other prompts) <= 0.05
  nats/token: the judge finds the answer no more likely after its own prompt than after others.
  The others are fixed: of the prompts of another kind (status reports never judge each other),
  K evenly spaced ones in cyclic order after the prompt.
- ok: not empty, not repetitive, not off-prompt.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

GENERAL_PROMPTS = [
    "Explain what a LiDAR sensor measures in one sentence.",
    "List three fruits.",
    "What is the capital of France?",
    "Give me two tips for sleeping better.",
    "Translate 'good morning' into Spanish.",
    "What does an IMU measure on a robot?",
    "Write a haiku about rain.",
    "How many legs does a spider have?",
    "Suggest a name for a small delivery robot.",
    "Why do robots need a map to navigate?",
    "What is 12 plus 30?",
    "Describe a cat in one sentence.",
    "Name three colours of the rainbow.",
    "What should I pack for a day hike?",
    "Explain what a battery does in simple words.",
    "Write a short thank-you note to a colleague.",
    "What is the boiling point of water at sea level?",
    "Give one reason to recycle plastic.",
    "What is odometry in robotics?",
    "A robot's wheel slips on ice. What can go wrong with its position estimate?",
    "Write one sentence telling a robot to stop and wait.",
    "What is the difference between a camera and a LiDAR?",
    "Recommend a book for a ten-year-old.",
    "Summarize the water cycle in two sentences.",
    "What time of day is sunrise?",
    "Explain why a long tunnel is hard for a LiDAR robot to localize in.",
    "Write a greeting a reception robot could say to visitors.",
    "List the days of the week.",
    "How do I boil an egg?",
    "What does GPS stand for?",
    "Write a two-sentence status report: travelled 12.3 m; 40 scans; 2 scans had a weak direction; "
    "0 scans dropped.",
]
# (distance m, poses, weak scans, scans, dropped): the wording of suite_tools/suite_client.py's prompt()
STATUS_FACTS = [(12.3, 41, 2, 40, 0), (0.0, 1, 0, 3, 0), (257.8, 902, 31, 900, 4),
                (48.5, 160, 0, 158, 1), (3.7, 12, 9, 12, 2)]
STATUS_PROMPTS = [f"You are a mobile robot. Write a two-sentence status report. Facts: travelled {d:.1f} m; "
                  f"{p} poses; {w} of {s} LiDAR scans had a direction that geometry alone could not "
                  f"constrain (a tunnel or a flat field); {x} scans dropped." for d, p, w, s, x in STATUS_FACTS]
PROMPTS = GENERAL_PROMPTS + STATUS_PROMPTS


def demo_status_prompt(distance_m: float, weak_scans: int, scans: int) -> str:
    """The status prompt the demo sends (suite_tools/suite_client.py Status.prompt, same text)."""
    return (f"Rewrite as a short status report, keeping every number: The robot travelled {distance_m:.1f} m. "
            f"{weak_scans} of {scans} LiDAR scans were degenerate (a tunnel or a flat field).")


DEMO_STATUS_PROMPTS = [demo_status_prompt(d, w, s) for d, _, w, s, _ in STATUS_FACTS]
# each prompt is its own kind, except the status reports (the last general one too): one kind
KINDS = [f"general{i}" for i in range(len(GENERAL_PROMPTS) - 1)] + ["status"] * (1 + len(STATUS_PROMPTS))
K_OTHERS = 5
OFF_PROMPT_NATS = 0.05          # PMI threshold (nats/token) at or below which an answer is off-prompt
LoglikFn = Callable[[Sequence[tuple[str, str]]], list[float]]


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def greedy_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 48,
                   device: str = "cpu", progress: bool = True, batch_size: int = 12) -> list[str]:
    """Greedy answers (KV cache, stop at EOS) of `model` to each prompt through the chat template;
    only the new tokens, special tokens dropped. Prompts of similar length are decoded together,
    left-padded with an attention mask (batch_size 1: one at a time; the same greedy tokens up to
    float rounding, ~4x faster at 12 on a CPU)."""
    import torch
    from tqdm.auto import tqdm

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stop = sorted({eos} | set(config_eos if isinstance(config_eos, list) else [config_eos]) - {None})
    enc = [_prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out = [""] * len(enc)
    with torch.no_grad():
        for b in tqdm(range(0, len(order), batch_size), desc="answers", unit="batch", disable=not progress):
            idx = order[b:b + batch_size]
            width = max(len(enc[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)                   # (B, T)
            mask = torch.zeros(len(idx), width, dtype=torch.long)                        # (B, T)
            for r, i in enumerate(idx):
                ids[r, width - len(enc[i]):] = torch.tensor(enc[i])
                mask[r, width - len(enc[i]):] = 1
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=stop, pad_token_id=pad,
                                 use_cache=True, temperature=None, top_p=None, top_k=None)  # (B, T + new)
            for r, i in enumerate(idx):
                new = gen[r, width:].tolist()
                ends = [k for k, t in enumerate(new) if t in stop]
                out[i] = tokenizer.decode(new[:ends[0]] if ends else new, skip_special_tokens=True).strip()
    return out


def judge_logliks(judge: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], device: str = "cpu",
                  progress: bool = True) -> list[float]:
    """Mean log-likelihood per token (nats) of each answer + end-of-turn token given its chat-
    templated prompt under `judge`; only the answer tokens are scored. The pairs of one prompt
    share its KV cache: one forward of the prompt, then one right-padded batch of its answers."""
    import inspect

    import torch
    from tqdm.auto import tqdm

    from learned_nodes.llm.generation import _cache_of

    # transformers >= 5.2x calls the KV cache `cache` (past_key_values is deprecated), as generation.py
    params = inspect.signature(judge.forward).parameters
    cache_kwarg = "cache" if "cache" in params else "past_key_values"
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    end = tokenizer.eos_token_id
    groups: dict[str, list[int]] = {}
    for i, (prompt, _) in enumerate(pairs):
        groups.setdefault(prompt, []).append(i)
    out = [0.0] * len(pairs)
    with torch.no_grad():
        for prompt, idx in tqdm(groups.items(), desc="judge", unit="prompt", disable=not progress):
            p = torch.tensor([_prompt_ids(tokenizer, prompt)], device=device)                # (1, P)
            pre = judge(input_ids=p, use_cache=True, **last_only)
            first = pre.logits[0, -1].float().log_softmax(-1)                              # (V,)
            answers = [(list(tokenizer(pairs[i][1], add_special_tokens=False)["input_ids"])
                        if pairs[i][1] else []) + [end] for i in idx]
            width = max(len(a) for a in answers)
            ids = torch.zeros(len(idx), width, dtype=torch.long, device=device)            # (B, W)
            mask = torch.zeros(len(idx), p.shape[1] + width, dtype=torch.long, device=device)
            mask[:, :p.shape[1]] = 1                                                       # (B, P + W)
            for r, a in enumerate(answers):
                ids[r, :len(a)] = torch.tensor(a)
                mask[r, p.shape[1]:p.shape[1] + len(a)] = 1
            cache = _cache_of(pre)
            cache.batch_repeat_interleave(len(idx))                                        # (B, ...) per layer
            logp = judge(input_ids=ids, attention_mask=mask, use_cache=True,
                         **{cache_kwarg: cache}).logits.float().log_softmax(-1)            # (B, W, V)
            tok_lp = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]                     # (B, W-1)
            for r, (i, a) in enumerate(zip(idx, answers)):
                total = float(first[a[0]]) + float(tok_lp[r, :len(a) - 1].sum())
                out[i] = total / len(a)
    return out


def is_repetitive(text: str, share: float = 0.3, max_4gram: int = 4) -> bool:
    """True when, over lower-cased word/punctuation tokens, more than `share` of the 3-grams repeat
    an earlier 3-gram, or some 4-gram occurs at least `max_4gram` times."""
    toks = re.findall(r"\w+(?:'\w+)*|[^\w\s]", text.lower())
    tri = [tuple(toks[i:i + 3]) for i in range(len(toks) - 2)]
    if tri and (len(tri) - len(set(tri))) / len(tri) > share:
        return True
    quad = Counter(tuple(toks[i:i + 4]) for i in range(len(toks) - 3))
    return bool(quad) and max(quad.values()) >= max_4gram


DEGENERACY_WORDS = r"degenera|weak|tunnel|flat|constrain|direction"


def _sentences(text: str) -> list[str]:
    """Sentences (split at . ; ! ? and newlines, never inside a decimal number)."""
    return [t for t in re.split(r"(?<!\d)\.|\.(?!\d)|[;!?\n]", text.lower()) if t.strip()]


def status_report_correct(answer: str, facts: tuple[float, int, int, int, int]) -> bool:
    """A status answer is correct when it states the distance travelled (e.g. "12.3"), states the
    degeneracy right (a sentence with a degeneracy word and the weak-scan count, or with none of
    them a "no"/"0"/"none"), puts no other figure next to "dropped" than the dropped count, and
    every number it writes is one of the facts (no invented figures)."""
    d, p, w, s, x = facts
    text = answer.replace(",", "")
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)}
    allowed = {round(d, 1), float(p), float(w), float(s), float(x), 2.0}     # 2: "two-sentence"
    if not numbers or round(d, 1) not in numbers or not numbers <= allowed:
        return False
    weak = r"\b(no|none|zero|0)\b" if w == 0 else rf"\b{w}\b"
    degeneracy = any(re.search(DEGENERACY_WORDS, t) and re.search(weak, t) for t in _sentences(text))
    for t in _sentences(text):
        if "drop" in t and not re.search(DEGENERACY_WORDS, t):
            if {float(n) for n in re.findall(r"\d+(?:\.\d+)?", t)} - {float(x), round(d, 1)}:
                return False
    return degeneracy


def other_prompts(i: int, kinds: Sequence[str], k: int = K_OTHERS) -> list[int]:
    """K indices of prompts of another kind than prompt i, evenly spaced in cyclic order after i."""
    n = len(kinds)
    cand = [(i + d) % n for d in range(1, n) if kinds[(i + d) % n] != kinds[i]]
    if len(cand) <= k:
        return cand
    return [cand[(t * len(cand)) // k] for t in range(k)]


@dataclass
class InstructionScores:
    """Per-prompt rows and the aggregates (means over prompts)."""

    rows: list[dict[str, Any]]
    mean_loglik: float
    empty: float
    repetitive: float
    off_prompt: float
    ok: float
    extra: dict[str, Any] = field(default_factory=dict)

    def aggregates(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k not in ("rows", "extra")}


def score_answers(prompts: Sequence[str], answers: Sequence[str], loglik: LoglikFn,
                  kinds: Sequence[str] | None = None, k_others: int = K_OTHERS,
                  threshold: float = OFF_PROMPT_NATS) -> InstructionScores:
    """Score answers with a judge `loglik` over (prompt, answer) pairs (one call, all pairs)."""
    n = len(prompts)
    if n != len(answers) or n < 2:
        raise ValueError(f"need one answer per prompt and >= 2 prompts, got {n} prompts, {len(answers)} answers")
    kinds = list(kinds) if kinds is not None else [str(i) for i in range(n)]
    others = [other_prompts(i, kinds, k_others) for i in range(n)]
    pairs = [(prompts[i], answers[i]) for i in range(n)] + \
        [(prompts[j], answers[i]) for i in range(n) for j in others[i]]
    lls = loglik(pairs)
    own, rest = lls[:n], iter(lls[n:])
    rows = []
    for i in range(n):
        other = [next(rest) for _ in others[i]]
        pmi = own[i] - sum(other) / len(other)
        empty, rep = not answers[i].strip(), is_repetitive(answers[i])
        off = pmi <= threshold
        rows.append(dict(prompt=prompts[i], answer=answers[i], loglik=own[i], pmi=pmi, empty=empty,
                         repetitive=rep, off_prompt=off, ok=not (empty or rep or off)))

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in rows) / n

    return InstructionScores(rows, mean("loglik"), mean("empty"), mean("repetitive"), mean("off_prompt"),
                             mean("ok"))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lm-eval-instruct", description="Greedy answers of a chat LM to "
                                f"{len(PROMPTS)} fixed prompts, judged by the dense model.")
    p.add_argument("--model", default="", help="HF folder, .gguf file, pruned folder ('' = SmolLM2 GGUF)")
    p.add_argument("--judge", default="", help="the dense judge ('' = SmolLM2 GGUF)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--k-others", type=int, default=K_OTHERS, help="other prompts per answer for the "
                   "off-prompt PMI (judge time grows with 1 + K)")
    p.add_argument("--out", default="", help="write the rows and aggregates as JSON here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)

    import torch

    from learned_nodes.llm.model_io import load_causal_lm, resolve_model_path
    from learned_nodes.server.limits import check_device

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        check_device(args.device)
        path, judge_path = resolve_model_path(args.model), resolve_model_path(args.judge)
        model, tok = load_causal_lm(path, device=args.device)
        judge, judge_tok = (model, tok) if judge_path == path else load_causal_lm(judge_path, device=args.device)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"lm-eval-instruct: {exc}") from None
    t1 = time.perf_counter()
    answers = greedy_answers(model, tok, PROMPTS, args.max_new_tokens, args.device, not args.quiet)
    t2 = time.perf_counter()
    scores = score_answers(PROMPTS, answers, lambda pairs: judge_logliks(
        judge, judge_tok, pairs, device=args.device, progress=not args.quiet), KINDS, args.k_others)
    t3 = time.perf_counter()
    scores.extra = dict(model=str(path), judge=str(judge_path), max_new_tokens=args.max_new_tokens,
                        k_others=args.k_others, load_s=t1 - t0, generate_s=t2 - t1, judge_s=t3 - t2)
    print(f"model: {path}  judge: {judge_path}  ({len(PROMPTS)} prompts)")
    print("  ".join(f"{k}: {v:.3f}" for k, v in scores.aggregates().items()))
    print(f"load {t1 - t0:.1f} s, answers {t2 - t1:.1f} s, judge {t3 - t2:.1f} s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(asdict(scores), f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
