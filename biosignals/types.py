"""Value types that biosignals produces: decoded notifications, beats, gaps and the physiological state.

Times are host monotonic seconds (``time.monotonic()`` in a live session, simulated seconds since the
session start in an offline one). Sensor clocks are kept apart from host time (see ``beat_timing``).
"""
from __future__ import annotations

from dataclasses import dataclass

RR_UNITS_PER_SECOND = 1024  # Heart Rate Service RR resolution: 1/1024 s


def rr_raw_to_ms(rr_raw: int) -> float:
    """RR interval in 1/1024 s units -> milliseconds."""
    return rr_raw * 1000.0 / RR_UNITS_PER_SECOND


@dataclass(frozen=True, slots=True)
class SensorPacket:
    """One raw notification as it arrived: which characteristic, its bytes, and the host arrival time (s)."""

    t_arrival: float
    characteristic: str  # lower-case 128-bit UUID string, e.g. "00002a37-0000-1000-8000-00805f9b34fb"
    data: bytes


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded Heart Rate Measurement (0x2A37) notification, fields as the Heart Rate Service defines them."""

    heart_rate_bpm: int  # 0-65535; 0 means the strap has no reading (contact lost)
    contact_supported: bool
    contact_detected: bool | None  # None when the strap does not support contact detection
    energy_expended_kj: int | None  # cumulative, present only when flag bit 3 is set
    rr_raw: tuple[int, ...]  # RR intervals in 1/1024 s, oldest first, 0 to 9 per packet

    @property
    def rr_ms(self) -> tuple[float, ...]:
        return tuple(rr_raw_to_ms(v) for v in self.rr_raw)


@dataclass(frozen=True, slots=True)
class Beat:
    """One heart beat: the RR interval that ended at host time ``t`` (s).

    ``after_gap`` is True for the first beat after a dropped link or lost contact: the time between the
    previous beat and this one is unknown, and no HRV window may bridge it.
    """

    t: float
    rr_raw: int  # 1/1024 s, as the strap sent it
    rr_ms: float
    after_gap: bool = False


@dataclass(frozen=True, slots=True)
class PhysioState:
    """The listener's estimated state at time ``t`` (s). A value is None when it cannot be estimated honestly.

    Definitions (windows and formulas) are documented in ``biosignals.estimator`` and the modules it names.
    """

    t: float
    heart_rate_bpm: float | None = None  # mean HR over the last 10 s of beats
    rr_ms: float | None = None  # most recent clean RR interval
    rmssd_ms: float | None = None  # root mean square of successive RR differences, last 60 s
    sdnn_ms: float | None = None  # standard deviation of RR, last 60 s
    breathing_rate_bpm: float | None = None  # breaths per minute: RSA, ECG R amplitude, chest ACC (biosignals.breathing)
    breathing_confidence: float = 0.0  # 0 (no idea) to 1 (clear breathing rhythm)
    breath_phase: float | None = None  # 0-1 within the current breath, 0 = start of inhale
    coherence: float | None = None  # see biosignals.estimator for the formula
    contact: bool | None = None  # strap skin contact, None when the strap cannot tell
    beats_in_window: int = 0  # clean beats in the 60 s HRV window
    artifact_percent: float | None = None  # share of beats corrected or rejected, last 60 s
    pnn50: float | None = None  # % of successive RR differences > 50 ms, last 60 s
    lf_power_ms2: float | None = None  # LF 0.04-0.15 Hz power, last 120 s (biosignals.hrv)
    hf_power_ms2: float | None = None  # HF 0.15-0.40 Hz power, last 120 s
    lf_hf: float | None = None  # LF / HF
    coherence_peak_hz: float | None = None  # frequency of the coherence peak
    rsa_amplitude_bpm: float | None = None  # heart-rate swing at the breathing rhythm, peak to trough
    breathing_source: str | None = None  # sources fused into the breathing values, e.g. "acc+rr"
    breath_phase_confidence: float = 0.0  # 0-1, how far breath_phase can be trusted
    signal_quality: float | None = None  # 0 (unusable) to 1 (clean), None before any input (biosignals.quality)
    quality_issues: tuple[str, ...] = ()  # e.g. ("no_contact",), ("artifacts_high", "low_rsa")
    breathing_method: str | None = None  # "guide" (locked to the breath guide), "spectral" or "held" (biosignals.breathing)
    following_guide: bool | None = None  # True when breathing follows the breath guide; None without a guide
    following_basis: str | None = None  # evidence for following_guide: "acc", "ecg", "acc+ecg" or "rr only"


BREATHING_SURE_CONFIDENCE = 0.3
"""The lowest ``PhysioState.breathing_confidence`` at which a breathing rate is shown as a number; below it every
display says "unsure" (the rate is still recorded, with its confidence).

Chosen from data (``benchmarks/breathing_confidence.py``; table in docs/validation.md, "Which breathing rates are
shown"): the lowest threshold from which every 0.1-wide confidence bin has at least 85 % of its windows within
+-2 breaths/min, both on systole Task1 (RR only, regular windows) and on the simulator scenarios pooled. The bin
just below (0.2-0.3) has 71 % (systole) and 69 % (simulator); the bins from 0.3 up 88-97 % and 90-100 %.
Windows read in the first minute, before the tracker's window is full, are no worse from 0.3 up (90-100 %).
The unguided slow listener (5-7/min) and the listener paced by a guide the estimator is not told (a replayed
recording) are wrong at most confidences they reach; about 2 % of their wrong windows stay above 0.3."""


def breathing_rate_if_sure(rate_bpm: float | None, confidence: float | None) -> float | None:
    """``rate_bpm`` when ``confidence`` reaches ``BREATHING_SURE_CONFIDENCE``, else None (no rate, or unsure)."""
    if rate_bpm is None or (confidence or 0.0) < BREATHING_SURE_CONFIDENCE:
        return None
    return rate_bpm
