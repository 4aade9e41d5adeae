"""Environment for running the suite's ROS 2 graphs on one machine, isolated from any other graph.

Pure Python (no rclpy import): used by the launcher, the bag player, the demo and the tests.
"""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import Mapping, MutableMapping

PACKAGE_NAME = "coin_lio_suite"
PROFILE_FILE = "fastdds_localhost.xml"
_SOURCE_ROOT = Path(__file__).resolve().parents[1]
# Domain ids 1..100 are handed out by lock files; 0 (the default) is left to users.
DOMAIN_RANGE = range(1, 101)
_LOCK_DIR = Path(os.environ.get("COIN_LIO_SUITE_LOCK_DIR", "/tmp/coin_lio_suite_domains"))


def share_dir() -> Path:
    """The package's share directory: the installed one on a robot, else the source tree."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / PACKAGE_NAME
        if prefix and (candidate / "package.xml").exists():
            return candidate
    return _SOURCE_ROOT


def source_root() -> Path:
    """The repository checkout this module runs from (launch/, config/, test/ live here)."""
    return _SOURCE_ROOT


def fastdds_profile() -> Path:
    """Path of the FastDDS profile with large shared-memory segments and loopback-only UDP."""
    for base in (_SOURCE_ROOT, share_dir()):
        path = base / "config" / PROFILE_FILE
        if path.exists():
            return path
    raise FileNotFoundError(f"{PROFILE_FILE} not found under {_SOURCE_ROOT} or {share_dir()}")


def venv_ament_prefix() -> str | None:
    """sys.prefix when this interpreter's prefix holds an ament index (the development venv)."""
    index = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages"
    return sys.prefix if index.is_dir() else None


def ensure_ament_prefix(env: MutableMapping[str, str]) -> None:
    """Make ament_index lookups find the venv's packages (robots have their setup.bash instead)."""
    prefix = venv_ament_prefix()
    paths = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if prefix and prefix not in paths:
        env["AMENT_PREFIX_PATH"] = os.pathsep.join([prefix, *paths])


def local_graph_env(domain_id: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a graph that stays on this machine, on its own DDS domain."""
    if domain_id not in range(0, 233):
        raise ValueError(f"ROS_DOMAIN_ID must be in 0..232, got {domain_id}")
    env = dict(os.environ if base is None else base)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        FASTDDS_DEFAULT_PROFILES_FILE=str(fastdds_profile()),
        RMW_IMPLEMENTATION=env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
        OPENBLAS_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range
    ensure_ament_prefix(env)
    return env


class DomainLease:
    """Holds a DDS domain id no other suite process on this machine holds (flock on a file).

    The lock is released when the lease is closed or the process exits, even by SIGKILL.
    """

    def __init__(self, preferred: int | None = None) -> None:
        _LOCK_DIR.mkdir(parents=True, exist_ok=True)
        ids = list(DOMAIN_RANGE)
        start = (preferred if preferred is not None else os.getpid()) % len(ids)
        for k in range(len(ids)):
            domain = ids[(start + k) % len(ids)]
            fd = os.open(_LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.domain_id, self._fd = domain, fd
            return
        raise RuntimeError(f"all DDS domains {DOMAIN_RANGE} are leased under {_LOCK_DIR}")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DomainLease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def apply_local_graph_env(domain_id: int) -> None:
    """Set this process's environment for a local graph (before rclpy.init)."""
    os.environ.update(local_graph_env(domain_id))
