"""Sensor-clock alignment for a Polar H10: map PMD sensor time to host time with drift correction, and align
Heart Rate Measurement beats to the ECG's R peaks.

Sensor time and host time are kept apart: PMD frames carry the strap's own clock (s since 2000-01-01, which
runs fast or slow by tens of ppm), notifications carry only their host arrival time (s, monotonic).

``SensorClock``: host = offset + (1 + skew) * (sensor - reference). BLE only ever adds delay, so the
least-delayed frames tell the map: every frame gives a pair (sensor time of its last sample, arrival time);
per ``window_s`` (10 s) of sensor time only the pair with the smallest ``arrival - sensor`` is kept, for the
last ``history_s`` (5 min). The map is the lower envelope of those minima (Moon, Skelly & Towsley 1999):
of the lower convex hull of the points (sensor, arrival - sensor), the edge over the points' mean sensor
time, i.e. the line below every minimum that is closest to them on average. So mapped times never lie
after their arrival, and the remaining bias is the link's minimum delay (a few ms), which no one-way
method can see. Until the minima span ``min_fit_span_s`` (30 s) the skew of the previous fit (0 at
first) is assumed and only the offset is taken from the minima. ``reset()`` (a dropped link, a restarted
stream) forgets the points but keeps the skew; a sensor-time step that puts a frame more than
``max_step_s`` (2 s) off the map resets by itself.

``BeatAligner``: back-dating puts a packet's last beat on the packet's arrival, up to one packet
interval (~1 s) after the real beat. The strap's RR intervals, however, form an unbroken chain: the
chain time of a beat is the sum of the RRs since the chain began (a gap starts a new chain), and real
beat time = chain time + one constant offset. The offset is learned from ECG R peaks (host times via the
``SensorClock``): to lock, every pairing of a recent beat with an R peak up to ``max_lag_s`` before its
back-dated time proposes an offset; it is taken when it puts at least ``min_matches`` beats within
``tolerance_s`` (20 ms) of an R peak and every clearly different offset (one beat off, say) matches at
least 2 beats fewer. Once locked, each later matched beat adds its residual (R peak - chain time) and the
offset is the mean of the last ``offset_beats`` (8) residuals, which averages out the 7.7 ms sample
grid of 130 Hz ECG. ``rr_raw`` stays as the strap sent it; only ``t`` changes.

Latency trade-off: beats are never held back. An R peak is confirmed 0.3-0.9 s after it happened (the
ECG frame length plus the detector), often after the Heart Rate Measurement carrying the same beat; a
locked aligner does not need that beat's own R peak, it places the beat by its chain time at once, so
alignment costs no latency. Before the lock (the first ~5-10 s of ECG and after every gap) beats keep
their back-dated times. Ten beats in a row whose R peak should have been seen but was not drop the lock.
Beat times stay strictly increasing (1 ms apart at least) across a lock or unlock.
"""
from __future__ import annotations

import collections
import dataclasses
import math

import numpy as np

from biosignals.types import RR_UNITS_PER_SECOND, Beat

MIN_STEP_S = 0.001  # same spacing rule as the back-dater: beat times strictly increase
MAX_SKEW = 1e-3  # a fit steeper than 1000 ppm is not a crystal, it is a broken pairing; keep the prior


class SensorClock:
    """Online map from sensor time (s since 2000-01-01) to host time (s); feed ``add`` every PMD frame."""

    def __init__(self, window_s: float = 10.0, history_s: float = 300.0, min_fit_span_s: float = 30.0,
                 max_step_s: float = 2.0) -> None:
        self.window_s = window_s
        self.history_s = history_s
        self.min_fit_span_s = min_fit_span_s
        self.max_step_s = max_step_s
        self.skew = 0.0  # host seconds per sensor second, minus 1
        self.resets = 0
        self._reference: float | None = None
        self._minima: dict[int, tuple[float, float]] = {}  # window index -> (sensor - reference, arrival - sensor)
        self._offset = 0.0

    @property
    def sensor_drift_ppm(self) -> float:
        """How fast the sensor clock runs against the host clock, ppm (+40 = 40 µs per s fast)."""
        return (1.0 / (1.0 + self.skew) - 1.0) * 1e6

    @property
    def ready(self) -> bool:
        """True once at least one frame has been paired with its arrival."""
        return self._reference is not None

    def reset(self) -> None:
        """Forget the pairs (after a dropped link or a restarted stream); the skew stays as the prior."""
        self._reference = None
        self._minima.clear()
        self.resets += 1

    def add(self, sensor_s: float, arrival_s: float) -> None:
        """Pair the sensor time of a frame's last sample with the frame's host arrival time (both s)."""
        if self._reference is not None and abs(arrival_s - float(self.to_host(sensor_s))) > self.max_step_s:
            self.reset()
        if self._reference is None:
            self._reference = sensor_s
        x = sensor_s - self._reference
        y = arrival_s - x
        window = math.floor(x / self.window_s)
        if window not in self._minima or y < self._minima[window][1]:
            self._minima[window] = (x, y)
        oldest = math.floor((x - self.history_s) / self.window_s)
        for stale in [w for w in self._minima if w < oldest]:
            del self._minima[stale]
        self._fit()

    def to_host(self, sensor_s: float | np.ndarray) -> float | np.ndarray:
        """Host time (s) of sensor time(s) ``sensor_s`` (s since 2000-01-01); call ``add`` first."""
        if self._reference is None:
            raise RuntimeError("SensorClock has no frame yet: add(sensor_s, arrival_s) before mapping")
        return self._offset + (1.0 + self.skew) * (np.asarray(sensor_s, dtype=float) - self._reference)

    def _fit(self) -> None:
        points = sorted(self._minima.values())
        xs = np.array([p[0] for p in points])
        ys = np.array([p[1] for p in points])
        if xs[-1] - xs[0] >= self.min_fit_span_s:
            hull = _lower_hull(points)
            mean_x = float(xs.mean())
            for (x0, y0), (x1, y1) in zip(hull, hull[1:]):
                if x0 <= mean_x <= x1:
                    slope = (y1 - y0) / (x1 - x0)
                    if abs(slope) < MAX_SKEW:
                        self.skew = slope
                    break
        self._offset = float(np.min(ys - self.skew * xs))


