"""The streaming estimator: beats (and, from a Polar H10, ECG and ACC samples) in, a ``PhysioState`` per beat out.

Definitions used for ``PhysioState`` (values as of the latest beat; t is the time passed to ``state(t)``):

Segment. Only beats since the last ``after_gap`` beat count: no window spans a gap. The gap beat starts the new
segment. ECG or ACC chunks more than ``MAX_SAMPLE_GAP_S`` after the previous one restart their own filters.

Artifacts (``biosignals.artifacts``, Lipponen & Tarvainen 2019). On every new beat the last ``KEEP_S`` (150 s)
of the segment are classified and corrected; ``artifact_percent`` = flagged beats among those that ended in
the last 60 s. Every value below uses the corrected series on its RR time axis (cumulative corrected RR from
the start of the first interval, anchored at the least-delayed arrival, see ``respiration.rr_time_axis``).

- ``heart_rate_bpm``: 60000 / mean corrected RR over the last 10 s; None with fewer than 3 intervals.
- ``rr_ms``: the latest corrected RR.
- ``rmssd_ms``, ``sdnn_ms`` (ddof = 1), ``pnn50`` (``biosignals.hrv``): last 60 s, at least 20 intervals.
- ``lf_power_ms2``, ``hf_power_ms2``, ``lf_hf``: ``hrv.hrv_frequency`` over the last 120 s (Task Force's minimum
  for LF); None until the segment spans 120 s.
- ``coherence``, ``coherence_peak_hz``: ``hrv.hrv_coherence`` over the last 64 s, recomputed every 5 s of beats;
  None until the segment spans 64 s.
- Breathing: the sources' 60 s series (``biosignals.respiration``: RR on every beat, ECG R-peak amplitude when
  new R peaks came, chest ACC at most once a second) go to the gated tracker (``biosignals.breathing``) with
  their quality weights and the breath guide the music plays (``set_guide``), whenever one of them changes. It gives
  ``breathing_rate_bpm`` + ``breathing_confidence``, ``breath_phase`` + ``breath_phase_confidence`` (advanced
  at the tracked rate from the update to ``t``), ``breathing_source`` (the sources that agreed),
  ``breathing_method`` ("guide", "spectral" or "held") and ``following_guide`` with ``following_basis``
  ("rr only" when neither ECG nor ACC streams).
- ``rsa_amplitude_bpm``: peak-to-trough heart-rate swing of the RR sinusoid fitted at the tracked rate (bpm),
  from the previous update (it sets the RR weight of the next one).
- ``signal_quality``, ``quality_issues``: ``biosignals.quality``; HRV values are None when it says so, RR-based
  breathing gets weight 0 with low RSA.
- Stale: when no beat arrived for ``STALE_S`` (5 s) every beat-derived value is None.

Cost: per beat, artifact correction and spectra over at most 150 s of beats (~ a few hundred intervals); per
ECG/ACC chunk, O(chunk) filtering; ``state(t)`` only evaluates the cached fit at t, so it is cheap to call
every audio block.
"""
from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

from biosignals import hrv
from biosignals.artifacts import correct_rr
from biosignals.ecg import RPeak, RPeakDetector
from biosignals.quality import SignalQuality, assess_quality
from biosignals.breathing import BreathingReading, BreathingTracker
from biosignals.guide import GuideHistory
from biosignals.respiration import WINDOW_S, AccRespiration, BreathSeries, edr_series, rr_series, rr_time_axis
from biosignals.types import Beat, PhysioState

HR_WINDOW_S = 10.0
HRV_WINDOW_S = 60.0
LF_HF_WINDOW_S = 120.0
KEEP_S = 150.0
COHERENCE_EVERY_S = 5.0
ACC_EVERY_S = 1.0
STALE_S = 5.0
MIN_HR_BEATS = 3
MIN_HRV_BEATS = 20
MAX_SAMPLE_GAP_S = 1.0


