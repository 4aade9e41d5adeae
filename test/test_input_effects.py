"""What the odometry says when its input shows real-sensor effects: dropped packets and a column
window (coin_lio.input_effects, in the driver), IMU clipping (coin_lio.imu_saturation, in the
pipeline); and lio.imu.time_offset moving IMU stamps onto the LiDAR clock. Hand-built masks and
readings."""
import numpy as np
import pytest

from coin_lio.config import ImuConfig, InputCheckConfig, LioConfig
from coin_lio.imu_saturation import ImuSaturation
from coin_lio.input_effects import InputEffects
from coin_lio.odometry_driver import OdometryDriver, ScanGate

H, W = 16, 1024


def _scans(effects: InputEffects, n: int, missing_cols) -> list[tuple[str, str]]:
    for i in range(n):
        valid = np.ones((H, W), bool)
        valid[:, missing_cols(i)] = False
        valid[3, 7] = False                                   # single dark pixels are not columns
        effects.observe_scan(valid)
    return effects.events


def test_column_window_is_said_once_with_its_columns():
    eff = InputEffects()
    events = _scans(eff, 120, lambda i: np.arange(100, 356))
    assert [k for k, _ in events] == ["column_window"]
    assert "columns 100..355 (256 of 1024) returned nothing in any of the last 50 scans" in events[0][1]
    assert "768 columns" in events[0][1]


def test_column_window_across_column_zero_and_its_end():
    eff = InputEffects()
    _scans(eff, 50, lambda i: np.r_[np.arange(1000, 1024), np.arange(0, 40)])
    assert "columns 1000..39 (64 of 1024)" in eff.events[-1][1]
    _scans(eff, 100, lambda i: np.zeros(0, int))
    assert eff.events[1:] == [("column_window", "every column returns again: no column window")]


