"""CoCoOp (Zhou et al., CVPR 2022) and CoOp as one model: learnable context vectors, optionally
shifted per image by a Meta-Net, inserted into class-name prompts of a frozen text encoder.

Only nn.Modules and their config live here (no I/O). The text encoder is any module with
`forward(embeds (N, L, d), mask (N, L)) -> (N, D)` L2-normalised features; class prompts come
as `ClassPrompts` (token embeddings of "[SOS] X..X <name> . [EOS]" split around the X slots).
Shapes: B images, C classes, M context vectors, d token width, D joint width, L prompt length.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


MAX_LOGIT_SCALE = 100.0  # CLIP clamps its learned scale here


@dataclass
class PromptLearnerConfig:
    n_ctx: int = 4                  # M context vectors
    ctx_init: str = "a photo of a"  # initial words (their M token embeddings); '' = N(0, 0.02^2)
    d_ctx: int = 512                # token embedding width of the text encoder (d)
    d_img: int = 512                # image feature width (D), the Meta-Net's input
    meta_net: bool = True           # True: CoCoOp; False: CoOp (one context for every image)
    meta_hidden_ratio: int = 16     # Meta-Net hidden width = d_img // ratio
    encoder_id: str = ""            # identity of the frozen encoders it was trained with
    logit_scale: float = 0.0        # 0: the encoder's own (calibrated) scale; else this value
    learn_logit_scale: bool = False  # train log(scale) with the context (starts at logit_scale)

    def __post_init__(self) -> None:
        if self.n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1, got {self.n_ctx}")
        if not 0.0 <= self.logit_scale <= MAX_LOGIT_SCALE:
            raise ValueError(f"logit_scale must be in [0, {MAX_LOGIT_SCALE}], got {self.logit_scale}")
        if self.learn_logit_scale and self.logit_scale <= 0:
            raise ValueError("a learned logit scale needs its starting value (logit_scale > 0)")
        if self.d_ctx < 1 or self.d_img < 1 or self.meta_hidden_ratio < 1:
            raise ValueError("d_ctx, d_img and meta_hidden_ratio must be >= 1")

    @property
    def method(self) -> str:
        return "cocoop" if self.meta_net else "coop"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassPrompts:
    """Frozen token embeddings of one class list, split around the M context slots."""

    names: tuple[str, ...]
    prefix: torch.Tensor  # (C, 1, d)      [SOS] / [CLS]
    suffix: torch.Tensor  # (C, S, d)      <name> . [EOS] [PAD]...   (L = 1 + M + S)
    mask: torch.Tensor    # (C, L) 1 = real token, 0 = padding

    def to(self, device: torch.device | str) -> "ClassPrompts":
        return ClassPrompts(self.names, self.prefix.to(device), self.suffix.to(device), self.mask.to(device))


class PromptLearner(nn.Module):
    """M learnable context vectors; with a Meta-Net, pi(image) is added to every one of them."""

    def __init__(self, cfg: PromptLearnerConfig, ctx_init: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if ctx_init is not None:
            if tuple(ctx_init.shape) != (cfg.n_ctx, cfg.d_ctx):
                raise ValueError(f"ctx_init has shape {tuple(ctx_init.shape)}, "
                                 f"expected ({cfg.n_ctx}, {cfg.d_ctx})")
            ctx = ctx_init.detach().clone().float()
        else:
            ctx = torch.randn(cfg.n_ctx, cfg.d_ctx) * 0.02
        self.ctx = nn.Parameter(ctx)  # (M, d)
        if cfg.meta_net:
            hidden = max(cfg.d_img // cfg.meta_hidden_ratio, 1)
            self.meta_net = nn.Sequential(nn.Linear(cfg.d_img, hidden), nn.ReLU(inplace=True),
                                          nn.Linear(hidden, cfg.d_ctx))
        else:
            self.meta_net = None
        if cfg.learn_logit_scale:                                 # saved with the prompt learner
            self.log_logit_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale)))

    def forward(self, image_features: torch.Tensor | None) -> torch.Tensor:
        """Context per image (B, M, d) with a Meta-Net, else the shared context (1, M, d)."""
        if self.meta_net is None or image_features is None:
            return self.ctx.unsqueeze(0)                          # (1, M, d)
        pi = self.meta_net(image_features.to(self.ctx.dtype))     # (B, d)
        return self.ctx.unsqueeze(0) + pi.unsqueeze(1)            # (B, M, d)


def assemble_prompts(ctx: torch.Tensor, prompts: ClassPrompts) -> torch.Tensor:
    """(G, M, d) contexts x C classes -> (G, C, L, d) prompt embeddings."""
    g, c = ctx.shape[0], prompts.prefix.shape[0]
    prefix = prompts.prefix.unsqueeze(0).expand(g, -1, -1, -1)   # (G, C, 1, d)
    suffix = prompts.suffix.unsqueeze(0).expand(g, -1, -1, -1)   # (G, C, S, d)
    ctx = ctx.unsqueeze(1).expand(-1, c, -1, -1)                 # (G, C, M, d)
    return torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=2)


class CoCoOp(nn.Module):
    """Prompt learner + frozen text encoder; logits = scale * cos(image, text(prompt(image)))."""

    def __init__(self, cfg: PromptLearnerConfig, text_encoder: nn.Module, logit_scale: float,
                 ctx_init: torch.Tensor | None = None, max_sequences: int = 4096) -> None:
        """`logit_scale`: the encoder's scale, used where cfg.logit_scale is 0."""
        super().__init__()
        self.cfg = cfg
        self.prompt_learner = PromptLearner(cfg, ctx_init)
        self.text_encoder = text_encoder.requires_grad_(False)
        self.fixed_logit_scale = float(cfg.logit_scale or logit_scale)
        self.max_sequences = max_sequences  # prompts per text-encoder call (bounds memory)

    @property
    def logit_scale(self) -> torch.Tensor | float:
        """exp(learned log scale), clamped at 100 as CLIP does, or the fixed scale."""
        if self.cfg.learn_logit_scale:
            return self.prompt_learner.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        return self.fixed_logit_scale

    def text_features(self, image_features: torch.Tensor | None, prompts: ClassPrompts) -> torch.Tensor:
        """(G, C, D) text features, G = B with a Meta-Net else 1; one batched pass (chunked)."""
        ctx = self.prompt_learner(image_features)                # (G, M, d)
        g, c = ctx.shape[0], prompts.prefix.shape[0]
        x = assemble_prompts(ctx, prompts).flatten(0, 1)          # (G*C, L, d)
        mask = prompts.mask.repeat(g, 1)                          # (G*C, L)
        name_start = prompts.prefix.shape[1] + ctx.shape[1]      # first token of the class name
        step = max(self.max_sequences, 1)
        feats = [self.text_encoder(x[i:i + step], mask[i:i + step], name_start)
                 for i in range(0, g * c, step)]
        return torch.cat(feats).view(g, c, -1)                    # (G, C, D)

    def forward(self, image_features: torch.Tensor, prompts: ClassPrompts) -> torch.Tensor:
        """(B, D) L2-normalised image features -> (B, C) logits, all images x classes in one pass."""
        t = self.text_features(image_features, prompts)           # (G, C, D)
        if t.shape[0] == 1:
            return self.logit_scale * image_features @ t[0].t()
        return self.logit_scale * torch.einsum("bd,bcd->bc", image_features, t)

    def forward_loop(self, image_features: torch.Tensor, prompts: ClassPrompts) -> torch.Tensor:
        """The reference formulation: one text-encoder pass per image (for comparison only)."""
        rows = []
        for f in image_features:                                   # f: (D,)
            t = self.text_features(f.unsqueeze(0), prompts)[0]     # (C, D)
            rows.append(self.logit_scale * t @ f)
        return torch.stack(rows)                                   # (B, C)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)
