"""Pure parts of playback and monitoring: the clock mapping, precise waits, CDR stamp peeking,
topic statistics, bag writing/reading and the domain lease."""
import time

import numpy as np
import pytest

from suite_tools.bag_io import BagWriter, bag_time_range, bag_topics, make_imu, read_bag, suite_typestore
from suite_tools.cdr_peek import header_stamp_ns
from suite_tools.playback_clock import PlaybackClock, wait_until
from suite_tools.ros_env import DomainLease, local_graph_env
from suite_tools.topic_stats import TopicRecord, timing_errors_ms


def test_clock_maps_bag_time_to_wall_time_at_rate():
    c = PlaybackClock(rate=2.0)
    c.restart(bag_ns=10_000_000_000, wall_ns=500)
    assert c.wall_due_ns(11_000_000_000) == 500 + 500_000_000
    assert c.bag_now_ns(wall_ns=500 + 250_000_000) == 10_500_000_000
    with pytest.raises(ValueError):
        PlaybackClock(rate=0.0)


@pytest.mark.quiet_cpu
@pytest.mark.flaky(reruns=2)
def test_wait_until_is_precise_and_ticks():
    ticks = []
    target = time.monotonic_ns() + 60_000_000
    assert wait_until(target, on_tick=lambda: ticks.append(1), tick_ns=10_000_000)
    late_ms = (time.monotonic_ns() - target) / 1e6
    assert 0 <= late_ms < 5
    assert 4 <= len(ticks) <= 8
    assert not wait_until(time.monotonic_ns() + 10**9, should_stop=lambda: True)


def test_header_stamp_peek_matches_serialized_message():
    store = suite_typestore()
    msg = make_imu(1_234_567_890_123, "imu", [0, 0, 0], [0, 0, 9.8])
    raw = bytes(store.serialize_cdr(msg, msg.__msgtype__))
    assert header_stamp_ns(raw) == 1_234_567_890_123
    big = bytes(store.serialize_cdr(msg, msg.__msgtype__, little_endian=False))
    assert header_stamp_ns(big) == 1_234_567_890_123
    assert header_stamp_ns(b"\x00\x01") is None


def test_timing_errors_ignore_constant_latency():
    rec = TopicRecord("/a", "x")
    bag = [0, 100, 200, 300]
    for t, jitter in zip(bag, [0, 0, 2_000_000, 0]):
        rec.add(5_000_000 + t + jitter, t, 10)
    np.testing.assert_allclose(timing_errors_ms(rec, bag), [0, 0, 2, 0])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_write_read_round_trip(tmp_path, storage):
    with BagWriter(tmp_path / "b", storage=storage) as w:
        for k in range(5):
            w.write("/imu", k * 1000, make_imu(k * 1000, "imu", [k, 0, 0], [0, 0, 9.8]))
    assert bag_topics(tmp_path / "b") == {"/imu": ("sensor_msgs/msg/Imu", 5)}
    assert bag_time_range(tmp_path / "b") == (0, 4000)
    msgs = list(read_bag(tmp_path / "b"))
    assert [m.decode().angular_velocity.x for m in msgs] == [0, 1, 2, 3, 4]
    assert [m.t_ns for m in read_bag(tmp_path / "b", start_ns=2000)] == [2000, 3000, 4000]
    with pytest.raises(KeyError, match="no topics"):
        list(read_bag(tmp_path / "b", topics=["/nope"]))
    with pytest.raises(FileExistsError):
        BagWriter(tmp_path / "b")


def test_domain_leases_are_unique_and_env_is_isolated():
    with DomainLease() as a, DomainLease() as b:
        assert a.domain_id != b.domain_id
        env = local_graph_env(a.domain_id)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_DOMAIN_ID"] == str(a.domain_id)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("fastdds_localhost.xml")
    with pytest.raises(ValueError):
        local_graph_env(500)
