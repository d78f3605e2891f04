"""A streaming estimator of heart rate, HRV and breathing (from respiratory sinus arrhythmia) over recent beats.

Definitions used for ``PhysioState`` (t is the time passed to ``state(t)``, in the beats' host seconds):

Segment. Only beats since the last ``after_gap`` beat count: no window spans a gap. The gap beat itself
starts the new segment (its RR is real; its difference with the beat before the gap is not).

Artifacts. A beat is an artifact when its RR differs by more than 20 % from the median RR of its up to
two neighbours on each side in the segment (catches an ectopic beat and its compensatory pause while
leaving respiratory swings, which change RR by far less between neighbours, alone). Artifacts are left
out of every value below; ``artifact_percent`` is their share of the beats in the 60 s window.

- ``heart_rate_bpm``: 60000 / mean RR (ms) of the clean beats that ended in the last 10 s, i.e. beats per
  minute over that stretch; None with fewer than 3 such beats.
- ``rr_ms``: the latest clean RR.
- ``rmssd_ms`` (hrv_rmssd): sqrt(mean((RR[k] - RR[k-1])^2)) over successive pairs of clean beats that
  both ended in the last 60 s; ``sdnn_ms`` (hrv_sdnn): population standard deviation (ddof=0) of the clean
  RRs in the last 60 s. Both None with fewer than 20 clean beats in the window.
- ``breathing_rate_bpm`` (rsp_rate from RSA): the beats of the last 60 s are placed on their RR time axis
  (cumulative RR, anchored at the beat whose arrival-based time was least delayed, so timing jitter of
  the notifications does not enter), artifacts are replaced by linear interpolation, the tachogram is
  resampled at 4 Hz, linearly detrended and Hann-windowed, and its periodogram (zero-padded to 1024
  points) is searched for the highest peak in 0.05-0.5 Hz (3-30 breaths/min), refined by parabolic
  interpolation of the log power. None with less than 20 s of beats or when fewer than 2 cycles of the
  peak fit in the window.
- ``breathing_confidence``: the share of the 0.05-0.5 Hz power that lies within the peak's main lobe
  (± 2 / window length Hz): near 1 for a clean breathing rhythm, typically 0.2-0.45 for white noise (the
  highest of ~27 independent noise bins and its lobe).
- ``breath_phase``: heart rate rises on inhale and falls on exhale, so the breath starts at the heart-rate
  trough (RR peak). A sinusoid at the peak frequency is least-squares fitted to the detrended heart-rate
  signal (negated RR) over the last two breath periods; phase = position in that sinusoid's cycle at t,
  0 at its trough (start of inhale), 0.5 at its crest (start of exhale for a symmetric breath).
- ``coherence`` is not computed by this estimator (None).
- ``contact`` is not known to it (None); ``BeatTimeline.contact`` has it.

Cost: windows are trimmed on ``add_beat``; the spectral analysis runs at most once per new beat and is
reused by later ``state`` calls, so calling ``state`` every audio block is cheap.
"""
from __future__ import annotations

import collections
import math

import numpy as np

from biosignals.types import Beat, PhysioState

HR_WINDOW_S = 10.0
HRV_WINDOW_S = 60.0
RESAMPLE_HZ = 4.0
N_FFT = 1024
BAND_HZ = (0.05, 0.5)
ARTIFACT_FRACTION = 0.20
MIN_HR_BEATS = 3
MIN_HRV_BEATS = 20
MIN_BREATHING_SPAN_S = 20.0


class _Breathing:
    """The spectral breathing estimate computed once per beat: rate, confidence and the fitted sinusoid."""

    __slots__ = ("rate_bpm", "confidence", "frequency_hz", "cos_coef", "sin_coef", "t_ref")

    def __init__(self, rate_bpm, confidence, frequency_hz, cos_coef, sin_coef, t_ref):
        self.rate_bpm = rate_bpm
        self.confidence = confidence
        self.frequency_hz = frequency_hz
        self.cos_coef = cos_coef
        self.sin_coef = sin_coef
        self.t_ref = t_ref

    def phase_at(self, t: float) -> float:
        """Breath phase 0-1 at host time t: 0 at the trough of the fitted heart-rate sinusoid."""
        crest = math.atan2(self.sin_coef, self.cos_coef)  # fitted = R cos(w (t - t_ref) - crest)
        angle = 2.0 * math.pi * self.frequency_hz * (t - self.t_ref) - crest - math.pi
        return (angle / (2.0 * math.pi)) % 1.0


