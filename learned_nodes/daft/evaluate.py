"""daft-eval: ID / OOD / corrupted accuracy and feature distortion of a saved tuned checkpoint.

    daft-eval --checkpoint learned_nodes/models/daft_effl0_mnist           # built-in MNIST digits
    daft-eval --checkpoint out/mine/checkpoint --data my_images/ --json out/mine/eval.json
The evaluation data is rebuilt at the checkpoint's image size with the same fixed splits as
daft-tune (MNIST test / sklearn digits / corrupted test, or the test split of --data). Distortion
compares against the pretrained backbone (EfficientNet packages, the seeded tiny CNN, or the
Hugging Face ResNet folder recorded in the checkpoint / given by --pretrained).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from learned_nodes.daft.checkpoint import load_tuned


def pretrained_backbone(cfg: dict, override: str | None):
    """The backbone the checkpoint was tuned from, or None when it is not available here."""
    from learned_nodes.daft.backbones import HF_RESNET, build_backbone, is_hf_resnet

    name = cfg["backbone"]
    if name != HF_RESNET:
        return build_backbone(name, pretrained=True, seed=0)
    source = override or cfg.get("backbone_source")
    return build_backbone(source, pretrained=True) if source and is_hf_resnet(source) else None


def evaluate_checkpoint(folder: str | Path, data_path: str | Path | None = None, device: str = "cpu",
                        pretrained: str | None = None) -> dict:
    """{id, ood_digits?, id_corrupted, val, distortion_*?, checkpoint} of the checkpoint in `folder`."""
    from learned_nodes.model_files.paths import resolve_path
    from learned_nodes.daft.distortion import extract_features
    from learned_nodes.daft.methods import accuracy
    from learned_nodes.daft.tune import distortion_images, evaluate

    folder = resolve_path(str(folder))
    model, doc = load_tuned(folder, device)
    cfg = doc["config"]
    size = int(cfg["image_size"])
    if data_path is None:
        from learned_nodes.daft.data import load_digits_data

        data = load_digits_data(size)
    else:
        from learned_nodes.daft.folder_data import load_training_dir

        data = load_training_dir(data_path, size)
    if len(data.labels) != model.head.out_features:
        raise ValueError(f"the data has {len(data.labels)} classes, the checkpoint "
                         f"{model.head.out_features}")
    base = pretrained_backbone(cfg, pretrained)
    feats = extract_features(base, distortion_images(data), device=device) if base is not None else None
    metrics = {"val": accuracy(model, data.val_x, data.val_y, device=device),
               **evaluate(model, data, device, feats)}
    metrics["checkpoint"] = str(folder)
    metrics["method"] = cfg.get("tune", {}).get("method")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    from learned_nodes.daft.tune import format_metrics

    p = argparse.ArgumentParser(prog="daft-eval", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="tuned checkpoint folder (package:// ok)")
    p.add_argument("--data", type=Path, default=None,
                   help="folder of class subfolders or .npz (default: the MNIST digits splits)")
    p.add_argument("--pretrained", default=None, help="HF ResNet folder the checkpoint was tuned from")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    m = evaluate_checkpoint(a.checkpoint, a.data, a.device, a.pretrained)
    print(f"{m['method']}: {format_metrics(m)}  ({m['checkpoint']})")
    if "distortion_ood" not in m and "distortion_id" not in m:
        print("distortion: the pretrained backbone is not available here (pass --pretrained)")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(m, indent=2) + "\n")
    return m


if __name__ == "__main__":
    main()
