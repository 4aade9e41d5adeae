"""coin_lio.core.clip_recovery on hand-made jolts: a Gaussian bump of the rig (5 g peak, as the
simulator's knocks) read by a +-2 g accelerometer at 100 Hz. Integrated as read, the clipped
readings leave the velocity ~0.4 m/s off after the jolt; recovered, within a few cm/s. What is
not a jolt (a sustained overload, a bump within range) is left as read."""
import numpy as np
import pytest

from coin_lio.core.clip_recovery import ClipRecovery
from coin_lio.core.imu_propagation import ImuSample
from coin_lio.imu_saturation import ImuSaturation

G = 9.81
CLIP = 2 * 9.80665          # m/s^2, +-2 g full scale
RATE = 100.0                # Hz


def _jolt(direction, t_c=1.0, sigma=0.015, peak_g=5.0, accel=(0.0, 0.0, 0.0), duration=2.0,
          phase=0.0):
    """Readings (t, true acc, clipped acc) of a level rig moving with constant world acceleration
    `accel` plus a displacement bump d exp(-tau^2 / 2) along `direction` peaking at peak_g."""
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    t = np.arange(0.0, duration, 1 / RATE) + phase
    tau = (t - t_c) / sigma
    d = peak_g * 9.80665 * sigma ** 2                                    # m, bump height
    bump = (tau ** 2 - 1) / sigma ** 2 * np.exp(-0.5 * tau ** 2) * d     # (N,) m/s^2
    true = bump[:, None] * u + np.asarray(accel) + [0.0, 0.0, G]         # specific force, level rig
    return t, true, np.clip(true, -CLIP, CLIP)


def _integrate(t, acc):
    """World velocity change (level rig, gravity removed), trapezoid over the readings."""
    a = acc - [0.0, 0.0, G]
    return (0.5 * (a[1:] + a[:-1]) * np.diff(t)[:, None]).sum(axis=0)


def _recover(t, acc, integrated_until=-np.inf):
    sat, rec = ImuSaturation(), ClipRecovery()
    for _ in range(2):                    # earlier knocks made the clip levels known
        sat.observe(np.zeros(3), np.full(3, CLIP))
        sat.observe(np.zeros(3), np.full(3, -CLIP))
    samples, corrections = [], []
    for ti, a in zip(t, acc):
        s = ImuSample(float(ti), np.zeros(3), a.copy())
        sat.observe(s.gyro, s.acc)
        samples.append(s)
        c = rec.add(s, sat.acc_clipped, integrated_until)
        if c is not None:
            corrections.append(c)
    return np.stack([s.acc for s in samples]), corrections, rec


@pytest.mark.parametrize("direction", [(0, 0, 1), (0, 0, -1), (1, 0.5, 0.3), (-0.3, 1, -0.6)])
@pytest.mark.parametrize("phase", [0.0, 0.003, 0.007])
def test_the_velocity_after_a_clipped_jolt_is_restored(direction, phase):
    t, true, clipped = _jolt(direction, phase=phase)
    assert np.abs(clipped - true).max() > 5.0                     # the jolt is clipped
    lost = np.linalg.norm(_integrate(t, clipped) - _integrate(t, true))
    assert lost > 0.09, lost
    fixed, _, rec = _recover(t, clipped)
    err = np.linalg.norm(_integrate(t, fixed) - _integrate(t, true))
    assert err < 0.1 * lost and err < 0.01, (lost, err)
    assert len(rec.restored) == 1
    changed = np.flatnonzero(np.any(fixed != clipped, axis=1))
    assert np.all(np.isclose(np.abs(clipped[changed]).max(axis=1), CLIP))   # only clipped readings
    grew = np.abs(fixed[changed]) >= np.abs(clipped[changed]) - 1e-9
    assert grew.all()                                              # pushed outward, past the clip


def test_a_steady_acceleration_beside_the_jolt_is_kept():
    t, true, clipped = _jolt((0, 0, 1), accel=(1.5, -0.5, 0.0))   # braking during the knock
    fixed, _, _ = _recover(t, clipped)
    assert np.linalg.norm(_integrate(t, fixed) - _integrate(t, true)) < 0.05


def test_readings_already_integrated_come_back_as_a_velocity_correction():
    t, true, clipped = _jolt((0, 0, 1))
    fixed, corrections, _ = _recover(t, clipped, integrated_until=np.inf)
    assert np.array_equal(fixed, clipped)                          # nothing left to change
    assert len(corrections) == 1
    dv = corrections[0].dv_body                                    # IMU frame = world (level rig)
    err = _integrate(t, clipped) + dv - _integrate(t, true)
    assert np.linalg.norm(err) < 0.05 and abs(corrections[0].t - 1.0) < 0.02


