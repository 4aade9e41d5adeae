"""numba's on-disk cache for the odometry's kernels, kept fresh across modules.

numba (cache=True) keys a compiled kernel on the source of its own module only. A kernel that
calls or inlines a function of another module (patch_kernel and candidate_kernel use
projection_kernel.jacobian_one; change_kernel the medians of robust_kernel; voxel_grid_kernel the
key layout of voxel_kernel) therefore kept running the callee it was first compiled with after
that module changed, as long as its own file did not. This was found in a working tree:
patch_rows_kernel still ran the Jacobian from before its rewrite, taking 110 us a call instead
of 68 us. A robot that updates with `git pull` and a symlink install keeps its __pycache__ and
would meet the same thing, or worse, an old formula.

Every kernel module imports `njit` from here. Importing this module registers cache locators
that take the place of numba's own for source files under a registered root (coin_lio's package
directory). Their source stamp is the module's own hash together with one digest of every
`*_kernel.py` under that root. A change to any kernel module therefore recompiles all of them
once, ~20 s (kernel_warmup.py), and no cached kernel can hold an old callee. Files elsewhere keep
numba's locators. NUMBA_CACHE_LOCATOR_CLASSES, when set, replaces every locator, these too: numba's
own stamps then apply.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from numba import njit  # noqa: F401  (re-exported: the kernels' decorator)
from numba.core import caching

_ROOTS: list[Path] = []


def register_root(root: str | Path) -> None:
    """Kernel modules under `root` (a directory) get cache stamps that cover every
    `*_kernel.py` there. coin_lio's own directory is registered on import."""
    path = Path(root).resolve()
    if path not in _ROOTS:
        _ROOTS.append(path)


def _root_of(py_file: str) -> Path | None:
    path = Path(py_file).resolve()
    return next((r for r in _ROOTS if path.is_relative_to(r)), None)


@lru_cache(maxsize=None)
def kernels_digest(root: Path) -> str:
    """sha256 of every `*_kernel.py` under root (relative path and content), in sorted order.
    Hidden names (an editor's `.#patch_kernel.py` lock link), non-files and unreadable files are
    left out: a stray file must not stop the kernels from loading. Read once per process, at the
    first kernel's decoration: a module edited while a process runs is compiled fresh by the next."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*_kernel.py")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        try:
            if not path.is_file():
                continue
            data = path.read_bytes()
        except OSError:
            continue
        h.update(rel.as_posix().encode())
        h.update(b"\0")
        h.update(data)
        h.update(b"\0")
    return h.hexdigest()


class _KernelSetStamp:
    """Mixin for numba's source-file locators: only files under a registered root, and a stamp
    that also changes when any kernel module under that root does."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if _root_of(py_file) is None:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return (super().get_source_stamp(), kernels_digest(_root_of(self._py_file)))


class KernelSetUserProvidedLocator(_KernelSetStamp, caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR, when set."""


class KernelSetInTreeLocator(_KernelSetStamp, caching.InTreeCacheLocator):
    """__pycache__ beside the module, when writable."""


class KernelSetUserWideLocator(_KernelSetStamp, caching.UserWideCacheLocator):
    """The user's cache directory (a read-only install)."""


_LOCATORS = (KernelSetUserProvidedLocator, KernelSetInTreeLocator, KernelSetUserWideLocator)


def _install() -> None:
    """Put the locators first in numba's list (the order numba's own follow); idempotent."""
    classes = caching.CacheImpl._locator_classes                      # numba 0.68 (requirements pin it)
    for cls in reversed(_LOCATORS):
        if cls not in classes:
            classes.insert(0, cls)


register_root(Path(__file__).resolve().parent)
_install()
