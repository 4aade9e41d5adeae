"""Streaming, cancellable text generation with a KV cache (pure core: no rclpy, no messages).

`TextGenerator.generate(request, on_delta, should_stop)` decodes token by token, reusing the
past_key_values of the previous step; samples with temperature (0 = greedy) and top-p from a
per-request torch.Generator seeded by the request (same seed + prompt + settings -> same text,
whatever runs concurrently); stops at EOS, at max_new_tokens, when `should_stop()` turns true
(checked between tokens) or at the time limit; streams text deltas that never split a multi-byte
character. At most `max_concurrent` generations run at once; up to `max_waiting` more wait in line
for a slot (at most `queue_timeout_s`); beyond that a request gets success=false "busy" at once.
Every failure is a GenerationResult with success=false and a message, never an exception.
"""
from __future__ import annotations

import inspect
import secrets
import threading
import time
from typing import Any, Callable, Sequence

from learned_nodes.llm.requests import (CheckedRequest, GenerationRequest, GenerationResult,
                                        GeneratorConfig, RequestError, check_request)

DeltaCallback = Callable[[str, int], None]   # (text delta, tokens generated so far)


class IncrementalDecoder:
    """Text deltas of a growing token list; holds back text ending in an incomplete character."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def _decode(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        full = self._decode()
        if full.endswith("\ufffd") or not full.startswith(self.text):
            return ""              # an incomplete UTF-8 sequence (or unstable merge): wait
        delta, self.text = full[len(self.text):], full
        return delta

    def flush(self) -> str:
        full = self._decode()
        delta = full[len(self.text):] if full.startswith(self.text) else ""
        self.text += delta
        return delta


def _cache_of(out: Any) -> Any:
    """The KV cache of a model output (`cache` in new transformers, `past_key_values` before)."""
    return out["cache"] if "cache" in out else out["past_key_values"]


def sample_next(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    """Next token id from logits (V,): argmax when temperature == 0, else a draw from the
    temperature-scaled softmax truncated to the smallest set of tokens with mass >= top_p."""
    import torch

    logits = logits.float().cpu()                                           # (V,)
    if temperature <= 0.0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)                     # (V,)
    if not bool(torch.isfinite(probs).all()):
        raise ValueError(f"logits / temperature {temperature:g} give no valid distribution (non-finite)")
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)                # (V,), (V,)
        keep = (torch.cumsum(sorted_p, 0) - sorted_p) < top_p               # first always kept
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


class TextGenerator:
    """A causal LM + tokenizer on a device, with the limits of a GeneratorConfig."""

    def __init__(self, model: Any, tokenizer: Any, config: GeneratorConfig | None = None,
                 device: str = "cpu") -> None:
        self.model, self.tokenizer, self.device = model.eval(), tokenizer, device
        self.config = config or GeneratorConfig()
        self._slots = threading.BoundedSemaphore(self.config.max_concurrent)
        self._waiting, self._waiting_lock = 0, threading.Lock()
        self.eos_ids = self._eos_ids()
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        # transformers >= 5.2x calls the KV cache `cache` (past_key_values is deprecated)
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    @classmethod
    def from_path(cls, path: str | None = None, config: GeneratorConfig | None = None,
                  device: str = "cpu", dtype: str = "float32") -> "TextGenerator":
        from learned_nodes.llm.model_io import load_causal_lm

        model, tok = load_causal_lm(path, device=device, dtype=dtype)
        return cls(model, tok, config, device)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (self.tokenizer.eos_token_id,
                      getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, Sequence):
                ids.update(int(v) for v in value)
        return ids

    @property
    def uses_chat_template(self) -> bool:
        return self.config.chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of the prompt, wrapped in the chat template when configured and available."""
        if self.uses_chat_template:
            messages = [{"role": "system", "content": self.config.system_prompt}] \
                if self.config.system_prompt else []
            messages.append({"role": "user", "content": prompt})
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        return list(self.tokenizer(prompt, add_special_tokens=True, verbose=False)["input_ids"])

    def prepare(self, request: GenerationRequest) -> tuple[CheckedRequest, list[int]]:
        """Validated settings + prompt ids, or RequestError (token limits included)."""
        req = check_request(request, self.config)
        ids = self.prompt_ids(req.prompt)
        if len(ids) > self.config.max_prompt_tokens:
            raise RequestError(f"prompt has {len(ids)} tokens; the limit is {self.config.max_prompt_tokens}")
        if self.max_positions and len(ids) + req.max_new_tokens > self.max_positions:
            raise RequestError(f"prompt ({len(ids)} tokens) + max_new_tokens ({req.max_new_tokens}) exceed "
                               f"the model's {self.max_positions} positions")
        return req, ids

    def generate(self, request: GenerationRequest, on_delta: DeltaCallback | None = None,
                 should_stop: Callable[[], bool] | None = None) -> GenerationResult:
        """Generate for one request (blocking; safe to call from several threads at once)."""
        try:
            req, ids = self.prepare(request)
        except RequestError as exc:
            return GenerationResult(False, str(exc), finish_reason="invalid")
        should_stop = should_stop or (lambda: False)
        refused = self._wait_for_slot(should_stop)
        if refused is not None:
            refused.prompt_tokens = len(ids)
            return refused
        try:
            return self._decode_loop(req, ids, on_delta, should_stop)
        except Exception as exc:  # noqa: BLE001 - a failing generation must not take the server down
            return GenerationResult(False, f"generation failed: {type(exc).__name__}: {exc}",
                                    prompt_tokens=len(ids), finish_reason="error")
        finally:
            self._slots.release()

    def _wait_for_slot(self, should_stop: Callable[[], bool]) -> GenerationResult | None:
        """Take a generation slot (None), waiting in line up to queue_timeout_s; a full line, the
        timeout or a stop request while waiting gives the result to send back instead."""
        c = self.config
        if self._slots.acquire(blocking=False):
            return None
        busy = f"busy: {c.max_concurrent} generation(s) running (generation.max_concurrent)"
        with self._waiting_lock:
            if self._waiting >= c.max_waiting:
                return GenerationResult(False, f"{busy} and {self._waiting} waiting (generation.max_waiting); "
                                        "try again later", finish_reason="busy")
            self._waiting += 1
        try:
            deadline = time.monotonic() + c.queue_timeout_s
            while time.monotonic() < deadline:
                if should_stop():
                    return GenerationResult(False, "canceled while waiting for a free slot",
                                            finish_reason="canceled")
                if self._slots.acquire(timeout=min(0.1, max(0.0, deadline - time.monotonic()))):
                    return None
            return GenerationResult(False, f"{busy}; no slot within {c.queue_timeout_s:.0f} s "
                                    "(generation.queue_timeout_s)", finish_reason="busy")
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _decode_loop(self, req: CheckedRequest, ids: list[int], on_delta: DeltaCallback | None,
                     should_stop: Callable[[], bool]) -> GenerationResult:
        import torch

        seed = req.seed if req.seed >= 0 else secrets.randbits(31)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        decoder = IncrementalDecoder(self.tokenizer)
        out_ids: list[int] = []
        reason, t0 = "length", time.perf_counter()
        deadline = t0 + self.config.timeout_s

        def emit(delta: str) -> None:
            if delta and on_delta is not None:
                on_delta(delta, len(out_ids))

        with torch.no_grad():
            if should_stop():
                reason = "canceled"
            else:
                x = torch.tensor([ids], dtype=torch.long, device=self.device)          # (1, P)
                out = self.model(input_ids=x, use_cache=True, **self._last_logits)   # logits (1, 1, V)
                past, logits = _cache_of(out), out.logits[0, -1]                        # cache, (V,)
                while len(out_ids) < req.max_new_tokens:
                    if should_stop():
                        reason = "canceled"
                        break
                    if time.perf_counter() > deadline:
                        reason = "time_limit"
                        break
                    token = sample_next(logits, req.temperature, req.top_p, gen)
                    if token in self.eos_ids:
                        reason = "eos"
                        break
                    out_ids.append(token)
                    emit(decoder.push(token))
                    if len(out_ids) == req.max_new_tokens:
                        break
                    x = torch.tensor([[token]], dtype=torch.long, device=self.device)  # (1, 1)
                    out = self.model(input_ids=x, use_cache=True, **{self._cache_kwarg: past})
                    past, logits = _cache_of(out), out.logits[0, -1]
        emit(decoder.flush())
        wall = max(time.perf_counter() - t0, 1e-9)
        n = len(out_ids)
        message = {"canceled": f"canceled after {n} tokens",
                   "time_limit": f"time limit of {self.config.timeout_s:.0f} s reached after {n} tokens"
                   }.get(reason, "")
        return GenerationResult(success=reason in ("eos", "length"), message=message, text=decoder.text,
                                prompt_tokens=len(ids), generated_tokens=n,
                                tokens_per_second=n / wall if n else 0.0, finish_reason=reason,
                                seed=seed, token_ids=out_ids)
