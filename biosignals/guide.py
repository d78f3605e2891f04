"""The breath guide as the listener heard it, and how a breathing signal phase-locks to it.

``GuideHistory`` keeps the guide's unwrapped phase (cycles) for the last ``GUIDE_KEEP_S`` seconds from the
(rate, phase, time) the music reports as it plays, sampled at most every ``GUIDE_SAMPLE_S``; a phase that
jumps is unwrapped to the nearest cycle of the one predicted from the previous rate. ``CycleLocking``
demodulates a source's signal by that phase, one complex amplitude per guide cycle (``cycle_fits``), and gives
the phase-locking value and the signal's recent rate (``Locking``). Used by ``biosignals.breathing``.
"""
from __future__ import annotations

import bisect
import cmath
import math
from dataclasses import dataclass

import numpy as np

LOCKED_RATE_S = 20.0  # guide cycles (at least 2) behind the recent rate span about 20 s
GUIDE_KEEP_S = 70.0
GUIDE_SAMPLE_S = 0.25
MIN_CYCLE_SAMPLES = 5  # four parameters per cycle fit
_PRODUCT_PAIRS = ([0, 0, 0, 0, 1, 1, 2, 1, 2], [0, 1, 2, 3, 1, 2, 2, 3, 3])  # rows t c s y: tt tc ts ty cc cs ss cy sy


@dataclass(frozen=True, slots=True)
class Locking:
    """How a signal relates to the guide: phase-locking value 0-1 over the window, and the signal's rate
    (breaths/min) over its last guide cycles (about ``LOCKED_RATE_S``, at least 2): the guide's rate there corrected by the
    drift of the signal's phase against the guide's from cycle to cycle."""

    plv: float
    recent_rate_bpm: float


@dataclass(frozen=True, slots=True)
class _Cycle:
    """One guide cycle's least-squares complex amplitude and the first and last of its samples (time s, guide
    phase in cycles)."""

    amplitude: complex
    t_first: float
    u_first: float
    t_last: float
    u_last: float