def test_a_jolt_within_range_and_a_sustained_overload_are_left_as_read():
    t, true, clipped = _jolt((0, 0, 1), peak_g=1.2)               # never reaches the clip
    fixed, corrections, rec = _recover(t, clipped)
    assert np.array_equal(fixed, clipped) and not corrections and not rec.restored
    t = np.arange(0.0, 2.0, 1 / RATE)
    acc = np.tile([0.0, 0.0, G], (len(t), 1))
    acc[(t > 0.5) & (t < 1.2), 2] = CLIP                          # 0.7 s at full scale: a fall, a crash
    fixed, corrections, rec = _recover(t, acc)
    assert np.array_equal(fixed, acc) and not corrections and not rec.restored


def test_a_fresh_recovery_waits_for_two_quiet_readings_before_judging():
    rec = ClipRecovery()
    sat = ImuSaturation()
    t, _, clipped = _jolt((0, 0, 1), t_c=0.03, duration=0.3)      # starts inside a jolt
    for ti, a in zip(t, clipped):
        s = ImuSample(float(ti), np.zeros(3), a.copy())
        sat.observe(s.gyro, s.acc)
        assert rec.add(s, sat.acc_clipped, -np.inf) is None
    assert not rec.restored                                        # no quiet reading before it


def test_jolt_spans_cover_the_jolt_and_only_jolts_that_may_clip():
    t, _, clipped = _jolt((0, 0, 1), t_c=1.0)
    _, _, rec = _recover(t, clipped)
    assert len(rec.spans) == 1
    a, b = rec.spans[0]
    assert 0.93 < a < 0.97 and 1.03 < b < 1.07, (a, b)      # +-3 sigma, a reading either side
    t, _, small = _jolt((0, 0, 1), peak_g=1.2)                # departs, but never near a clip
    _, _, rec = _recover(t, small)
    assert not rec.jolt_spans()


def test_an_open_jolt_is_a_span_up_to_its_last_reading():
    sat, rec = ImuSaturation(), ClipRecovery()
    t, _, clipped = _jolt((0, 0, 1), t_c=1.0)
    for ti, a in zip(t, clipped):
        s = ImuSample(float(ti), np.zeros(3), a.copy())
        sat.observe(s.gyro, s.acc)
        rec.add(s, sat.acc_clipped, -np.inf)
        if ti >= 1.0:
            break
    (a, b), = rec.jolt_spans()
    assert a < 0.97 and b == pytest.approx(t[t <= 1.0][-1])


def test_the_pipeline_leaves_the_points_of_a_jolt_out():
    from coin_lio.config import LioConfig
    from coin_lio.pipeline import LioPipeline

    pipe = LioPipeline(LioConfig())
    t, _, clipped = _jolt((0, 0, 1), t_c=1.0)
    for ti, a in zip(t, clipped):
        pipe.add_imu(float(ti), np.zeros(3), a)
    times = np.linspace(0.9, 1.0, 1001)                       # a scan over the jolt's first half
    drop = pipe._jolt_points(pipe._in_jolt(times))
    (a, b), = pipe.clip_recovery.jolt_spans()
    assert drop is not None and np.array_equal(drop, (times >= a) & (times <= b))
    assert pipe._jolt_points(pipe._in_jolt(np.linspace(1.5, 1.6, 11))) is None   # a later scan keeps all
    pipe.cfg.imu.jolt_drop_points = False
    assert pipe._jolt_points(pipe._in_jolt(times)) is None


def test_the_saturation_report_says_what_was_recovered():
    from coin_lio.config import InputCheckConfig, LioConfig
    from coin_lio.pipeline import LioPipeline

    pipe = LioPipeline(LioConfig(input_check=InputCheckConfig(imu_window=100)))
    for k in range(3):                                        # a knock a second, 100 readings a report
        t, _, clipped = _jolt((0, 0, 1), t_c=k + 0.5, duration=1.0, phase=float(k))
        for ti, a in zip(t, clipped):
            pipe.add_imu(float(ti), np.zeros(3), a)
    said = [m for k, m in pipe.events if k == "imu_saturated"]
    assert said and "accelerometer clipped" in said[-1]
    assert any("jolt(s) since the last report recovered" in m for m in said), said
