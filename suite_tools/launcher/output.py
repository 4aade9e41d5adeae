"""Output plumbing for the supervisor: `[name] line` prefixing from many threads, exit wording."""
from __future__ import annotations

import signal
import sys
import threading
from typing import IO, TextIO


def describe_exit(returncode: int | None) -> str:
    """'exit code 3' or 'signal SIGKILL' for a Popen returncode."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class LinePrinter:
    """Writes whole lines from many threads to one stream (default: this process's stdout)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        out = self._out if self._out is not None else sys.stdout
        with self._lock:
            try:
                out.write(text + "\n")
                out.flush()
            except (OSError, ValueError):  # closed or broken stream: output is best effort
                pass

    def launcher(self, message: str) -> None:
        self.line(f"[launcher] {message}")

    def pump(self, label: str, pipe: IO[bytes] | None) -> threading.Thread | None:
        """Start a thread copying `pipe` line by line as `[label] line`; ends at EOF."""
        if pipe is None:
            return None

        def run() -> None:
            with pipe:
                for raw in iter(pipe.readline, b""):
                    self.line(f"[{label}] " + raw.decode("utf-8", "replace").rstrip("\r\n"))

        thread = threading.Thread(target=run, name=f"output-{label}", daemon=True)
        thread.start()
        return thread
