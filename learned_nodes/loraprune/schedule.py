"""Cubic sparsity ramp of iterative pruning (Zhu & Gupta 2017, as LoRAPrune's reference).

ratio(t) = initial for t <= warmup * T; = target for t > T - cooldown * T; in between
target + (initial - target) * (1 - (t - warmup T) / (T - (warmup + cooldown) T))^3, which rises fast
first and flattens towards the target, so LoRA has time to recover before the last masks.
"""
from __future__ import annotations


def cubic_sparsity(step: int, total_steps: int, target: float, warmup: float = 0.1,
                   cooldown: float = 0.1, initial: float = 0.0) -> float:
    """Pruning ratio to reach after `step` of `total_steps` optimiser steps."""
    if total_steps < 1:
        raise ValueError("total_steps must be >= 1")
    if not (0.0 <= warmup and 0.0 <= cooldown and warmup + cooldown < 1.0):
        raise ValueError("warmup and cooldown must be >= 0 with warmup + cooldown < 1")
    start = warmup * total_steps
    if step <= start:
        return initial
    if step > total_steps - cooldown * total_steps:
        return target
    span = total_steps - (warmup + cooldown) * total_steps
    remaining = 1.0 - (step - start) / span
    return target + (initial - target) * max(remaining, 0.0) ** 3


def mask_update_steps(total_steps: int, every: int) -> list[int]:
    """1-based steps after which masks are recomputed: every `every` steps and the last step."""
    steps = list(range(every, total_steps + 1, every))
    if not steps or steps[-1] != total_steps:
        steps.append(total_steps)
    return steps
