"""suite_client's pure parts on hand-built messages: the odometry status it reports and the image
conversion it sends (checked with the servers' own decoder)."""
from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from suite_tools.suite_client import Status, read_image


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
