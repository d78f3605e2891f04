"""The gated breathing tracker: breathing rate, breath phase and "following the guide" from the sources' 4 Hz series.

Called once per beat with the ``BreathSeries`` of every source that has one (``biosignals.respiration``), their
quality weights and, when the music plays a breath guide, the guide's history (``biosignals.guide.GuideHistory``). Steps:

1. Spectra. Per source, two Hann periodograms of the 60 s series (zero-padded to ``N_FFT`` points):
   ``slow`` after a linear detrend (keeps slow paced breathing at 3-8/min), ``fast`` after smoothness-priors
   detrending (Tarvainen et al. 2002, lambda ``SP_LAMBDA`` = 20 at 4 Hz: gain 0.5 at 8.7/min, 0.2 at 6/min,
   0.8 at 12/min), which removes the very-low-frequency drift and most of the Mayer-wave power (~6/min) that
   otherwise outweigh weak, fast RSA. Each spectrum is normalised to unit power in its band and the sources'
   spectra are summed with weights quality x ``SOURCE_WEIGHT``.
2. Following the guide (only with a guide covering at least ``MIN_GUIDE_CYCLES`` breaths of the window).
   A source follows when (a) its slow spectrum has a true local maximum (never a band edge) within guide
   +-``GUIDE_HALF_WIDTH_BPM``; (b) it is phase-locked to the guide: the signal is demodulated by the guide's
   own phase, one complex amplitude per complete guide cycle inside the window (inhale start to inhale start;
   least squares, cos + sin + offset + slope; ``biosignals.guide.CycleLocking``, each cycle fitted once), and
   the phase-locking value PLV = |sum of amplitudes| / sum of |amplitudes| reaches ``PLV_ENTER`` (``PLV_STAY``
   once following); (c) no competing local maximum in 8-30/min of the fast spectrum, other than the guide's
   harmonics (1x, 2x, 3x the guide rates of the window +-1/min: the RSA of a short inhale puts energy at 2x
   and 3x), holds more than ``COMPETITOR_ENTER`` (``COMPETITOR_STAY``) of the 8-30/min power within
   +-``LOBE_BPM`` while its slow-spectrum power exceeds ``COMPETITOR_POWER`` x the guide peak's (a clear
   spontaneous rhythm there means the listener breathes at it; a faint one beside a strong guide-rate RSA
   is a smeared harmonic). With ECG or ACC present, the decision is theirs (they measure the breath itself):
   those that can tell vote with their weights (quality x ``SOURCE_WEIGHT``, so a clear chest ACC outweighs
   the ECG-derived signal), and ``following_basis`` names them. A source that neither follows nor shows a
   clear rhythm (lobe share >= ``CLEAR_SHARE``) in 8-30/min off the guide's harmonics cannot tell (a weak
   ECG-derived signal, a loose strap) and abstains: it never vetoes a clear ACC. When no direct source can
   tell, RR decides and the basis is ``"rr only"``: Mayer waves locked to the guide by chance cannot be told
   from paced breathing by RR alone, so the policy should treat it as weaker evidence.
3. Rate. Two candidates: near the guide, the weighted mean of the slow-spectrum peaks within guide
   +-1.5/min of the sources without a competitor above ``COMPETITOR_STAY`` and no clear rhythm elsewhere, while
   their weight exceeds that of the sources with one (``method = "guide"``); and the highest true local maximum in
   ``FAST_BAND_BPM`` (8-30/min) of the fused fast spectrum, refined by parabolic interpolation of log power, ``method = "spectral"``; breath counting
   (``count_breaths``, the "advanced counting" of Schaefer & Kratky 2008 on the fast signal of the most trusted
   source) cross-checks it. When trusted sources' own clear peaks (lobe share >= ``CLEAR_SHARE``), or the spectrum
   and the count, disagree by more than ``DISAGREE_BPM`` (Smart Fusion, Karlen et al. 2013), the previous rate is
   held (``method = "held"``; the spectral one when there is none yet) with confidence at most
   ``HELD_CONFIDENCE``. The guide candidate, when there is one, wins: no clear rhythm competes with it, and right
   after a guide step the phase lock may still be rebuilding. Without a guide, breathing slower than 8/min is not
   reported as such (its RSA harmonics and Mayer waves cannot be told apart from RR); the guide, or ECG/ACC with
   a guide, is what unlocks 3-8/min.
4. Confidence (0-1). Spectral: the largest share, among the sources whose own peak agrees (within
   ``AGREE_BPM``), of their 8-30/min fast power within +-``LOBE_BPM`` of the rate, times (0.5 + 0.5 x agreement with the count: 1 within 1/min, 0 at 4/min). Guide: the share of the
   slow 3-30/min power (fast 8-30/min when the rate is above 8/min) within +-``LOBE_BPM`` of the guide peak,
   times the PLV. On the validation sets windows
   at >= 0.5 have well under half the error of those below (docs/validation.md).
5. Phase (0-1, 0 = start of inhale). A least-squares sinusoid at the chosen rate over the last two breaths of
   each agreeing source (no filter delay), polarity learnt for ECG/ACC against RR when both are confident
   and agree, the ACC high-pass lead removed; the weighted circular mean of the sources; ``phase_confidence``
   = resultant length x confidence.

Updates and cost. ``update`` runs when the state is asked for after a source's series changed (a beat, new R
peaks, an ACC refresh). A source's new series is analysed (steps 1 and 2 for that source: detrending, one FFT
call for both spectra, peaks, the new guide cycles' fits) on every n-th change of that source (``ANALYSE_EVERY``:
RR and ECG, which change once a beat, every third; ACC, refreshed once a second, every second), whichever source
prompted the update; in between the analysis of its last analysed series serves, so a decision is at most two
beats behind the data (the issue's 2 beats; ACC up to 120 beats/min), and sources that change together are
analysed on different updates where their periods allow. The vote of step 2 and steps 3 and 4 run again only
when an analysis or a weight changed (from the same analyses they give the same answer); step 5 on every update,
a source's sinusoid refitted only when the rate moves by more than ``REFIT_BPM`` and its phase locking only when
a guide cycle enters or leaves its window. The mean CPU time per update is what ``benchmarks/breathing.py`` and
``benchmarks/estimator_cost.py`` print; at the session's cadence (every H10 stream, the state asked every 0.1 s)
it is 0.15-0.21 ms on this project's 2-core machine on 2026-12-02 night, whose speed varies by up to 1.8x from
one evening to the next (docs/validation.md).
"""
from __future__ import annotations

