"""A helper process that stops the launcher's process groups if the launcher itself dies.

Children run in their own process groups (so a terminal's Ctrl-C reaches only the launcher,
which forwards it). If the launcher is SIGKILLed it cannot clean up, and PR_SET_PDEATHSIG would
reach only direct children. The watchdog, in its own session, is told each group id over a
pipe; on EOF without the word "done" it sends SIGTERM, then SIGKILL, to every group still known
and removes the run's parameter directory.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = r"""# coin-lio-suite-launch watchdog
import os, shutil, signal, sys, time
groups = set()
for line in sys.stdin:
    word = line.strip()
    if word == "done":
        sys.exit(0)
    if word.startswith("-"):
        groups.discard(int(word[1:]))
    elif word:
        groups.add(int(word))
for sig in (signal.SIGTERM, signal.SIGKILL):
    for group in sorted(groups):
        try:
            os.killpg(group, sig)
        except OSError:
            groups.discard(group)
    if not groups:
        break
    time.sleep(2.0)
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


class GroupWatchdog:
    """`add(pgid)` when a group starts, `remove(pgid)` when it is gone, `close()` at the end."""

    def __init__(self, params_dir: Path) -> None:
        # -I -S: stdlib only, no site-packages start-up cost.
        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _SCRIPT, str(params_dir)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)

    def _send(self, word: str) -> None:
        if self._proc is None or self._proc.stdin is None:
            return
        try:
            self._proc.stdin.write(word + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            self._proc = None  # the watchdog is gone: nothing left to tell it

    def add(self, pgid: int) -> None:
        self._send(str(pgid))

    def remove(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def close(self) -> None:
        """Normal end: every group has been stopped by the supervisor itself."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write("done\n")
                proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
