"""Breathing validation scenarios on the virtual listener (with its VLF and Mayer waves), shared by tests and benchmarks.

Each scenario drives a ``VirtualListener`` with a guide plan, sends its beats as BLE Heart Rate Measurement
bytes (``VirtualStrap``) through the real ``PacketDecoder`` into a ``PhysioEstimator`` that is told the guide
(as the session engine does), optionally with chest ACC (breathing tilts the strap 3 degrees, 200 Hz, 3 mg
noise) and chest ECG (``chest_ecg_uv`` at 130 Hz, 8 µV noise, sent 1 s late as a strap's PMD frames are, with a
chosen depth of the R waves' breathing modulation: 0 leaves only noise in the ECG-derived respiration), and
samples the state once a second after the first minute. Truth: the listener's breathing rate
averaged over the last ``TRUTH_S`` seconds (the estimate describes a window, not an instant) and its phase.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from biosignals.estimator import PhysioEstimator
from biosignals.packet_decoder import PacketDecoder
from biosignals.physiology import VirtualListener, chest_ecg_uv
from biosignals.sources.virtual import VirtualStrap
from biosignals.types import Beat

STEP_S = 0.1
ACC_HZ = 200.0
ECG_HZ = 130.0
ECG_DELAY_S = 1.0
TRUTH_S = 20.0
WARM_UP_S = 60.0


@dataclass
class ScenarioRun:
    """Per-second samples after the warm-up: time, guide rate (nan = none), true rate, estimate, confidence,
    phase error (cycles), following flag (nan = None), the method, and the last following basis."""

    t: np.ndarray
    guide: np.ndarray
    truth: np.ndarray
    rate: np.ndarray
    confidence: np.ndarray
    phase_error: np.ndarray
    following: np.ndarray
    method: list[str]
    basis: str | None = None

    @property
    def error(self) -> np.ndarray:
        return np.abs(self.rate - self.truth)


def run_scenario(guide_at: Callable[[float], float | None], duration_s: float, seed: int, *, acc: bool = False,
                 ecg_modulation: float | None = None, **listener_options) -> ScenarioRun:
    """Simulate ``duration_s`` seconds; ``guide_at(t)`` is the guide rate (breaths/min, None = no guide) at t;
    ``ecg_modulation`` (None = no ECG) the R waves' breathing modulation; ``listener_options`` go to
    ``VirtualListener`` (e.g. ``spontaneous_rate_bpm``, ``follows_guide``)."""
    listener = VirtualListener(seed=seed, **listener_options)
    beats: list[float] = []
    advance = listener.advance

    def advance_keeping_beats(t: float) -> list[float]:
        fired = advance(t)
        beats.extend(fired)
        return fired

    listener.advance = advance_keeping_beats  # the strap advances the listener; the ECG needs its beats too
    strap = VirtualStrap(listener, seed=seed)
    decoder, estimator = PacketDecoder(), PhysioEstimator()
    rng = np.random.default_rng([seed, 7])
    chest_times, chest_history = [0.0], [listener.chest_expansion]
    ecg_sent = 0  # ECG samples sent so far
    guide_phase, history = 0.0, []
    rows, basis = [], None
    for i in range(1, int(duration_s / STEP_S) + 1):
        t = i * STEP_S
        rate = guide_at(t)
        if rate is not None:
            guide_phase = (guide_phase + rate / 60.0 * STEP_S) % 1.0
        listener.set_pacer(rate, guide_phase if rate is not None else None)
        estimator.set_guide(rate, guide_phase if rate is not None else None, t)
        chest_before = listener.chest_expansion
        for packet in strap.packets_until(t):
            for item in decoder.feed(packet):
                if isinstance(item, Beat):
                    estimator.add_beat(item)
        history.append(listener.breathing_rate_bpm)
        chest_times.append(t)
        chest_history.append(listener.chest_expansion)
        if ecg_modulation is not None and t >= ECG_DELAY_S:
            times = np.arange(ecg_sent, int((t - ECG_DELAY_S) * ECG_HZ) + 1) / ECG_HZ
            ecg_sent += len(times)
            breath = np.interp(times, chest_times[-30:], chest_history[-30:])
            values = [chest_ecg_uv(u, beats[-4:], b, ecg_modulation) for u, b in zip(times.tolist(), breath.tolist())]
            estimator.add_ecg(np.asarray(values) + rng.normal(0.0, 8.0, len(times)), times)
        if acc:
            times = t - STEP_S + np.arange(1, int(ACC_HZ * STEP_S) + 1) / ACC_HZ
            chest = np.interp(times, [t - STEP_S, t], [chest_before, listener.chest_expansion])
            tilt = np.radians(4.0 + 3.0 * (chest - 0.5))
            xyz = np.column_stack([-1000.0 * np.cos(tilt), np.full(len(times), 20.0), 1000.0 * np.sin(tilt)])
            estimator.add_acc(np.round(xyz + rng.normal(0.0, 3.0, xyz.shape)), times)
        if t >= WARM_UP_S and i % round(1.0 / STEP_S) == 0:
            s = estimator.state(t)
            if s.breathing_rate_bpm is None:
                continue
            truth = float(np.mean(history[-int(TRUTH_S / STEP_S):]))
            following = np.nan if s.following_guide is None else float(s.following_guide)
            basis = s.following_basis or basis
            rows.append((t, np.nan if rate is None else rate, truth, s.breathing_rate_bpm, s.breathing_confidence,
                         (s.breath_phase - listener.breath_phase + 0.5) % 1.0 - 0.5, following, s.breathing_method))
    columns = list(zip(*rows))
    return ScenarioRun(*(np.array(c, dtype=float) for c in columns[:7]), method=list(columns[7]), basis=basis)


def settle_time(run: ScenarioRun, step_s: float, end_s: float, tolerance_bpm: float = 0.3) -> float:
    """Seconds after a guide step at ``step_s`` until the estimate stays within ``tolerance_bpm`` of the new
    guide rate up to ``end_s`` (inf when it never does)."""
    inside = (run.t >= step_s) & (run.t < end_s)
    off = np.flatnonzero(np.abs(run.rate[inside] - run.guide[inside]) > tolerance_bpm)
    if len(off) == 0:
        return 0.0
    if off[-1] == inside.sum() - 1:
        return np.inf
    return float(run.t[inside][off[-1] + 1] - step_s)


def glide(start: float, end: float, begin_s: float, per_min: float, *, off_before: bool = False):
    """A guide plan: ``start`` until ``begin_s`` (None there when ``off_before``), then ``per_min``/min to ``end``."""
    def guide_at(t: float) -> float | None:
        if t < begin_s:
            return None if off_before else start
        step = per_min * (t - begin_s) / 60.0
        return max(end, start - step) if end < start else min(end, start + step)
    return guide_at


def steps(rates: tuple[float, ...], each_s: float):
    """A guide plan of constant rates, ``each_s`` seconds each (the resonance assessment's steps)."""
    return lambda t: rates[min(int(t // each_s), len(rates) - 1)]


SCENARIOS = {  # name -> (guide plan, duration s, listener keyword arguments)
    "spontaneous 15, then guided to 6": (glide(15.0, 6.0, 120.0, 2.0, off_before=True), 480.0,
                                         {"spontaneous_rate_bpm": 15.0}),
    "guided 6.5 -> 4.5 in 0.5 steps": (steps((6.5, 6.0, 5.5, 5.0, 4.5), 120.0), 600.0, {}),
    "no guide, 11-27/min": (lambda t: None, 240.0, {}),  # run once per rate in NO_GUIDE_RATES
    "guide 6, listener stays at 14": (lambda t: 6.0, 300.0, {"spontaneous_rate_bpm": 14.0, "follows_guide": False}),
}
NO_GUIDE_RATES = (11.0, 15.0, 19.0, 23.0, 27.0)