def _dropped_blocks(p: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda i: np.flatnonzero(np.repeat(rng.random(W // 16) < p, 16))


def test_dropped_packets_are_reported_with_share_and_block_size():
    eff = InputEffects()
    events = _scans(eff, 100, _dropped_blocks(0.05))
    assert [k for k, _ in events] == ["columns_missing", "columns_missing"]   # once per 50 scans
    share = float(events[0][1].split(" %")[0])
    assert 3.5 < share < 6.5 and "in blocks of 16 columns" in events[0][1]


def test_dropped_packets_in_a_destaggered_cloud_are_found_by_measurement_column():
    """A cloud published destaggered shows a lost packet as a slanted band (row v shifted by
    pixel_shift_by_row[v]): no column is wholly empty there, so the columns are put back in the
    sensor's measurement order first."""
    from coin_lio.core.free_space_kernel import lost_columns

    shift = (np.arange(H) * 8).astype(np.int64)                # 0..120: wider than a few packets
    lost = _dropped_blocks(0.05, seed=2)
    raw_scans, de_scans = InputEffects(), InputEffects()
    for i in range(50):
        raw = np.ones((H, W), bool)
        raw[:, lost(i)] = False                                # measurement order
        cols = (np.arange(W)[None, :] - shift[:, None]) % W     # destaggered col d holds (d - s) mod W
        de = np.take_along_axis(raw, cols, axis=1)
        assert de.any(axis=0).all()                            # no destaggered column wholly empty
        np.testing.assert_array_equal(lost_columns(de.view(np.uint8), shift, 0), ~raw.any(axis=0))
        raw_scans.observe_scan(de)                             # read as raw: nothing found
        de_scans.observe_scan(de, destagger_shift=shift)
    assert raw_scans.events == []
    assert [k for k, _ in de_scans.events] == ["columns_missing"]
    assert 3.5 < float(de_scans.events[0][1].split(" %")[0]) < 6.5


def test_dropped_packets_beside_a_column_window_count_only_the_varying_columns():
    eff = InputEffects()
    blocks = _dropped_blocks(0.05, seed=1)
    _scans(eff, 100, lambda i: np.union1d(np.arange(0, 512), blocks(i)))   # window said at 50, then restart
    kinds = [k for k, _ in eff.events]
    assert kinds == ["column_window", "columns_missing"], eff.events
    assert 3.5 < float(eff.events[1][1].split(" %")[0]) < 6.5     # of the 512 columns that can return


class _StackedColumns(InputEffects):
    """The column statistics as first written: the window's (S, W) stack, all and mean, every scan."""

    def _observe_columns(self, missing, unit):
        from coin_lio.input_effects import _run_lengths

        if self._missing and (self._missing[0].shape != missing.shape or unit != self._unit):
            self._missing.clear()
        self._unit = unit
        self._missing.append(missing)
        while len(self._missing) > self.cfg.scan_window:
            self._missing.popleft()
        self._scans_since_report += 1
        if len(self._missing) < self.cfg.scan_window:
            return
        stack = np.stack(self._missing)
        always = stack.all(axis=0)
        self._report_window(always)
        if self._scans_since_report < self.cfg.scan_window:
            return
        varying = stack[:, ~always]
        share = float(varying.mean()) if varying.size else 0.0
        if share >= self.cfg.missing_columns_warn:
            self._scans_since_report = 0
            runs = np.concatenate([_run_lengths(row) for row in varying])
            block = f"in blocks of {int(np.median(runs))} columns" if runs.size else "in blocks"
            self.events.append(("columns_missing", f"{100 * share:.1f} % of columns missing in the last "
                                f"{len(stack)} scans ({block}): dropped LiDAR packets; the odometry "
                                "uses the points that arrived"))


def test_running_column_counts_say_what_the_stacked_statistics_said():
    """Per-column counts over the window (O(W) a scan) give the stacked version's events, word for
    word, through bursts of lost packets, a window that comes, moves and goes, and a mode change."""
    rng = np.random.default_rng(3)
    cfg = InputCheckConfig(scan_window=12)
    new, old = InputEffects(cfg), _StackedColumns(cfg)
    for k in range(600):
        w = 512 if k < 450 else 256                     # the sensor's mode changes
        valid = np.ones((8, w), bool)
        if rng.random() < (0.5 if (k // 60) % 2 else 0.05):   # bursts of lost packets
            start = int(rng.integers(0, w))
            valid[:, start:start + 16 * int(rng.integers(1, 4))] = False
        if 100 <= k < 200 or 300 <= k < 380:              # a column window, moved at 300
            a = 40 if k < 200 else 400
            valid[:, a:a + 60] = False
        for fx in (new, old):
            fx.observe_scan(valid)
        assert new.events == old.events, k
    kinds = {e[0] for e in new.events}
    assert kinds == {"columns_missing", "column_window"} and len(new.events) >= 6


def test_rare_dropped_packets_and_unorganised_clouds_stay_quiet():
    eff = InputEffects(InputCheckConfig(missing_columns_warn=0.01))
    _scans(eff, 100, _dropped_blocks(0.002))
    eff.observe_scan(np.ones((1, 5000), bool))
    assert eff.events == []


def _sweep(rng: np.random.Generator, lost_packet_p: float = 0.0, window_deg=None) -> np.ndarray:
    """(N, 3) points of a VLP-16-like sweep: 1800 firings x 16 rings, 24 firings per packet;
    a lost packet's firings are left out (as the velodyne driver does), a few rays hit nothing."""
    az = np.repeat(np.arange(1800) * (2 * np.pi / 1800), 16)
    alt = np.tile(np.radians(np.linspace(-15, 15, 16)), 1800)
    keep = rng.random(az.size) > 0.3                          # sky, black surfaces
    keep &= ~np.repeat(rng.random(1800 // 24) < lost_packet_p, 24 * 16)
    if window_deg is not None:
        deg = np.degrees(az)
        keep &= (deg >= window_deg[0]) & (deg < window_deg[1])
    r = rng.uniform(2, 40, az.size)
    pts = np.stack([r * np.cos(alt) * np.cos(az), r * np.cos(alt) * np.sin(az), r * np.sin(alt)], axis=1)
    return pts[keep]


def test_unorganised_sweeps_report_lost_packets_as_missing_azimuth():
    rng = np.random.default_rng(0)
    eff = InputEffects()
    for _ in range(100):
        pts = _sweep(rng, lost_packet_p=0.05)
        eff.observe_scan(np.ones((1, len(pts)), bool), pts)
    assert [k for k, _ in eff.events] == ["columns_missing"] * 2, eff.events
    share = float(eff.events[0][1].split(" %")[0])
    assert 3.5 < share < 6.5 and "% of the azimuth missing in the last 50 scans (in gaps of 4." in eff.events[0][1]
    quiet = InputEffects()                                    # the same sweeps, nothing lost
    for _ in range(100):
        pts = _sweep(rng)
        quiet.observe_scan(np.ones((1, len(pts)), bool), pts)
    assert quiet.events == []


def test_unorganised_angle_window_is_said_in_degrees():
    rng = np.random.default_rng(1)
    eff = InputEffects()
    for _ in range(60):
        pts = _sweep(rng, window_deg=(0, 270))
        eff.observe_scan(np.ones((1, len(pts)), bool), pts)
    assert [k for k, _ in eff.events] == ["column_window"], eff.events
    assert "azimuth 270.0..360.0 deg (90.0 of 360)" in eff.events[0][1] and "crops the scan to 270.0 deg" \
        in eff.events[0][1]


def _imu(eff: ImuSaturation, n: int, knock_at=(), acc_clip=39.2266, gyro_clip=None, seed=0, knock_len=6):
    rng = np.random.default_rng(seed)
    for i in range(n):
        acc = np.array([0.0, 0.0, 9.81]) + rng.normal(0, 0.5, 3)
        gyro = rng.normal(0, 0.1, 3)
        if any(k <= i < k + knock_len for k in knock_at):
            acc[0] = acc_clip                                 # a knock: x flat at the range limit
            if gyro_clip is not None:
                gyro[2] = -gyro_clip
        eff.observe(gyro, acc)


def test_clipped_accelerometer_and_gyro_are_reported_at_once_then_once_per_window():
    eff = ImuSaturation()
    _imu(eff, 1300, knock_at=(200, 700, 1100), gyro_clip=8.7266)
    assert [k for k, _ in eff.events] == ["imu_saturated"] * 4, eff.events
    # reading 200 sets the full-scale level, reading 201 repeats it: said at once
    assert "IMU accelerometer clipped in 1 of the last 202 readings (x at 39.23 m/s^2)" in eff.events[0][1]
    assert "IMU gyro clipped in 1 of the last 202 readings (z at 8.73 rad/s)" in eff.events[1][1]
    # 1000 readings later: the clips among readings 202..1201 (4 + 6 + 6)
    assert "accelerometer clipped in 16 of the last 1000" in eff.events[2][1]
    assert "gyro clipped in 16 of the last 1000" in eff.events[3][1]


def test_single_reading_clips_are_found_from_the_second_knock_on():
    eff = ImuSaturation()                                      # 100 Hz: a knock clips one reading
    _imu(eff, 1000, knock_at=(100, 300, 500, 700), acc_clip=19.6133, knock_len=1)
    assert [k for k, _ in eff.events] == ["imu_saturated"]
    assert "clipped in 1 of the last 301 readings (x at 19.61 m/s^2)" in eff.events[0][1]


def _clipped_reference(stream, cfg: InputCheckConfig) -> list[np.ndarray]:
    """The clip rule on (6,) arrays, as numpy states it (the first implementation): per axis and
    sign the largest magnitude and how often it was read; clipped when it is that level, above
    the floor, read clip_repeats times."""
    floor = np.r_[np.full(3, cfg.clip_acc_floor), np.full(3, cfg.clip_gyr_floor)]
    peak, hits, axes, out = np.zeros((2, 6)), np.zeros((2, 6), np.int64), np.arange(6), []
    for gyro, acc in stream:
        r = np.concatenate([acc, gyro])
        row, mag = (r < 0).astype(np.int64), np.abs(r)
        hits[row, axes] = np.where(mag > peak[row, axes], 1, hits[row, axes] + (mag == peak[row, axes]))
        peak[row, axes] = np.maximum(peak[row, axes], mag)
        out.append((mag >= floor) & (mag == peak[row, axes]) & (hits[row, axes] >= cfg.clip_repeats))
    return out


def test_scalar_clip_check_equals_the_array_rule_on_random_knocks():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        stream = []
        for _ in range(2000):
            gyro, acc = rng.normal(0, 0.5, 3), rng.normal(0, 2, 3) + [0.0, 0.0, 9.81]
            if rng.random() < 0.05:
                acc = np.clip(10 * acc, -19.6133, 19.6133)           # +-2 g, either sign, any axis
            if rng.random() < 0.05:
                gyro = np.clip(10 * gyro, -4.3633, 4.3633)           # +-250 deg/s
            stream.append((gyro, acc))
        eff = ImuSaturation()
        got = [eff.observe(g, a) for g, a in stream]
        want = _clipped_reference(stream, eff.cfg)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        assert sum(int(c.any()) for c in got) > 50                    # the streams do clip


def test_large_but_varying_readings_are_not_clipping():
    eff = ImuSaturation()
    rng = np.random.default_rng(3)
    for _ in range(2000):                                     # violent but never flat-topped
        eff.observe(rng.normal(0, 5, 3), rng.normal(0, 30, 3))
    _imu(eff, 1000, knock_at=(100,), acc_clip=12.0)           # flat but below the 14.7 floor
    assert eff.events == []


def test_time_offset_moves_imu_stamps_onto_the_lidar_clock():
    cfg = LioConfig(imu=ImuConfig(time_offset=0.02))
    pipeline = OdometryDriver(cfg).pipeline                   # every path (node, runner, bench) feeds it
    assert pipeline.add_imu(10.0, np.zeros(3), np.array([0, 0, 9.81]))
    assert pipeline.imu[-1].t == pytest.approx(9.98)
    gate = ScanGate(imu_time_offset=0.02)
    gate.add_imu(10.0)
    assert gate.last_imu_t == pytest.approx(9.98)
    with pytest.raises(ValueError, match="time_offset"):
        ImuConfig(time_offset=0.6)


def test_driver_hands_the_effects_over_with_its_events():
    driver = OdometryDriver(LioConfig())
    for i in range(50):
        valid = np.ones((H, W), bool)
        valid[:, 0:256] = False
        driver.effects.observe_scan(valid)
    assert [k for k, _ in driver.drain_events() if k != "photometric_off"] == ["column_window"]
    assert driver.drain_events() == []


def test_pipeline_reports_clipping_among_its_events():
    pipeline = OdometryDriver(LioConfig()).pipeline
    for i in range(300):
        acc = np.array([19.6133 if i in (100, 101, 200) else 0.1 * np.sin(i), 0.0, 9.81])
        pipeline.add_imu(0.01 * i, np.zeros(3), acc)
    said = [m for k, m in pipeline.events if k == "imu_saturated"]
    assert len(said) == 1 and "accelerometer clipped in 1 of the last 102 readings (x at 19.61" in said[0]


def test_pipeline_drops_non_finite_and_out_of_range_imu_readings_with_a_reason():
    pipeline = OdometryDriver(LioConfig()).pipeline
    good = (np.zeros(3), np.array([0.0, 0.0, 9.81]))
    assert pipeline.add_imu(1.0, *good)
    for t, gyro, acc, kind in ((1.01, np.array([np.nan, 0, 0]), good[1], "imu_nan"),
                               (1.02, good[0], np.array([0, np.inf, 9.81]), "imu_nan"),
                               (float("nan"), *good, "imu_nan"),
                               (1.03, good[0], np.array([0, 0, -600.0]), "imu_range"),
                               (1.04, np.array([0, 0, 101.0]), good[1], "imu_range")):
        assert not pipeline.add_imu(t, gyro, acc)
        assert pipeline.events[-1][0] == kind, (t, pipeline.events[-1])
    assert len(pipeline.imu) == 1 and pipeline.add_imu(1.05, *good)
