"""Labelled image sets for prompt learning: Fashion-MNIST (IDX files of the Debian package
`dataset-fashion-mnist`) and image folders (root/<class name>/*.png|jpg), the few-shot sampler
and the base/new class split of the CoCoOp paper (first half of the classes = base).

A data set is duck-typed: `class_names`, `labels` (N,) and `image(i) -> (H, W, 3) uint8 RGB`.
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
# Fashion-MNIST labels 0..9 as prompt-friendly names ("T-shirt/top" -> "t-shirt", ...).
FASHION_MNIST_CLASSES = ("t-shirt", "trousers", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzip'ed) as a numpy array (uint8 data, big-endian header)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} values, header says {dims}")
    return data.reshape(dims)


@dataclass
class ArrayImages:
    """Grey or RGB images in one array; Fashion-MNIST is inverted (dark garment on white), which
    is how product photos look and what ImageNet-trained towers expect."""

    class_names: tuple[str, ...]
    images: np.ndarray            # (N, H, W) or (N, H, W, 3) uint8
    labels: np.ndarray            # (N,) int
    invert: bool = False
    name: str = "images"

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> np.ndarray:
        x = self.images[i]
        if self.invert:
            x = 255 - x
        return np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x


@dataclass
class FolderImages:
    """root/<class name>/<image files>; underscores in folder names become spaces."""

    root: Path
    class_names: tuple[str, ...] = ()
    paths: list[Path] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    name: str = "folder"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        dirs = sorted(d for d in self.root.iterdir() if d.is_dir())
        if not dirs:
            raise ValueError(f"{self.root}: no class folders (expected root/<class name>/<images>)")
        self.class_names = tuple(d.name.replace("_", " ") for d in dirs)
        labels = []
        for c, d in enumerate(dirs):
            files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.paths += files
            labels += [c] * len(files)
        self.labels = np.asarray(labels, int)
        self.name = self.root.name

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> np.ndarray:
        import cv2

        img = cv2.imread(str(self.paths[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{self.paths[i]}: not a readable image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def fashion_mnist(split: str = "train", root: str | Path | None = None) -> ArrayImages:
    """Fashion-MNIST train (60k) or test (10k), inverted grey images."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got '{split}'")
    root = Path(root) if root else FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    img_path, lbl_path = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    if not img_path.exists():
        raise FileNotFoundError(f"{img_path} not found: install the Debian package dataset-fashion-mnist "
                                "(make setup does) or set FASHION_MNIST_DIR")
    return ArrayImages(FASHION_MNIST_CLASSES, read_idx(img_path), read_idx(lbl_path).astype(int),
                       invert=True, name=f"fashion-mnist-{split}")


def load_dataset(spec: str, split: str = "train"):
    """A named data set ('fashion-mnist') or an image folder path."""
    if spec.lower() in ("fashion-mnist", "fashion_mnist", "fmnist"):
        return fashion_mnist(split)
    path = Path(spec)
    if path.is_dir():
        sub = path / split
        return FolderImages(sub if sub.is_dir() else path)
    raise ValueError(f"unknown data set '{spec}' (use 'fashion-mnist' or a folder of class folders)")


def base_new_split(n_classes: int) -> tuple[list[int], list[int]]:
    """CoCoOp's split: the first ceil(n/2) class ids are base, the rest new."""
    m = (n_classes + 1) // 2
    return list(range(m)), list(range(m, n_classes))


def few_shot_indices(labels: np.ndarray, classes: Sequence[int], shots: int, seed: int) -> np.ndarray:
    """`shots` random indices of each class in `classes` (seeded); sorted by class."""
    rng = np.random.default_rng(seed)
    out = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < shots:
            raise ValueError(f"class {c} has {len(idx)} images, fewer than {shots} shots")
        out.append(rng.choice(idx, shots, replace=False))
    return np.concatenate(out) if out else np.zeros(0, int)


def per_class_subset(labels: np.ndarray, classes: Sequence[int], per_class: int, seed: int = 0) -> np.ndarray:
    """Up to `per_class` indices of each class (a fixed evaluation subset)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if per_class > 0:
            idx = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
        out.append(idx)
    return np.concatenate(out) if out else np.zeros(0, int)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training view: random resized crop (area 50-100 %) and horizontal flip, as in CoOp."""
    import cv2

    h, w = image.shape[:2]
    area = rng.uniform(0.5, 1.0) * h * w
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch, cw = min(h, int(round(np.sqrt(area / ratio)))), min(w, int(round(np.sqrt(area * ratio))))
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw])
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out
