# Shell functions for building ROS 2 packages against the ROS 2 wheels (sourced by setup.sh and
# robot_install_check.sh; see ../shared/anchors/ros2-on-pypi.md for why each step is needed).

# fix_wheel_cmake_paths PREFIX PYTHON: the wheels' exported CMake targets name the wheel
# builder's include dirs (/opt/python/cp311-cp311/...); point them at PYTHON's and its numpy's.
fix_wheel_cmake_paths() {
  local prefix=$1 py=$2 pyinc npinc
  pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
  grep -rl '/opt/python/cp311-cp311/' "$prefix/share" --include='*.cmake' 2>/dev/null | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" || true
}

# colcon_build_into PKG_DIR PREFIX PYTHON WORK_DIR LOG [colcon build args...]: build the
# package in PKG_DIR with PREFIX's colcon into PREFIX (merged), logging to LOG; non-zero on failure.
# Extra CMake arguments: EXTRA_CMAKE_ARGS (a space-separated string).
colcon_build_into() {
  local pkg=$1 prefix=$2 py=$3 work=$4 logfile=$5
  shift 5
  mkdir -p "$work"
  AMENT_PREFIX_PATH="$prefix" CMAKE_PREFIX_PATH="$prefix" PATH="$prefix/bin:$PATH" \
    "$prefix/bin/colcon" --log-base "$work/log" build --base-paths "$pkg" \
      --build-base "$work/build" --merge-install --install-base "$prefix" \
      --event-handlers console_direct- "$@" \
      --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF ${EXTRA_CMAKE_ARGS:-} > "$logfile" 2>&1
}
