"""numba's cache for the odometry's kernels stays fresh when a module a kernel calls into changes
(coin_lio/kernel_cache.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CALLEE = """
from coin_lio.kernel_cache import njit


@njit(cache=True, inline="always")
def value():
    return {v}
"""
CALLER = """
from coin_lio.kernel_cache import njit
from callee_kernel import value


@njit(cache=True)
def call():
    return value()
"""
RUN = """
import sys
sys.path.insert(0, {pkg!r})
from coin_lio.kernel_cache import register_root
if {register}:
    register_root({pkg!r})
from caller_kernel import call
print(call())
"""


def _run(pkg: Path, register: bool, cache_dir: Path | None) -> float:
    # no bytecode: a rewrite of the same size within the same second would load the old .pyc
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_CACHE_DIR", None)                 # the in-tree cache beside the modules, or ...
    if cache_dir is not None:                        # ... the one a robot may name
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    out = subprocess.run([sys.executable, "-c", RUN.format(pkg=str(pkg), register=register)], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("register,own_dir", [(False, False), (True, False), (True, True)])
def test_a_changed_callee_reaches_the_cached_caller(tmp_path: Path, register: bool, own_dir: bool) -> None:
    """Plain numba (register False) keeps the caller compiled with the old callee; under a
    registered root the caller is compiled again, with the cache beside the modules or in
    NUMBA_CACHE_DIR."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    cache = tmp_path / "numba_cache" if own_dir else None
    (pkg / "caller_kernel.py").write_text(CALLER)
    (pkg / "callee_kernel.py").write_text(CALLEE.format(v="1.0"))
    assert _run(pkg, register, cache) == 1.0
    where = cache if own_dir else pkg / "__pycache__"
    assert any(p.suffix == ".nbi" for p in where.rglob("*"))                 # cached there
    (pkg / "callee_kernel.py").write_text(CALLEE.format(v="25.0"))           # caller untouched
    assert _run(pkg, register, cache) == (25.0 if register else 1.0)


def test_a_stray_file_does_not_stop_the_kernels(tmp_path: Path) -> None:
    """An editor's lock link (.#name_kernel.py, dangling) and a directory named like a kernel
    module are left out of the digest; the kernels load and run."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "caller_kernel.py").write_text(CALLER)
    (pkg / "callee_kernel.py").write_text(CALLEE.format(v="3.0"))
    (pkg / ".#callee_kernel.py").symlink_to(tmp_path / "nowhere")
    (pkg / "odd_kernel.py").mkdir()
    assert _run(pkg, True, None) == 3.0


def test_coin_lio_kernels_use_the_kernel_set_locator() -> None:
    from coin_lio.kernel_cache import kernels_digest
    from coin_lio.photometric.patch_kernel import patch_rows_kernel

    locator = patch_rows_kernel._cache._impl.locator
    assert type(locator).__name__.startswith("KernelSet")
    own, digest = locator.get_source_stamp()
    assert digest == kernels_digest(ROOT / "coin_lio") and len(digest) == 64


def test_every_kernel_module_takes_njit_from_kernel_cache() -> None:
    """A module decorating with numba's njit directly would fall back to numba's own stamps."""
    offenders = []
    for path in (ROOT / "coin_lio").rglob("*.py"):
        text = path.read_text()
        if path.name == "kernel_cache.py":
            continue
        # numba's decorators (njit, jit, vectorize, ...) come from numba's top level; submodule
        # imports (numba.core: the cache locators, the profiler) are not kernels
        top_level = re.search(r"^\s*(from numba import |import numba\b)", text, re.M)
        if top_level or re.search(r"\bnumba\.(n?jit|vectorize)", text):
            offenders.append(path.relative_to(ROOT).as_posix())
        if "@njit" in text:
            assert path.name.endswith("_kernel.py"), f"{path}: kernels live in *_kernel.py (the digest reads those)"
    assert not offenders, textwrap.fill(f"import njit from coin_lio.kernel_cache in: {offenders}")
