"""Streaming causal R-peak detector (Pan-Tompkins-like) for chest ECG in µV, with R amplitudes for ECG-derived respiration.

Pipeline, all state carried across chunks so any chunking gives the same peaks:

1. Band-pass 5-15 Hz (2nd-order Butterworth sections, causal, ``sosfilt`` with carried state).
2. Five-point derivative, squaring, and a 150 ms moving-window integral (MWI).
3. Each MWI hump (from a rise until it falls below half its maximum) is a candidate: a QRS when its maximum
   exceeds ``threshold = NPKI + 0.25 (SPKI - NPKI)`` and at least ``REFRACTORY_S`` (250 ms) passed since the last
   R; a candidate within 360 ms of the last R and under half of that R's hump is taken as a T wave. SPKI/NPKI are
   running averages (1/8 new) of QRS and noise humps, started from the first 2 s. When no QRS came for 1.66 mean
   RR, the largest noise hump since the last R above half the threshold is taken (search-back).
4. The R peak is the largest raw sample in the 250 ms before the hump's maximum (the MWI lags the R by the
   filter and window delays); its amplitude is that sample minus the mean of the PR segment 120-70 ms before it.

Detection latency: the hump must fall, about 0.2-0.3 s after the R peak. Cost: O(chunk) vectorised filtering plus
a light per-sample loop.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

BAND_HZ = (5.0, 15.0)
MWI_S = 0.150
REFRACTORY_S = 0.25
T_WAVE_S = 0.36
LEARN_S = 2.0
SEARCH_BACK_FACTOR = 1.66
R_SEARCH_S = 0.25
PR_BASELINE_S = (0.12, 0.07)


@dataclass(frozen=True, slots=True)
class RPeak:
    """One detected R peak: its sample time (s) and amplitude above the PR baseline (µV)."""

    t: float
    amplitude_uv: float


class RPeakDetector:
    """Feed ECG chunks in time order with ``add(samples_uv, times_s)``; each call returns the R peaks it confirmed."""

    def __init__(self, sample_rate_hz: float = 130.0) -> None:
        if not 100.0 <= sample_rate_hz <= 2000.0:
            raise ValueError(f"ECG rate {sample_rate_hz} Hz is outside 100-2000 Hz: the H10 streams 130 Hz")
        self.fs = sample_rate_hz
        self._sos = butter(2, BAND_HZ, btype="bandpass", fs=sample_rate_hz, output="sos")
        self._zi: np.ndarray | None = None
        self._mwi_n = max(1, round(MWI_S * sample_rate_hz))
        keep = int(round((R_SEARCH_S + PR_BASELINE_S[0] + 0.1) * sample_rate_hz)) + self._mwi_n
        self._raw: collections.deque[float] = collections.deque(maxlen=keep)
        self._time: collections.deque[float] = collections.deque(maxlen=keep)
        self._bp_tail = np.zeros(4)
        self._sq_tail = np.zeros(self._mwi_n - 1)
        self._n = 0  # samples seen
        self._learn: list[float] = []
        self._spki = self._npki = 0.0
        self._hump_max = 0.0
        self._hump_t = 0.0
        self._hump_index = 0
        self._last_r_t: float | None = None
        self._last_r_hump = 0.0
        self._rr_mean: float | None = None
        self._noise_humps: list[tuple[float, float, int]] = []  # (value, time, sample index) since the last R

    def reset(self) -> None:
        """Forget everything (after a gap in the stream)."""
        self.__init__(self.fs)

    def add(self, samples_uv: np.ndarray, times_s: np.ndarray) -> list[RPeak]:
        """Process one chunk of ECG (µV) with per-sample times (s); return the R peaks confirmed by it."""
        x = np.asarray(samples_uv, dtype=float)
        if x.ndim != 1 or len(x) != len(times_s):
            raise ValueError(f"ECG chunk must be 1-D µV with one time per sample, got {x.shape} and {len(times_s)}")
        if len(x) == 0:
            return []
        if self._zi is None:
            self._zi = sosfilt_zi(self._sos) * x[0]
        bp, self._zi = sosfilt(self._sos, x, zi=self._zi)
        ext = np.concatenate([self._bp_tail, bp])
        derivative = (2 * ext[4:] + ext[3:-1] - ext[1:-3] - 2 * ext[:-4]) * (self.fs / 8.0)
        self._bp_tail = ext[-4:]
        squared = np.concatenate([self._sq_tail, derivative ** 2])
        cumulative = np.cumsum(np.concatenate([[0.0], squared]))
        mwi = (cumulative[self._mwi_n:] - cumulative[:-self._mwi_n]) / self._mwi_n
        self._sq_tail = squared[len(squared) - (self._mwi_n - 1):] if self._mwi_n > 1 else self._sq_tail

        peaks = []
        for value, raw, t in zip(mwi.tolist(), x.tolist(), np.asarray(times_s, dtype=float).tolist()):
            self._raw.append(raw)
            self._time.append(t)
            self._n += 1
            if len(self._learn) < LEARN_S * self.fs:
                self._learn.append(value)
                if len(self._learn) >= LEARN_S * self.fs:
                    self._spki = 0.25 * max(self._learn)
                    self._npki = 0.5 * float(np.mean(self._learn))
                continue
            if value > self._hump_max:
                self._hump_max, self._hump_t, self._hump_index = value, t, self._n - 1
            elif value < 0.5 * self._hump_max:
                peak = self._classify(self._hump_max, self._hump_t, self._hump_index)
                if peak is not None:
                    peaks.append(peak)
                self._hump_max = value
            if self._last_r_t is not None and self._rr_mean is not None and self._noise_humps \
                    and t - self._last_r_t > SEARCH_BACK_FACTOR * self._rr_mean:
                peak = self._search_back()
                if peak is not None:
                    peaks.append(peak)
        return peaks

    def _threshold(self) -> float:
        return self._npki + 0.25 * (self._spki - self._npki)

    def _classify(self, hump: float, t: float, index: int) -> RPeak | None:
        since = None if self._last_r_t is None else t - self._last_r_t
        is_t_wave = since is not None and since < T_WAVE_S and hump < 0.5 * self._last_r_hump
        if hump > self._threshold() and (since is None or since > REFRACTORY_S) and not is_t_wave:
            return self._accept(hump, index)
        self._npki = 0.125 * hump + 0.875 * self._npki
        self._noise_humps.append((hump, t, index))
        return None

    def _search_back(self) -> RPeak | None:
        hump, t, index = max(self._noise_humps)
        self._noise_humps.clear()
        if hump > 0.5 * self._threshold() and t - self._last_r_t > REFRACTORY_S:
            return self._accept(hump, index, searched_back=True)
        return None

    def _accept(self, hump: float, index: int, searched_back: bool = False) -> RPeak | None:
        raw = np.asarray(self._raw)
        times = np.asarray(self._time)
        end = len(raw) - (self._n - 1 - index)  # buffer position just after the hump maximum
        start = max(0, end - int(round(R_SEARCH_S * self.fs)))
        if end <= start:
            return None
        r = start + int(np.argmax(raw[start:end]))
        t_r = float(times[r])
        if self._last_r_t is not None and t_r - self._last_r_t <= REFRACTORY_S:
            return None
        base = (times >= t_r - PR_BASELINE_S[0]) & (times <= t_r - PR_BASELINE_S[1])
        baseline = float(raw[base].mean()) if base.any() else float(raw[start:end].min())
        weight = 0.25 if searched_back else 0.125
        self._spki = weight * hump + (1 - weight) * self._spki
        if self._last_r_t is not None:
            rr = t_r - self._last_r_t
            self._rr_mean = rr if self._rr_mean is None else 0.125 * rr + 0.875 * self._rr_mean
        self._last_r_t = t_r
        self._last_r_hump = hump
        self._noise_humps.clear()
        return RPeak(t_r, float(raw[r]) - baseline)
