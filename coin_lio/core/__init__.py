"""Pure numpy/scipy building blocks of the odometry: SO(3) maths, state, IMU propagation,
deskewing, the local map, point-to-plane residuals and the iterated error-state Kalman update."""
