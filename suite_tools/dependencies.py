"""One clear line, not a traceback, when an executable's optional Python dependency is missing.

The odometry needs package.xml's rosdep keys and numba (its compiled kernels); the model servers
also need torch, transformers, ...: all from requirements/robot.txt, which a robot installs with
scripts/robot_deps.sh. Each server checks its own list at start-up (`require`), before any of
them is imported, and exits with status 1 and one line naming what is missing and the command
that installs it. (Module imports that fail before main() runs are caught the same way by the
wrappers that CMakeLists.txt generates into lib/coin_lio_suite.)
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Sequence

INSTALL_HINT = ("install them with scripts/robot_deps.sh (requirements/robot.txt; "
                "docs/robot.md)")

# the modules each model server imports while it configures (beyond ROS and package.xml's keys)
TORCH_STACK = ("torch", "safetensors")
NEEDS: dict[str, tuple[str, ...]] = {
    "classifier_node": TORCH_STACK + ("transformers", "tokenizers", "efficientnet_lite_pytorch"),
    "backbone_node": TORCH_STACK + ("efficientnet_lite_pytorch",),
    "text_generation_node": TORCH_STACK + ("transformers", "tokenizers", "gguf", "accelerate"),
    "coin_lio_node": ("numba",),     # imported with the odometry core: the wrapper's one line covers it
}


def missing(modules: Sequence[str]) -> list[str]:
    """The top-level modules of `modules` that this Python cannot import."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def require(executable: str, modules: Sequence[str] | None = None) -> None:
    """Exit(1) with one line on stderr when any module `executable` needs is missing."""
    modules = NEEDS[executable] if modules is None else modules
    lost = missing(modules)
    if lost:
        print(f"{executable} needs {', '.join(modules)}; missing here ({sys.executable}): "
              f"{', '.join(lost)}: {INSTALL_HINT}", file=sys.stderr, flush=True)
        raise SystemExit(1)
