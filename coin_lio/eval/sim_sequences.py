"""The simulated sequences of the benchmarks: named specs (scene, motion profile, IMU preset) and a
cache that generates each once into DATA/<name>/ and reuses it while its config and the
simulator's sources are unchanged (DATA/<name>/bench_sim_cache.json holds their hash). <name> carries
every setting that differs from the default sequence (cache_name: "_10s", "_seed3", "_64x1024"), so
runs of different lengths, seeds or sensors keep their own sequences instead of regenerating each other's.
Shared by bench_sim and bench_photometric.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SEQUENCES = ("tunnel_smooth", "field_smooth", "corridor_smooth", "urban_smooth",
                     "stairs_smooth", "tunnel_dynamic", "field_dynamic")
POINT_BYTES = 48            # ouster-ros "original" point
DEFAULT_DURATION_S = 20.0   # seconds per sequence (make bench-sim)


# IMU noise of the generated sequences (--imu). "sim": coin_lio.sim's defaults (white noise
# 0.01 m/s^2/sqrt(Hz) and 0.01 rad/s/sqrt(Hz): 0.1 per sample at 100 Hz, FAST-LIO's assumption);
# "icm20948": the datasheet white noise of the InvenSense ICM-20948 inside Ouster OS units
# (230 ug/sqrt(Hz), 0.015 deg/s/sqrt(Hz)), sim biases kept; "ideal": no noise, no bias.
IMU_PRESETS = ("sim", "icm20948", "ideal")
DEFAULT_IMU = "icm20948"   # the IMU of the simulated sensor (Ouster OS units); "sim" is 40x noisier


# Real-sensor effect variants (--effects): each effect of coin_lio.sim alone at its realistic level
# (SensorEffects.realistic(), stated in coin_lio/sim/sensor_effects.py), all of them together, and
# a column window of half the sweep (a setting, not a defect: not part of "realistic").
SINGLE_EFFECTS = ("packets", "window", "offset", "knocks", "noise", "mixed", "movers")   # joinable: a+b
EFFECTS = ("none", *SINGLE_EFFECTS, "realistic")


def sensor_effects(name: str, cols: int):
    """The SensorEffects of an --effects variant for a sweep of `cols` columns."""
    from coin_lio.sim.sensor_effects import SensorEffects

    r = SensorEffects.realistic()
    variants = {"none": {}, "packets": dict(packet_drop_prob=r.packet_drop_prob),
                "window": dict(column_window=(cols // 4, 3 * cols // 4 - 1)),
                "offset": dict(imu_time_offset=r.imu_time_offset),
                "knocks": dict(knock_rate_hz=r.knock_rate_hz, imu_saturation=True),
                "noise": dict(noise_return_frac=r.noise_return_frac),
                "mixed": dict(mixed_pixel_frac=r.mixed_pixel_frac),
                "movers": dict(pedestrians_per_min=r.pedestrians_per_min, vehicles_per_min=r.vehicles_per_min)}
    if name == "realistic":
        return r
    parts = name.split("+")                      # a combination: "knocks+offset"
    unknown = [n for n in parts if n not in variants]
    if unknown:
        raise ValueError(f"unknown effects variant '{unknown[0]}', choose from {EFFECTS} or a+b of them")
    return SensorEffects(**{k: v for n in parts for k, v in variants[n].items()})


@dataclass(frozen=True)
class SeqSpec:
    scene: str
    profile: str
    imu: str = DEFAULT_IMU
    effects: str = "none"

    @property
    def name(self) -> str:
        return (f"{self.scene}_{self.profile}" + ("" if self.imu == DEFAULT_IMU else f"_imu-{self.imu}")
                + ("" if self.effects == "none" else f"+{self.effects}"))


def parse_sequences(text: str, imu: str = DEFAULT_IMU, effects: str = "none") -> list[SeqSpec]:
    """'tunnel,field_dynamic' -> specs; 'all' (or '') -> the default set; effects 'none,realistic'
    -> every sequence with each of those effect variants."""
    variants = [e.strip() for e in (effects or "none").split(",") if e.strip()]
    for e in variants:
        if e not in EFFECTS and not all(part in SINGLE_EFFECTS for part in e.split("+")):
            raise ValueError(f"unknown effects variant '{e}', choose from {EFFECTS} or a+b of them")
    if variants != ["none"]:
        from dataclasses import replace

        return [replace(spec, effects=e) for spec in parse_sequences(text, imu) for e in variants]
    from coin_lio.sim.scenes import SCENES
    from coin_lio.sim.trajectory import PROFILES

    items = [s.strip() for s in (text or "all").split(",") if s.strip()]
    out: list[SeqSpec] = []
    for item in items:
        if item == "all":
            out += [parse_sequences(s, imu)[0] for s in DEFAULT_SEQUENCES]
            continue
        scene, profile = item.replace(":", "_"), "smooth"
        for p in PROFILES:
            if item.endswith(f"_{p}") or item.endswith(f":{p}"):
                scene, profile = item[: -len(p) - 1], p
        if scene not in SCENES:
            raise ValueError(f"unknown scene '{scene}' in '{item}'; scenes: {sorted(SCENES)}, "
                             f"profiles: {list(PROFILES)}")
        if imu not in IMU_PRESETS:
            raise ValueError(f"unknown IMU preset '{imu}', choose from {IMU_PRESETS}")
        spec = SeqSpec(scene, profile, imu)
        if spec not in out:
            out.append(spec)
    return out


def sim_source_hash() -> str:
    """Hash of coin_lio/sim/*.py: generated sequences are stale when the simulator changes."""
    import coin_lio.sim

    h = hashlib.sha256()
    for path in sorted(Path(coin_lio.sim.__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def make_config(spec: SeqSpec, duration: float, rows: int = 128, cols: int = 1024, seed: int = 0):
    from coin_lio.sim.imu import ImuConfig
    from coin_lio.sim.lidar_model import OusterConfig
    from coin_lio.sim.sequence import SequenceConfig

    imu = {"sim": ImuConfig(), "ideal": ImuConfig.noiseless(),
           "icm20948": ImuConfig(acc_noise_density=230e-6 * 9.80665,
                                 gyr_noise_density=np.radians(0.015))}[spec.imu]
    return SequenceConfig(scene=spec.scene, profile=spec.profile, duration=float(duration),
                          seed=int(seed), imu=imu, effects=sensor_effects(spec.effects, cols),
                          ouster=OusterConfig(rows=rows, cols=cols, frequency_hz=10))


def cache_name(spec: SeqSpec, config) -> str:
    """The directory of `spec` under `config`: spec.name, plus each setting that is not the default
    (20 s, seed 0, 128x1024), e.g. field_dynamic+realistic_10s_seed3_64x1024."""
    tags = [f"{config.duration:g}s" if config.duration != DEFAULT_DURATION_S else "",
            f"seed{config.seed}" if config.seed != 0 else "",
            f"{config.ouster.rows}x{config.ouster.cols}"
            if (config.ouster.rows, config.ouster.cols) != (128, 1024) else ""]
    return "_".join([spec.name, *[t for t in tags if t]])


def _jsonable(obj: Any) -> Any:
    """The config dict as sequence.json stores it (JSON round trip: tuples -> lists, ...)."""
    from coin_lio.sim.sequence import _json_default

    return json.loads(json.dumps(obj, default=_json_default))


def cache_status(seq_dir: Path, config) -> tuple[bool, str]:
    """(reusable?, reason) of an existing sequence directory for `config`."""
    desc, bag, gt = seq_dir / "sequence.json", seq_dir / "bag", seq_dir / "ground_truth.tum"
    if not (desc.exists() and bag.exists() and gt.exists()):
        return False, "missing or incomplete"
    try:
        stored = json.loads(desc.read_text()).get("config")
    except json.JSONDecodeError:
        return False, "sequence.json unreadable"
    if stored != _jsonable(config.to_dict()):
        return False, "config differs"
    stamp = seq_dir / "bench_sim_cache.json"
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("sim_source_hash") != sim_source_hash():
                return False, "simulator sources changed"
        except json.JSONDecodeError:
            return False, "cache stamp unreadable"
    return True, "config matches"


def sequence_bytes(config) -> int:
    n_scans = int(np.floor(config.duration * config.ouster.frequency_hz + 1e-9))
    return n_scans * config.ouster.rows * config.ouster.cols * POINT_BYTES


def ensure_sequence(spec: SeqSpec, data_dir: Path, config, regenerate: bool = False,
                    progress: bool = True) -> tuple[Path, bool]:
    """(sequence dir, generated now?): reuse DATA/<cache_name> when it matches, else (re)generate it."""
    from coin_lio.sim.sequence import generate_sequence

    name = cache_name(spec, config)
    seq_dir = Path(data_dir) / name
    ok, why = cache_status(seq_dir, config)
    if ok and not regenerate:
        print(f"[bench-sim] {name}: cached ({why}) in {seq_dir}")
        return seq_dir, False
    need = sequence_bytes(config)
    seq_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(seq_dir).free
    if need > free:
        raise OSError(f"{name} needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free in {seq_dir}")
    print(f"[bench-sim] {name}: generating {config.duration:g} s "
          f"({'forced' if regenerate else why}; ~{need / 1e9:.1f} GB) into {seq_dir}")
    for stale in ("sequence.json", "bench_sim_cache.json"):
        (seq_dir / stale).unlink(missing_ok=True)   # an interrupted run never looks complete
    info = generate_sequence(config, seq_dir, progress=progress, overwrite=True)
    (seq_dir / "bench_sim_cache.json").write_text(json.dumps(
        {"sequence": name, "sim_source_hash": sim_source_hash(),
         "generated_s": round(info.seconds, 1)}, indent=1) + "\n")
    print(f"[bench-sim] {name}: {info.n_scans} scans in {info.seconds:.0f} s "
          f"({info.mean_scan_ms:.0f} ms per scan)")
    return seq_dir, True
