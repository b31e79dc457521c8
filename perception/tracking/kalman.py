"""Batched Kalman filters over 3D box states (AB3DMOT), one row per track, in the city frame.

Two motion models share one state layout `x, y, z, yaw, l, w, h, a, b, vz`:
- constant velocity ("cv", linear KF): `a, b = vx, vy` (m/s);
- constant turn rate and velocity ("ctrv", extended KF): `a = v` (signed speed along the heading), `b = yaw rate`.
Measurements are `x, y, z, yaw, l, w, h`, plus the detector's `vx, vy` when available. Yaw innovations are wrapped to
(-pi, pi] and, as in AB3DMOT, a measured heading more than 90 deg off the prediction is flipped by pi first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numba
import numpy as np

from scenes.config import StrictConfig
from scenes.geometry import wrap_angle

MotionModel = Literal["cv", "ctrv"]
STATE_DIM = 10
POSE_DIM = 7
YAW = 3


class NoiseModel(StrictConfig):
    """Standard deviations: process (per second) and measurement."""

    acceleration_m_per_s2: float = 2.0
    yaw_acceleration_rad_per_s2: float = 1.0
    vertical_acceleration_m_per_s2: float = 0.5
    yaw_rate_rad_per_s: float = 0.3  # cv: random walk of the heading
    size_m: float = 0.02
    position_m: float = 0.3
    yaw_rad: float = 0.2
    measured_size_m: float = 0.2
    velocity_m_per_s: float = 1.0
    initial_velocity_m_per_s: float = 10.0


def _transition_cv(state: np.ndarray, dt: float) -> np.ndarray:
    out = state.copy()
    out[:, 0:3] += dt * state[:, 7:10]
    return out


def _transition_ctrv(state: np.ndarray, dt: float) -> np.ndarray:
    out = state.copy()
    yaw, speed, rate = state[:, 3], state[:, 7], state[:, 8]
    turning = np.abs(rate) > 1e-4
    safe_rate = np.where(turning, rate, 1.0)
    new_yaw = yaw + rate * dt
    dx_turn = speed / safe_rate * (np.sin(new_yaw) - np.sin(yaw))
    dy_turn = speed / safe_rate * (np.cos(yaw) - np.cos(new_yaw))
    out[:, 0] += np.where(turning, dx_turn, speed * np.cos(yaw) * dt)
    out[:, 1] += np.where(turning, dy_turn, speed * np.sin(yaw) * dt)
    out[:, 2] += state[:, 9] * dt
    out[:, 3] = new_yaw
    return out


def _bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched small matrix product without BLAS (whose threads only add overhead on 10x10 matrices)."""
    return np.einsum("tij,tjk->tik", a, b)


@numba.njit(cache=True, nogil=True)
def _batched_spd_inverse(matrices: np.ndarray) -> np.ndarray:
    """Inverses of symmetric positive-definite `(T, d, d)` matrices by Cholesky, in-process (LAPACK's threads cost
    far more than the arithmetic on 9x9 innovation covariances)."""
    count, d, _ = matrices.shape
    result = np.empty_like(matrices)
    lower = np.zeros((d, d))
    inv_lower = np.zeros((d, d))
    for t in range(count):
        lower[:] = 0.0
        for i in range(d):
            for j in range(i + 1):
                total = matrices[t, i, j]
                for k in range(j):
                    total -= lower[i, k] * lower[j, k]
                if i == j:
                    lower[i, i] = np.sqrt(total)
                else:
                    lower[i, j] = total / lower[j, j]
        inv_lower[:] = 0.0
        for i in range(d):
            inv_lower[i, i] = 1.0 / lower[i, i]
            for j in range(i):
                total = 0.0
                for k in range(j, i):
                    total -= lower[i, k] * inv_lower[k, j]
                inv_lower[i, j] = total / lower[i, i]
        for i in range(d):
            for j in range(d):
                total = 0.0
                for k in range(max(i, j), d):
                    total += inv_lower[k, i] * inv_lower[k, j]
                result[t, i, j] = total
    return result


