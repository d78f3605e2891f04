"""The breath guide as the listener heard it, and how a breathing signal phase-locks to it.

``GuideHistory`` keeps the guide's unwrapped phase (cycles) for the last ``GUIDE_KEEP_S`` seconds from the
(rate, phase, time) the music reports as it plays, sampled at most every ``GUIDE_SAMPLE_S``; a phase that
jumps is unwrapped to the nearest cycle of the one predicted from the previous rate. ``phase_locking``
demodulates a signal by that phase, one complex amplitude per guide cycle, and gives the phase-locking
value and the signal's recent rate (``Locking``). Used by ``biosignals.breathing``.
"""
from __future__ import annotations

import cmath
import collections
import math
from dataclasses import dataclass

import numpy as np

LOCKED_RATE_S = 20.0  # guide cycles (at least 2) behind the recent rate span about 20 s
GUIDE_KEEP_S = 70.0
GUIDE_SAMPLE_S = 0.25
_PRODUCT_PAIRS = ([0, 0, 0, 0, 1, 1, 2, 1, 2], [0, 1, 2, 3, 1, 2, 2, 3, 3])  # rows t c s y: tt tc ts ty cc cs ss cy sy


@dataclass(frozen=True, slots=True)
class Locking:
    """How a signal relates to the guide: phase-locking value 0-1 over the window, and the signal's rate
    (breaths/min) over its last guide cycles (about ``LOCKED_RATE_S``, at least 2): the guide's rate there corrected by the
    drift of the signal's phase against the guide's from cycle to cycle."""

    plv: float
    recent_rate_bpm: float


def phase_locking(grid: np.ndarray, signal: np.ndarray, guide_cycles: np.ndarray) -> Locking | None:
    """How ``signal`` locks to a guide whose unwrapped phase (cycles) at ``grid`` is given: one least-squares
    complex amplitude per complete guide cycle (cos, sin, offset and slope, so drift does not look locked),
    PLV = |sum| / sum of magnitudes. None with fewer than 2 complete cycles."""
    cycle = np.floor(guide_cycles - guide_cycles[0]).astype(int)
    complete = cycle < cycle[-1]
    if cycle[-1] < 2:
        return None
    cycle, t, u, x = cycle[complete], grid[complete], guide_cycles[complete], signal[complete]
    edges = np.concatenate([[0], np.flatnonzero(cycle[1:] != cycle[:-1]) + 1, [len(t)]])
    starts, lengths = edges[:-1], np.diff(edges)
    angle = 2.0 * math.pi * u
    # Per cycle, centring the columns (t, cos, sin, signal) takes the offset out of the normal equations and
    # projecting out the (centred) slope leaves a 2 x 2 system: closed forms over all cycles at once.
    columns = np.stack([t, np.cos(angle), np.sin(angle), x])
    centred = columns - np.repeat(np.add.reduceat(columns, starts, axis=1) / lengths, lengths, axis=1)
    left, right = _PRODUCT_PAIRS
    tt, tc, ts, ty, cc, cs, ss, cy, sy = np.add.reduceat(centred[left] * centred[right], starts, axis=1)
    cc, cs, ss = cc - tc * tc / tt, cs - tc * ts / tt, ss - ts * ts / tt
    cy, sy = cy - tc * ty / tt, sy - ts * ty / tt
    det = cc * ss - cs * cs
    amplitudes = ((cy * ss - sy * cs) - 1j * (sy * cc - cy * cs)) / det  # = R exp(-i lag): the lag grows each
    magnitude = np.abs(amplitudes).sum()                                  # cycle when the signal is slower
    plv = float(abs(amplitudes.sum()) / magnitude) if magnitude > 0 else 0.0
    t, u = t.tolist(), u.tolist()
    window_rate = 60.0 * (u[-1] - u[0]) / (t[-1] - t[0])
    recent = amplitudes[-max(2, round(LOCKED_RATE_S * window_rate / 60.0)):]
    first = int(starts[-len(recent)])
    guide_rate = 60.0 * (u[-1] - u[first]) / (t[-1] - t[first])
    drift = cmath.phase(np.vdot(recent[:-1], recent[1:])) / (2.0 * math.pi)  # cycles per guide cycle
    return Locking(plv, guide_rate * (1.0 + drift))


class GuideHistory:
    """The breath guide the listener heard: feed ``set(rate, phase, t)`` as it plays (any rate of calls);
    ``cycles_at(times)`` gives its unwrapped phase (cycles) there, None where it does not cover them."""

    def __init__(self) -> None:
        self._t: collections.deque[float] = collections.deque()
        self._cycles: collections.deque[float] = collections.deque()
        self._rates: collections.deque[float] = collections.deque()
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _as_arrays
        self.rate_bpm: float | None = None

    def set(self, rate_bpm: float | None, phase: float | None, t: float) -> None:
        """The guide at host time ``t`` (s): rate (breaths/min) and phase (0-1, 0 = start of inhale); None = no guide."""
        if rate_bpm is None or phase is None:
            self._t.clear()
            self._cycles.clear()
            self._rates.clear()
            self._arrays = None
            self.rate_bpm = None
            return
        if self._t and t - self._t[-1] < GUIDE_SAMPLE_S and rate_bpm == self.rate_bpm:
            return
        if self._t:
            predicted = self._cycles[-1] + (self.rate_bpm or rate_bpm) / 60.0 * (t - self._t[-1])
            cycles = predicted + ((phase - predicted + 0.5) % 1.0 - 0.5)
        else:
            cycles = float(phase)
        self._t.append(t)
        self._cycles.append(cycles)
        self._rates.append(rate_bpm)
        self._arrays = None
        self.rate_bpm = rate_bpm
        while self._t[0] < t - GUIDE_KEEP_S:
            self._t.popleft()
            self._cycles.popleft()
            self._rates.popleft()

    def rate_range(self, since_s: float) -> tuple[float, float]:
        """Slowest and fastest guide rate (breaths/min) played since host time ``since_s``."""
        t, _, rates = self._as_arrays()
        rates = rates[t >= since_s]
        return (float(rates.min()), float(rates.max())) if len(rates) else (self.rate_bpm, self.rate_bpm)

    def cycles_at(self, times: np.ndarray) -> np.ndarray | None:
        """Unwrapped guide phase (cycles) at ``times`` (s), extrapolated at the current rate past the last call;
        None when the guide started after ``times[0]``."""
        if not self._t or self._t[0] > times[0] or self.rate_bpm is None:
            return None
        t, cycles, _ = self._as_arrays()
        inside = np.interp(times, t, cycles)
        after = times > t[-1]
        inside[after] = cycles[-1] + self.rate_bpm / 60.0 * (times[after] - t[-1])
        return inside

    def _as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, cycles, rates) as arrays, converted once per change: every source asks on every beat
        (``np.fromiter`` with the length known converts a deque about twice as fast as ``np.asarray``)."""
        if self._arrays is None:
            self._arrays = tuple(np.fromiter(v, float, len(v)) for v in (self._t, self._cycles, self._rates))
        return self._arrays
