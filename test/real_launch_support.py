"""Helpers of the conformance tests against the real ROS 2 launch engine (suite_tools.real_launch):
the engine (or a skip with the reason), the process tree of a running engine, and the inputs of
the graph tests (a small simulated bag, a tiny language model, a custom odometry config).

Imported by the outer tests (test_real_launch_*.py, venv pytest) and by the inner launch_pytest
module (real_launch/suite_launch_pytest.py, pytest 7.4.4): no pytest-version-specific code.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
INPUTS_ENV = "COIN_LIO_SUITE_REAL_LAUNCH_INPUTS"     # JSON file of build_inputs() from the outer test
CUSTOM_ODOMETRY = {"path_every": 3, "imu_wait": 0.35}  # non-default values read back from the node
# every scan processed however busy the shared 2-core machine is (the default drops scans when behind)
NO_DROP = {"max_scan_queue": 1000, "input_reliability": "reliable"}
# The model servers' launch prefix in the graph tests: a prefix, as robots run them (the engine
# then names the process 'nice-N'), without the default's priority drop (nice 10 starves a server
# on a 2-core machine kept busy by other jobs). A server once took >15 s to exit after SIGINT under
# load: the interpreter's teardown of torch, now skipped (learned_nodes/server/main.py).
SERVER_PREFIX = "nice -n 0"
# The engine's wait after SIGINT before SIGTERM (default 5 s), for a suite.launch.yaml node without
# its own: the tests check that every node exits on the SIGINT itself, not on escalation.
SIGTERM_TIMEOUT_S = 20


@functools.lru_cache(maxsize=1)
def _engine_or_reason():
    from suite_tools.real_launch import EngineUnavailable, prepare

    try:
        return prepare(), None
    except EngineUnavailable as exc:
        return None, str(exc)


def engine_or_skip(config=None):
    """The prepared engine (built once per checkout, ~1 min), or pytest.skip with the reason.
    With pytest's `config`, output capture is off meanwhile: the build and its time show live."""
    import pytest

    capture = config.pluginmanager.getplugin("capturemanager") if config is not None else None
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        engine, reason = _engine_or_reason()
    if engine is None:
        pytest.skip(reason)
    return engine


def custom_odometry_config(path: Path, **changes: object) -> Path:
    """config/coin_lio.yaml with `changes` in its ros__parameters, under the file's own key
    (so the test checks the key style the package ships). Returns `path`."""
    data = yaml.safe_load((REPO / "config" / "coin_lio.yaml").read_text())
    (key,) = data
    data[key]["ros__parameters"].update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def build_inputs(out: Path) -> dict[str, str]:
    """The graph tests' inputs under `out`: bag (3 s urban, 32x512), tiny LM, custom config."""
    from bag_fixtures import simulated_sequence

    from learned_nodes.llm.tiny_models import make_tiny_lm

    out.mkdir(parents=True, exist_ok=True)
    seq = simulated_sequence(out / "urban", "urban", 3.0, 3, 32, 512)
    inputs = {"bag": str(seq / "bag"), "text_model": str(make_tiny_lm(out / "tiny_lm")),
              "odometry_config": str(custom_odometry_config(out / "odometry.yaml", **CUSTOM_ODOMETRY,
                                                            **NO_DROP))}
    (out / "inputs.json").write_text(json.dumps(inputs))
    return inputs


def load_inputs(fallback_dir: Path) -> dict[str, str]:
    """The outer test's inputs (INPUTS_ENV) or, run on its own, freshly built ones."""
    path = os.environ.get(INPUTS_ENV)
    return json.loads(Path(path).read_text()) if path else build_inputs(fallback_dir)


# --- processes (Linux /proc) ---------------------------------------------------------------

def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time in clock ticks) of `pid`, None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()   # after "pid (comm) "
    return fields[0], int(fields[1]), int(fields[19])


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, names one process for sure."""
    st = _stat(pid)
    return None if st is None else st[2]


def descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every live descendant of `root` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[1], []).append(int(entry.name))
            starts[int(entry.name)] = st[2]
    found: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = starts[pid]
        todo.extend(children.get(pid, []))
    return found


def still_running(procs: dict[int, int]) -> list[int]:
    """The pids of `procs` ({pid: start time}) that still run (not reaped zombies count as ended)."""
    alive = []
    for pid, start in procs.items():
        st = _stat(pid)
        if st is not None and st[2] == start and st[0] not in ("Z", "X"):
            alive.append(pid)
    return alive


def cmdline(pid: int) -> str:
    """The command line of `pid` ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""
