"""Breathing rate and breath phase from three signals (RR intervals, chest ACC, ECG R-peak amplitude) and their fusion.

Every source ends in the same spectral step, ``breathing_from_series``, on an evenly sampled window (the last
``WINDOW_S`` = 60 s): linear detrend, Hann window, periodogram zero-padded to >= 1024 points, highest peak in
``BAND_HZ`` = 0.05-0.5 Hz (3-30 breaths/min, so slow paced breathing at 4-6/min is inside; the usual 0.1/0.15 Hz
lower edges would cut it off), refined by parabolic interpolation of the log power. None when the window
holds fewer than 2 cycles of the peak. ``confidence`` = share of the in-band power within the peak's main lobe
(+-2 / window length Hz): near 1 for a clean rhythm, 0.2-0.45 for noise. The phase comes from a least-squares
sinusoid at the peak frequency over the last two breath periods (no filter, so no filter delay), 0 at its
trough = start of inhale.

- RR (``rsp_from_rr``): heart rate rises on inhale (respiratory sinus arrhythmia). Beats are placed on their RR
  time axis (cumulative RR anchored at the least-delayed arrival, so notification jitter does not enter) and
  negated RR is linearly interpolated at 4 Hz. Polarity known: HR trough = start of inhale.
- ACC (``AccRespiration``, streaming): 200 Hz samples are block-averaged to 10 Hz (the block mean is stamped at
  the block's centre, so it adds no delay); gravity is removed by subtracting a first-order low-pass
  (time constant ``GRAVITY_TAU_S`` = 20 s, its phase lead atan(1 / (2 pi f tau)) is taken out of the phase);
  the dynamic part is projected on its principal axis (largest eigenvector of its 3x3 covariance over the
  window, sign fixed so its largest component is positive). Polarity (does the projection rise on inhale?) is
  learnt from the RR phase when both are confident (``Fusion``); until then +1.
- ECG (``rsp_from_edr``): the R-peak amplitude (ECG-derived respiration) changes with the chest's impedance
  and heart axis over each breath; amplitudes at the beat times, linearly interpolated at 4 Hz. Polarity is
  learnt like ACC's.

``fuse_breathing`` combines sources: sources whose rate is within ``AGREE_BPM`` of the most trusted one
(highest confidence x weight) are averaged with weights confidence x ``SOURCE_WEIGHT``; the phase is their
weighted circular mean, and ``phase_confidence`` = resultant length x the fused confidence.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

BAND_HZ = (0.05, 0.5)
WINDOW_S = 60.0
MIN_SPAN_S = 20.0
MIN_N_FFT = 1024
RR_RESAMPLE_HZ = 4.0
ACC_RATE_HZ = 10.0  # after block averaging
GRAVITY_TAU_S = 20.0
AGREE_BPM = 2.0
SOURCE_WEIGHT = {"acc": 1.0, "rr": 0.8, "ecg": 0.6}  # chest motion is breathing itself; RSA and EDR are its echoes


@dataclass(frozen=True, slots=True)
class BreathingEstimate:
    """One source's breathing rhythm: rate (breaths/min), confidence 0-1 and the fitted sinusoid for the phase."""

    source: str
    rate_bpm: float
    confidence: float
    frequency_hz: float
    cos_coef: float
    sin_coef: float
    t_ref: float
    phase_offset: float = 0.0  # cycles added to the sinusoid phase (polarity flips, filter lead)

    def phase_at(self, t: float) -> float:
        """Breath phase 0-1 at time t: 0 at the trough of the fitted sinusoid (start of inhale)."""
        crest = math.atan2(self.sin_coef, self.cos_coef)  # fitted = R cos(w (t - t_ref) - crest)
        angle = 2.0 * math.pi * self.frequency_hz * (t - self.t_ref) - crest - math.pi
        return (angle / (2.0 * math.pi) + self.phase_offset) % 1.0

    def shifted(self, cycles: float) -> BreathingEstimate:
        return BreathingEstimate(self.source, self.rate_bpm, self.confidence, self.frequency_hz, self.cos_coef,
                                 self.sin_coef, self.t_ref, (self.phase_offset + cycles) % 1.0)


