"""Inference wrapper: owns device, eval(), no_grad, preprocessing and the class-prompt caches.

`PromptClassifier` scores images against class names chosen per call with zero-shot prompts,
CoOp or CoCoOp (same code path: zero-shot is an untrained CoOp context = "a photo of a").
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from learned_nodes.cocoop.encoders import DualEncoder, load_encoder
from learned_nodes.cocoop.model import ClassPrompts, CoCoOp, PromptLearnerConfig
from learned_nodes.model_files.checkpoint import CheckpointError, load_tensors, read_config, save_checkpoint

PROMPT_LEARNER_KIND = "prompt_learner"


def build_model(encoder: DualEncoder, cfg: PromptLearnerConfig) -> CoCoOp:
    """CoCoOp/CoOp on `encoder`, context initialised from cfg.ctx_init (or random)."""
    if cfg.d_ctx != encoder.text.d_token or cfg.d_img != encoder.embed_dim:
        raise CheckpointError(f"prompt learner is for d_ctx={cfg.d_ctx}, d_img={cfg.d_img}; the encoder has "
                              f"d_ctx={encoder.text.d_token}, d_img={encoder.embed_dim}")
    init = encoder.text.context_embeds(cfg.ctx_init, cfg.n_ctx) if cfg.ctx_init else None
    model = CoCoOp(cfg, encoder.text, encoder.logit_scale, ctx_init=init)
    return model.to(next(encoder.parameters()).device)


def default_config(encoder: DualEncoder, method: str = "cocoop", n_ctx: int = 4,
                   ctx_init: str = "a photo of a", logit_scale: float = 0.0,
                   learn_logit_scale: bool = False) -> PromptLearnerConfig:
    """`logit_scale` 0 = the encoder's; a learned scale starts there unless given."""
    if method not in ("cocoop", "coop", "zero-shot"):
        raise ValueError(f"method must be cocoop, coop or zero-shot, got '{method}'")
    if learn_logit_scale and not logit_scale:
        logit_scale = encoder.logit_scale
    return PromptLearnerConfig(n_ctx=n_ctx, ctx_init=ctx_init, d_ctx=encoder.text.d_token,
                               d_img=encoder.embed_dim, meta_net=(method == "cocoop"),
                               encoder_id=encoder.encoder_id, logit_scale=logit_scale,
                               learn_logit_scale=learn_logit_scale)


def save_prompt_learner(model: CoCoOp, folder: str | Path, info: dict | None = None) -> Path:
    return save_checkpoint(folder, model.prompt_learner.state_dict(), PROMPT_LEARNER_KIND,
                           model.cfg.to_dict(), info)


def load_prompt_learner(encoder: DualEncoder, folder: str | Path) -> tuple[CoCoOp, dict]:
    """CoCoOp/CoOp model on `encoder` with the trained context (and Meta-Net) of `folder`."""
    from learned_nodes.model_files.paths import resolve_path

    folder = resolve_path(str(folder))
    doc = read_config(folder, PROMPT_LEARNER_KIND)
    try:
        cfg = PromptLearnerConfig(**doc["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: bad prompt learner config ({exc})") from None
    cfg_no_init = PromptLearnerConfig(**{**cfg.to_dict(), "ctx_init": ""})
    model = build_model(encoder, cfg_no_init)
    model.cfg = cfg
    expected = {k: tuple(v.shape) for k, v in model.prompt_learner.state_dict().items()}
    device = str(next(encoder.parameters()).device)
    model.prompt_learner.load_state_dict(load_tensors(folder, expected, device=device))
    return model.eval(), doc.get("info", {})


@dataclass
class Scores:
    probs: np.ndarray   # (C,) softmax over the class list
    logits: np.ndarray  # (C,)


class PromptClassifier:
    """Batched open-vocabulary classification of uint8 RGB images."""

    def __init__(self, encoder: DualEncoder, model: CoCoOp, method: str, cache_size: int = 32) -> None:
        self.encoder, self.model, self.method = encoder.eval(), model.eval(), method
        self.cache_size = cache_size
        trained_on = model.cfg.encoder_id
        # A prompt learner sees image features through the encoder it was trained with (Meta-Net).
        self.warnings = [] if method == "zero-shot" or not trained_on or trained_on == encoder.encoder_id else [
            f"the prompt learner was trained on encoder '{trained_on}', it runs on '{encoder.encoder_id}'"]
        self._prompts: OrderedDict[tuple[str, ...], ClassPrompts] = OrderedDict()
        self._text: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()  # CoOp/zero-shot only

    @classmethod
    def from_paths(cls, encoder_path: str | Path, prompt_learner_path: str | Path | None = None,
                   device: str = "cpu", threads: int = 0, cache_size: int = 32,
                   image_mean: str = "") -> "PromptClassifier":
        if threads > 0:
            torch.set_num_threads(threads)
        encoder = load_encoder(encoder_path, device, image_mean)
        if prompt_learner_path:
            model, _ = load_prompt_learner(encoder, prompt_learner_path)
            method = model.cfg.method
        else:
            model, method = build_model(encoder, default_config(encoder, "zero-shot")), "zero-shot"
        return cls(encoder, model, method, cache_size)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def prompts(self, names: Sequence[str]) -> ClassPrompts:
        """Token embeddings of the class list (LRU cache keyed by the tuple of names)."""
        key = tuple(names)
        if key in self._prompts:
            self._prompts.move_to_end(key)
            return self._prompts[key]
        p = self.encoder.text.class_prompts(key, self.model.cfg.n_ctx)
        self._prompts[key] = p
        while len(self._prompts) > self.cache_size:
            self._prompts.popitem(last=False)
        return p

    @torch.inference_mode()
    def logits(self, image_features: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """(B, D) image features -> (B, C) logits for the class list."""
        key = tuple(names)
        if self.model.prompt_learner.meta_net is not None:
            return self.model(image_features, self.prompts(key))
        text = self._text.get(key)
        if text is None:
            text = self.model.text_features(None, self.prompts(key))[0]     # (C, D)
            self._text[key] = text
            while len(self._text) > self.cache_size:
                self._text.popitem(last=False)
        else:
            self._text.move_to_end(key)
        return self.model.logit_scale * image_features @ text.t()

    @torch.inference_mode()
    def classify_many(self, images: Sequence[np.ndarray],
                      class_lists: Sequence[Sequence[str]]) -> tuple[list[Scores], float]:
        """Score each image against its own class list: images in one encoder pass, then one
        prompt pass per distinct class list. Returns the scores and the wall time in ms."""
        t0 = time.perf_counter()
        feats = self.encoder.encode_images(list(images))                     # (B, D)
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, names in enumerate(class_lists):
            groups.setdefault(tuple(names), []).append(i)
        out: list[Scores | None] = [None] * len(images)
        for names, idx in groups.items():
            logits = self.logits(feats[idx], names).float()                  # (b, C)
            probs = logits.softmax(dim=-1).cpu().numpy()
            logits_np = logits.cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = Scores(probs[row], logits_np[row])
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return out, (time.perf_counter() - t0) * 1000.0  # type: ignore[return-value]

    def classify(self, image: np.ndarray, names: Sequence[str], top_k: int = 0) -> list[tuple[str, float]]:
        """[(label, probability)] best first for one image."""
        (scores,), _ = self.classify_many([image], [names])
        order = np.argsort(-scores.probs)[: (top_k or len(names))]
        return [(names[i], float(scores.probs[i])) for i in order]