import bisect
import cmath
import collections
import math
import statistics
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
from scipy.linalg import cholesky_banded
from scipy.linalg.lapack import dpbtrs

from biosignals.guide import CycleLocking, GuideHistory, Locking
from biosignals.respiration import GRID_HZ, BreathSeries

SP_LAMBDA = 20.0
DETREND_BLOCK = 8
N_FFT = 1024
SLOW_BAND_BPM = (3.0, 30.0)
FAST_BAND_BPM = (8.0, 30.0)
GUIDE_HALF_WIDTH_BPM = 1.5
HARMONIC_HALF_WIDTH_BPM = 1.0
LOBE_BPM = 1.5
AGREE_BPM = 2.0
DISAGREE_BPM = 4.0
HELD_CONFIDENCE = 0.3
RECENT_UPDATES = 15  # about 12 s of beats: a rate that jumps away from their median is less trusted
CLEAR_SHARE = 0.35  # a source's own peak takes part in the Smart Fusion check when it is this clear
MIN_GUIDE_CYCLES = 2.5
PLV_ENTER, PLV_STAY = 0.8, 0.65
COMPETITOR_ENTER, COMPETITOR_STAY = 0.25, 0.4
COMPETITOR_POWER = 0.05  # ... and whose slow-spectrum power is at least 0.05 x the guide peak's (not a faint harmonic)
COUNT_FRACTION = 0.2  # extrema beyond 0.2 x the quartile of their kind count (Schaefer & Kratky 2008)
CALIBRATE_CONFIDENCE = 0.5
# a source's series is analysed on every n-th change of its own (see "Updates and cost"): RR and ECG change once a
# beat, ACC once a second (estimator.ACC_EVERY_S), so a decision is at most 2 beats old (ACC: up to 120 beats/min)
ANALYSE_EVERY = {"rr": 3, "ecg": 3, "acc": 2}
REFIT_BPM = 0.05  # a source's breath sinusoid is refitted when the rate moves more (2 cycles at 6/min: < 6 degrees)
SOURCE_WEIGHT = {"acc": 1.0, "rr": 0.8, "ecg": 0.6}  # chest motion is breathing itself; RSA and EDR are its echoes
DIRECT_SOURCES = ("acc", "ecg")

FREQS_BPM = np.fft.rfftfreq(N_FFT, 1.0 / GRID_HZ) * 60.0
_FREQS = FREQS_BPM.tolist()  # bisect on plain floats: a band is found without a mask over all bins, on every beat
_TOP = bisect.bisect_right(_FREQS, FAST_BAND_BPM[1] + LOBE_BPM) + 1  # no peak or lobe is looked for above this bin


