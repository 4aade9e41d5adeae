"""Where a scan's time goes, measured inside the scan: every compiled kernel of coin_lio and the
library calls it makes (numpy.linalg, OpenCV), each timed in place over a whole sequence.

  python -m coin_lio.eval.kernel_profile SEQ_DIR [--top 40]

Why in place: a kernel timed in a loop on one input runs with its code and data in the caches and
its branches learnt. Inside a scan the images, map and other kernels have evicted them between
calls, so the same call takes 1.5-10x longer. Small LAPACK calls show it most: 7-17 us in a
loop, 50-90 us inside a 64-row scan (docs/coin_lio.md, session 24). Each call gains ~0.3 us of
wrapper. What the table does not list is Python and small numpy work: the scan's mean less the
table's sum.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

LIBRARY_CALLS = {"numpy.linalg": ("inv", "solve", "svd", "det", "eigh", "norm", "lstsq"),
                 "cv2": ("filter2D", "blur", "copyMakeBorder", "erode", "GaussianBlur", "remap")}


def _code_names(code) -> set[str]:
    """Global names a code object and the code nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


@contextmanager
def _timed_calls(totals: dict[str, float], counts: Counter):
    """Wrap every numba dispatcher bound in a loaded coin_lio module, and LIBRARY_CALLS, so that
    each call adds its seconds to totals[name]; everything is put back on exit. A name that a
    kernel of the same module calls stays as it is: a kernel compiled inside the window would
    otherwise find a Python function where it expects a kernel (those calls are compiled ones,
    counted in their caller)."""
    import importlib

    from numba.core.registry import CPUDispatcher

    patched: list[tuple[object, str, object]] = []
    wrappers: dict[int, object] = {}

    def wrap(f, name):
        if id(f) not in wrappers:
            def timed(*a, **k):
                t = time.perf_counter()
                try:
                    return f(*a, **k)
                finally:
                    totals[name] += time.perf_counter() - t
                    counts[name] += 1
            wrappers[id(f)] = timed
        return wrappers[id(f)]

    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "coin_lio" or mod_name.startswith("coin_lio.")):
            continue
        in_kernels = set().union(*(_code_names(f.py_func.__code__) for f in vars(mod).values()
                                   if isinstance(f, CPUDispatcher)))
        for attr, f in list(vars(mod).items()):
            if isinstance(f, CPUDispatcher) and attr not in in_kernels:
                kernel = f"{f.py_func.__module__.rsplit('.', 1)[-1]}.{f.__name__}"
                patched.append((mod, attr, f))
                setattr(mod, attr, wrap(f, kernel))
    for mod_name, names in LIBRARY_CALLS.items():
        mod = importlib.import_module(mod_name)
        for attr in names:
            if hasattr(mod, attr):
                f = getattr(mod, attr)
                patched.append((mod, attr, f))
                setattr(mod, attr, wrap(f, f"{mod_name}.{attr}"))
    try:
        yield
    finally:
        for mod, attr, f in reversed(patched):
            setattr(mod, attr, f)


def profile_kernels(seq_dir: Path) -> dict:
    """Run COIN-LIO on the sequence twice (the first loads every kernel and warms the machine),
    timing the second in place. Returns scans, mean_ms (per scan call) and rows: (name, us per
    scan, calls per scan), largest first."""
    import numpy as np

    from coin_lio.eval.method_feed import run_methods
    from coin_lio.eval.sequence import load_sequence

    info = load_sequence(seq_dir)
    run_methods(info, ["coin_lio"], threads=1, progress=False)
    totals: dict[str, float] = defaultdict(float)
    counts: Counter = Counter()
    with _timed_calls(totals, counts):
        run = run_methods(info, ["coin_lio"], threads=1, progress=False)["coin_lio"]
    n = max(len(run.scans), 1)
    wall = np.array([s["wall_ms"] for s in run.scans]) if run.scans else np.zeros(1)
    rows = sorted(((k, 1e6 * v / n, counts[k] / n) for k, v in totals.items()), key=lambda r: -r[1])
    return {"scans": len(run.scans), "mean_ms": float(wall.mean()), "median_ms": float(np.median(wall)),
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sequence", type=Path)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args(argv)
    r = profile_kernels(a.sequence)
    listed = sum(us for _, us, _ in r["rows"]) / 1e3
    print(f"{a.sequence.name}: {r['scans']} scans, {r['mean_ms']:.2f} ms mean / {r['median_ms']:.2f} median "
          f"a scan; the calls below {listed:.2f} ms, the rest ({r['mean_ms'] - listed:.2f} ms) Python and small numpy")
    print("| call | us / scan | calls / scan | share |\n| --- | --- | --- | --- |")
    for name, us, calls in r["rows"][:a.top]:
        print(f"| {name} | {us:.1f} | {calls:.2f} | {100 * us / 1e3 / max(r['mean_ms'], 1e-9):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
