"""Breathing signals from three sources (RR intervals, ECG R-peak amplitude, chest ACC), each on one 4 Hz time grid.

Every source becomes a ``BreathSeries``: the last ``WINDOW_S`` = 60 s of a signal evenly sampled at
``GRID_HZ`` = 4 Hz, ending at the newest sample, so the breathing tracker (``biosignals.breathing``) can analyse
all of them the same way.

- RR (``rr_series``): heart rate rises on inhale (respiratory sinus arrhythmia). Beats are placed on their RR
  time axis (cumulative RR anchored at the least-delayed arrival, so notification jitter does not enter) and
  negated RR is linearly interpolated. Polarity known: the signal rises on inhale. Ectopic beats are corrected
  before (``biosignals.artifacts``, in the estimator), so they never reach a spectrum.
- ECG (``edr_series``): the R-peak amplitude (ECG-derived respiration) changes with the chest's impedance and
  heart axis over each breath; amplitudes at the beat times, linearly interpolated. Polarity unknown (learnt by
  the tracker against RR).
- ACC (``AccRespiration``, streaming): 200 Hz samples are block-averaged to 10 Hz (the block mean is stamped at
  the block's centre, so it adds no delay); gravity is removed by subtracting a first-order low-pass (time
  constant ``GRAVITY_TAU_S`` = 20 s; its phase lead atan(1 / (2 pi f tau)) is carried in
  ``BreathSeries.lead_tau_s`` and taken out of the phase); the dynamic part is projected on its principal axis
  (largest eigenvector of its 3x3 covariance over the window, sign fixed so its largest component is positive)
  and interpolated onto the 4 Hz grid. Polarity unknown.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

WINDOW_S = 60.0
MIN_SPAN_S = 20.0
GRID_HZ = 4.0
ACC_RATE_HZ = 10.0  # after block averaging
GRAVITY_TAU_S = 20.0
MIN_POINTS = 10


@dataclass(frozen=True, slots=True)
class BreathSeries:
    """One source's breathing signal on an even grid: ``grid`` (s, step 1 / ``GRID_HZ``) and ``signal`` (any unit).

    ``polarity_known``: True when the signal is known to rise on inhale (RR); otherwise the tracker learns it.
    ``lead_tau_s``: time constant of a first-order high-pass the signal went through (its phase lead is removed
    from the breath phase), None when none.
    """

    source: str
    grid: np.ndarray
    signal: np.ndarray
    polarity_known: bool = False
    lead_tau_s: float | None = None


def _even_series(source: str, times_s: np.ndarray, values: np.ndarray, **kwargs) -> BreathSeries | None:
    """``values`` at ``times_s`` linearly interpolated on the 4 Hz grid ending at the last time; None under 20 s."""
    if len(times_s) < MIN_POINTS or times_s[-1] - times_s[0] < MIN_SPAN_S:
        return None
    start = max(times_s[0], times_s[-1] - WINDOW_S)
    n = int(math.floor((times_s[-1] - start) * GRID_HZ)) + 1
    grid = times_s[-1] - np.arange(n - 1, -1, -1) / GRID_HZ
    return BreathSeries(source, grid, np.interp(grid, times_s, values), **kwargs)


def rr_time_axis(arrival_times_s: np.ndarray, rr_ms: np.ndarray) -> np.ndarray:
    """Beat end times (s) on the RR axis: cumulative RR, anchored at the beat whose arrival was least delayed."""
    elapsed = np.cumsum(rr_ms) / 1000.0
    return elapsed + np.min(np.asarray(arrival_times_s) - elapsed)


def rr_series(beat_times_s: np.ndarray, rr_ms: np.ndarray) -> BreathSeries | None:
    """Negated RR (ms) of clean beats at their RR-axis times (s): rises on inhale."""
    return _even_series("rr", np.asarray(beat_times_s), -np.asarray(rr_ms, dtype=float), polarity_known=True)


def edr_series(peak_times_s: np.ndarray, amplitudes: np.ndarray) -> BreathSeries | None:
    """R-peak amplitudes (any unit) at their times (s); polarity unknown."""
    return _even_series("ecg", np.asarray(peak_times_s), np.asarray(amplitudes, dtype=float))


class AccRespiration:
    """Streaming chest-ACC breathing: feed (n, 3) samples in mg with their times (s); ask ``series()``.

    State carried across chunks: the partial averaging block, the gravity low-pass state and a 60 s ring of
    the 10 Hz dynamic signal. Per chunk cost is O(chunk); ``series`` is O(window).
    """

    def __init__(self, sample_rate_hz: float = 200.0) -> None:
        if sample_rate_hz < 2 * ACC_RATE_HZ:
            raise ValueError(f"ACC rate {sample_rate_hz} Hz is below {2 * ACC_RATE_HZ} Hz: use the H10's 25-200 Hz")
        self.block = max(1, round(sample_rate_hz / ACC_RATE_HZ))
        self._pending = np.empty((0, 4))  # (t, x, y, z) not yet a full block
        self._alpha = math.exp(-1.0 / (ACC_RATE_HZ * GRAVITY_TAU_S))
        self._gravity_zi: np.ndarray | None = None
        capacity = int(WINDOW_S * ACC_RATE_HZ)
        self._times: collections.deque[float] = collections.deque(maxlen=capacity)
        self._dynamic: collections.deque[np.ndarray] = collections.deque(maxlen=capacity)
        self._ranges: collections.deque[np.ndarray] = collections.deque(maxlen=int(5 * ACC_RATE_HZ))

    def reset(self) -> None:
        """Forget everything (after a gap in the stream)."""
        self.__init__(self.block * ACC_RATE_HZ)

    def add(self, samples_mg: np.ndarray, times_s: np.ndarray) -> None:
        """Add ACC samples: ``samples_mg`` shape (n, 3), ``times_s`` shape (n,), increasing."""
        samples = np.asarray(samples_mg, dtype=float)
        if samples.ndim != 2 or samples.shape[1] != 3 or len(samples) != len(times_s):
            raise ValueError(f"ACC samples must be (n, 3) mg with n times, got {samples.shape} and {len(times_s)} times")
        rows = np.concatenate([self._pending, np.column_stack([times_s, samples])])
        n_blocks = len(rows) // self.block
        self._pending = rows[n_blocks * self.block:]
        if n_blocks == 0:
            return
        blocks = rows[:n_blocks * self.block].reshape(n_blocks, self.block, 4)
        means = blocks.mean(axis=1)
        ranges = np.ptp(blocks[:, :, 1:], axis=1)
        if self._gravity_zi is None:
            self._gravity_zi = self._alpha * means[0, 1:]
        a = self._alpha
        gravity, zf = lfilter([1.0 - a], [1.0, -a], means[:, 1:], axis=0, zi=self._gravity_zi[None, :])
        self._gravity_zi = zf[0]
        dynamic = means[:, 1:] - gravity
        self._times.extend(means[:, 0])
        self._dynamic.extend(dynamic)
        self._ranges.extend(ranges)

    def stuck_axes(self) -> tuple[int, ...]:
        """Axes (0 = x, 1 = y, 2 = z) that did not change at all over the last 5 s while another did."""
        if len(self._ranges) < self._ranges.maxlen:
            return ()
        moved = np.asarray(self._ranges).max(axis=0) > 0
        return tuple(int(i) for i in np.flatnonzero(~moved)) if moved.any() else ()

    def series(self, stuck: tuple[int, ...] = ()) -> BreathSeries | None:
        """The last 60 s of chest movement on its principal axis, ignoring ``stuck`` axes; None under 20 s."""
        if len(self._times) < MIN_SPAN_S * ACC_RATE_HZ:
            return None
        dynamic = np.asarray(self._dynamic)
        if stuck:
            dynamic[:, list(stuck)] = 0.0
        _, vectors = np.linalg.eigh(np.cov(dynamic.T))
        axis = vectors[:, -1]
        axis = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
        return _even_series("acc", np.asarray(self._times), dynamic @ axis, lead_tau_s=GRAVITY_TAU_S)