def _numeric_jacobian(function: Callable[[np.ndarray], np.ndarray], state: np.ndarray, outputs: int, step: float = 1e-5) -> np.ndarray:
    """`(T, outputs, STATE_DIM)` central-difference Jacobian of a row-wise function."""
    jacobian = np.empty((state.shape[0], outputs, STATE_DIM))
    for k in range(STATE_DIM):
        delta = np.zeros(STATE_DIM)
        delta[k] = step
        jacobian[:, :, k] = (function(state + delta) - function(state - delta)) / (2 * step)
    return jacobian


def measurement_function(state: np.ndarray, model: MotionModel, with_velocity: bool) -> np.ndarray:
    """Expected measurement `(T, 7 | 9)` of each state."""
    pose = state[:, :POSE_DIM]
    if not with_velocity:
        return pose.copy()
    if model == "cv":
        velocity = state[:, 7:9]
    else:
        velocity = np.column_stack([state[:, 7] * np.cos(state[:, 3]), state[:, 7] * np.sin(state[:, 3])])
    return np.concatenate([pose, velocity], axis=1)


class BoxKalmanFilter:
    """State means `(T, 10)` and covariances `(T, 10, 10)` of T tracks, predicted and updated together."""

    def __init__(self, model: MotionModel, noise: NoiseModel) -> None:
        if model not in ("cv", "ctrv"):
            raise ValueError(f"BoxKalmanFilter: unknown motion model {model!r} (expected 'cv' or 'ctrv')")
        self.model: MotionModel = model
        self.noise = noise

    def initial_state(self, pose: np.ndarray, velocity_xy: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """States of new tracks from `(N, 7)` measured poses and optional `(N, 2)` measured velocities."""
        n = len(pose)
        state = np.zeros((n, STATE_DIM))
        state[:, :POSE_DIM] = pose
        noise = self.noise
        variance = np.array(
            [noise.position_m**2] * 3 + [noise.yaw_rad**2] + [noise.measured_size_m**2] * 3 + [noise.initial_velocity_m_per_s**2] * 3
        )
        if self.model == "ctrv":
            variance[8] = 1.0
        if velocity_xy is not None:
            if self.model == "cv":
                state[:, 7:9] = velocity_xy
                variance[7:9] = noise.velocity_m_per_s**2
            else:
                state[:, 7] = velocity_xy[:, 0] * np.cos(pose[:, 3]) + velocity_xy[:, 1] * np.sin(pose[:, 3])
                variance[7] = noise.velocity_m_per_s**2
        variance[9] = 1.0
        covariance = np.repeat(np.diag(variance)[None], n, axis=0)
        return state, covariance

    def process_noise(self, state: np.ndarray, dt: float) -> np.ndarray:
        """`(T, 10, 10)` discrete process noise for a step of `dt` seconds."""
        n = self.noise
        q = np.zeros((state.shape[0], STATE_DIM, STATE_DIM))
        size_var = (n.size_m**2) * dt
        for k in (4, 5, 6):
            q[:, k, k] = size_var
        if self.model == "cv":
            for position, velocity, sigma in ((0, 7, n.acceleration_m_per_s2), (1, 8, n.acceleration_m_per_s2), (2, 9, n.vertical_acceleration_m_per_s2)):
                q[:, position, position] = sigma**2 * dt**4 / 4
                q[:, position, velocity] = q[:, velocity, position] = sigma**2 * dt**3 / 2
                q[:, velocity, velocity] = sigma**2 * dt**2
            q[:, YAW, YAW] = (n.yaw_rate_rad_per_s * dt) ** 2
            return q
        yaw = state[:, 3]
        g = np.zeros((state.shape[0], STATE_DIM, 3))
        g[:, 0, 0] = 0.5 * dt**2 * np.cos(yaw)
        g[:, 1, 0] = 0.5 * dt**2 * np.sin(yaw)
        g[:, 7, 0] = dt
        g[:, 3, 1] = 0.5 * dt**2
        g[:, 8, 1] = dt
        g[:, 2, 2] = 0.5 * dt**2
        g[:, 9, 2] = dt
        acceleration_covariance = np.diag([n.acceleration_m_per_s2**2, n.yaw_acceleration_rad_per_s2**2, n.vertical_acceleration_m_per_s2**2])
        return q + np.einsum("tik,kl,tjl->tij", g, acceleration_covariance, g)

    def predict(self, state: np.ndarray, covariance: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """States and covariances `dt` seconds later."""
        if state.shape[0] == 0:
            return state, covariance
        if self.model == "cv":
            transition = np.eye(STATE_DIM)
            transition[0, 7] = transition[1, 8] = transition[2, 9] = dt
            predicted = _transition_cv(state, dt)
            jacobian = np.broadcast_to(transition, covariance.shape)
        else:
            predicted = _transition_ctrv(state, dt)
            jacobian = _numeric_jacobian(lambda s: _transition_ctrv(s, dt), state, STATE_DIM)
        q = self.process_noise(state, dt)
        new_covariance = _bmm(_bmm(jacobian, covariance), np.swapaxes(jacobian, 1, 2)) + q
        predicted[:, 3] = wrap_angle(predicted[:, 3])
        return predicted, new_covariance

    def measurement_noise(self, with_velocity: bool) -> np.ndarray:
        n = self.noise
        variance = [n.position_m**2] * 3 + [n.yaw_rad**2] + [n.measured_size_m**2] * 3
        if with_velocity:
            variance += [n.velocity_m_per_s**2] * 2
        return np.diag(variance)

    def update(
        self, state: np.ndarray, covariance: np.ndarray, measurement: np.ndarray, with_velocity: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior of `(M, 10)` states given their `(M, 7 | 9)` measurements (row i measures state i)."""
        if state.shape[0] == 0:
            return state, covariance
        measurement = measurement.copy()
        expected = measurement_function(state, self.model, with_velocity)
        difference = wrap_angle(measurement[:, YAW] - expected[:, YAW])
        flip = np.abs(difference) > np.pi / 2
        measurement[flip, YAW] = wrap_angle(measurement[flip, YAW] + np.pi)
        innovation = measurement - expected
        innovation[:, YAW] = wrap_angle(innovation[:, YAW])
        dim = expected.shape[1]
        if self.model == "cv" or not with_velocity:
            h = np.zeros((dim, STATE_DIM))
            h[np.arange(dim), [0, 1, 2, 3, 4, 5, 6, 7, 8][:dim]] = 1.0
            jacobian = np.broadcast_to(h, (state.shape[0], dim, STATE_DIM))
        else:
            jacobian = _numeric_jacobian(lambda s: measurement_function(s, self.model, True), state, dim)
        r = self.measurement_noise(with_velocity)
        cross = _bmm(covariance, np.swapaxes(jacobian, 1, 2))
        s = _bmm(jacobian, cross) + r
        gain = _bmm(cross, _batched_spd_inverse(np.ascontiguousarray(s)))
        posterior = state + np.einsum("tij,tj->ti", gain, innovation)
        posterior[:, 3] = wrap_angle(posterior[:, 3])
        identity = np.eye(STATE_DIM)[None]
        new_covariance = _bmm(identity - _bmm(gain, jacobian), covariance)
        new_covariance = 0.5 * (new_covariance + np.swapaxes(new_covariance, 1, 2))
        return posterior, new_covariance

    def velocity_xy(self, state: np.ndarray) -> np.ndarray:
        """`(T, 2)` city-frame velocity of each state."""
        if self.model == "cv":
            return state[:, 7:9].copy()
        return np.column_stack([state[:, 7] * np.cos(state[:, 3]), state[:, 7] * np.sin(state[:, 3])])
