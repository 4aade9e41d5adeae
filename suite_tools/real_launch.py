"""The real ROS 2 launch engine (upstream launch + launch_ros, Jazzy) prepared for conformance tests.

`../shared/ros2-launch/` next to the checkout holds the unchanged upstream sources and a recipe;
`prepare()` follows that recipe into a scratch folder (never into the project's venv) and caches
the result under `.cache/ros2_launch_engine/<key>/` (git-ignored), built once per key, atomically
(a temporary folder renamed into place) and under a lock file, so two pytest processes never race:

- `site/`: `pip install --no-deps --target` of launch, launch_yaml, launch_xml, launch_testing,
  launch_pytest, launch_ros, launch_testing_ros, ros2launch, plus pinned osrf-pycommon, lark and
  pytest 7.4.4 (launch_pytest of these branches needs pytest < 8.4) with its dependencies;
- `composition/`: composition_interfaces (launch_ros imports it), built with the venv's colcon
  exactly as scripts/setup.sh builds the project's interfaces.

`RealLaunchEngine.env()` gives the environment that runs `ros2_launch.py` (what `ros2 launch` does)
or the inner pytest 7.4.4 with the venv's Python. Pure Python, no rclpy import.

  python -m suite_tools.real_launch      # build (once) and print the environment as `export` lines
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

# Sources of the recipe (relative to <shared>/src) and the registry packages, pinned.
PYTHON_SOURCES = ("launch/launch", "launch/launch_yaml", "launch/launch_xml", "launch/launch_testing",
                  "launch/launch_pytest", "launch_ros/launch_ros", "launch_ros/launch_testing_ros",
                  "launch_ros/ros2launch")
REGISTRY_PINS = ("osrf-pycommon==2.0.2", "lark==1.3.1", "pytest==7.4.4", "pluggy==1.5.0",
                 "iniconfig==2.0.0", "packaging==24.2")
INTERFACE_SOURCE = "rcl_interfaces/composition_interfaces"
RECIPE_VERSION = "1"          # bump when the build steps below change (a new cache key)
LOCK_TIMEOUT_S = 1200.0       # bound of the wait for another process's build (s)
_REPO = Path(__file__).resolve().parents[1]


class EngineUnavailable(RuntimeError):
    """The shared sources are absent: tests that need the real engine skip with this reason."""


def shared_dir(repo: Path = _REPO) -> Path:
    """Where the upstream sources live: `<repo>/../shared/ros2-launch`."""
    return repo.parent / "shared" / "ros2-launch"


def default_venv(repo: Path = _REPO) -> Path:
    """The development venv (`<repo>/.venv`), else this interpreter's prefix."""
    venv = repo / ".venv"
    return venv if (venv / "bin" / "python").exists() else Path(sys.prefix)


