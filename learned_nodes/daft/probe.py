"""Linear probe as LP-FT and DAFT's reference code fit it (hsh1108/DAFT lp_log_reg.py):
scikit-learn logistic regression on frozen features, C swept on the ID validation split.

- features are standardised with ONE scalar mean and std over the whole training feature matrix
  (the reference's `normalize_features`; not per feature), then
- LogisticRegression(max_iter=200, warm_start=True) is fitted for every C of
  logspace(-7, 2, num_cs) in increasing order; the C with the best validation accuracy wins
  (ties: the smaller C, fitted first),
- its weights are folded back onto raw features: W <- W / std, b <- b - W mu / std (summed over
  features), so the torch head reproduces the classifier exactly.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

C_START, C_END = -7.0, 2.0                 # log10 range of the reference's configs (cifar-lp.yaml)


@dataclass
class ProbeFit:
    """Head weights on RAW features (num_classes, D), (num_classes,), the chosen C, its val accuracy."""

    weight: np.ndarray
    bias: np.ndarray
    c: float
    val_acc: float
    val_scores: dict[str, float] = field(default_factory=dict)


def c_grid(num_cs: int) -> np.ndarray:
    """The C values swept, increasing (the reference: 50 values from 1e-7 to 1e2)."""
    if num_cs < 1:
        raise ValueError(f"num_cs must be >= 1, got {num_cs}")
    return np.logspace(C_START, C_END, num_cs)


def _full_head(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray,
               num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's coef (rows for the classes seen; one row when binary) -> (num_classes, D) weights,
    classes never seen in training get a zero row (the reference's pad_head)."""
    if len(classes) == 2 and coef.shape[0] == 1:            # binary: logit(c1) - logit(c0) = w x + b
        coef = np.concatenate([np.zeros_like(coef), coef])
        intercept = np.concatenate([np.zeros_like(intercept), intercept])
    weight = np.zeros((num_classes, coef.shape[1]))
    bias = np.zeros(num_classes)
    weight[classes], bias[classes] = coef, intercept
    return weight, bias


def fit_probe(train_feats: torch.Tensor, train_y: torch.Tensor, val_feats: torch.Tensor,
              val_y: torch.Tensor, num_classes: int, num_cs: int = 50,
              max_iter: int = 200) -> ProbeFit:
    """The reference's C sweep on scalar-standardised features; returns the best head on raw features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    f_tr = train_feats.double().numpy()
    mean, std = float(f_tr.mean()), float(f_tr.std())
    if not std > 0:
        raise ValueError("the training features are constant: nothing to probe")
    x_tr, x_va = (f_tr - mean) / std, (val_feats.double().numpy() - mean) / std
    y_tr, y_va = train_y.numpy(), val_y.numpy()
    if len(np.unique(y_tr)) < 2:
        raise ValueError("the linear probe needs at least two classes in the training split")
    clf = LogisticRegression(max_iter=max_iter, warm_start=True)
    best: tuple[float, float, np.ndarray, np.ndarray, np.ndarray] | None = None
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)          # max_iter 200 as the reference
        for c in c_grid(num_cs):
            clf.set_params(C=float(c))
            clf.fit(x_tr, y_tr)
            acc = float(clf.score(x_va, y_va))
            scores[f"{c:.3g}"] = acc
            if best is None or acc > best[1]:
                best = (float(c), acc, copy.deepcopy(clf.coef_), copy.deepcopy(clf.intercept_),
                        clf.classes_.copy())
    c, acc, coef, intercept, classes = best
    w = coef / std                                                   # fold the standardisation in
    b = intercept - w.sum(axis=1) * mean
    weight, bias = _full_head(w, b, classes, num_classes)
    return ProbeFit(weight=weight, bias=bias, c=c, val_acc=acc, val_scores=scores)


@torch.no_grad()
def set_head(head: nn.Linear, fit: ProbeFit) -> None:
    """Copy the probe's weights into the torch head."""
    if tuple(fit.weight.shape) != tuple(head.weight.shape):
        raise ValueError(f"probe weights {fit.weight.shape} do not fit the head {tuple(head.weight.shape)}")
    head.weight.copy_(torch.as_tensor(fit.weight, dtype=head.weight.dtype))
    head.bias.copy_(torch.as_tensor(fit.bias, dtype=head.bias.dtype))
