"""The one exception type of the launcher: a launch file or plan that cannot be run as written."""
from __future__ import annotations


class LaunchError(Exception):
    """A clear, user-facing error (bad file, bad argument, missing package or executable)."""