@dataclass(frozen=True)
class RealLaunchEngine:
    """A prepared engine. Paths are absolute; `site` goes first on PYTHONPATH (pytest 7.4.4 there
    shadows the venv's pytest)."""

    root: Path                  # the cache entry .cache/ros2_launch_engine/<key>
    venv: Path                  # the project's venv (its Python runs the engine and the nodes)
    script: Path                # <shared>/ros2_launch.py

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def composition_prefix(self) -> Path:
        return self.root / "composition"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with PYTHONPATH, AMENT_PREFIX_PATH, LD_LIBRARY_PATH set."""
        env = dict(os.environ if base is None else base)
        comp = self.composition_prefix
        comp_site = sorted(comp.glob("lib/python3*/site-packages"))   # the venv Python's version
        env["PYTHONPATH"] = _join([self.site, *comp_site], env.get("PYTHONPATH"))
        # site/ is an ament prefix too: launch reads its grammar from share/launch/frontend
        env["AMENT_PREFIX_PATH"] = _join([self.venv, self.site, comp], env.get("AMENT_PREFIX_PATH"))
        env["LD_LIBRARY_PATH"] = _join([comp / "lib", self.venv / "lib"], env.get("LD_LIBRARY_PATH"))
        return env

    def launch_cmd(self, *args: str) -> list[str]:
        """`ros2 launch ARGS...` as a command line (ARGS: PKG FILE name:=value ..., or --print ...)."""
        return [str(self.python), str(self.script), *args]

    def pytest_cmd(self, *args: str) -> list[str]:
        """The inner pytest 7.4.4 with launch_pytest (run it with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1)."""
        return [str(self.python), "-m", "pytest", "-p", "launch_pytest.plugin", *args]


def _join(first: Sequence[Path], rest: str | None) -> str:
    """os.pathsep-joined `first` then the entries of `rest` not already in it."""
    parts = [str(p) for p in first]
    parts += [p for p in (rest or "").split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def cache_key(shared: Path, venv: Path) -> str:
    """16 hex digits: the shared sources' README, the venv's Python (path and pyvenv.cfg, which
    names its version) and this recipe."""
    h = hashlib.sha256((shared / "README.md").read_bytes())
    h.update(str(Path(venv / "bin" / "python").resolve()).encode())
    cfg = venv / "pyvenv.cfg"
    h.update(cfg.read_bytes() if cfg.is_file() else sys.version.encode())
    h.update(f"{RECIPE_VERSION}|{PYTHON_SOURCES}|{REGISTRY_PINS}|{INTERFACE_SOURCE}".encode())
    return h.hexdigest()[:16]


def prepare(repo: Path = _REPO, venv: Path | None = None,
            log: Callable[[str], None] = lambda m: print(f"[real_launch] {m}", file=sys.stderr, flush=True),
            ) -> RealLaunchEngine:
    """The engine for this checkout, built on first use (46-72 s measured on 2 cores) and cached.

    Raises EngineUnavailable where the shared sources are absent, RuntimeError where a build
    step fails (with the tail of its log)."""
    shared = shared_dir(repo)
    if not (shared / "README.md").is_file() or not (shared / "ros2_launch.py").is_file():
        raise EngineUnavailable(f"the real ROS 2 launch engine's sources are absent ({shared} not found)")
    venv = venv or default_venv(repo)
    cache = repo / ".cache" / "ros2_launch_engine"
    engine = RealLaunchEngine(cache / cache_key(shared, venv), venv, shared / "ros2_launch.py")
    if (engine.root / "build.json").is_file():
        return engine
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock", LOCK_TIMEOUT_S):
        if (engine.root / "build.json").is_file():          # another process built it meanwhile
            return engine
        for stale in cache.glob(f"{engine.root.name}.tmp-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache / f"{engine.root.name}.tmp-{os.getpid()}"
        t0 = time.monotonic()
        log(f"building the real ROS 2 launch engine into {engine.root} (one time, about a minute)")
        try:
            _build(shared, venv, tmp)
            seconds = time.monotonic() - t0
            (tmp / "build.json").write_text(json.dumps(
                {"seconds": round(seconds, 1), "shared": str(shared), "venv": str(venv),
                 "python_sources": PYTHON_SOURCES, "registry_pins": REGISTRY_PINS}, indent=1))
            os.rename(tmp, engine.root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"built the real ROS 2 launch engine in {seconds:.0f} s")
    return engine


class _locked:
    """flock on `path`, waiting at most `timeout` s (TimeoutError after)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise TimeoutError(f"{self.path} still locked after {self.timeout:.0f} s") from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _run(cmd: Sequence[str], log_file: Path, env: Mapping[str, str] | None = None,
         cwd: Path | None = None) -> None:
    with open(log_file, "ab") as out:
        out.write(f"$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        rc = subprocess.run(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, env=env,
                            cwd=cwd, stdin=subprocess.DEVNULL, timeout=1800).returncode
    if rc != 0:
        tail = log_file.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"real launch engine build step failed (rc {rc}): {cmd[:4]}...\n{tail}")


def _build(shared: Path, venv: Path, out: Path) -> None:
    """The recipe of <shared>/README.md into `out` (site/, composition/, build.log)."""
    work = out / "work"
    work.mkdir(parents=True)
    log_file = out / "build.log"
    python = venv / "bin" / "python"
    # pip builds local projects in place (build/, *.egg-info): copy them, never write to the share
    copies = []
    for rel in PYTHON_SOURCES:
        dst = work / "src" / rel
        shutil.copytree(shared / "src" / rel, dst, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        copies.append(dst)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
           "--no-build-isolation", "--target", out / "site"]
    _run([*pip, *copies, *REGISTRY_PINS], log_file)
    # composition_interfaces: as scripts/setup.sh builds the project's interfaces
    src = work / "src" / INTERFACE_SOURCE
    shutil.copytree(shared / "src" / INTERFACE_SOURCE, src)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv),
               PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    _run([venv / "bin" / "colcon", "--log-base", work / "log", "build", "--base-paths", src,
          "--build-base", work / "build", "--merge-install", "--install-base", out / "composition",
          "--event-handlers", "console_direct-",
          "--cmake-args", f"-DPython3_EXECUTABLE={python}", "-DBUILD_TESTING=OFF"], log_file, env=env)
    shutil.rmtree(work)


def main(argv: Sequence[str] | None = None) -> int:
    """Build (once) and print `export` lines for running ros2_launch.py in a shell."""
    try:
        engine = prepare()
    except EngineUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    env = engine.env({})
    for key in ("PYTHONPATH", "AMENT_PREFIX_PATH", "LD_LIBRARY_PATH"):
        print(f"export {key}={env[key]}${{{key}:+:${key}}}")
    print(f"# then: {engine.python} {engine.script} coin_lio_suite suite.launch.yaml [name:=value ...]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