class PhysioEstimator:
    """Feed beats (``add_beat``), ECG (``add_ecg``) and ACC (``add_acc``) in time order; ask ``state(t)`` any time."""

    def __init__(self, ecg_rate_hz: float = 130.0, acc_rate_hz: float = 200.0) -> None:
        self._beats: collections.deque[Beat] = collections.deque()
        self._dirty = False
        self._contact: bool | None = None
        self._ecg = RPeakDetector(ecg_rate_hz)
        self._ecg_last_t: float | None = None
        self._r_peaks: collections.deque[tuple[float, float]] = collections.deque()
        self._ecg_series_peak: tuple[float, float] | None = None  # the newest R peak in the ECG series
        self._acc = AccRespiration(acc_rate_hz)
        self._acc_last_t: float | None = None
        self._acc_estimate_t = -math.inf
        self._tracker = BreathingTracker()
        self._guide = GuideHistory()
        self._series: dict[str, BreathSeries | None] = {"rr": None, "ecg": None, "acc": None}
        self._breathing_due = False
        self._reading: BreathingReading | None = None
        self._reading_t = 0.0
        self._rsa_amplitude_bpm: float | None = None
        self._mean_rr_ms = 0.0
        self._tracked_with: tuple | None = None  # (sources with a series, quality weights) of the last update
        self._stuck: tuple[int, ...] = ()
        self._coherence: hrv.Coherence | None = None
        self._coherence_t = -math.inf
        self._values: dict = {}
        self._quality: SignalQuality | None = None

    # -- inputs -----------------------------------------------------------------------------------
    def add_beat(self, beat: Beat) -> None:
        """Add one beat; an ``after_gap`` beat discards everything before it (a new segment starts)."""
        if beat.after_gap:
            self._beats.clear()
            self._coherence, self._coherence_t = None, -math.inf
        self._beats.append(beat)
        while self._beats[0].t < beat.t - KEEP_S:
            self._beats.popleft()
        self._dirty = True

    def set_contact(self, contact: bool | None) -> None:
        """Skin contact as the strap reports it (``BeatTimeline.contact``); None when it cannot tell."""
        self._contact = contact

    def add_ecg(self, samples_uv: np.ndarray, times_s: np.ndarray, r_peaks: Sequence[RPeak] | None = None) -> None:
        """Add an ECG chunk (µV, one host time in s per sample, e.g. a decoded PMD frame at 130 Hz). ``r_peaks``:
        the chunk's R peaks when the caller already detected them (``PacketDecoder`` does), else found here."""
        if len(times_s) == 0:
            return
        if self._ecg_last_t is not None and times_s[0] - self._ecg_last_t > MAX_SAMPLE_GAP_S:
            self._ecg.reset()
            self._r_peaks.clear()
        self._ecg_last_t = float(times_s[-1])
        for peak in self._ecg.add(samples_uv, times_s) if r_peaks is None else r_peaks:
            self._r_peaks.append((peak.t, peak.amplitude_uv))
        while self._r_peaks and self._r_peaks[0][0] < self._ecg_last_t - WINDOW_S:
            self._r_peaks.popleft()

    def set_guide(self, rate_bpm: float | None, phase: float | None, t: float) -> None:
        """The breath guide the listener hears at host time ``t`` (s): rate (breaths/min) and phase (0-1, 0 = start
        of inhale), None when no guide plays. Call it as the guide plays (every audio block is fine)."""
        self._guide.set(rate_bpm, phase, t)

    def add_acc(self, samples_mg: np.ndarray, times_s: np.ndarray) -> None:
        """Add an ACC chunk: (n, 3) mg with one host time in s per sample (a decoded PMD frame at 200 Hz)."""
        if len(times_s) == 0:
            return
        if self._acc_last_t is not None and times_s[0] - self._acc_last_t > MAX_SAMPLE_GAP_S:
            self._acc.reset()
        self._acc_last_t = float(times_s[-1])
        self._acc.add(samples_mg, times_s)

    # -- per-beat work ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        beats = self._beats
        arrival = np.fromiter((b.t for b in beats), float, len(beats))
        raw = np.fromiter((b.rr_ms for b in beats), float, len(beats))
        t_last = arrival[-1]
        corrected = correct_rr(raw)
        rr = corrected.rr_ms
        axis = rr_time_axis(arrival, raw)
        times = axis[0] - raw[0] / 1000.0 + np.cumsum(rr) / 1000.0
        in_minute = arrival > t_last - HRV_WINDOW_S
        artifact_percent = 100.0 * corrected.flagged[in_minute].sum() / in_minute.sum()

        values: dict = {"rr_ms": float(rr[-1]), "artifact_percent": artifact_percent}
        recent = rr[times > t_last - HR_WINDOW_S]
        values["heart_rate_bpm"] = 60000.0 / recent.mean() if len(recent) >= MIN_HR_BEATS else None
        window = rr[times > t_last - HRV_WINDOW_S]
        values["beats_in_window"] = len(window)
        if len(window) >= MIN_HRV_BEATS:
            values.update(rmssd_ms=hrv.hrv_rmssd(window), sdnn_ms=hrv.hrv_sdnn(window), pnn50=hrv.hrv_pnn50(window))
        span = times[-1] - (times[0] - rr[0] / 1000.0)
        if span >= LF_HF_WINDOW_S:
            bands = hrv.hrv_frequency(rr[times > t_last - LF_HF_WINDOW_S])
            values.update(lf_power_ms2=bands["hrv_lf"], hf_power_ms2=bands["hrv_hf"], lf_hf=bands["hrv_lf_hf"])
        if span >= hrv.COHERENCE_WINDOW_S and t_last - self._coherence_t >= COHERENCE_EVERY_S:
            try:
                self._coherence = hrv.hrv_coherence(rr[times > t_last - hrv.COHERENCE_WINDOW_S - 5.0])
                self._coherence_t = t_last
            except ValueError:  # the corrected series is a beat short of 64 s: wait for the next beat
                pass
        if span < hrv.COHERENCE_WINDOW_S:
            self._coherence = None

        in_breath = times > t_last - WINDOW_S
        self._series["rr"] = rr_series(times[in_breath], rr[in_breath])
        self._mean_rr_ms = float(rr[in_breath].mean())
        self._values = values
        self._dirty = False
        self._breathing_due = True

    def _refresh_samples(self, t: float) -> None:
        """ECG and ACC breathing series; ACC at most once per ``ACC_EVERY_S``."""
        newest = self._r_peaks[-1] if self._r_peaks else None
        if newest != self._ecg_series_peak:  # a new series only with new R peaks: the tracker keeps its analysis
            peaks = np.asarray(self._r_peaks) if len(self._r_peaks) >= 10 else None
            self._series["ecg"] = None if peaks is None else edr_series(peaks[:, 0], peaks[:, 1])
            self._ecg_series_peak = newest
        if self._acc_last_t is not None and t - self._acc_estimate_t >= ACC_EVERY_S:
            self._stuck = self._acc.stuck_axes()
            self._series["acc"] = self._acc.series(self._stuck)
            self._acc_estimate_t = t
        self._breathing_due = True

    def _track_breathing(self, t: float, series: dict[str, BreathSeries | None], weights: dict[str, float]) -> None:
        self._reading = self._tracker.update(list(series.values()), t, weights, self._guide)
        self._reading_t = t
        amplitude = self._tracker.rsa_amplitude
        self._rsa_amplitude_bpm = None if amplitude is None else 60000.0 * 2.0 * amplitude / self._mean_rr_ms ** 2
        self._breathing_due = False

    # -- output -----------------------------------------------------------------------------------
    def state(self, t: float) -> PhysioState:
        """The estimated state at host time ``t`` (s) from everything added so far; see the module docstring."""
        if self._dirty:
            self._refresh()
            self._refresh_samples(t)
        elif self._acc_last_t is not None and t - self._acc_estimate_t >= ACC_EVERY_S:
            self._refresh_samples(t)
        fresh_beats = bool(self._beats) and t - self._beats[-1].t <= STALE_S
        values = self._values if fresh_beats else {}
        series = dict(self._series)
        if not fresh_beats:
            series["rr"] = None
        if self._ecg_last_t is None or t - self._ecg_last_t > STALE_S:
            series["ecg"] = None
        if self._acc_last_t is None or t - self._acc_last_t > STALE_S:
            series["acc"] = None
        if not values and not any(s is not None for s in series.values()):
            return PhysioState(t=t, contact=self._contact,
                               quality_issues=("no_contact",) if self._contact is False else ())

        rsa = self._rsa_amplitude_bpm if fresh_beats else None
        quality = assess_quality(contact=self._contact, artifact_percent=values.get("artifact_percent"),
                                 stuck_axes=self._stuck if series["acc"] is not None or self._stuck else (),
                                 rsa_amplitude_bpm=rsa)
        available = (tuple(k for k, v in series.items() if v is not None), quality.weights)
        if self._breathing_due or available != self._tracked_with:
            self._track_breathing(t, series, quality.weights)
            self._tracked_with = available
        reading = self._reading
        hrv_values = {}
        if quality.hrv_ok and values:
            hrv_values = {k: values.get(k) for k in ("rmssd_ms", "sdnn_ms", "pnn50", "lf_power_ms2", "hf_power_ms2", "lf_hf")}
            if self._coherence is not None:
                hrv_values.update(coherence=self._coherence.hrv_coherence, coherence_peak_hz=self._coherence.peak_hz)
        beat_values = {k: values.get(k) for k in ("heart_rate_bpm", "rr_ms", "artifact_percent")}
        beat_values["rsa_amplitude_bpm"] = rsa
        if self._contact is False:
            beat_values = {}
        return PhysioState(
            t=t,
            **beat_values,
            **hrv_values,
            beats_in_window=values.get("beats_in_window", 0),
            breathing_rate_bpm=reading.rate_bpm if reading else None,
            breathing_confidence=reading.confidence if reading else 0.0,
            breath_phase=(reading.phase + reading.rate_bpm / 60.0 * (t - self._reading_t)) % 1.0 if reading else None,
            breath_phase_confidence=reading.phase_confidence if reading else 0.0,
            breathing_source="+".join(reading.sources) if reading else None,
            breathing_method=reading.method if reading else None,
            following_guide=reading.following if reading else None,
            following_basis=reading.following_basis if reading else None,
            contact=self._contact,
            signal_quality=quality.score,
            quality_issues=quality.issues,
        )


class RRStateEstimator(PhysioEstimator):
    """The beats-only estimator the session engine uses (``add_beat`` + ``state``); same definitions."""