@lru_cache(maxsize=64)
def _detrend_factor(n: int) -> np.ndarray:
    """Banded (upper) Cholesky factor of I + lambda^2 D2' D2, D2 the second differences: the smoothness-priors
    system, pentadiagonal, so each detrending is an O(n) banded solve with this factor."""
    main = np.full(n, 6.0)  # the diagonals of D2' D2: 1 5 6 ... 6 5 1, -2 -4 ... -4 -2 and 1 ... 1
    main[[0, -1]], main[[1, -2]] = 1.0, 5.0
    first = np.full(n - 1, -4.0)
    first[[0, -1]] = -2.0
    upper = np.zeros((3, n))  # LAPACK's upper banded storage: row 2 - k holds diagonal k, right-aligned
    upper[0, 2:], upper[1, 1:], upper[2] = SP_LAMBDA ** 2, SP_LAMBDA ** 2 * first, 1.0 + SP_LAMBDA ** 2 * main
    return cholesky_banded(upper)


def sp_detrend(signal: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Smoothness-priors detrending (Tarvainen 2002), signal - (I + lambda^2 D2' D2)^-1 signal, of the last
    multiple of ``DETREND_BLOCK`` samples (fewer factors to cache while a window fills); the first few samples,
    if any, are left out. Written to ``out`` when given."""
    n = len(signal) - len(signal) % DETREND_BLOCK
    recent = signal[len(signal) - n:]
    trend, _ = dpbtrs(_detrend_factor(n), recent)  # info is nonzero only for a singular factor, and this one is not
    return np.subtract(recent, trend, out=out)


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    return np.hanning(n)


@lru_cache(maxsize=16)
def _paired_hann(n: int, fast: int) -> np.ndarray:
    """(2, n): the Hann window of n samples, and that of the last ``fast`` samples with zeros in front."""
    windows = np.zeros((2, n))
    windows[0], windows[1, n - fast:] = _hann(n), _hann(fast)
    return windows


def _bins(lo_bpm: float, hi_bpm: float) -> slice:
    """The ``FREQS_BPM`` bins from lo to hi (both included) as a slice."""
    return slice(bisect.bisect_left(_FREQS, lo_bpm), bisect.bisect_right(_FREQS, hi_bpm))


SLOW_BAND = _bins(*SLOW_BAND_BPM)
FAST_BAND = _bins(*FAST_BAND_BPM)


def _power(signal: np.ndarray, band: slice) -> np.ndarray:
    """Hann periodogram (``N_FFT`` points, zero-padded; bins below ``_TOP``) normalised to unit power in the band."""
    return _normalised(_fft_power(signal * _hann(len(signal))), band)


def _fft_power(windowed: np.ndarray) -> np.ndarray:
    """The power at the bins below ``_TOP`` of windowed signals (the last axis: samples)."""
    power = np.abs(np.fft.rfft(windowed, N_FFT)[..., :_TOP])
    return np.square(power, out=power)


def _normalised(power: np.ndarray, band: slice) -> np.ndarray:
    total = power[band].sum()
    return power / total if total > 0 else power


def _mean(values: np.ndarray) -> float:
    """The same value as ``values.mean()`` without its wrapper's overhead, which dominates on a few hundred points."""
    return values.sum() / len(values)


@lru_cache(maxsize=16)
def _line(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For n samples on an even grid: the rows whose product with a signal is its (mean, slope per sample), and
    the rows (ones, centred sample index) whose combination by those is the line."""
    centred = np.arange(n) - (n - 1) / 2.0
    return np.stack([np.full(n, 1.0 / n), centred / np.dot(centred, centred)]), np.stack([np.ones(n), centred])


def _linear_detrend(signal: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The signal minus its least-squares line, for samples on an even grid (a ``BreathSeries``); written to
    ``out`` when given."""
    rows, line = _line(len(signal))
    return np.subtract(signal, (rows @ signal) @ line, out=out)


class Spectrum:
    """A power spectrum (bins below ``_TOP``) with its bins as plain floats, so that peaks and lobe shares are found
    on every beat without a numpy call each; ``scale`` normalises it to unit power in ``band`` (0 when the band
    holds none; ``peak`` gives normalised power, ``values`` are as given)."""

    def __init__(self, power: np.ndarray, band: slice, values: list[float] | None = None) -> None:
        self.power = power
        self.band = band
        self.values = power[:_TOP].tolist() if values is None else values
        total = sum(self.values[band])
        self.scale = 1.0 / total if total > 0 else 0.0
        self._maxima: dict[tuple[float, float], list[int]] = {}

    def peak(self, lo_bpm: float, hi_bpm: float) -> tuple[float, float] | None:
        """(rate in breaths/min, power) of the highest local maximum strictly inside lo-hi, interpolated; else None."""
        v = self.values
        best = max(self.maxima(lo_bpm, hi_bpm), key=v.__getitem__, default=None)  # the first of equal maxima
        if best is None:
            return None
        a, b, c = math.log(v[best - 1] + 1e-30), math.log(v[best] + 1e-30), math.log(v[best + 1] + 1e-30)
        denominator = a - 2.0 * b + c
        offset = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
        return _FREQS[best] + offset * (_FREQS[1] - _FREQS[0]), v[best] * self.scale

    def maxima(self, lo_bpm: float, hi_bpm: float) -> list[int]:
        """The bins of the local maxima strictly inside lo-hi (kept per band: the same ones are asked again)."""
        found = self._maxima.get((lo_bpm, hi_bpm))
        if found is None:
            bins, v = _bins(lo_bpm, hi_bpm), self.values
            found = [k for k in range(bins.start + 1, min(bins.stop, _TOP) - 1) if v[k] > v[k - 1] and v[k] >= v[k + 1]]
            self._maxima[lo_bpm, hi_bpm] = found
        return found

    def lobe_share(self, rate_bpm: float) -> float:
        """The share of the band's power within +-``LOBE_BPM`` of the rate."""
        band = self.band
        lo = max(band.start, bisect.bisect_left(_FREQS, rate_bpm - LOBE_BPM))
        hi = min(band.stop, bisect.bisect_right(_FREQS, rate_bpm + LOBE_BPM))
        return sum(self.values[lo:hi]) * self.scale


def true_peak(power: np.ndarray, lo_bpm: float, hi_bpm: float) -> tuple[float, float] | None:
    """(rate in breaths/min, power) of the highest local maximum of a ``_power`` spectrum strictly inside lo-hi
    (below ``_TOP``), interpolated; else None."""
    return Spectrum(power, SLOW_BAND).peak(lo_bpm, hi_bpm)


def _quartile(values: list[float], which: int) -> float:
    """The ``which``-th quartile (lower sample, no interpolation: this runs on every beat)."""
    return sorted(values)[which * (len(values) - 1) // 4]


def count_breaths(signal: np.ndarray, fs: float) -> float | None:
    """Breathing rate (breaths/min) by counting the breaths of a detrended, zero-mean signal (advanced counting,
    Schaefer & Kratky 2008): maxima above ``COUNT_FRACTION`` x the third quartile of the maxima and minima below
    that fraction of the first quartile of the minima are kept; runs of one kind collapse to their first, so
    each remaining maximum after a kept minimum is one breath; rate = (maxima - 1) / time from first to last.
    None with fewer than 3 breaths."""
    mean = _mean(signal)
    slope = np.sign(np.diff(signal))
    changes = np.flatnonzero(slope[1:] != slope[:-1]).tolist()  # a turn at sample c + 1 for each change c
    slopes, samples = slope.tolist(), signal.tolist()
    kinds = [slopes[c] > 0 for c in changes]  # True: a maximum
    values, positions = [samples[c + 1] - mean for c in changes], [c + 1 for c in changes]
    maxima = [v for v, is_max in zip(values, kinds) if is_max]
    minima = [v for v, is_max in zip(values, kinds) if not is_max]
    if len(maxima) < 3 or len(minima) < 2:
        return None
    high, low = COUNT_FRACTION * _quartile(maxima, 3), COUNT_FRACTION * _quartile(minima, 1)
    peaks, previous = [], None  # turns are in time order: a maximum counts when the last kept turn was not one
    for v, is_max, position in zip(values, kinds, positions):
        if (v > high) if is_max else (v < low):
            if is_max and previous is not True:
                peaks.append(position)
            previous = is_max
    if len(peaks) < 3:
        return None
    return 60.0 * (len(peaks) - 1) * fs / (peaks[-1] - peaks[0])


@dataclass(frozen=True, slots=True)
class BreathingReading:
    """The tracker's output; see the module docstring for every definition."""

    rate_bpm: float
    confidence: float
    phase: float
    phase_confidence: float
    sources: tuple[str, ...]
    method: str  # "guide", "spectral" or "held"
    following: bool | None  # None without a guide covering the window
    following_basis: str | None  # e.g. "acc+ecg" or "rr only"


class _GuideEvidence(NamedTuple):
    """What one source's series says about the guide (step 2): its slow-spectrum peak near the guide (None when
    there is none), the share of its strongest competing rhythm, and its phase locking (None when not needed or
    under two cycles)."""

    peak: tuple[float, float] | None
    competitor: float
    locking: Locking | None
    rhythm_elsewhere: bool  # the fast spectrum's peak is clear (lobe share >= CLEAR_SHARE) and off the guide's harmonics


class _Analysis:
    """One source's series and its trust weight, with what the tracker derives from the series alone: its slow
    signal (linear detrend) and fast one (``sp_detrend``), their spectra (``slow`` normalised in ``SLOW_BAND``,
    ``fast`` in ``FAST_BAND``), the fast spectrum's peak, and, when first asked, the breath count, the evidence
    about the guide and the breath sinusoid; kept while the source's series is the same object."""

    def __init__(self, series: BreathSeries, weight: float) -> None:
        self.series = series
        self.weight = weight
        self.waiting = 0  # the source's changes since this series, not analysed yet (fewer than ANALYSE_EVERY)
        self.seen = series  # the source's newest series so far
        self._sinusoid: tuple[float, float, tuple[float, float]] | None = None  # (rate, t, (phase at t, amplitude))
        self._evidence: tuple[_GuideEvidence | None] | None = None  # found or not yet
        self.start_t, self.end_t = float(series.grid[0]), float(series.grid[-1])
        signal = series.signal
        n, skip = len(signal), len(signal) % DETREND_BLOCK
        # the fast signal has zeros in front (a delay, which leaves its power unchanged), so that both signals are
        # windowed in one product and transformed in one call
        signals = np.zeros((2, n))
        self.slow_signal = _linear_detrend(signal, out=signals[0])
        self.fast_signal = sp_detrend(signal, out=signals[1, skip:])
        power = _fft_power(signals * _paired_hann(n, n - skip))
        slow, fast = power.tolist()
        self.slow, self.fast = Spectrum(power[0], SLOW_BAND, slow), Spectrum(power[1], FAST_BAND, fast)
        self.fast_peak = self.fast.peak(*FAST_BAND_BPM)

    @cached_property
    def counted(self) -> float | None:
        return count_breaths(self.fast_signal, GRID_HZ)

    def sinusoid(self, rate_bpm: float, t: float) -> tuple[float, float]:
        """``_sinusoid_phase`` of the signal for that rate (slow below 8/min, else fast) at t; the fit is kept while
        the rate stays within ``REFIT_BPM`` of the fitted one, and its phase then advances with time at the rate."""
        if self._sinusoid is None or abs(self._sinusoid[0] - rate_bpm) > REFIT_BPM:
            signal = self.slow_signal if rate_bpm < FAST_BAND_BPM[0] else self.fast_signal
            self._sinusoid = rate_bpm, t, _sinusoid_phase(signal, self.end_t, rate_bpm, t)
        fitted_rate, fitted_t, (phase, amplitude) = self._sinusoid
        return (phase + fitted_rate / 60.0 * (t - fitted_t)) % 1.0, amplitude

    def guide_evidence(self, guide: GuideHistory, locking: CycleLocking) -> _GuideEvidence | None:
        """The evidence about the guide, found once per series (with the guide as it then was: a gliding guide
        moves little in the one update an analysis may serve late); None when the guide covers under
        ``MIN_GUIDE_CYCLES`` of the window."""
        if self._evidence is None:
            self._evidence = (self._find_evidence(guide, locking),)
        return self._evidence[0]

    def _find_evidence(self, guide: GuideHistory, locking: CycleLocking) -> _GuideEvidence | None:
        grid, rate = self.series.grid, guide.rate_bpm
        first, last = guide.phase_at(self.start_t), guide.phase_at(self.end_t)
        if first is None or last - first < MIN_GUIDE_CYCLES:
            return None
        peak = self.slow.peak(rate - GUIDE_HALF_WIDTH_BPM, rate + GUIDE_HALF_WIDTH_BPM)  # both spectra, one FFT call
        slowest, fastest = guide.rate_range(self.start_t)
        lo1, hi1, lo2, hi2, lo3, hi3 = (bound for k in (1, 2, 3) for bound in
                                        (k * slowest - HARMONIC_HALF_WIDTH_BPM, k * fastest + HARMONIC_HALF_WIDTH_BPM))

        def off_harmonics(rate_bpm: float) -> bool:
            return not (lo1 <= rate_bpm <= hi1 or lo2 <= rate_bpm <= hi2 or lo3 <= rate_bpm <= hi3)

        own = self.fast_peak
        elsewhere = own is not None and off_harmonics(own[0]) and self.fast.lobe_share(own[0]) >= CLEAR_SHARE
        if peak is None:
            return _GuideEvidence(None, 0.0, None, elsewhere)
        threshold = COMPETITOR_POWER * peak[1] / self.slow.scale if self.slow.scale > 0 else math.inf
        slow_values = self.slow.values
        rivals = [_FREQS[k] for k in self.fast.maxima(*FAST_BAND_BPM)
                  if slow_values[k] > threshold and off_harmonics(_FREQS[k])]
        competitor = max((self.fast.lobe_share(r) for r in rivals), default=0.0)
        if competitor > COMPETITOR_STAY:  # a clear rhythm elsewhere rules the source out: its locking is not needed
            return _GuideEvidence(peak, competitor, None, elsewhere)
        return _GuideEvidence(peak, competitor, locking.update(grid, self.slow_signal, guide, (first, last)), elsewhere)


def _sinusoid_phase(signal: np.ndarray, end_t: float, rate_bpm: float, t: float) -> tuple[float, float]:
    """(phase 0-1 at t, 0 = trough; amplitude) of a least-squares sinusoid at rate over the last two periods of
    a signal on the ``GRID_HZ`` grid whose last sample is at ``end_t`` (s)."""
    frequency = rate_bpm / 60.0
    m = min(len(signal), math.floor(2.0 / frequency * GRID_HZ) + 1)
    step = 2.0 * math.pi * frequency / GRID_HZ  # radians per sample
    start = cmath.exp(1j * (2.0 * math.pi * frequency) * (end_t - (m - 1) / GRID_HZ - t))
    x = signal[len(signal) - m:]
    # the sums of x e^{iw}, e^{iw} and e^{2iw}, w = the angle at each sample, which advances by step
    turns, turns_sum, doubled_sum = _turns(m, step)
    product, ones, double = start * complex(np.dot(turns, x)), start * turns_sum, start * start * doubled_sum
    sum_cx, sum_sx, sum_c, sum_s, sum_x = product.real, product.imag, ones.real, ones.imag, float(x.sum())
    gcc, gss, gcs = (m + double.real) / 2.0, (m - double.real) / 2.0, double.imag / 2.0
    # the offset is taken out by centring the normal equations, leaving a 2 x 2 system solved in closed form
    cc, ss, cs = gcc - sum_c * sum_c / m, gss - sum_s * sum_s / m, gcs - sum_c * sum_s / m
    cx, sx = sum_cx - sum_c * sum_x / m, sum_sx - sum_s * sum_x / m
    det = cc * ss - cs * cs
    cos_coef, sin_coef = (cx * ss - sx * cs) / det, (sx * cc - cx * cs) / det
    crest = math.atan2(sin_coef, cos_coef)  # fitted = R cos(w - crest): crest at w = crest, trough half a cycle on
    return ((-crest - math.pi) / (2.0 * math.pi)) % 1.0, math.hypot(cos_coef, sin_coef)


@lru_cache(maxsize=8)  # kept: sources analysed while the rate stays put are fitted at the same rate
def _turns(m: int, step: float) -> tuple[np.ndarray, complex, complex]:
    """e^{i k step} for k = 0 .. m - 1, and the sums of e^{i k step} and of e^{2i k step} (geometric series)."""
    return (np.exp((1j * step) * np.arange(m)), (1.0 - cmath.exp(1j * m * step)) / (1.0 - cmath.exp(1j * step)),
            (1.0 - cmath.exp(2j * m * step)) / (1.0 - cmath.exp(2j * step)))


def _phase_difference(a: float, b: float) -> float:
    """a - b in cycles, wrapped to [-0.5, 0.5)."""
    return (a - b + 0.5) % 1.0 - 0.5


class BreathingTracker:
    """Stateful (hysteresis, held value, learnt polarity) breathing tracker; call ``update`` once per beat."""

    def __init__(self) -> None:
        self.polarity: dict[str, float] = {"acc": 0.0, "ecg": 0.0}  # cycles added: 0 or 0.5
        self._following: dict[str, bool] = {}
        self._elsewhere: set[str] = set()  # the sources that show a clear rhythm away from the guide
        self._plv: dict[str, float] = {}
        self._recent_rate: dict[str, float] = {}
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_UPDATES)
        self._analyses: dict[str, _Analysis] = {}
        self._locking: collections.defaultdict[str, CycleLocking] = collections.defaultdict(CycleLocking)
        self._last: BreathingReading | None = None
        self._fusion_key: tuple | None = None  # what the last fusion was made of: the same analyses, the same answer
        self._fusion: tuple = (None, None, None)
        self.rsa_amplitude: float | None = None  # half peak-to-trough of the RR sinusoid at the rate (ms)

    def reset(self) -> None:
        self.__init__()

    def update(self, series: list[BreathSeries], t: float, weights: dict[str, float] | None = None,
               guide: GuideHistory | None = None) -> BreathingReading | None:
        """The reading at host time ``t`` (s) from the sources' series, quality ``weights`` 0-1 and the guide."""
        analyses = self._analyses_of(series, weights or {})
        self.rsa_amplitude = None
        if not analyses:
            self._last = None
            return None
        # step 2's vote and steps 3-4 depend on nothing else: the same analyses give the same answer again
        key = (guide is not None and guide.rate_bpm is not None, [(a, a.weight) for a in analyses])
        if key != self._fusion_key:
            self._fusion_key, self._fusion = key, self._fuse(analyses, guide)
        following, basis, chosen = self._fusion
        if chosen is None:
            self._last = None
            return None
        rate, confidence, used, method = chosen
        self._recent.append(rate)
        settled = min(1.0, max(0.0, 1.0 - (abs(rate - statistics.median(self._recent)) - 0.5) / 2.0))
        confidence *= 0.5 + 0.5 * settled
        self._last = self._with_phase(used, rate, confidence, t, method, following, basis)
        return self._last

    def _fuse(self, analyses: list[_Analysis], guide: GuideHistory | None
              ) -> tuple[bool | None, str | None, tuple[float, float, list, str] | None]:
        """(following, its basis, (rate, confidence, sources used, method) or None): steps 2 to 4."""
        following, basis, guide_peaks = self._following_decision(analyses, guide)
        guided = self._guided(analyses, guide_peaks, bool(following)) if guide_peaks else None
        return following, basis, guided if guided is not None else self._spectral(analyses)

    def _analyses_of(self, series: list[BreathSeries | None], weights: dict[str, float]) -> list[_Analysis]:
        """One analysis per source with a series and a weight above 0. A source's series is analysed on every
        ``ANALYSE_EVERY``-th change of that source, not on the next update another source prompts (between, the
        analysis of its last analysed series serves: at most two beats old); a new source at once, staggered so that
        sources that change together are analysed on different updates."""
        analyses: list[_Analysis] = []
        for s in series:
            if s is None or not weights.get(s.source, 1.0) > 0:
                continue
            kept = self._analyses.get(s.source)
            if kept is None:  # a new source: out of step with most of the others
                in_step = [a.waiting for a in analyses]
                kept = _Analysis(s, 0.0)
                kept.waiting = min(range(ANALYSE_EVERY[s.source]), key=in_step.count)
            elif kept.seen is not s and kept.waiting < ANALYSE_EVERY[s.source] - 1:
                kept.waiting, kept.seen = kept.waiting + 1, s  # this change waits
            elif kept.seen is not s:
                kept = _Analysis(s, 0.0)
            kept.weight = weights.get(s.source, 1.0) * SOURCE_WEIGHT[s.source]
            analyses.append(kept)
        self._analyses = {a.series.source: a for a in analyses}
        return analyses

    # -- following ---------------------------------------------------------------------------------
    def _following_decision(self, analyses: list[_Analysis], guide: GuideHistory | None
                            ) -> tuple[bool | None, str | None, dict[str, float]]:
        if guide is None or guide.rate_bpm is None:
            self._following.clear()
            self._elsewhere.clear()
            return None, None, {}
        verdicts: dict[str, bool | None] = {}  # True follows, False breathes elsewhere, None cannot tell
        peaks: dict[str, float] = {}
        self._plv = {}
        self._recent_rate = {}
        for a in analyses:
            evidence = a.guide_evidence(guide, self._locking[a.series.source])
            if evidence is None:
                continue
            source = a.series.source
            if evidence.competitor > COMPETITOR_STAY:
                verdicts[source] = False
                continue
            if evidence.peak is None:
                verdicts[source] = False if evidence.rhythm_elsewhere else None
                continue
            was = self._following.get(source, False)
            peaks[source] = evidence.peak[0]
            locking = evidence.locking
            plv = None if locking is None else locking.plv
            self._plv[source] = plv or 0.0
            if locking is not None:
                self._recent_rate[source] = locking.recent_rate_bpm
            follows = (plv is not None and plv >= (PLV_STAY if was else PLV_ENTER)
                       and evidence.competitor <= (COMPETITOR_STAY if was else COMPETITOR_ENTER))
            verdicts[source] = True if follows else (False if evidence.rhythm_elsewhere else None)
        self._following = {source: verdict is True for source, verdict in verdicts.items()}
        self._elsewhere = {source for source, verdict in verdicts.items() if verdict is False}
        if not verdicts:
            return None, None, {}
        voters = {a.series.source: a.weight for a in analyses if verdicts.get(a.series.source) is not None}
        direct = [s for s in DIRECT_SOURCES if s in voters]
        if direct:
            yes = sum(voters[s] for s in direct if verdicts[s])
            return bool(yes > sum(voters[s] for s in direct) - yes), "+".join(direct), peaks
        if "rr" in verdicts:
            return verdicts["rr"] is True, "rr only", peaks
        return False, "+".join(s for s in DIRECT_SOURCES if s in verdicts), peaks

    # -- rate ----------------------------------------------------------------------------------------
    def _guided(self, analyses: list[_Analysis], peaks: dict[str, float],
                following: bool) -> tuple[float, float, list, str] | None:
        """(rate, confidence, sources used, method) near the guide: when following, the recent phase-locked rate of
        the sources that follow; else the spectral peaks of the sources that show no rhythm elsewhere, None when
        those that do outweigh them (a noisy source's chance peak near the guide must not outvote a clear chest)."""
        used = [a for a in analyses if a.series.source in peaks]
        if following:
            used = [a for a in used if self._following.get(a.series.source)] or used
        else:
            used = [a for a in used if a.series.source not in self._elsewhere]
            elsewhere = sum(a.weight for a in analyses if a.series.source in self._elsewhere)
            if not used or sum(a.weight for a in used) <= elsewhere:
                return None
        total = sum(a.weight for a in used)
        near = self._recent_rate if following else peaks
        rate = sum(a.weight * near.get(a.series.source, peaks[a.series.source]) for a in used) / total
        fast = rate >= FAST_BAND_BPM[0]  # above 8/min the detrended spectrum keeps the drift out of the share
        # each spectrum has unit power in its band, so the fused spectrum's lobe share is the weighted mean of theirs
        share = sum(a.weight * (a.fast if fast else a.slow).lobe_share(rate) for a in used) / total
        confidence = share * sum(a.weight * self._plv[a.series.source] for a in used) / total
        return rate, confidence, used, "guide"

    def _spectral(self, analyses: list[_Analysis]) -> tuple[float, float, list, str] | None:
        """(rate, confidence, sources used, method) from the fused detrended spectrum in 8-30/min, or None."""
        if len(analyses) == 1:
            fused = analyses[0].fast
        else:
            fused = Spectrum(sum((a.weight * a.fast.scale) * a.fast.power for a in analyses), FAST_BAND)
        peak = fused.peak(*FAST_BAND_BPM)
        if peak is None:
            return None
        rate = peak[0]
        best = max(analyses, key=lambda a: a.weight)
        counted = best.counted
        agreement = 0.0 if counted is None else min(1.0, max(0.0, 1.0 - (abs(counted - rate) - 0.5) / 3.0))
        own = {id(a): a.fast_peak if len(analyses) > 1 else peak for a in analyses}
        own_rates = [own[id(a)][0] for a in analyses if own[id(a)] is not None and a.weight >= 0.5 * best.weight
                     and a.fast.lobe_share(own[id(a)][0]) >= CLEAR_SHARE]
        channels_disagree = bool(own_rates) and max(own_rates) - min(own_rates) > DISAGREE_BPM
        count_disagrees = counted is not None and abs(counted - rate) > DISAGREE_BPM
        agreeing = [a for a in analyses if own[id(a)] is not None and abs(own[id(a)][0] - rate) < AGREE_BPM] or [best]
        confidence = max(a.fast.lobe_share(rate) for a in agreeing) ** 2 * agreement
        if channels_disagree or count_disagrees:  # with nothing to hold yet, the rate stands, as unsure as a held one
            confidence = min(confidence, HELD_CONFIDENCE)
            if self._last is not None:
                return self._last.rate_bpm, confidence, agreeing, "held"
        return rate, confidence, agreeing, "spectral"

    # -- phase ---------------------------------------------------------------------------------------
    def _with_phase(self, used: list[_Analysis], rate: float, confidence: float, t: float, method: str,
                    following: bool | None, basis: str | None) -> BreathingReading:
        phases = {}
        for a in used:
            phase, amplitude = a.sinusoid(rate, t)
            if a.series.lead_tau_s is not None:
                phase -= math.atan(1.0 / (2.0 * math.pi * rate / 60.0 * a.series.lead_tau_s)) / (2.0 * math.pi)
            phases[a.series.source] = phase % 1.0
            if a.series.source == "rr":
                self.rsa_amplitude = amplitude
        rr = phases.get("rr")
        if rr is not None and confidence > CALIBRATE_CONFIDENCE:
            for source in self.polarity:
                if source in phases:
                    self.polarity[source] = 0.5 if abs(_phase_difference(phases[source], rr)) > 0.25 else 0.0
        turns = {a.series.source: phases[a.series.source] + self.polarity.get(a.series.source, 0.0) for a in used}
        vector = (sum(a.weight * cmath.exp(2j * math.pi * turns[a.series.source]) for a in used)
                  / sum(a.weight for a in used))
        return BreathingReading(rate, confidence, (cmath.phase(vector) / (2.0 * math.pi)) % 1.0,
                                abs(vector) * confidence, tuple(sorted(a.series.source for a in used)),
                                method, following, basis)
