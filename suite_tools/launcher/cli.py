"""`coin-lio-suite-launch`: run a YAML launch file here the way `ros2 launch` runs it on a robot.

  coin-lio-suite-launch FILE [name:=value ...] [options]
  coin-lio-suite-launch PACKAGE FILE_NAME [name:=value ...] [options]

Exit codes: 0 clean (all exited 0, --timeout reached, or stopped by SIGINT/SIGTERM),
1 a process died, 2 the launch file or the command line is wrong.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from suite_tools.launcher import package_index
from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.launch_file import load_launch_file
from suite_tools.launcher.plan import describe
from suite_tools.launcher.schema import parse_launch_file
from suite_tools.launcher.supervisor import Supervisor
from suite_tools.ros_env import DomainLease, ensure_ament_prefix, local_graph_env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coin-lio-suite-launch",
        description="Run a ROS 2 YAML launch file (the ros2 launch subset used by the suite).")
    p.add_argument("targets", nargs="+", metavar="FILE | PACKAGE FILE_NAME | name:=value",
                   help="launch file (or package + file name) followed by launch arguments")
    p.add_argument("--print", action="store_true", dest="print_plan",
                   help="print the resolved commands and environment, start nothing")
    p.add_argument("-s", "--show-args", action="store_true",
                   help="list the arguments the launch file declares and exit")
    p.add_argument("--timeout", type=float, metavar="SEC",
                   help="run at most SEC seconds, then shut down cleanly (exit 0)")
    graph = p.add_mutually_exclusive_group()
    graph.add_argument("--domain-id", type=int, metavar="N",
                       help="run on ROS_DOMAIN_ID N with localhost-only discovery")
    graph.add_argument("--isolated", action="store_true",
                       help="lease a free ROS_DOMAIN_ID and use localhost-only discovery")
    p.add_argument("--sigterm-timeout", type=float, default=5.0, metavar="SEC",
                   help="on shutdown, wait this long after SIGINT before SIGTERM (default 5)")
    p.add_argument("--sigkill-timeout", type=float, default=5.0, metavar="SEC",
                   help="then wait this long after SIGTERM before SIGKILL (default 5)")
    return p


def _split_targets(targets: Sequence[str], env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    launch_args = dict(t.split(":=", 1) for t in targets if ":=" in t)
    words = [t for t in targets if ":=" not in t]
    if len(words) == 1:
        return Path(words[0]), launch_args
    if len(words) == 2:
        return package_index.find_launch_file(words[0], words[1], env), launch_args
    raise LaunchError(f"expected FILE or PACKAGE FILE_NAME before the name:=value arguments, "
                      f"got {words}")


def _show_args(path: Path) -> None:
    args = [e for e in parse_launch_file(path) if e.kind == "arg"]
    if not args:
        print("  no arguments declared")
    for e in args:
        default = e.attrs.get("default")
        shown = "".join(p if isinstance(p, str) else f"$({p.name} ...)" for p in default) \
            if default is not None else None
        print(f"  '{e.attrs['name']}':\n      {e.attrs.get('description') or 'no description'}")
        print(f"      (default: '{shown}')" if shown is not None else "      (required)")


def _run(sup: Supervisor, timeout: float | None) -> int:
    def on_signal(signum: int, _frame: object) -> None:
        sup.request_shutdown(f"received {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        sup.start()
        while sup.wait(0.2) is None:
            if deadline is not None and time.monotonic() >= deadline:
                print(f"[launcher] --timeout {timeout} s reached", flush=True)
                sup.request_shutdown("--timeout reached")
                deadline = None
        return sup.exit_code
    finally:
        sup.shutdown("launcher exiting")
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    opts = _parser().parse_intermixed_args(argv)
    lease = DomainLease() if opts.isolated else None
    try:
        if lease is not None or opts.domain_id is not None:
            domain = lease.domain_id if lease is not None else opts.domain_id
            env = local_graph_env(domain)
            print(f"[launcher] local graph on ROS_DOMAIN_ID={domain} (localhost discovery)",
                  flush=True)
        else:
            env = dict(os.environ)
            ensure_ament_prefix(env)
        path, launch_args = _split_targets(opts.targets, env)
        if opts.show_args:
            print(f"Arguments (pass arguments as '<name>:=<value>') of {path}:")
            _show_args(path)
            return 0
        plan = load_launch_file(path, launch_args, env)
        for name in sorted(set(launch_args) - set(plan.declared_args)):
            print(f"[launcher] warning: argument '{name}' is not declared by {path.name}",
                  file=sys.stderr)
        if opts.print_plan:
            additions = {k: v for k, v in env.items() if os.environ.get(k) != v}
            print(describe(plan, additions))
            return 0
        if not len(plan):
            print("[launcher] nothing to launch")
            return 0
        sup = Supervisor(plan, env, sigterm_timeout=opts.sigterm_timeout,
                         sigkill_timeout=opts.sigkill_timeout)
        return _run(sup, opts.timeout)
    except LaunchError as exc:
        print(f"[launcher] error: {exc}", file=sys.stderr)
        return 2
    finally:
        if lease is not None:
            lease.close()


if __name__ == "__main__":
    sys.exit(main())
