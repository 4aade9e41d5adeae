"""LiDAR effects on one sweep's range image, in raw column (measurement / firing) order, before
the driver's layout is written (coin_lio.sim.lidar_sim calls apply_scan_effects).

Arrays are (H, W): rows x raw columns (Ouster measurement columns, Velodyne firings; the
columns of one row are neighbours in azimuth whatever the stagger). Order of application:
mixed pixels (on the true returns), spurious noise returns, then the columns that never
arrive (outside the column window, lost packets): those are invalid with ambient 0.
"""
from __future__ import annotations

import numpy as np

from coin_lio.sim.sensor_effects import SensorEffects

NOISE_SIGNAL = (5.0, 30.0)        # signal counts of a spurious return (real ones: 100s-1000s)
NOISE_REFLECTIVITY = (0.01, 0.1)  # surface reflectivity of a spurious return (1-10 %)


def lost_packet_columns(n_cols: int, per_packet: int, prob: float,
                        rng: np.random.Generator) -> np.ndarray:
    """(W,) bool: columns whose packet was lost. Packets are blocks of `per_packet` consecutive
    columns from column 0 (the last one shorter when per_packet does not divide W)."""
    n_packets = -(-n_cols // per_packet)
    lost = rng.random(n_packets) < prob
    return np.repeat(lost, per_packet)[:n_cols]


def window_columns(n_cols: int, window: tuple[int, int] | None) -> np.ndarray:
    """(W,) bool: columns inside [first, last] (inclusive; wraps when first > last)."""
    j = np.arange(n_cols)
    if window is None:
        return np.ones(n_cols, bool)
    first, last = window
    return (j >= first) & (j <= last) if first <= last else (j >= first) | (j <= last)


def depth_edges(range_m: np.ndarray, valid: np.ndarray,
                min_jump: float) -> tuple[np.ndarray, np.ndarray]:
    """(edge (H, W) bool, partner (H, W) m). A pixel is on a depth edge when it and a horizontal
    neighbour (next or previous column, wrapping: a sweep is a full turn) are both valid and
    their ranges differ by more than min_jump (m); partner = the range across the larger step."""
    jumps, ranges = [], []
    for shift in (-1, 1):
        other, other_ok = np.roll(range_m, shift, axis=1), np.roll(valid, shift, axis=1)
        jumps.append(np.where(valid & other_ok, np.abs(other - range_m), 0.0))
        ranges.append(other)
    partner = np.where(jumps[0] >= jumps[1], ranges[0], ranges[1])
    return np.maximum(jumps[0], jumps[1]) > min_jump, partner


def apply_scan_effects(effects: SensorEffects, per_packet: int, min_range: float,
                       range_m: np.ndarray, signal: np.ndarray, refl: np.ndarray,
                       ambient: np.ndarray, valid: np.ndarray, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New (range_m m, signal counts, refl 0..1, ambient counts, valid bool), all (H, W); the
    inputs are left alone. `rng` gives one independent stream per effect (switching one effect
    leaves the others' draws unchanged)."""
    r_mix, r_noise, r_pack = (np.random.default_rng(s) for s in rng.integers(0, 2 ** 62, 3))
    range_m, signal, refl, ambient, valid = (np.array(a, copy=True) for a in
                                             (range_m, signal, refl, ambient, valid))
    shape = range_m.shape
    if effects.mixed_pixel_frac > 0:   # the beam footprint straddles the edge
        edge, partner = depth_edges(range_m, valid, effects.mixed_pixel_min_jump_m)
        pick = edge & (r_mix.random(shape) < effects.mixed_pixel_frac)
        u = r_mix.random(shape)
        range_m = np.where(pick, range_m + u * (partner - range_m), range_m)
    if effects.noise_return_frac > 0:  # dust, rain: a weak return close by replaces the true one
        hit = r_noise.random(shape) < effects.noise_return_frac
        lo, hi = effects.noise_return_range_m
        range_m = np.where(hit, r_noise.uniform(lo, hi, shape), range_m)
        signal = np.where(hit, r_noise.uniform(*NOISE_SIGNAL, shape), signal)
        refl = np.where(hit, r_noise.uniform(*NOISE_REFLECTIVITY, shape), refl)
        valid = np.where(hit, range_m >= min_range, valid)
    missing = ~window_columns(shape[1], effects.column_window)
    if effects.packet_drop_prob > 0:
        missing |= lost_packet_columns(shape[1], per_packet, effects.packet_drop_prob, r_pack)
    valid[:, missing] = False
    ambient[:, missing] = 0.0          # no packet: no field of that column at all
    return range_m, signal, refl, ambient, valid
