"""Filter state of the FAST-LIO2 error-state Kalman filter, and the error-state layout.

Navigation frame: the odometry world W (gravity-aligned at initialisation). Body = IMU frame I.
p_W = R_WI (R_IL p_L + t_IL) + p_WI: the LiDAR-IMU extrinsic (R_IL, t_IL) is part of the state.
Error state (24): position, rotation (right perturbation R Exp(d)), extrinsic rotation, extrinsic
translation, velocity, gyro bias, accel bias, gravity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coin_lio.core.state_kernel import GRAVITY_NORM, boxminus_kernel, boxplus_kernel

POS, ROT, ROT_IL, POS_IL, VEL, BG, BA, GRAV = (slice(3 * i, 3 * i + 3) for i in range(8))
DIM = 24
_FIELDS = ("pos", "rot", "rot_il", "pos_il", "vel", "bg", "ba", "grav")   # error-state order


@dataclass
class NavState:
    pos: np.ndarray = field(default_factory=lambda: np.zeros(3))          # p_WI, m
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))            # R_WI
    rot_il: np.ndarray = field(default_factory=lambda: np.eye(3))         # R_IL
    pos_il: np.ndarray = field(default_factory=lambda: np.zeros(3))       # t_IL, m
    vel: np.ndarray = field(default_factory=lambda: np.zeros(3))          # v_W, m/s
    bg: np.ndarray = field(default_factory=lambda: np.zeros(3))           # gyro bias, rad/s
    ba: np.ndarray = field(default_factory=lambda: np.zeros(3))           # accel bias, m/s^2
    grav: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, -GRAVITY_NORM]))  # g_W

    def copy(self) -> "NavState":
        return NavState(*(np.array(getattr(self, k)) for k in self.__dataclass_fields__))

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The eight arrays in error-state order, float64 and contiguous (state_kernel's input)."""
        return tuple(np.ascontiguousarray(getattr(self, k), dtype=np.float64) for k in _FIELDS)

    def boxplus(self, dx: np.ndarray) -> "NavState":
        """x [+] dx for an error-state vector dx (24,): position + dp, rotation R Exp(dr), ...;
        gravity keeps its norm (state_kernel.boxplus_kernel)."""
        return NavState(*boxplus_kernel(*self.arrays(), np.ascontiguousarray(dx, dtype=np.float64)))

    def boxminus(self, other: "NavState") -> np.ndarray:
        """self [-] other: the error-state vector dx with other [+] dx = self (rotations:
        Log(R_other^T R_self), state_kernel.boxminus_kernel)."""
        return boxminus_kernel(*self.arrays(), *other.arrays())

    def lidar_pose(self) -> np.ndarray:
        """T_WL (4x4): pose of the LiDAR in the world."""
        T = np.eye(4)
        T[:3, :3] = self.rot @ self.rot_il
        T[:3, 3] = self.rot @ self.pos_il + self.pos
        return T

    def imu_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = self.rot, self.pos
        return T

    def is_finite(self) -> bool:
        return bool(np.isfinite(np.concatenate([np.ravel(getattr(self, k)) for k in _FIELDS])).all())