def breathing_from_series(source: str, grid: np.ndarray, signal: np.ndarray, fs: float) -> BreathingEstimate | None:
    """The spectral breathing estimate of an evenly sampled signal (rises on inhale) at times ``grid`` (s)."""
    if len(grid) < 8:
        return None
    span = grid[-1] - grid[0]
    if span < MIN_SPAN_S:
        return None
    design = np.vstack([grid - grid.mean(), np.ones_like(grid)]).T
    signal = signal - design @ np.linalg.lstsq(design, signal, rcond=None)[0]
    n_fft = max(MIN_N_FFT, 1 << math.ceil(math.log2(len(grid))))
    power = np.abs(np.fft.rfft(signal * np.hanning(len(grid)), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    band_idx = np.flatnonzero(band)
    k = band_idx[np.argmax(power[band])]
    frequency = freqs[k]
    if band_idx[0] < k < band_idx[-1]:
        a, b, c = np.log(power[k - 1:k + 2] + 1e-30)
        denominator = a - 2.0 * b + c
        if denominator < 0:
            frequency += 0.5 * (a - c) / denominator * (freqs[1] - freqs[0])
    if frequency * span < 2.0:
        return None
    total = power[band].sum()
    lobe = np.abs(freqs - frequency) <= 2.0 / span
    confidence = float(power[band & lobe].sum() / total) if total > 0 else 0.0

    recent = grid >= grid[-1] - 2.0 / frequency
    w = 2.0 * math.pi * frequency * (grid[recent] - grid[-1])
    basis = np.vstack([np.cos(w), np.sin(w), np.ones_like(w)]).T
    cos_coef, sin_coef, _ = np.linalg.lstsq(basis, signal[recent], rcond=None)[0]
    return BreathingEstimate(source, 60.0 * frequency, confidence, frequency, float(cos_coef), float(sin_coef),
                             float(grid[-1]))


def rr_time_axis(arrival_times_s: np.ndarray, rr_ms: np.ndarray) -> np.ndarray:
    """Beat end times (s) on the RR axis: cumulative RR, anchored at the beat whose arrival was least delayed."""
    elapsed = np.cumsum(rr_ms) / 1000.0
    return elapsed + np.min(np.asarray(arrival_times_s) - elapsed)


def rsp_from_rr(beat_times_s: np.ndarray, rr_ms: np.ndarray) -> BreathingEstimate | None:
    """Breathing from respiratory sinus arrhythmia of clean beats (times on the RR axis, s; RR in ms)."""
    if len(rr_ms) < 10:
        return None
    grid = np.arange(beat_times_s[0], beat_times_s[-1], 1.0 / RR_RESAMPLE_HZ)
    return breathing_from_series("rr", grid, -np.interp(grid, beat_times_s, rr_ms), RR_RESAMPLE_HZ)


def rsp_from_edr(peak_times_s: np.ndarray, amplitudes: np.ndarray) -> BreathingEstimate | None:
    """Breathing from R-peak amplitudes (any unit) at their times (s); polarity not yet known (see ``Fusion``)."""
    if len(amplitudes) < 10:
        return None
    grid = np.arange(peak_times_s[0], peak_times_s[-1], 1.0 / RR_RESAMPLE_HZ)
    return breathing_from_series("ecg", grid, np.interp(grid, peak_times_s, amplitudes), RR_RESAMPLE_HZ)


class AccRespiration:
    """Streaming chest-ACC breathing: feed (n, 3) samples in mg with their times (s); ask ``estimate()``.

    State carried across chunks: the partial averaging block, the gravity low-pass state and a 60 s ring of
    the 10 Hz dynamic signal. Per chunk cost is O(chunk); ``estimate`` is O(window) and is called once per beat.
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

    def estimate(self, stuck: tuple[int, ...] = ()) -> BreathingEstimate | None:
        """Breathing from the last 60 s of chest movement, ignoring ``stuck`` axes; None without 20 s of data."""
        if len(self._times) < MIN_SPAN_S * ACC_RATE_HZ:
            return None
        grid = np.asarray(self._times)
        dynamic = np.asarray(self._dynamic)
        if stuck:
            dynamic[:, list(stuck)] = 0.0
        values, vectors = np.linalg.eigh(np.cov(dynamic.T))
        axis = vectors[:, -1]
        axis = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
        estimate = breathing_from_series("acc", grid, dynamic @ axis, ACC_RATE_HZ)
        if estimate is None:
            return None
        lead = math.atan(1.0 / (2.0 * math.pi * estimate.frequency_hz * GRAVITY_TAU_S)) / (2.0 * math.pi)
        return estimate.shifted(-lead)


@dataclass(frozen=True, slots=True)
class FusedBreathing:
    """Fused breathing rate (breaths/min) and phase (0-1, 0 = start of inhale), with confidences 0-1."""

    rate_bpm: float
    confidence: float
    phase: float
    phase_confidence: float
    sources: tuple[str, ...]


def _phase_difference(a: float, b: float) -> float:
    """a - b in cycles, wrapped to [-0.5, 0.5)."""
    return (a - b + 0.5) % 1.0 - 0.5


class Fusion:
    """Fuses per-source estimates; learns ACC and ECG polarity against the RR phase (known polarity)."""

    CALIBRATE_CONFIDENCE = 0.5

    def __init__(self) -> None:
        self.polarity: dict[str, float] = {"acc": 0.0, "ecg": 0.0}  # cycles to add: 0 or 0.5

    def fuse(self, estimates: list[BreathingEstimate], t: float,
             weights: dict[str, float] | None = None) -> FusedBreathing | None:
        """Fused breathing at time t from the given estimates; ``weights`` (0-1 per source) scale their trust."""
        weights = weights or {}
        usable = [e for e in estimates if e is not None and weights.get(e.source, 1.0) > 0]
        if not usable:
            return None
        rr = next((e for e in usable if e.source == "rr"), None)
        adjusted = []
        for e in usable:
            if e.source in self.polarity and rr is not None and min(e.confidence, rr.confidence) > self.CALIBRATE_CONFIDENCE \
                    and abs(e.rate_bpm - rr.rate_bpm) < AGREE_BPM:
                raw = _phase_difference(e.phase_at(t), rr.phase_at(t))
                self.polarity[e.source] = 0.5 if abs(raw) > 0.25 else 0.0
            adjusted.append(e.shifted(self.polarity.get(e.source, 0.0)))

        trust = {e.source: e.confidence * SOURCE_WEIGHT[e.source] * weights.get(e.source, 1.0) for e in adjusted}
        best = max(adjusted, key=lambda e: trust[e.source])
        agreeing = [e for e in adjusted if abs(e.rate_bpm - best.rate_bpm) < AGREE_BPM and trust[e.source] > 0]
        if not agreeing:
            return None
        w = np.array([trust[e.source] for e in agreeing])
        rate = float(np.dot(w, [e.rate_bpm for e in agreeing]) / w.sum())
        confidence = float(np.dot(w, [e.confidence for e in agreeing]) / w.sum())
        angles = np.array([2.0 * math.pi * e.phase_at(t) for e in agreeing])
        vector = np.dot(w, np.exp(1j * angles)) / w.sum()
        phase = (np.angle(vector) / (2.0 * math.pi)) % 1.0
        return FusedBreathing(rate, confidence, float(phase), float(abs(vector)) * confidence,
                              tuple(e.source for e in agreeing))