class RRStateEstimator:
    """Feed beats in time order with ``add_beat``; ask ``state(t)`` as often as needed."""

    def __init__(self) -> None:
        self._beats: collections.deque[Beat] = collections.deque()
        self._dirty = True
        self._times = self._rr = self._clean = np.empty(0)
        self._breathing: _Breathing | None = None

    def add_beat(self, beat: Beat) -> None:
        """Add one beat; an ``after_gap`` beat discards everything before it (a new segment starts)."""
        if beat.after_gap:
            self._beats.clear()
        self._beats.append(beat)
        while self._beats[0].t < beat.t - HRV_WINDOW_S:
            self._beats.popleft()
        self._dirty = True

    def _refresh(self) -> None:
        """Per-beat work, done once after new beats: arrays, artifact mask, spectral breathing estimate."""
        beats = list(self._beats)
        self._times = np.array([b.t for b in beats])
        self._rr = np.array([b.rr_ms for b in beats])
        self._clean = ~artifact_mask(self._rr)
        self._breathing = _estimate_breathing(self._times, self._rr, self._clean)
        self._dirty = False

    def state(self, t: float) -> PhysioState:
        """The estimated state at host time ``t`` (s) from the beats added so far; see the module docstring."""
        if self._dirty:
            self._refresh()
        in_window = (self._times > t - HRV_WINDOW_S) & (self._times <= t)
        n_window = int(in_window.sum())
        if n_window == 0:
            return PhysioState(t=t)
        rr = self._rr[in_window]
        clean = self._clean[in_window]
        n_clean = int(clean.sum())

        recent = clean & (self._times[in_window] > t - HR_WINDOW_S)
        heart_rate = 60000.0 / rr[recent].mean() if recent.sum() >= MIN_HR_BEATS else None
        rmssd = sdnn = None
        if n_clean >= MIN_HRV_BEATS:
            rmssd = hrv_rmssd(rr, clean)
            sdnn = float(rr[clean].std())
        breathing = self._breathing
        return PhysioState(
            t=t,
            heart_rate_bpm=heart_rate,
            rr_ms=float(rr[clean][-1]) if n_clean else None,
            rmssd_ms=rmssd,
            sdnn_ms=sdnn,
            breathing_rate_bpm=breathing.rate_bpm if breathing else None,
            breathing_confidence=breathing.confidence if breathing else 0.0,
            breath_phase=breathing.phase_at(t) if breathing else None,
            beats_in_window=n_clean,
            artifact_percent=100.0 * (n_window - n_clean) / n_window,
        )


def artifact_mask(rr_ms: np.ndarray) -> np.ndarray:
    """True where an RR differs by more than 20 % from the median of its up to 2 neighbours on each side."""
    n = len(rr_ms)
    mask = np.zeros(n, dtype=bool)
    if n < 3:
        return mask
    padded = np.concatenate([[np.nan, np.nan], rr_ms, [np.nan, np.nan]])
    neighbours = np.stack([padded[0:n], padded[1:n + 1], padded[3:n + 3], padded[4:n + 4]])
    reference = np.nanmedian(neighbours, axis=0)
    return np.abs(rr_ms - reference) > ARTIFACT_FRACTION * reference


def hrv_rmssd(rr_ms: np.ndarray, clean: np.ndarray) -> float | None:
    """RMSSD (ms) over successive RR pairs whose two beats are both clean; None when there is no such pair."""
    pairs = clean[1:] & clean[:-1]
    if not pairs.any():
        return None
    return float(np.sqrt(np.mean(np.diff(rr_ms)[pairs] ** 2)))


def _estimate_breathing(arrival_based: np.ndarray, rr_ms: np.ndarray, clean: np.ndarray) -> _Breathing | None:
    if len(rr_ms) < 10 or not clean.any():
        return None
    elapsed = np.cumsum(rr_ms) / 1000.0
    times = elapsed + np.min(arrival_based - elapsed)
    span = times[-1] - times[0]
    if span < MIN_BREATHING_SPAN_S:
        return None

    if not clean.all():
        rr_ms = rr_ms.copy()
        rr_ms[~clean] = np.interp(times[~clean], times[clean], rr_ms[clean])

    grid = np.arange(times[0], times[-1], 1.0 / RESAMPLE_HZ)
    signal = -np.interp(grid, times, rr_ms)  # negated RR: rises with heart rate
    design = np.vstack([grid - grid.mean(), np.ones_like(grid)]).T
    signal = signal - design @ np.linalg.lstsq(design, signal, rcond=None)[0]

    n_fft = max(N_FFT, 1 << math.ceil(math.log2(len(grid))))
    power = np.abs(np.fft.rfft(signal * np.hanning(len(grid)), n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / RESAMPLE_HZ)
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

    lobe = np.abs(freqs - frequency) <= 2.0 / span
    total = power[band].sum()
    confidence = float(power[band & lobe].sum() / total) if total > 0 else 0.0

    fit_from = grid[-1] - 2.0 / frequency
    recent = grid >= fit_from
    w = 2.0 * math.pi * frequency * (grid[recent] - grid[-1])
    basis = np.vstack([np.cos(w), np.sin(w), np.ones_like(w)]).T
    cos_coef, sin_coef, _ = np.linalg.lstsq(basis, signal[recent], rcond=None)[0]
    return _Breathing(60.0 * frequency, confidence, frequency, float(cos_coef), float(sin_coef), float(grid[-1]))
