"""Learning-rate selection on the ID VALIDATION split (never on OOD or test), 1 seed, same budget.

- lp: probe lr in PROBE_LR. The probe trains on RAW frozen features (EfficientNet-Lite0's have a
  norm of ~40), so its useful rates are ~100x below the fast-head grid: at 0.1-1 the probe's
  logits reach the hundreds, and LP-FT started from such a head diverges.
- ft: backbone lr in LR_BACKBONE (the head shares it).
- lpft: backbone lr in LR_BACKBONE; its probe uses lp's selected lr.
- daft: backbone lr in LR_BACKBONE at head lr 0.3, then head lr in LR_HEAD at the best backbone
  lr (coordinate search: 5 runs instead of 9).
- A winner at the edge of a grid gets ONE more step beyond it (x or / sqrt(10)), so the selection
  is not an artefact of the grid's range.
- Ablations reuse the rates of the method they ablate (no sweep of their own):
  daft_conversion_only = ft + BN conversion -> ft's lr; daft_fast_head_only = daft without the
  conversion -> daft's two rates.
"""
from __future__ import annotations

import math
from typing import Callable

LR_BACKBONE = (1e-2, 3e-3, 1e-3)
LR_HEAD = (1.0, 0.3, 0.1)
PROBE_LR = (3e-2, 1e-2, 3e-3)
DAFT_HEAD_START = 0.3

# run(method, lr_backbone, lr_head) -> validation accuracy (the caller caches runs)
RunFn = Callable[[str, float, float], float]


def best(scores: dict[tuple[float, float], float]) -> tuple[float, float]:
    """The (lr_backbone, lr_head) with the highest validation accuracy; ties -> the first tried."""
    top = max(scores.values())
    return next(k for k, v in scores.items() if v == top)


def _step(lr: float, up: bool) -> float:
    """The next value of the 1-3-10 series: 1e-2 -> 3e-2 (up), 1e-3 -> 3e-4, 3e-2 -> 1e-2 (down)."""
    x = lr * math.sqrt(10.0) if up else lr / math.sqrt(10.0)
    e = math.floor(math.log10(x))
    m = min((1.0, 3.0, 10.0), key=lambda c: abs(math.log10(x / 10.0**e) - math.log10(c)))
    return float(f"{m * 10.0**e:.3g}")


def search(run: RunFn, method: str, grid: tuple[float, ...], axis: int, fixed: float,
           scores: dict[tuple[float, float], float] | None = None) -> dict[tuple[float, float], float]:
    """Scores over `grid` on one axis (0: backbone lr, 1: head lr) with the other at `fixed`,
    plus one step beyond the edge when an edge wins."""
    scores = {} if scores is None else scores

    def key(lr: float) -> tuple[float, float]:
        return (lr, fixed) if axis == 0 else (fixed, lr)

    def score(lr: float) -> float:
        if key(lr) not in scores:
            scores[key(lr)] = run(method, *key(lr))
        return scores[key(lr)]

    values = {lr: score(lr) for lr in grid}
    top = max(values.values())
    winner = next(lr for lr, v in values.items() if v == top)
    if winner in (max(grid), min(grid)):
        score(_step(winner, up=winner == max(grid)))
    return scores


def select_rates(run: RunFn) -> dict[str, dict]:
    """{method: {lr_backbone, lr_head, val_scores}} for every method, by the plan above."""
    sel: dict[str, dict] = {}

    def record(method: str, scores: dict[tuple[float, float], float]) -> None:
        b, h = best(scores)
        sel[method] = {"lr_backbone": b, "lr_head": h,
                       "val_scores": {f"lrb={k[0]:g} lrh={k[1]:g}": v for k, v in scores.items()}}

    record("lp", search(run, "lp", PROBE_LR, 1, LR_BACKBONE[-1]))
    probe_lr = sel["lp"]["lr_head"]
    ft: dict[tuple[float, float], float] = {}
    for b in LR_BACKBONE:                                  # ft's head shares the backbone lr
        ft[(b, b)] = run("ft", b, b)
    b_top = best(ft)[0]
    if b_top in (max(LR_BACKBONE), min(LR_BACKBONE)):
        b = _step(b_top, up=b_top == max(LR_BACKBONE))
        ft[(b, b)] = run("ft", b, b)
    record("ft", ft)
    record("lpft", search(run, "lpft", LR_BACKBONE, 0, probe_lr))
    daft = search(run, "daft", LR_BACKBONE, 0, DAFT_HEAD_START)
    record("daft", search(run, "daft", LR_HEAD, 1, best(daft)[0], daft))
    sel["daft_conversion_only"] = {**sel["ft"], "val_scores": {}, "from": "ft"}
    sel["daft_fast_head_only"] = {**sel["daft"], "val_scores": {}, "from": "daft"}
    return sel
