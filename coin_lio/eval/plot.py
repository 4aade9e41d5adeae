"""One PNG of every estimate against ground truth: top view (x-y) and per-axis position error over
time, each estimate SE(3)-aligned to ground truth first (as APE is computed). Agg canvas only."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from coin_lio.eval.metrics import align_se3
from coin_lio.eval.trajectory import Trajectory, match_to_reference


def plot_trajectories(gt: Trajectory, estimates: Mapping[str, Trajectory], path: str | Path,
                      title: str = "", max_diff: float = 0.01, align: bool = True) -> Path:
    """Write the figure to `path` (PNG); estimates that match no GT stamp are listed as such."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 7), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 2, width_ratios=[1.15, 1.0])
    top = fig.add_subplot(grid[:, 0])
    err_axes = [fig.add_subplot(grid[i, 1]) for i in range(3)]
    t0 = float(gt.timestamps[0]) if len(gt) else 0.0
    top.plot(gt.positions[:, 0], gt.positions[:, 1], color="black", lw=2.0, label="ground truth")
    if len(gt):
        top.plot(*gt.positions[0, :2], "ko", ms=6)
    for name, est in estimates.items():
        try:
            ref, matched, _ = match_to_reference(gt, est, max_diff)
        except ValueError:
            top.plot([], [], label=f"{name}: no matching stamps")
            continue
        if align and len(ref) >= 3:
            try:
                matched = align_se3(ref, matched)[0]
            except ValueError:
                pass
        err = matched.positions - ref.positions                      # (N, 3)
        rmse = float(np.sqrt(np.mean(np.sum(err ** 2, axis=1))))
        line, = top.plot(matched.positions[:, 0], matched.positions[:, 1], lw=1.2,
                         label=f"{name} (APE {rmse:.3f} m)")
        for i, ax in enumerate(err_axes):
            ax.plot(ref.timestamps - t0, err[:, i], lw=1.0, color=line.get_color(), label=name)
    top.set(xlabel="x [m]", ylabel="y [m]", title="top view" + (" (aligned)" if align else ""))
    top.set_aspect("equal", adjustable="datalim")
    top.grid(True, alpha=0.3)
    top.legend(loc="best", fontsize=8)
    for axis, ax in zip("xyz", err_axes):
        ax.set_ylabel(f"{axis} error [m]")
        ax.grid(True, alpha=0.3)
        ax.axhline(0.0, color="black", lw=0.6)
    err_axes[0].set_title("position error (estimate - ground truth)")
    err_axes[-1].set_xlabel(f"time since {t0:.3f} [s]")
    if err_axes[0].get_legend_handles_labels()[0]:
        err_axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
