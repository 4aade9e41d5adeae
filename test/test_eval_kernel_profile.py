"""coin_lio.eval.kernel_profile: the in-place timing of the odometry's kernels and library calls."""
from __future__ import annotations

import sys

from coin_lio.eval.kernel_profile import main, profile_kernels
from coin_lio.eval.synthetic import write_sequence


def test_kernels_are_timed_in_place_and_put_back(tmp_path, capsys):
    from numba.core.registry import CPUDispatcher

    seq = write_sequence(tmp_path / "room", seconds=2.0)
    r = profile_kernels(seq)
    rows = {name: (us, calls) for name, us, calls in r["rows"]}
    assert r["scans"] >= 15 and r["mean_ms"] > 0
    # the map search runs on every tracked scan (the first ones initialise), the update's step at
    # least once on each
    assert rows["voxel_grid_kernel.grid_knn"][0] > 0 and rows["voxel_grid_kernel.grid_knn"][1] >= 0.3
    assert rows["state_kernel.information_step"][1] >= rows["voxel_grid_kernel.grid_knn"][1] * 0.5
    assert sum(us for us, _ in rows.values()) / 1e3 < r["mean_ms"]       # inside the scans' time
    # the wrappers are gone: the modules hold numba's dispatchers again
    import coin_lio.core.iekf as iekf
    import coin_lio.core.voxel_grid as voxel_grid

    assert isinstance(iekf.information_step, CPUDispatcher) and isinstance(voxel_grid.grid_knn, CPUDispatcher)
    assert "wrap" not in getattr(sys.modules["numpy.linalg"].inv, "__qualname__", "")
    # inside the window: a kernel's callee in its own module stays a kernel (a compile there
    # must not meet a Python function), a kernel called from Python is timed
    from collections import Counter, defaultdict

    import coin_lio.core.state_kernel as state_kernel
    from coin_lio.eval.kernel_profile import _timed_calls

    with _timed_calls(defaultdict(float), Counter()):
        assert isinstance(state_kernel.solve_kernel, CPUDispatcher)          # information_step calls it
        assert not isinstance(iekf.information_step, CPUDispatcher)
    assert isinstance(iekf.information_step, CPUDispatcher)
    assert main([str(seq), "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "| call | us / scan |" in out and out.count("\n| ") >= 5
