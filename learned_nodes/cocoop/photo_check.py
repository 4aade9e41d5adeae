"""`cocoop-photo-check`: open-vocabulary check of the classifier on every real photo the installed
packages ship (learned_nodes/cocoop/real_photos.py, 19 photos, 11 in colour).

Each photo is scored against the labels of all 19 photos (a 19-way choice made at call time;
chance 5 %). The configured classifier (config/classifier.yaml, as the node loads it) is the first
row; the other rows are the same encoder and prompt learner with the other image centre, so the
table shows what each choice does on photos. Nothing is tuned on these photos.

    python -m learned_nodes.cocoop.photo_check --out out/photo_check      # ~1 min on one core

Writes results.md, results.json and photos.jpg (each photo with its top 3) under --out.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learned_nodes.cocoop.real_photos import RealPhoto, real_photos


@dataclass(frozen=True)
class Variant:
    name: str
    prompt_learner: str     # '' = zero-shot prompts ("a photo of a {}.")
    image_mean: str         # '' = the encoder folder's own choice


def configured_variant(params_file: Path) -> tuple[str, Variant]:
    """(encoder path, variant) as classifier_node would load them from `params_file`."""
    from learned_nodes.classifier_node_config import ClassifierNodeConfig
    from suite_tools.config_params import build, load_node_params

    cfg = build(ClassifierNodeConfig, load_node_params(params_file, "classifier_node"))
    m = cfg.model
    return m.encoder_path, Variant("configured (" + Path(params_file).name + ")", m.prompt_learner_path,
                                   m.image_mean)


def check(classifier, photos: list[RealPhoto], images: list[np.ndarray]) -> dict:
    """Top 3 of each photo among all the set's labels; accuracies over all and over colour photos."""
    vocab = sorted({p.label for p in photos})
    scores, ms = classifier.classify_many(images, [vocab] * len(images))
    rows = []
    for p, s in zip(photos, scores):
        order = np.argsort(-s.probs)[:3]
        rows.append({"name": p.name, "label": p.label, "colour": p.colour,
                     "top3": [(vocab[i], round(float(s.probs[i]), 3)) for i in order],
                     "right": vocab[order[0]] == p.label})
    colour = [r for r in rows if r["colour"]]
    return {"rows": rows, "vocabulary": vocab, "ms": round(ms, 1),
            "right": sum(r["right"] for r in rows), "n": len(rows),
            "right_colour": sum(r["right"] for r in colour), "n_colour": len(colour)}


def run(params_file: Path, threads: int = 1) -> tuple[list[tuple[Variant, dict]], list[np.ndarray]]:
    """Every variant's check, and the photos (H, W, 3) it scored."""
    from learned_nodes.cocoop.defaults import DEFAULT_PROMPT_LEARNER
    from learned_nodes.cocoop.inference import PromptClassifier

    encoder, configured = configured_variant(params_file)
    variants = [configured] + [Variant(f"{'CoCoOp (Fashion-MNIST base)' if pl else 'zero-shot'}, {mean} mean",
                                       pl, mean)
                               for pl in ("", DEFAULT_PROMPT_LEARNER) for mean in ("stored", "pretraining")]
    photos = real_photos()
    images = [p.load() for p in photos]
    out = []
    for v in variants:
        clf = PromptClassifier.from_paths(encoder, v.prompt_learner or None, threads=threads,
                                          image_mean=v.image_mean)
        out.append((v, check(clf, photos, images)))
    return out, images


def table(results: list[tuple[Variant, dict]]) -> str:
    lines = ["| classifier | right (all 19) | right (11 colour) |", "| --- | --- | --- |"]
    lines += [f"| {v.name} | {r['right']}/{r['n']} | {r['right_colour']}/{r['n_colour']} |" for v, r in results]
    first = results[0][1]
    lines += ["", f"Per photo, {results[0][0].name} (top 3 among the {len(first['vocabulary'])} labels):", "",
              "| photo | label | top 3 |", "| --- | --- | --- |"]
    for r in first["rows"]:
        mark = "right" if r["right"] else "wrong"
        top = ", ".join(f"{n} {p:.2f}" for n, p in r["top3"])
        lines.append(f"| {r['name']}{'' if r['colour'] else ' (grey)'} | {r['label']} | {top} ({mark}) |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], images: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(3.2 * cols, 3.4 * 4))
    for ax in axes.flat:
        ax.axis("off")
    for ax, r, img in zip(axes.flat, rows, images):
        ax.imshow(img)
        text = "\n".join(f"{n} {p:.2f}" for n, p in r["top3"])
        ax.set_title(f"{r['label']}\n{text}", fontsize=8, color="green" if r["right"] else "red")
    fig.tight_layout()
    fig.savefig(path, dpi=70, pil_kwargs={"quality": 80} if path.suffix == ".jpg" else None)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from suite_tools.ros_env import source_root

    p = argparse.ArgumentParser(prog="cocoop-photo-check", description=__doc__.split("\n")[0])
    p.add_argument("--params-file", type=Path, default=source_root() / "config" / "classifier.yaml")
    p.add_argument("--out", type=Path, default=Path("out/photo_check"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    results, images = run(args.params_file, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    md = table(results)
    (args.out / "results.md").write_text(md)
    (args.out / "results.json").write_text(json.dumps([{"variant": v.__dict__, **r} for v, r in results],
                                                      indent=1))
    plot(results[0][1]["rows"], images, args.out / "photos.jpg")
    print(md, end="")
    print(f"[photo-check] wrote {args.out}/results.md, results.json, photos.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
