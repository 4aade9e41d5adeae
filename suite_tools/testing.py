"""Harness for tests and benchmarks that run ROS 2 graphs of several processes on this machine.

Every process gets the isolated environment of suite_tools.ros_env (own DDS domain, localhost
discovery, the large-SHM FastDDS profile) and is torn down for sure: SIGINT, then SIGKILL.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from suite_tools.ros_env import DomainLease, local_graph_env


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05,
             what: str = "condition") -> None:
    """Poll until predicate() is true; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def spin_until(node, predicate: Callable[[], bool], timeout: float) -> bool:
    """Spin an rclpy `node` until predicate() holds or `timeout` s pass; the final predicate()."""
    import rclpy

    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    return predicate()


def subscription_matched(node, topic: str) -> bool:
    """True once a subscription of rclpy `node` on `topic` (fully qualified) is matched with a
    publisher: data published from then on reaches it (count_publishers only says one exists)."""
    return any(s.topic_name == topic and s.get_publisher_count() > 0 for s in node.subscriptions)


def idle_cores(window_s: float = 0.5) -> float:
    """How many cores were idle over the next `window_s` seconds (from /proc/stat; Linux only)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]      # all jiffies (guest is in user), idle + iowait
    total0, idle0 = sample()
    time.sleep(window_s)
    total1, idle1 = sample()
    return (os.cpu_count() or 1) * (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet_cpu(min_idle: float = 0.9, timeout: float = 120.0) -> float:
    """Wait until at least `min_idle` cores stay idle for a 0.5 s window; returns the idle cores
    seen last. After `timeout` s it returns anyway (the caller decides what a busy machine means)."""
    deadline = time.monotonic() + timeout
    idle = idle_cores()
    while idle < min_idle and time.monotonic() < deadline:
        idle = idle_cores()
    return idle


# what a process in this process's graph must share with the spawned ones
GRAPH_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE",
              "AMENT_PREFIX_PATH", "RMW_IMPLEMENTATION")


class Graph:
    """Processes of one isolated graph: `with Graph() as g: g.spawn([...]) ...`.

    Each process runs in its own session (process group); its stdout+stderr go to a log file
    under `log_dir` so a failing test can show what a node said.
    """

    def __init__(self, log_dir: str | Path, domain_id: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self._lease = DomainLease() if domain_id is None else None
        self.domain_id = domain_id if domain_id is not None else self._lease.domain_id
        self.env = local_graph_env(self.domain_id)
        self.env.update(extra_env or {})
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def use_in_this_process(self) -> None:
        """Give this process the graph's ROS environment (domain, localhost discovery, transport
        profile): call before rclpy.init in a test that talks to the graph in-process."""
        for key in GRAPH_KEYS:
            os.environ[key] = self.env[key]

    def python_cmd(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def spawn(self, name: str, cmd: Sequence[str], cwd: str | Path | None = None) -> subprocess.Popen:
        if name in self.procs:
            raise ValueError(f"process '{name}' already spawned")
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(list(cmd), env=self.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def interrupt(self, name: str, timeout: float = 10.0) -> int:
        """SIGINT to the process group; SIGKILL if it has not exited within `timeout`."""
        proc = self.procs[name]
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def wait(self, name: str, timeout: float) -> int:
        try:
            return self.procs[name].wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"'{name}' still running after {timeout:.0f} s; log:\n"
                               f"{self.log(name)[-3000:]}") from None

    def close(self) -> None:
        for name in list(self.procs):
            self.interrupt(name, timeout=5.0)
        if self._lease is not None:
            self._lease.close()

    def __enter__(self) -> "Graph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
