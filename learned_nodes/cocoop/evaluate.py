"""`cocoop-eval`: base-to-new accuracy (base / new / harmonic mean) of zero-shot, CoOp or CoCoOp.

    cocoop-eval --prompt-learner learned_nodes/models/cocoop_fmnist_base      # trained CoCoOp/CoOp
    cocoop-eval --zero-shot                                                  # "a photo of a {}."

Base accuracy: base-class test images among the base classes; new: new-class test images among
the new classes (the CoCoOp protocol). Image features are cached (see --cache).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def predict(model, encoder, features, class_names: Sequence[str], chunk: int = 64) -> np.ndarray:
    """(N, D) image features -> (N,) predicted class index; batched over images and classes."""
    import torch

    prompts = encoder.text.class_prompts(list(class_names), model.cfg.n_ctx)
    preds = []
    with torch.inference_mode():
        if model.prompt_learner.meta_net is None:
            text = model.text_features(None, prompts)[0]                 # (C, D)
            return (features @ text.t()).argmax(-1).cpu().numpy()
        for i in range(0, len(features), chunk):
            preds.append(model(features[i:i + chunk], prompts).argmax(-1).cpu())
    return torch.cat(preds).numpy()


def accuracy(model, encoder, data, idx: np.ndarray, features, classes: Sequence[int]) -> float:
    """Accuracy (in %) of the images of `classes` among `classes` only; `features` rows match `idx`."""
    labels = data.labels[idx]
    rows = np.flatnonzero(np.isin(labels, classes))
    remap = {c: i for i, c in enumerate(classes)}
    y = np.asarray([remap[int(v)] for v in labels[rows]])
    pred = predict(model, encoder, features[rows], [data.class_names[c] for c in classes])
    return 100.0 * float((pred == y).mean())


def evaluate_base_new(model, encoder, data, test_idx: np.ndarray, features, base: Sequence[int],
                      new: Sequence[int]) -> dict[str, float]:
    """Accuracies (in %) on the base and new halves; `features` rows match `test_idx`."""
    out = {split: accuracy(model, encoder, data, test_idx, features, classes)
           for split, classes in (("base", base), ("new", new))}
    out["hm"] = harmonic_mean(out["base"], out["new"])
    return out


def shared_shift(model, encoder, features, class_names: Sequence[str]) -> float:
    """How much the Meta-Net moves every class's text feature the same way, in [1/C, 1]:
    ||mean_c d_c||^2 / mean_c ||d_c||^2 per image, d_c = t_c(image) - t_c(no shift), averaged.
    1 = one shift shared by all classes; 1/C = class-specific shifts that cancel on average."""
    import torch

    if model.prompt_learner.meta_net is None:
        raise ValueError("a shared shift needs a Meta-Net (CoCoOp)")
    prompts = encoder.text.class_prompts(list(class_names), model.cfg.n_ctx)
    with torch.inference_mode():
        t = model.text_features(features, prompts)                          # (B, C, D)
        t0 = model.text_features(None, prompts)                             # (1, C, D)
        d = t - t0
        ratio = d.mean(1).pow(2).sum(-1) / d.pow(2).sum(-1).mean(1).clamp_min(1e-12)   # (B,)
    return float(ratio.mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cocoop-eval", description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt-learner", help="trained prompt learner folder (or package:// path)")
    g.add_argument("--zero-shot", action="store_true", help="hand-written prompt 'a photo of a {}.'")
    p.add_argument("--encoder", default=None, help="encoder folder (default: the shipped aligned encoder)")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--per-class", type=int, default=200, help="test images per class (0 = all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", type=Path, default=Path("out/feature_cache"))
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from learned_nodes.cocoop.data import base_new_split, load_dataset, per_class_subset
    from learned_nodes.cocoop.encoders import load_encoder
    from learned_nodes.cocoop.features import image_features
    from learned_nodes.cocoop.inference import build_model, default_config, load_prompt_learner
    from learned_nodes.cocoop.defaults import default_encoder_path

    encoder = load_encoder(args.encoder or default_encoder_path(), args.device)
    if args.zero_shot:
        model, method = build_model(encoder, default_config(encoder, "zero-shot")), "zero-shot"
    else:
        model, _ = load_prompt_learner(encoder, args.prompt_learner)
        method = model.cfg.method
    data = load_dataset(args.data, "test")
    base, new = base_new_split(len(data.class_names))
    idx = per_class_subset(data.labels, base + new, args.per_class, seed=0)
    feats = image_features(encoder, data, idx, cache_dir=args.cache, progress=not args.no_progress)[:, 0]
    res = evaluate_base_new(model, encoder, data, idx, feats.to(args.device), base, new)
    print(f"[cocoop-eval] {method} on {data.name} ({len(idx)} test images): "
          f"base {res['base']:.2f}  new {res['new']:.2f}  HM {res['hm']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"method": method, "data": data.name, "n_test": len(idx), **res}
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
