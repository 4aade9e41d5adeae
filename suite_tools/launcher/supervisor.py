"""Run a plan's processes: prefixed output, respawn, death handling, bounded clean shutdown.

One monitor thread owns every child. Each child runs in its own process group and is
stopped as launch does: SIGINT to the group, SIGTERM after `sigterm_timeout`, SIGKILL after
`sigkill_timeout` more; a group is SIGKILLed as soon as its leader has exited, so no
grandchild is left behind, and a watchdog process stops the groups if the launcher is killed.
A child that dies (non-zero exit or signal) without `respawn` shuts the whole graph down and
makes the exit code 1; a child exiting 0 is reported and the rest go on.
"""
from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, TextIO

from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.output import LinePrinter, describe_exit
from suite_tools.launcher.plan import ProcessSpec
from suite_tools.launcher.watchdog import GroupWatchdog


# Each child leads its own process group (signals go to it and its children, and a Ctrl-C in the
# terminal reaches only the launcher) but stays in the launcher's session: Linux schedules each
# session as one "autogroup", so children in new sessions would make `launch-prefix: nice -n 10`
# meaningless against the other nodes.
_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


@dataclass(frozen=True)
class ProcessStatus:
    """Snapshot of one managed process."""

    label: str
    kind: str
    pid: int | None
    state: str              # starting | running | respawning | exited | died | stopped
    returncode: int | None
    restarts: int


