"""Your own training images for daft-tune / daft-eval: a folder of class subfolders or an .npz.

- Folder: DIR/<class name>/*.png|jpg|jpeg|bmp|pgm; class index = sorted subfolder order.
- .npz: arrays `x` ((N, H, W) grey or (N, H, W, 3) RGB, 0..255) and `y` ((N,) int), optional
  `labels` ((C,) str).
Images are read grey (the digits models are grey -> 3 channels), resized to `image_size` and split
with a FIXED generator into train / val / test (80 / 10 / 10); the corrupted split is the test set
corrupted; the OOD split is the sklearn digits only when the classes are the digits "0".."9".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from learned_nodes.daft.data import DigitsData, load_ood_digits, make_data

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm")
DIGIT_LABELS = tuple(str(i) for i in range(10))


def _grey_resized(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W) or (H, W, 3) -> (size, size) float32 grey 0..255."""
    import cv2

    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)    # RGB -> luma
    interp = cv2.INTER_AREA if max(img.shape) > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def read_image_folder(root: Path, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(N, size, size) float32 grey images, (N,) labels, class names from DIR/<class>/<image>."""
    import cv2

    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise ValueError(f"{root}: needs >= 2 class subfolders, found {classes}")
    images, labels = [], []
    for k, name in enumerate(classes):
        files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise ValueError(f"{f}: not a readable image")
            images.append(_grey_resized(img, size))
            labels.append(k)
    return np.stack(images), np.asarray(labels, np.int64), tuple(classes)


def read_npz(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The same from an .npz with x, y (and optional labels); never unpickles (allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as z:
        x, y = z["x"], z["y"].astype(np.int64)
        names = tuple(str(n) for n in z["labels"]) if "labels" in z else None
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{path}: x and y must be non-empty and of the same length")
    names = names or tuple(str(i) for i in range(int(y.max()) + 1))
    return np.stack([_grey_resized(im, size) for im in x]), y, names


def load_training_dir(path: str | Path, image_size: int, n_train: int | None = None,
                      split_seed: int = 0) -> DigitsData:
    """A folder of class subfolders or an .npz -> DigitsData (train / val / test / corrupted [/ OOD])."""
    path = Path(path)
    if path.is_dir():
        x, y, names = read_image_folder(path, image_size)
    elif path.suffix == ".npz" and path.is_file():
        x, y, names = read_npz(path, image_size)
    else:
        raise ValueError(f"{path}: expected a folder of class subfolders or an .npz file")
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(f"{path}: labels must be in 0..{len(names) - 1}")
    order = np.random.default_rng(split_seed).permutation(len(y))
    n_val = n_test = max(1, len(y) // 10)
    if len(y) - n_val - n_test < 1:
        raise ValueError(f"{path}: {len(y)} images are too few to split into train / val / test")
    te, va, tr = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if n_train is not None:
        tr = tr[:n_train]
    ood = None
    if names == DIGIT_LABELS:
        ood = load_ood_digits()
    return make_data(image_size, (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]), ood, names)
