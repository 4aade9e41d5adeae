"""What the generation core accepts: its config (validated on construction, mirrored by the node's
`generation.*` parameters), a request, a result, and the request checks (no torch, no rclpy)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


MIN_TEMPERATURE = 1e-6   # below it (but > 0) logits / T may overflow float32 (1e-45: inf - inf = NaN);
                         # sampling that cold is greedy in all but name: use 0


class RequestError(ValueError):
    """A malformed or out-of-limits generation request; str(error) is the reason sent back."""


@dataclass
class GeneratorConfig:
    """`generation.*`: limits and prompt formatting of the text generator."""

    max_prompt_chars: int = 16384        # refused before tokenising
    max_prompt_tokens: int = 1024        # after the chat template
    default_max_new_tokens: int = 64     # when a request says 0
    max_new_tokens_limit: int = 512      # a request asking for more is refused
    max_concurrent: int = 2              # generations at once; more wait for a free slot
    max_waiting: int = 6                 # requests waiting for a slot; one more gets "busy" at once
    queue_timeout_s: float = 60.0        # a request waiting longer for a slot gets "busy"
    chat_template: bool = True           # wrap the prompt in the tokenizer's chat template (if it has one)
    system_prompt: str = ""              # system message for the template; '' = the template's default
    timeout_s: float = 300.0             # a generation running longer stops with its partial text

    def __post_init__(self) -> None:
        for name in ("max_prompt_chars", "max_prompt_tokens", "default_max_new_tokens",
                     "max_new_tokens_limit", "max_concurrent"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.default_max_new_tokens > self.max_new_tokens_limit:
            raise ValueError(f"default_max_new_tokens ({self.default_max_new_tokens}) exceeds "
                             f"max_new_tokens_limit ({self.max_new_tokens_limit})")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {self.max_waiting}")
        if not self.queue_timeout_s >= 0:
            raise ValueError(f"queue_timeout_s must be >= 0, got {self.queue_timeout_s}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


@dataclass
class GenerationRequest:
    """One request, as the GenerateText service/action carries it."""

    prompt: str | bytes
    max_new_tokens: int = 0        # 0 = config.default_max_new_tokens
    temperature: float = 0.0       # 0 = greedy
    top_p: float = 0.0             # 0 or 1 = no nucleus truncation
    seed: int = -1                 # -1 = random


@dataclass(frozen=True)
class CheckedRequest:
    """A validated request: settings resolved, prompt decoded."""

    prompt: str
    max_new_tokens: int            # 1..max_new_tokens_limit
    temperature: float             # >= 0
    top_p: float                   # (0, 1]; 1 = no truncation
    seed: int                      # -1 = random


@dataclass
class GenerationResult:
    success: bool
    message: str = ""
    text: str = ""                 # = the concatenation of the streamed deltas
    prompt_tokens: int = 0
    generated_tokens: int = 0      # tokens of `text` (a stop token is not counted)
    tokens_per_second: float = 0.0  # generated_tokens / wall time, prompt pass included
    finish_reason: str = ""        # eos | length | canceled | time_limit | busy | invalid | error
    seed: int = -1                 # the seed used (the drawn one when the request said -1)
    token_ids: list[int] = field(default_factory=list)

    @property
    def canceled(self) -> bool:
        return self.finish_reason == "canceled"


def decode_prompt(prompt: str | bytes) -> str:
    """The prompt as text; RequestError for invalid UTF-8 (bytes, or str with lone surrogates)."""
    if isinstance(prompt, (bytes, bytearray)):
        try:
            return bytes(prompt).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(f"prompt is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    if not isinstance(prompt, str):
        raise RequestError(f"prompt must be text, got {type(prompt).__name__}")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(f"prompt is not valid UTF-8 text (character {exc.start}: {exc.reason})") from None
    return prompt


def check_request(req: GenerationRequest, cfg: GeneratorConfig) -> CheckedRequest:
    """Settings and prompt checks that need no tokenizer (token counts are checked by the generator)."""
    prompt = decode_prompt(req.prompt)
    if not prompt.strip():
        raise RequestError("prompt is empty")
    if "\x00" in prompt:
        raise RequestError("prompt contains a NUL character")
    if len(prompt) > cfg.max_prompt_chars:
        raise RequestError(f"prompt has {len(prompt)} characters; the limit is {cfg.max_prompt_chars}")
    n = int(req.max_new_tokens)
    if n < 0:
        raise RequestError(f"max_new_tokens must be >= 0, got {n}")
    if n > cfg.max_new_tokens_limit:
        raise RequestError(f"max_new_tokens {n} exceeds the limit of {cfg.max_new_tokens_limit}")
    temperature, top_p = float(req.temperature), float(req.top_p)
    if not math.isfinite(temperature) or not 0.0 <= temperature <= 100.0:
        raise RequestError(f"temperature must be in [0, 100] (0 = greedy), got {temperature}")
    if 0.0 < temperature < MIN_TEMPERATURE:
        raise RequestError(f"temperature {temperature:g} is too small to give a valid distribution: "
                           f"use 0 (greedy) or >= {MIN_TEMPERATURE:g}")
    if not math.isfinite(top_p) or not 0.0 <= top_p <= 1.0:
        raise RequestError(f"top_p must be in [0, 1] (0 or 1 = no truncation), got {top_p}")
    seed = int(req.seed)
    if seed < -1:
        raise RequestError(f"seed must be >= 0, or -1 for a random one, got {seed}")
    return CheckedRequest(prompt=prompt, max_new_tokens=n or cfg.default_max_new_tokens,
                          temperature=temperature, top_p=top_p if top_p > 0 else 1.0, seed=seed)
