"""RRStateEstimator: HRV against direct numpy, artifact correction, gap handling, and breathing against the virtual listener's truth."""
import numpy as np
import pytest

from biosignals.beat_timing import BeatTimeline
from biosignals.estimator import RRStateEstimator
from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.sources.virtual import VirtualStrap
from biosignals.types import Beat


def beats_from_rr(rr_ms, t0=0.0, gap_at=None):
    times = t0 + np.cumsum(rr_ms) / 1000.0
    return [Beat(t=float(t), rr_raw=round(r * 1.024), rr_ms=float(r), after_gap=(i == gap_at))
            for i, (t, r) in enumerate(zip(times, rr_ms))]


def estimator_with(beats):
    est = RRStateEstimator()
    for b in beats:
        est.add_beat(b)
    return est


def synthetic_rr(n, seed=0, breath_hz=0.15):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.9
    return 900.0 + 60.0 * np.cos(2 * np.pi * breath_hz * t) + rng.normal(0, 8, n)


def test_hr_rmssd_sdnn_match_direct_numpy():
    rr = synthetic_rr(150)
    beats = beats_from_rr(rr)
    t = beats[-1].t
    state = estimator_with(beats).state(t)
    in_hrv = np.array([b.t > t - 60 for b in beats])
    in_hr = np.array([b.t > t - 10 for b in beats])
    window = rr[in_hrv]
    assert state.rmssd_ms == pytest.approx(np.sqrt(np.mean(np.diff(window) ** 2)), rel=1e-12)
    assert state.sdnn_ms == pytest.approx(np.std(window, ddof=1), rel=1e-12)
    assert state.pnn50 == pytest.approx(100 * np.mean(np.abs(np.diff(window)) > 50), rel=1e-12)
    assert state.heart_rate_bpm == pytest.approx(60000 / rr[in_hr].mean(), rel=1e-12)
    assert state.rr_ms == rr[-1]
    assert state.beats_in_window == in_hrv.sum() and state.artifact_percent == 0.0


def test_ectopic_pair_is_corrected_and_counted():
    rr = synthetic_rr(80, seed=1)
    clean = rr.copy()
    rr[50], rr[51] = 0.7 * rr[50], rr[51] + 0.3 * rr[50]  # premature beat + full compensatory pause
    beats = beats_from_rr(rr)
    state = estimator_with(beats).state(beats[-1].t)
    times = np.array([b.t for b in beats])
    inside = times > times[-1] - 60
    window = clean[inside]
    assert state.rmssd_ms == pytest.approx(np.sqrt(np.mean(np.diff(window) ** 2)), rel=0.1)
    assert state.sdnn_ms == pytest.approx(np.std(window, ddof=1), rel=0.05)
    assert state.artifact_percent == pytest.approx(100 * 2 / inside.sum())  # the pair was flagged
    assert state.beats_in_window == inside.sum()  # corrected, not dropped


def test_windows_never_cross_a_gap():
    rr = synthetic_rr(120, seed=2)
    beats = beats_from_rr(rr, gap_at=100)  # a link drop before beat 100
    est = estimator_with(beats)
    state = est.state(beats[-1].t)
    after = rr[100:]
    assert state.beats_in_window == 20
    assert state.rmssd_ms == pytest.approx(np.sqrt(np.mean(np.diff(after) ** 2)), rel=1e-12)
    assert state.breathing_rate_bpm is None  # 18 s of beats since the gap: too short for breathing

    just_after = estimator_with(beats[:102]).state(beats[101].t)
    assert just_after.heart_rate_bpm is None and just_after.rmssd_ms is None  # 2 beats: too few
    assert just_after.rr_ms == rr[101]


def test_values_are_none_without_enough_beats_or_when_stale():
    est = RRStateEstimator()
    assert est.state(5.0).heart_rate_bpm is None and est.state(5.0).breathing_confidence == 0.0
    beats = beats_from_rr(synthetic_rr(15))
    for b in beats:
        est.add_beat(b)
    state = est.state(beats[-1].t)
    assert state.heart_rate_bpm is not None and state.rmssd_ms is None and state.breathing_rate_bpm is None
    assert est.state(beats[-1].t + 30.0).heart_rate_bpm is None  # no beat in the last 10 s: not guessed


def test_breathing_rate_and_phase_of_a_clean_sinusoid():
    rr = synthetic_rr(120, seed=3, breath_hz=0.15)  # 9 breaths/min
    beats = beats_from_rr(rr)
    est = estimator_with(beats)
    # the RR series is 900 + 60 cos(2 pi f k 0.9 s): RR peaks (HR troughs, inhale starts) where f k 0.9 is whole
    t_trough = beats[-1].t - 0.9 * (((len(rr) - 1) * 0.9 * 0.15) % 1.0) / 0.15
    state = est.state(t_trough)
    assert state.breathing_rate_bpm == pytest.approx(60 * 0.15 * 0.9 / (np.mean(rr) / 1000), abs=0.3)
    assert state.breathing_confidence > 0.8
    phase = est.state(t_trough).breath_phase
    assert min(phase, 1 - phase) < 0.06
    assert est.state(t_trough + 0.5 / 0.15 * 0.9).breath_phase == pytest.approx(0.5, abs=0.06)


def test_noise_without_rhythm_has_low_confidence():
    confidence = []
    for seed in range(10):
        beats = beats_from_rr(900 + np.random.default_rng(seed).normal(0, 30, 120))
        confidence.append(estimator_with(beats).state(beats[-1].t).breathing_confidence)
    assert np.median(confidence) < 0.4  # a clean rhythm scores above 0.8 (test above)


def paced_session(pace, seed, duration=300.0):
    """The session engine's path: strap bytes -> parse -> timeline -> estimator, pacer told (to the listener and,
    as the engine does, to the estimator) every 50 ms."""
    strap = VirtualStrap(seed=seed)
    timeline = BeatTimeline()
    est = RRStateEstimator()
    truth_rate, phase_error = [], []
    for i in range(1, int(duration / 0.05) + 1):
        t = i * 0.05
        strap.listener.set_pacer(pace, (strap.listener.t * pace / 60.0) % 1.0)
        est.set_guide(pace, (t * pace / 60.0) % 1.0, t)
        for p in strap.packets_until(t):
            for beat in timeline.add(p.t_arrival, parse_heart_rate_measurement(p.data)):
                est.add_beat(beat)
        if t > duration - 60.0:
            state = est.state(t)
            truth_rate.append(strap.listener.breathing_rate_bpm)
            phase_error.append((state.breath_phase - strap.listener.breath_phase + 0.5) % 1.0 - 0.5)
    return est.state(duration), float(np.mean(truth_rate)), np.array(phase_error)


@pytest.mark.parametrize("pace", [6.0, 12.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_breathing_rate_matches_the_virtual_listener(pace, seed):
    state, truth, phase_error = paced_session(pace, seed)
    assert abs(state.breathing_rate_bpm - truth) < 1.0
    assert abs(state.breathing_rate_bpm - pace) < 1.0
    assert state.breathing_confidence > 0.5
    assert np.mean(np.abs(phase_error)) < 0.12  # breath phase within about a tenth of a breath
