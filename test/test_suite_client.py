"""suite_client's pure parts on hand-built messages: the odometry status it reports and the image
conversion it sends (checked with the servers' own decoder); as a process, its exit on SIGTERM or
SIGINT (a launcher's shutdown, Ctrl-C) while it listens or waits for a server, and on a bad image."""
from __future__ import annotations

import signal
import subprocess
import sys
from types import SimpleNamespace as NS

import numpy as np
import pytest

pytest.importorskip("rclpy")
from suite_tools.suite_client import Status, read_image  # noqa: E402
from suite_tools.testing import wait_for  # noqa: E402


def _odom(x, y, z):
    return NS(pose=NS(pose=NS(position=NS(x=x, y=y, z=z))))


def _degen(weak_t: int, dropped: int):
    return NS(weak_translation_directions=[object()] * weak_t, weak_rotation_directions=[],
              num_dropped_scans=dropped)


def test_status_accumulates_distance_weak_scans_and_ignores_nan():
    s = Status()
    for p in [(0, 0, 0), (3, 4, 0), (float("nan"), 0, 0), (3, 4, 12)]:
        s.on_odometry(_odom(*p))
    for weak, dropped in [(1, 0), (0, 0), (1, 2)]:
        s.on_degeneracy(_degen(weak, dropped))
    assert s.poses == 3 and s.distance_m == pytest.approx(17.0)
    assert (s.scans, s.weak_scans, s.dropped) == (3, 2, 2)
    assert "17.0 m" in s.prompt() and "2 of 3" in s.prompt()
    from learned_nodes.llm.instruction_eval import demo_status_prompt    # the prompt the check scores
    assert s.prompt() == demo_status_prompt(s.distance_m, s.weak_scans, s.scans)


def test_image_file_to_message_round_trip(tmp_path):
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("sensor_msgs")
    from learned_nodes.image_conversions import image_to_numpy
    from suite_tools.image_msgs import numpy_to_image as image_msg

    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "g.png"), rgb[..., 0])
    for name, want, enc in [("c.png", rgb, "rgb8"), ("g.png", rgb[..., 0], "mono8")]:
        arr, encoding = read_image(str(tmp_path / name))
        assert encoding == enc
        np.testing.assert_array_equal(image_to_numpy(image_msg(arr, encoding)), want)
    with pytest.raises(ValueError, match="cannot read"):
        read_image(str(tmp_path / "missing.png"))


def _start_client(graph, tmp_path, *params: str):
    """suite_client on the graph's isolated domain; stdout and stderr to files of their own."""
    out, err = tmp_path / "client.out", tmp_path / "client.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "suite_tools.suite_client", "--ros-args",
                                 *[arg for param in params for arg in ("-p", param)]],
                                env=graph.env, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return proc, out, err


def _png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "shoe.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("sig, phase", [(signal.SIGTERM, "listening"), (signal.SIGTERM, "waiting"),
                                        (signal.SIGINT, "listening")])
def test_a_signal_stops_it_cleanly(graph, tmp_path, sig, phase):
    """Signalled while it listens to the odometry or waits for a server (none runs on this
    domain): one "stopped" line, no traceback, exit 0 (stopping is not a failure), and a server
    it was waiting for is not reported as "not up"."""
    if phase == "listening":
        params, marker = ["listen_s:=600.0"], "[suite_client] listening to "
    else:
        params = ["listen_s:=0.0", f"image_paths:=[{_png(tmp_path)}]", "wait_s:=600.0"]
        marker = "[suite_client] classify: waiting up to 600 s for classifier_node/classify"
    proc, out, err = _start_client(graph, tmp_path, *params)
    try:
        wait_for(lambda: marker in out.read_text() or proc.poll() is not None, 120, what=marker)
        assert proc.poll() is None, out.read_text() + err.read_text()
        proc.send_signal(sig)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stdout, stderr = out.read_text(), err.read_text()
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert code == 0, stdout + stderr
    assert "[suite_client] stopped by a signal" in stdout and "is not up" not in stdout, stdout


def test_an_unreadable_image_is_a_bad_parameter_said_before_listening(graph, tmp_path):
    pytest.importorskip("cv2")
    proc, out, err = _start_client(graph, tmp_path, "listen_s:=600.0", f"image_paths:=[{tmp_path / 'none.png'}]")
    try:
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 2, out.read_text() + err.read_text()
    assert "image_paths: cannot read image" in err.read_text() and "listening" not in out.read_text()
