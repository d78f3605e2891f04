"""Heart-rate variability of a clean RR series: time domain, LF/HF power and coherence, each with one pinned configuration.

Time domain (RR in ms):

- ``hrv_mean_hr``: mean of the instantaneous heart rates 60000 / RR (beats/min).
- ``hrv_rmssd``: sqrt(mean((RR[k] - RR[k-1])^2)), ms.
- ``hrv_sdnn``: sample standard deviation of RR (ddof = 1, as neurokit2, hrv-analysis and pyhrv), ms.
- ``hrv_pnn50``: percentage of successive differences larger than 50 ms, out of all successive differences.

Spectra (the ONE configuration used everywhere, since peers differ by up to a third in LF/HF from these choices
alone): beat times are the cumulative RR (s); the tachogram (RR in ms at each beat's end) is interpolated with a
not-a-knot cubic spline at ``RESAMPLE_HZ`` = 4 Hz.

- ``hrv_frequency``: Welch's method on the 4 Hz series, Hann window of 256 samples (64 s; the whole series when
  shorter), 50 % overlap, each segment linearly detrended, one-sided density, zero-padded to 1024 points; band
  powers (ms^2) by trapezoidal integration over Task Force (1996) bands LF 0.04-0.15 Hz, HF 0.15-0.40 Hz
  (lower edge included, upper excluded). ``hrv_lf_hf`` = LF / HF.
- ``hrv_coherence`` (HeartMath-style coherence ratio, McCraty et al. 2009): the last 64 s of the 4 Hz series,
  linearly detrended, Hann-windowed periodogram zero-padded to 1024 points; the peak is the highest bin in
  0.04-0.26 Hz; peak power = power within +-0.015 Hz of it (a 0.030 Hz window); total power = power in
  0.0033-0.4 Hz; coherence = peak / (total - peak). 0 means no dominant rhythm; a clean 0.1 Hz rhythm scores
  well above 1 (higher = more coherent; HeartMath's published scores are this ratio, often on a log scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import periodogram, welch

RESAMPLE_HZ = 4.0
WELCH_SEGMENT = 256
N_FFT = 1024
LF_BAND_HZ = (0.04, 0.15)
HF_BAND_HZ = (0.15, 0.40)
COHERENCE_WINDOW_S = 64.0
COHERENCE_PEAK_BAND_HZ = (0.04, 0.26)
COHERENCE_PEAK_HALF_WIDTH_HZ = 0.015
COHERENCE_TOTAL_BAND_HZ = (0.0033, 0.4)


def hrv_mean_hr(rr_ms: np.ndarray) -> float:
    """Mean instantaneous heart rate, beats/min, of RR intervals in ms."""
    return float(np.mean(60000.0 / np.asarray(rr_ms, dtype=float)))


def hrv_rmssd(rr_ms: np.ndarray) -> float:
    """Root mean square of successive differences, ms (needs at least 2 intervals)."""
    return float(np.sqrt(np.mean(np.diff(np.asarray(rr_ms, dtype=float)) ** 2)))


def hrv_sdnn(rr_ms: np.ndarray) -> float:
    """Sample standard deviation (ddof = 1) of RR intervals, ms (needs at least 2 intervals)."""
    return float(np.std(np.asarray(rr_ms, dtype=float), ddof=1))


def hrv_pnn50(rr_ms: np.ndarray) -> float:
    """Percentage (0-100) of successive RR differences larger than 50 ms (needs at least 2 intervals)."""
    return float(100.0 * np.mean(np.abs(np.diff(np.asarray(rr_ms, dtype=float))) > 50.0))


def hrv_time(rr_ms: np.ndarray) -> dict[str, float]:
    """All time-domain values of a clean RR series (ms, at least 2 intervals), keyed by their function names."""
    if len(rr_ms) < 2:
        raise ValueError(f"{len(rr_ms)} RR intervals: time-domain HRV needs at least 2")
    return {f.__name__: f(rr_ms) for f in (hrv_mean_hr, hrv_rmssd, hrv_sdnn, hrv_pnn50)}


def resample_tachogram(beat_times_s: np.ndarray, rr_ms: np.ndarray, fs: float = RESAMPLE_HZ) -> np.ndarray:
    """RR (ms) at ``fs`` Hz from ``beat_times_s[0]``: cubic spline through (beat end time, RR ending there)."""
    grid = np.arange(beat_times_s[0], beat_times_s[-1], 1.0 / fs)
    return CubicSpline(beat_times_s, rr_ms, bc_type="not-a-knot")(grid)


def _band_power(freqs: np.ndarray, psd: np.ndarray, band: tuple[float, float]) -> float:
    inside = (freqs >= band[0]) & (freqs < band[1])
    return float(np.trapezoid(psd[inside], freqs[inside])) if inside.sum() > 1 else 0.0


def hrv_frequency(rr_ms: np.ndarray) -> dict[str, float]:
    """LF and HF power (ms^2) and LF/HF of a clean RR series (ms) spanning at least 30 s; see the module docstring.

    Task Force (1996) asks for at least 2 min for LF; shorter spans return numbers with less LF resolution.
    """
    rr = np.asarray(rr_ms, dtype=float)
    times = np.cumsum(rr) / 1000.0
    if len(rr) < 4 or times[-1] - times[0] < 30.0:
        raise ValueError("RR series spans under 30 s: LF/HF needs at least 30 s (2 min recommended)")
    series = resample_tachogram(times, rr)
    segment = min(WELCH_SEGMENT, len(series))
    freqs, psd = welch(series, fs=RESAMPLE_HZ, window="hann", nperseg=segment, noverlap=segment // 2,
                       nfft=N_FFT, detrend="linear", scaling="density")
    lf = _band_power(freqs, psd, LF_BAND_HZ)
    hf = _band_power(freqs, psd, HF_BAND_HZ)
    return {"hrv_lf": lf, "hrv_hf": hf, "hrv_lf_hf": lf / hf if hf > 0 else math.inf}


@dataclass(frozen=True, slots=True)
class Coherence:
    """HeartMath-style coherence ratio and the frequency (Hz) of the peak it was measured around."""

    hrv_coherence: float
    peak_hz: float


def hrv_coherence(rr_ms: np.ndarray) -> Coherence:
    """Coherence ratio of the last 64 s of a clean RR series (ms); ValueError when it spans less than 64 s."""
    rr = np.asarray(rr_ms, dtype=float)
    times = np.cumsum(rr) / 1000.0
    if len(rr) < 4 or times[-1] - times[0] < COHERENCE_WINDOW_S:
        raise ValueError("RR series spans under 64 s: coherence needs a full 64 s window")
    series = resample_tachogram(times, rr)[-int(COHERENCE_WINDOW_S * RESAMPLE_HZ):]
    freqs, psd = periodogram(series, fs=RESAMPLE_HZ, window="hann", nfft=N_FFT, detrend="linear")
    df = freqs[1] - freqs[0]
    search = (freqs >= COHERENCE_PEAK_BAND_HZ[0]) & (freqs <= COHERENCE_PEAK_BAND_HZ[1])
    peak_hz = float(freqs[search][np.argmax(psd[search])])
    peak = psd[np.abs(freqs - peak_hz) <= COHERENCE_PEAK_HALF_WIDTH_HZ].sum() * df
    total = psd[(freqs >= COHERENCE_TOTAL_BAND_HZ[0]) & (freqs <= COHERENCE_TOTAL_BAND_HZ[1])].sum() * df
    rest = total - peak
    return Coherence(float(peak / rest) if rest > 0 else math.inf, peak_hz)