class _Child:
    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.popen: subprocess.Popen[bytes] | None = None
        self.state = "starting"
        self.restarts = 0
        self.respawn_at: float | None = None
        self.signals_sent: set[int] = set()
        self.reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Started and not yet reaped (only _step reaps, so exits are never missed)."""
        return self.popen is not None and self.popen.returncode is None


class Supervisor:
    """`with Supervisor(plan, env) as sup: sup.wait(10)`; `.poll()` gives statuses."""

    def __init__(self, plan: Iterable[ProcessSpec], env: Mapping[str, str] | None = None, *,
                 sigterm_timeout: float = 5.0, sigkill_timeout: float = 5.0,
                 out: TextIO | None = None, poll_interval: float = 0.05) -> None:
        self._children = [_Child(spec) for spec in plan]
        self._env = dict(os.environ if env is None else env)
        self.sigterm_timeout, self.sigkill_timeout = sigterm_timeout, sigkill_timeout
        self._print = LinePrinter(out)
        self._interval = poll_interval
        self._lock = threading.RLock()
        self._started, self._finished = threading.Event(), threading.Event()
        self._stop_requested = False  # plain attributes: written from signal handlers
        self._escalations = 0
        self._stop_reason = ""
        self._shutdown_at: float | None = None
        self._exit_code = 0
        self._start_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._params_dir: Path | None = None
        self._watchdog: GroupWatchdog | None = None

    # -- public API ---------------------------------------------------------------------
    def start(self) -> "Supervisor":
        """Start every process; raises LaunchError (after cleaning up) if one cannot start."""
        if self._thread is not None:
            raise RuntimeError("Supervisor.start() called twice")
        self._params_dir = Path(tempfile.mkdtemp(prefix="coin_lio_launch_"))
        self._watchdog = GroupWatchdog(self._params_dir)
        self._thread = threading.Thread(target=self._main, name="launch-supervisor", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._finished.wait(self._bound())
            raise LaunchError(str(self._start_error))
        return self

    def poll(self) -> list[ProcessStatus]:
        with self._lock:
            return [ProcessStatus(c.spec.label, c.spec.kind, c.popen.pid if c.popen else None,
                                  c.state, c.popen.returncode if c.popen else None, c.restarts)
                    for c in self._children]

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until every process has ended; the exit code, or None on timeout."""
        if self._thread is None:
            return self._exit_code
        return self._exit_code if self._finished.wait(timeout) else None

    def request_shutdown(self, reason: str = "shutdown requested") -> None:
        """Non-blocking, safe in a signal handler: a second call escalates to the next signal."""
        if self._stop_requested:
            self._escalations += 1
        else:
            self._stop_reason = reason
            self._stop_requested = True

    def shutdown(self, reason: str = "shutdown requested") -> int:
        """Stop everything and reap it; returns within sigterm+sigkill timeouts plus a margin."""
        if self._thread is None:
            return self._exit_code
        if not self._finished.is_set():
            if not self._stop_requested:  # a repeated shutdown() must not escalate
                self.request_shutdown(reason)
            self._finished.wait(self._bound())
        return self._exit_code

    @property
    def exit_code(self) -> int:
        return self._exit_code

    def __enter__(self) -> "Supervisor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown("leaving the supervisor context")

    # -- monitor thread -----------------------------------------------------------------
    def _bound(self) -> float:
        worst = max([self.sigterm_timeout + self.sigkill_timeout] +
                    [(c.spec.sigterm_timeout or self.sigterm_timeout) +
                     (c.spec.sigkill_timeout or self.sigkill_timeout) for c in self._children])
        return worst + 5.0

    def _main(self) -> None:
        try:
            try:
                for child in self._children:
                    self._spawn(child)
            except OSError as exc:
                self._start_error = exc
                self._exit_code = 1
                self._begin_shutdown(f"could not start: {exc}")
            self._started.set()
            while not self._step():
                time.sleep(self._interval)
        except BaseException:
            self._exit_code = 1  # a supervisor bug must not look like a clean run
            raise
        finally:
            self._started.set()
            self._cleanup()
            self._finished.set()

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        assert self._params_dir is not None
        spec.write_params(self._params_dir)
        argv = spec.argv(self._params_dir)
        try:
            popen = subprocess.Popen(argv, env=spec.environment(self._env), cwd=spec.cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, **_OWN_GROUP)
        except OSError as exc:
            raise OSError(exc.errno, f"{spec.kind} '{spec.label}': {exc.strerror}: {argv[0]}") \
                from None
        with self._lock:
            child.popen, child.state, child.respawn_at = popen, "running", None
            child.signals_sent = set()
        if self._watchdog is not None:
            self._watchdog.add(popen.pid)
        self._print.launcher(f"started {spec.kind} '{spec.label}' (pid {popen.pid})")
        child.reader = self._print.pump(spec.label, popen.stdout)

    def _step(self) -> bool:
        """One pass: reap exits, respawn, escalate; True when everything is over."""
        now = time.monotonic()
        with self._lock:
            for child in self._children:
                if child.alive and child.popen is not None and child.popen.poll() is not None:
                    self._signal(child, signal.SIGKILL)  # leftovers in its group, at once
                    if self._watchdog is not None:
                        self._watchdog.remove(child.popen.pid)
                    self._on_exit(child, now)
            if self._stop_requested and self._shutdown_at is None:
                self._begin_shutdown(self._stop_reason)
            if self._shutdown_at is None:
                for child in self._children:
                    if child.state == "respawning" and child.respawn_at is not None and \
                            now >= child.respawn_at:
                        try:
                            child.restarts += 1
                            self._spawn(child)
                        except OSError as exc:
                            child.state, self._exit_code = "died", 1
                            self._print.launcher(f"respawn failed: {exc}")
                            self._begin_shutdown("a respawn failed")
            else:
                self._escalate(now)
            pending = any(c.alive or c.state == "respawning" for c in self._children)
            return not pending

    def _on_exit(self, child: _Child, now: float) -> None:
        spec, popen = child.spec, child.popen
        assert popen is not None
        what = f"{spec.kind} '{spec.label}' (pid {popen.pid})"
        how = describe_exit(popen.returncode)
        if self._shutdown_at is not None:
            child.state = "stopped"
            self._print.launcher(f"{what} stopped: {how}")
            return
        retries_left = spec.respawn_max_retries < 0 or child.restarts < spec.respawn_max_retries
        verb = "exited" if popen.returncode == 0 else "died"
        if spec.respawn and retries_left:
            child.state, child.respawn_at = "respawning", now + spec.respawn_delay
            self._print.launcher(f"{what} {verb}: {how}; respawning in {spec.respawn_delay} s "
                                 f"(restart {child.restarts + 1})")
        elif popen.returncode == 0:
            child.state = "exited"
            self._print.launcher(f"{what} exited cleanly (exit code 0)")
            if spec.shutdown_on_exit:
                self._begin_shutdown(f"'{spec.label}' exited and has on_exit: shutdown")
        else:
            child.state, self._exit_code = "died", 1
            self._print.launcher(f"{what} died: {how}")
            self._begin_shutdown(f"'{spec.label}' died")

    def _begin_shutdown(self, reason: str) -> None:
        if self._shutdown_at is not None:
            return
        self._shutdown_at = time.monotonic()
        alive = [c for c in self._children if c.alive]
        for child in self._children:
            if child.state == "respawning":
                child.state = "stopped"
        if alive:
            self._print.launcher(f"shutting down ({reason}): SIGINT to "
                                 + ", ".join(f"'{c.spec.label}'" for c in alive))
        self._escalate(self._shutdown_at)

    def _escalate(self, now: float) -> None:
        assert self._shutdown_at is not None
        for child in self._children:
            if not child.alive:
                continue
            term = child.spec.sigterm_timeout or self.sigterm_timeout
            kill = term + (child.spec.sigkill_timeout or self.sigkill_timeout)
            elapsed = now - self._shutdown_at
            step = signal.SIGINT
            if elapsed >= term or self._escalations >= 1:
                step = signal.SIGTERM
            if elapsed >= kill or self._escalations >= 2:
                step = signal.SIGKILL
            if step not in child.signals_sent:
                child.signals_sent.add(step)
                if step != signal.SIGINT:
                    self._print.launcher(f"'{child.spec.label}' still running: {step.name}")
                self._signal(child, step)

    @staticmethod
    def _signal(child: _Child, sig: int) -> None:
        assert child.popen is not None
        try:
            os.killpg(child.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _cleanup(self) -> None:
        """Kill whatever is left in any of our process groups, reap, close pipes, rm params."""
        for child in self._children:
            if child.alive:
                self._signal(child, signal.SIGKILL)
            if child.popen is not None:
                try:
                    child.popen.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    self._print.launcher(f"'{child.spec.label}' could not be reaped")
            if child.reader is not None:
                child.reader.join(timeout=1.0)
        if self._watchdog is not None:
            self._watchdog.close()
        if self._params_dir is not None:
            shutil.rmtree(self._params_dir, ignore_errors=True)
        if self._shutdown_at is not None or any(c.popen for c in self._children):
            self._print.launcher(f"all processes ended; exit code {self._exit_code}")
