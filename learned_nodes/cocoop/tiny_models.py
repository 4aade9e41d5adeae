"""Tiny random checkpoints in the real formats, for tests and smoke runs (seconds to build).

`build_tiny_clip` writes a Hugging Face CLIP folder (config.json, model.safetensors, tokenizer)
that loads through exactly the code that loads a real CLIP; `build_tiny_aligned` does the same for
the aligned dual encoder (random EfficientNet-Lite0 tower, tiny BERT text tower, projection).
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch

from learned_nodes.cocoop.encoders import ALIGNED_KIND
from learned_nodes.model_files.checkpoint import save_checkpoint


WORDS = ("a", "photo", "of", "the", "shirt", "boot", "bag", "dress", "coat", "cat", "dog", "robot")


def _clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level characters, whole words of WORDS (with the merges that build them), specials."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            merged = left + right
            if (left, right) not in merges:
                merges.append((left, right))
                tokens.append(merged)
            left = merged
    tokens = list(dict.fromkeys(tokens)) + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_tiny_clip(folder: str | Path, seed: int = 0, width: int = 32, image_size: int = 32) -> Path:
    """A random CLIPModel (2 layers, width 32) + a character-level CLIP tokenizer, saved to `folder`."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _clip_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         eos_token_id=eos, bos_token_id=vocab["<|startoftext|>"], pad_token_id=eos),
        vision_config=dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                           num_attention_heads=2, image_size=image_size, patch_size=8),
        projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _bert_vocab() -> list[str]:
    words = ["a", "photo", "of", "the", "x", "shirt", "boot", "bag", "dress", "coat", "cat", "dog", "robot"]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase) + \
        [f"##{c}" for c in string.ascii_lowercase] + [w for w in words if len(w) > 1] + list(".,-'")


def build_tiny_bert(folder: str | Path, seed: int = 0, width: int = 32) -> Path:
    """A random BertModel (2 layers) + a WordPiece tokenizer over letters and a few words."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(_bert_vocab()) + "\n")
    try:      # transformers >= 5: from vocab_file alone it maps every word to [UNK]
        tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(_bert_vocab())}, do_lower_case=True)
    except TypeError:                                                       # transformers 4
        tokenizer = BertTokenizer(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(_bert_vocab()), hidden_size=width, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=2 * width, max_position_embeddings=64)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def build_tiny_aligned(folder: str | Path, seed: int = 0, image_size: int = 64,
                       pooling: str = "mean") -> Path:
    """An aligned dual encoder folder with random towers (the real EfficientNet-Lite0 layout)."""
    from safetensors.torch import save_file

    from learned_nodes.model_files.efficientnet import EfficientNetTower

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tower = EfficientNetTower("efficientnet-lite0")
    save_file({k: v.contiguous() for k, v in tower.net.state_dict().items()
               if not k.endswith("num_batches_tracked")}, str(folder / "image_tower.safetensors"))
    build_tiny_bert(folder / "text_tower", seed)
    d_txt, d_img = 32, 1280
    config = {
        "image_tower": {"arch": "efficientnet-lite0", "weights": "image_tower.safetensors",
                        "image_size": image_size, "pixel_mean": 127.0, "pixel_std": 128.0},
        "text_tower": {"weights": "text_tower", "pooling": pooling, "normalize": True, "max_length": 64},
        "projection": {"in_dim": d_txt, "out_dim": d_img},
        "logit_scale": 30.0, "centre_images": True,
    }
    tensors = {"projection.weight": torch.randn(d_img, d_txt) * 0.1, "projection.bias": torch.zeros(d_img),
               "image_mean": torch.zeros(d_img)}
    save_checkpoint(folder, tensors, ALIGNED_KIND, config, {"note": "random weights, for tests"})
    (folder / "README.txt").write_text(json.dumps({"random": True}) + "\n")
    return folder