def cycle_fits(grid: np.ndarray, signal: np.ndarray, guide_cycles: np.ndarray, first: int, end: int) -> list[_Cycle]:
    """One least-squares fit (cos, sin, offset and slope of the guide phase, so drift does not look locked) per
    guide cycle k in first..end-1, the samples whose unwrapped guide phase ``guide_cycles`` is in [k, k + 1)."""
    starts = np.searchsorted(guide_cycles, np.arange(first, end + 1)).tolist()  # the guide phase only grows
    lo, hi = starts[0], starts[-1]
    # Per cycle, sums of the columns (t, cos, sin, signal) and of their products give the normal equations
    # with the offset centred out and the slope projected out: a 2 x 2 system, in closed form per cycle.
    columns = np.empty((13, hi - lo))
    np.subtract(grid[lo:hi], grid[(lo + hi) // 2], out=columns[0])  # times near 0 keep the centred sums exact
    angle = (2.0 * math.pi) * guide_cycles[lo:hi]
    np.cos(angle, out=columns[1])
    np.sin(angle, out=columns[2])
    columns[3] = signal[lo:hi]
    np.multiply(columns[_PRODUCT_PAIRS[0]], columns[_PRODUCT_PAIRS[1]], out=columns[4:])
    fits, t, u = [], grid.tolist(), guide_cycles.tolist()
    sums = np.add.reduceat(columns, [k - lo for k in starts[:-1]], axis=1).T.tolist()
    for (st, sc, ss, sy, tt, tc, ts, ty, cc, cs, s2, cy, sy2), begin, stop in zip(sums, starts, starts[1:]):
        m = stop - begin
        if m < MIN_CYCLE_SAMPLES:  # a cycle cut by a gap: no fit
            fits.append(_Cycle(0j, t[begin], u[begin], t[stop - 1], u[stop - 1]))
            continue
        tt, tc, ts, ty = tt - st * st / m, tc - st * sc / m, ts - st * ss / m, ty - st * sy / m
        cc, cs, ss_, cy, sy_ = cc - sc * sc / m, cs - sc * ss / m, s2 - ss * ss / m, cy - sc * sy / m, sy2 - ss * sy / m
        cc, cs, ss_ = cc - tc * tc / tt, cs - tc * ts / tt, ss_ - ts * ts / tt
        cy, sy_ = cy - tc * ty / tt, sy_ - ts * ty / tt
        det = cc * ss_ - cs * cs
        # = R exp(-i lag): the lag grows each cycle when the signal is slower
        amplitude = complex(cy * ss_ - sy_ * cs, -(sy_ * cc - cy * cs)) / det if det > 0 else 0j
        fits.append(_Cycle(amplitude, t[begin], u[begin], t[stop - 1], u[stop - 1]))
    return fits


class CycleLocking:
    """How one source's breathing signal phase-locks to the guide, kept cycle by cycle as the window slides.

    A guide cycle k runs from guide phase k to k + 1 (inhale start to inhale start). Each cycle gets its fit
    (``cycle_fits``) once, on the first update where it lies wholly inside the source's window, and keeps it
    while it stays inside: a streaming phase locking whose cost per update is that of the new cycles only.
    ``update`` gives the ``Locking`` over the cycles inside the window: PLV = |sum of amplitudes| / sum of
    their magnitudes; the recent rate from the last cycles (about ``LOCKED_RATE_S``, at least 2)."""

    def __init__(self) -> None:
        self._cycles: dict[int, _Cycle] = {}
        self._epoch: int | None = None
        self._last: tuple[int, int, Locking | None] | None = None  # (first, end, locking): the same cycles, the same answer

    def update(self, grid: np.ndarray, signal: np.ndarray, guide: GuideHistory,
               window_phases: tuple[float | None, float | None] | None = None) -> Locking | None:
        """The locking of ``signal`` (on ``grid``, s) to the guide; None with fewer than 2 complete cycles.
        ``window_phases``: the guide's ``phase_at`` the first and last grid times, when the caller has them."""
        if guide.epoch != self._epoch:
            self._cycles.clear()
            self._epoch = guide.epoch
            self._last = None
        window_first, window_last = window_phases or (guide.phase_at(float(grid[0])), guide.phase_at(float(grid[-1])))
        if window_first is None:
            return None
        first, end = math.ceil(window_first), math.floor(window_last)  # complete cycles: first..end-1
        if self._last is not None and self._last[:2] == (first, end):
            return self._last[2]
        locking = self._locking(grid, signal, guide, first, end)
        self._last = first, end, locking
        return locking

    def _locking(self, grid: np.ndarray, signal: np.ndarray, guide: GuideHistory, first: int, end: int) -> Locking | None:
        """The locking over the complete cycles first..end-1, fitting those not fitted yet."""
        self._cycles = {k: c for k, c in self._cycles.items() if first <= k < end}
        new_from = max(self._cycles, default=first - 1) + 1
        if new_from < end:
            lo = int(np.searchsorted(grid, guide.time_at(new_from)))
            hi = int(np.searchsorted(grid, guide.time_at(end), side="right"))
            fits = cycle_fits(grid[lo:hi], signal[lo:hi], guide.cycles_at(grid[lo:hi]), new_from, end)
            self._cycles.update(zip(range(new_from, end), fits))
        cycles = [self._cycles[k] for k in sorted(self._cycles)]
        if len(cycles) < 2:
            return None
        amplitudes = [c.amplitude for c in cycles]
        magnitude = sum(abs(a) for a in amplitudes)
        plv = abs(sum(amplitudes)) / magnitude if magnitude > 0 else 0.0
        window_rate = 60.0 * (cycles[-1].u_last - cycles[0].u_first) / (cycles[-1].t_last - cycles[0].t_first)
        recent = cycles[-max(2, round(LOCKED_RATE_S * window_rate / 60.0)):]
        guide_rate = 60.0 * (recent[-1].u_last - recent[0].u_first) / (recent[-1].t_last - recent[0].t_first)
        turning = sum(a.amplitude.conjugate() * b.amplitude for a, b in zip(recent[:-1], recent[1:]))
        drift = cmath.phase(turning) / (2.0 * math.pi)  # cycles per guide cycle
        return Locking(plv, guide_rate * (1.0 + drift))


class GuideHistory:
    """The breath guide the listener heard: feed ``set(rate, phase, t)`` as it plays (any rate of calls);
    ``phase_at(t)`` and ``cycles_at(times)`` give its unwrapped phase (cycles) there, None where it does not
    cover them."""

    def __init__(self) -> None:
        self.epoch = 0  # counts the times the guide started: its cycle numbers restart then
        self._clear()

    def _clear(self) -> None:
        # the kept samples are [_start:] of three plain lists: the tracker asks a few scalars per source and
        # update, which bisect answers without an array call
        self._t: list[float] = []
        self._cycles: list[float] = []
        self._rates: list[float] = []
        self._start = 0
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None  # (times, cycles) kept, made when first asked
        self.rate_bpm: float | None = None

    def set(self, rate_bpm: float | None, phase: float | None, t: float) -> None:
        """The guide at host time ``t`` (s): rate (breaths/min) and phase (0-1, 0 = start of inhale); None = no guide."""
        if rate_bpm is None or phase is None:
            if self.rate_bpm is not None:
                self._clear()
            return
        if len(self._t) > self._start:
            last_t, last_cycles = self._t[-1], self._cycles[-1]
            if t - last_t < GUIDE_SAMPLE_S and rate_bpm == self.rate_bpm:
                return
            predicted = last_cycles + (self.rate_bpm or rate_bpm) / 60.0 * (t - last_t)
            cycles = predicted + ((phase - predicted + 0.5) % 1.0 - 0.5)
        else:
            cycles = float(phase)
            self.epoch += 1
        self._t.append(t)
        self._cycles.append(cycles)
        self._rates.append(rate_bpm)
        self._arrays = None
        self.rate_bpm = rate_bpm
        while self._t[self._start] < t - GUIDE_KEEP_S:
            self._start += 1
        if self._start > len(self._t) // 2:
            for kept in (self._t, self._cycles, self._rates):
                del kept[:self._start]
            self._start = 0

    def rate_range(self, since_s: float) -> tuple[float, float]:
        """Slowest and fastest guide rate (breaths/min) played since host time ``since_s``."""
        rates = self._rates[bisect.bisect_left(self._t, since_s, self._start):]
        return (min(rates), max(rates)) if rates else (self.rate_bpm, self.rate_bpm)

    def phase_at(self, t: float) -> float | None:
        """Unwrapped guide phase (cycles) at host time ``t`` (s), extrapolated at the current rate past the last
        call; None when the guide started after t."""
        if len(self._t) == self._start or self._t[self._start] > t or self.rate_bpm is None:
            return None
        i = bisect.bisect_right(self._t, t, self._start) - 1
        if i == len(self._t) - 1:
            return self._cycles[i] + self.rate_bpm / 60.0 * (t - self._t[i])
        slope = (self._cycles[i + 1] - self._cycles[i]) / (self._t[i + 1] - self._t[i])
        return slope * (t - self._t[i]) + self._cycles[i]

    def cycles_at(self, times: np.ndarray) -> np.ndarray | None:
        """``phase_at`` at each of ``times`` (s, increasing); None when the guide started after ``times[0]``."""
        if self.phase_at(float(times[0])) is None:
            return None
        if self._arrays is None:
            self._arrays = np.array(self._t[self._start:]), np.array(self._cycles[self._start:])
        t, cycles = self._arrays
        inside = np.interp(times, t, cycles)
        last_t = self._t[-1]
        if times[-1] > last_t:
            after = int(np.searchsorted(times, last_t, side="right"))
            inside[after:] = self._cycles[-1] + self.rate_bpm / 60.0 * (times[after:] - last_t)
        return inside

    def time_at(self, cycles: float) -> float:
        """Host time (s) at which the guide's unwrapped phase reached ``cycles`` (it only grows), extrapolated at
        the current rate past the last call."""
        i = bisect.bisect_right(self._cycles, cycles, self._start) - 1
        if i == len(self._cycles) - 1:
            return self._t[i] + (cycles - self._cycles[i]) * 60.0 / self.rate_bpm
        i = max(i, self._start)
        slope = (self._t[i + 1] - self._t[i]) / (self._cycles[i + 1] - self._cycles[i])
        return slope * (cycles - self._cycles[i]) + self._t[i]