def _lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (monotone chain)."""
    hull: list[tuple[float, float]] = []
    for p in points:
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                break
            hull.pop()
        hull.append(p)
    return hull


@dataclasses.dataclass(slots=True)
class _ChainBeat:
    chain_s: float  # sum of RR since the chain began (s)
    backdated_s: float  # host time from back-dating (s)
    matched: bool = False


class BeatAligner:
    """Moves back-dated beats onto the ECG's R peaks (see the module docstring); feed beats and R peaks in order."""

    def __init__(self, tolerance_s: float = 0.02, max_lag_s: float = 2.0, min_matches: int = 4,
                 offset_beats: int = 8, max_misses: int = 10) -> None:
        self.tolerance_s = tolerance_s
        self.max_lag_s = max_lag_s
        self.min_matches = min_matches
        self.max_misses = max_misses
        self.locks = 0
        self._beats: collections.deque[_ChainBeat] = collections.deque(maxlen=24)
        self._peaks: collections.deque[float] = collections.deque(maxlen=32)
        self._residuals: collections.deque[float] = collections.deque(maxlen=offset_beats)
        self._chain_s = 0.0
        self._misses = 0
        self._last_t: float | None = None

    @property
    def locked(self) -> bool:
        """True while beats are being placed on the R-peak timeline."""
        return bool(self._residuals)

    def reset(self) -> None:
        """Forget the chain, the R peaks and the lock (after a dropped link)."""
        self._beats.clear()
        self._peaks.clear()
        self._residuals.clear()
        self._misses = 0

    def add_r_peaks(self, times_s: list[float]) -> None:
        """R-peak host times (s), in order, as the detector confirms them."""
        self._peaks.extend(times_s)
        if times_s:
            self._match()

    def align(self, beat: Beat) -> Beat:
        """The beat with ``t`` on the R-peak timeline when locked, else unchanged; ``rr_raw`` is never touched."""
        if beat.after_gap or not self._beats:
            self._beats.clear()
            self._residuals.clear()
            self._chain_s = 0.0
        else:
            self._chain_s += beat.rr_raw / RR_UNITS_PER_SECOND
        self._beats.append(_ChainBeat(self._chain_s, beat.t))
        self._match()
        t = self._chain_s + self.offset_s if self.locked else beat.t
        if self._last_t is not None:
            t = max(t, self._last_t + MIN_STEP_S)
        self._last_t = t
        return beat if t == beat.t else dataclasses.replace(beat, t=t)

    @property
    def offset_s(self) -> float:
        """Host time of chain time 0 (s): the mean residual of the recent matched beats."""
        return float(np.mean(self._residuals))

    def _nearest_peak(self, t: float, peaks: np.ndarray) -> float | None:
        if len(peaks) == 0:
            return None
        i = int(np.argmin(np.abs(peaks - t)))
        return float(peaks[i]) if abs(peaks[i] - t) <= self.tolerance_s else None

    def _match(self) -> None:
        peaks = np.asarray(self._peaks)
        if len(peaks) == 0 or not self._beats:
            return
        if not self.locked:
            self._acquire(peaks)
            return
        for beat in self._beats:
            if beat.matched:
                continue
            predicted = beat.chain_s + self.offset_s
            peak = self._nearest_peak(predicted, peaks)
            if peak is not None:
                beat.matched = True
                self._residuals.append(peak - beat.chain_s)
                self._misses = 0
            elif predicted < peaks[-1] - self.tolerance_s:  # its peak would have been confirmed by now
                beat.matched = True  # counted once
                self._misses += 1
                if self._misses >= self.max_misses:
                    self._residuals.clear()
                    self._misses = 0
                    return

    def _acquire(self, peaks: np.ndarray) -> None:
        chain = np.array([b.chain_s for b in self._beats])
        candidates = sorted(
            p - b.chain_s for b in self._beats for p in peaks if -self.tolerance_s <= b.backdated_s - p <= self.max_lag_s
        )
        scored = []
        for offset in candidates:
            hits = [self._nearest_peak(c + offset, peaks) for c in chain]
            scored.append((sum(h is not None for h in hits), offset, hits))
        if not scored:
            return
        best_count, best_offset, best_hits = max(scored, key=lambda s: s[0])
        rivals = [count for count, offset, _ in scored if abs(offset - best_offset) > 2 * self.tolerance_s]
        if best_count < self.min_matches or (rivals and max(rivals) > best_count - 2):
            return
        for beat, hit in zip(self._beats, best_hits):
            if hit is not None:
                beat.matched = True
                self._residuals.append(hit - beat.chain_s)
        self.locks += 1
