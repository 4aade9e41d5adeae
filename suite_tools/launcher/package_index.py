"""ament index lookups without ament_index_python: package prefix, share dir, node executables.

Follows what launch_ros does on a robot: a package lives under the first AMENT_PREFIX_PATH entry
holding `share/ament_index/resource_index/packages/<pkg>`; its executables are in
`<prefix>/lib/<pkg>/`. Python scripts are run with this interpreter (sys.executable) because
their `#!/usr/bin/env python3` line would pick whatever python3 is on PATH, not the venv.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from suite_tools.launcher.errors import LaunchError

_MARKER = Path("share") / "ament_index" / "resource_index" / "packages"


def prefixes(environ: Mapping[str, str]) -> list[Path]:
    """The AMENT_PREFIX_PATH entries, in search order."""
    return [Path(p) for p in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def package_prefixes(package: str, environ: Mapping[str, str]) -> list[Path]:
    """Every prefix whose ament index lists `package` (first one wins for lookups)."""
    return [p for p in prefixes(environ) if (p / _MARKER / package).is_file()]


def package_prefix(package: str, environ: Mapping[str, str]) -> Path:
    """Install prefix of `package`, as `$(find-pkg-prefix PKG)` gives it."""
    found = package_prefixes(package, environ)
    if not found:
        searched = ", ".join(str(p) for p in prefixes(environ)) or "AMENT_PREFIX_PATH is empty"
        raise LaunchError(f"package '{package}' not found in the ament index (searched: "
                          f"{searched})")
    return found[0]


def find_executable(package: str, executable: str, environ: Mapping[str, str]) -> Path:
    """`<prefix>/lib/<package>/<executable>`; the error lists every path looked at."""
    looked: list[Path] = []
    for prefix in package_prefixes(package, environ) or [package_prefix(package, environ)]:
        candidate = prefix / "lib" / package / executable
        looked.append(candidate)
        if candidate.is_file():
            return candidate
    available = sorted({f.name for p in looked if p.parent.is_dir() for f in p.parent.iterdir()})
    raise LaunchError(
        f"executable '{executable}' of package '{package}' not found; looked at: "
        + ", ".join(str(p) for p in looked)
        + (f" (available: {', '.join(available)})" if available else ""))


def is_python_script(path: Path) -> bool:
    """True when the file starts with a shebang that mentions python."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def command_for(path: Path | str) -> list[str]:
    """argv prefix that runs `path`: Python scripts go through this interpreter."""
    return [sys.executable, str(path)] if is_python_script(Path(path)) else [str(path)]


def find_launch_file(package: str, file_name: str, environ: Mapping[str, str]) -> Path:
    """`ros2 launch PKG FILE`: the file named FILE anywhere under the package's share dir."""
    share = package_prefix(package, environ) / "share" / package
    matches = sorted(p for p in share.rglob(file_name) if p.is_file())
    if not matches:
        raise LaunchError(f"no file named '{file_name}' under {share}")
    return matches[0]
