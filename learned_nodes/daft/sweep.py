"""Learning-rate selection on the ID VALIDATION split (never on OOD or test), 1 seed, same budget,
over the reference's grids (hsh1108/DAFT configs_moco/cifar-*.yaml, run-moco.sh, run-ablation.sh).
Every run already keeps its best epoch on validation; a rate is scored by that epoch.

- lp: no learning rate; the logistic probe sweeps C on validation inside every run (`probe.py`).
- ft: backbone lr in FT_LR (0.3 .. 1e-4); the randomly initialised head shares it.
- lpft: backbone lr in LPFT_LR (1e-4 .. 3e-7); the head starts from the probe, same lr.
- daft_fast_head_only: backbone lr in DAFT_LR (1e-4 .. 3e-6) at head lr STAGE1_HEAD_LR = 1.0, whole
  network in eval mode: this IS the reference's first DAFT stage (cifar-daft.yaml, which its
  `only_fast_headtrain` ablation runs unchanged).
- daft: the backbone lr that stage selected, head lr in DAFT_HEAD_LR (cifar-daft_2.yaml: BN
  conversion, train mode).
- daft_conversion_only: backbone lr in DAFT_LR, head lr = backbone lr (cifar-daft.yaml +
  `only_bn_conversion`).
Every grid runs from the highest rate down and is CUT once PATIENCE consecutive rates score below
the best so far (the reference runs every point; the cut assumes one peak and saves the CPU time
of rates that have already stopped working). No extension past a grid's edge (the reference has
none); a winner at an edge is flagged (`at_edge`) so the report can say so.
"""
from __future__ import annotations

from typing import Callable

FT_LR = (0.3, 0.1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
LPFT_LR = (1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7)
DAFT_LR = (1e-4, 3e-5, 1e-5, 3e-6)
DAFT_HEAD_LR = (10.0, 3.0, 0.3, 0.1)
STAGE1_HEAD_LR = 1.0
PATIENCE = 2

# run(method, lr_backbone, lr_head) -> validation accuracy of the run's best epoch (caller caches)
RunFn = Callable[[str, float, float], float]


def best(scores: dict[tuple[float, float], float]) -> tuple[float, float]:
    """The (lr_backbone, lr_head) with the highest validation accuracy; ties -> the first tried."""
    top = max(scores.values())
    return next(k for k, v in scores.items() if v == top)


def sweep(run: RunFn, method: str, pairs: list[tuple[float, float]],
          patience: int = PATIENCE) -> dict[tuple[float, float], float]:
    """Validation accuracy of `method` at the (lr_backbone, lr_head) pairs in order, stopping after
    `patience` consecutive pairs below the best so far (0: never stop)."""
    scores: dict[tuple[float, float], float] = {}
    below = 0
    for pair in pairs:
        scores[pair] = run(method, *pair)
        below = below + 1 if scores[pair] < max(scores.values()) else 0
        if patience and below >= patience:
            break
    return scores


def select_rates(run: RunFn, patience: int = PATIENCE) -> dict[str, dict]:
    """{method: {lr_backbone, lr_head, val_scores, at_edge}} for every method, by the plan above."""
    sel: dict[str, dict] = {"lp": {"lr_backbone": None, "lr_head": None, "val_scores": {},
                                   "at_edge": False, "note": "C swept on validation in each run"}}

    def record(method: str, scores: dict[tuple[float, float], float], axis: int,
               grid: tuple[float, ...]) -> None:
        b, h = best(scores)
        chosen = (b, h)[axis]
        sel[method] = {"lr_backbone": b, "lr_head": h, "at_edge": chosen in (grid[0], grid[-1]),
                       "val_scores": {f"lrb={k[0]:g} lrh={k[1]:g}": v for k, v in scores.items()}}

    record("ft", sweep(run, "ft", [(lr, lr) for lr in FT_LR], patience), 0, FT_LR)
    record("lpft", sweep(run, "lpft", [(lr, lr) for lr in LPFT_LR], patience), 0, LPFT_LR)
    record("daft_fast_head_only",
           sweep(run, "daft_fast_head_only", [(lr, STAGE1_HEAD_LR) for lr in DAFT_LR], patience), 0, DAFT_LR)
    stage1 = sel["daft_fast_head_only"]["lr_backbone"]
    record("daft", sweep(run, "daft", [(stage1, h) for h in DAFT_HEAD_LR], patience), 1, DAFT_HEAD_LR)
    sel["daft"]["backbone_from"] = "daft_fast_head_only (the reference's first DAFT stage)"
    sel["daft"]["backbone_at_edge"] = sel["daft_fast_head_only"]["at_edge"]
    record("daft_conversion_only",
           sweep(run, "daft_conversion_only", [(lr, lr) for lr in DAFT_LR], patience), 0, DAFT_LR)
    return sel
