"""`package:` specs in configs, resolved here and nowhere else.

`package://NAME/rest` resolves to the folder of the Python package NAME (e.g. the models shipped
inside learned_nodes) or, failing that, to the ament share directory of the ROS package NAME.
`package:NAME` (the weights form of the aligned encoder's config.json) is `package://NAME/`.
Anything else is a path: `~` expands, a relative path is relative to the working directory.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

SCHEME = "package:"


def parse_package_spec(spec: str) -> tuple[str, str] | None:
    """(NAME, rest) of `package://NAME/rest`, (NAME, '') of `package:NAME`; None for a path."""
    if not spec.startswith(SCHEME):
        return None
    body = spec[len(SCHEME):]
    name, _, rest = body[2:].partition("/") if body.startswith("//") else (body, "", "")
    return name, rest


def python_package_dir(name: str) -> Path | None:
    """The folder of the installed Python package `name` (not imported), or None."""
    found = importlib.util.find_spec(name) if name.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def resolve_path(spec: str) -> Path:
    """An absolute path for a config value: package://, ~, or a path relative to the working dir."""
    parsed = parse_package_spec(spec)
    if parsed is None:
        return Path(spec).expanduser().resolve()
    name, rest = parsed
    folder = python_package_dir(name)
    if folder is not None:
        return folder / rest
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        share = Path(prefix) / "share" / name
        if prefix and share.is_dir():
            return share / rest
    raise FileNotFoundError(f"{spec}: no Python package or ROS package named '{name}'")
