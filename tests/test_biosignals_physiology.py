"""VirtualListener: determinism, pacer following with lag, RSA resonance, HR baseline, ectopic beats."""
import numpy as np
import pytest

from biosignals.physiology import VirtualListener


def run(listener, until, pace=None, step=0.5, record_from=0.0):
    """Advance in steps like a session engine, re-telling the pacer; return beat times and ground-truth samples."""
    beats, samples = [], []
    t = listener.t
    while t < until:
        t = min(t + step, until)
        if pace is not None:
            listener.set_pacer(pace, (listener.t * pace / 60.0) % 1.0)  # the guide as heard now
        beats += listener.advance(t)
        if t >= record_from:
            samples.append((t, listener.breathing_rate_bpm, listener.breath_phase, listener.heart_rate_bpm,
                            listener.chest_expansion, listener.baseline_hr_bpm))
    return np.array(beats), np.array(samples)


def test_same_seed_same_beats_other_seed_other_beats():
    a, _ = run(VirtualListener(seed=4), 60.0, pace=6.0)
    b, _ = run(VirtualListener(seed=4), 60.0, pace=6.0)
    c, _ = run(VirtualListener(seed=5), 60.0, pace=6.0)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.allclose(a, c)


def test_advance_returns_increasing_beats_up_to_t_only():
    listener = VirtualListener(seed=1)
    first = listener.advance(10.0)
    second = listener.advance(20.0)
    assert all(0 < t <= 10.0 for t in first) and all(10.0 < t <= 20.0 for t in second)
    assert np.all(np.diff(first + second) > 0)
    assert listener.advance(20.0) == []


@pytest.mark.parametrize("pace", [6.0, 12.0])
def test_breathing_follows_the_pacer_and_locks_to_its_phase(pace):
    _, s = run(VirtualListener(seed=2), 300.0, pace=pace, record_from=240.0)
    assert s[:, 1].mean() == pytest.approx(pace, abs=0.5)
    guide = (s[:, 0] * pace / 60.0) % 1.0
    phase_error = (s[:, 2] - guide + 0.5) % 1.0 - 0.5
    assert np.abs(np.mean(phase_error)) < 0.1


def test_breathing_rate_follows_with_a_lag():
    listener = VirtualListener(seed=3, breath_jitter=0.0, rate_wander_bpm=0.0)
    run(listener, 30.0)  # spontaneous, 14/min
    run(listener, 60.0, pace=6.0)
    # first-order lag, 30 s: after 30 s about 6 + 8/e = 8.9, far from both ends
    assert 8.0 < listener.breathing_rate_bpm < 10.0
    run(listener, 300.0, pace=6.0)
    assert listener.breathing_rate_bpm == pytest.approx(6.0, abs=0.3)


def test_spontaneous_rate_without_pacer():
    _, s = run(VirtualListener(seed=6), 240.0, record_from=60.0)
    assert 12.0 < s[:, 1].mean() < 16.0


def test_heart_rate_rises_on_inhale_and_falls_on_exhale():
    _, s = run(VirtualListener(seed=8, mayer_rms_bpm=0.0, vlf_rms_bpm=0.0), 120.0, pace=6.0, step=0.1, record_from=60.0)
    oscillation = s[:, 3] - s[:, 5]
    assert np.corrcoef(oscillation, s[:, 4])[0, 1] > 0.95


def test_rsa_is_largest_near_6_per_minute():
    amplitude = {}
    for pace in (4.0, 6.0, 12.0):
        beats, _ = run(VirtualListener(seed=9), 300.0, pace=pace)
        hr = 60.0 / np.diff(beats[beats > 180.0])
        amplitude[pace] = np.percentile(hr, 95) - np.percentile(hr, 5)
    assert amplitude[6.0] > amplitude[4.0] > amplitude[12.0]
    assert amplitude[6.0] > 2.0 * amplitude[12.0]  # beat noise and the Mayer wave dilute the 9:2.6 RSA ratio


def test_slow_breathing_lowers_the_baseline_toward_resting():
    slow = VirtualListener(seed=10, hr_wander_bpm=0.0)
    normal = VirtualListener(seed=10, hr_wander_bpm=0.0)
    run(slow, 480.0, pace=6.0)
    run(normal, 480.0, pace=14.0)
    assert slow.baseline_hr_bpm == pytest.approx(62.0, abs=1.5)  # resting_hr_bpm after > 4 time constants
    assert normal.baseline_hr_bpm == pytest.approx(72.0, abs=1.0)  # initial_hr_bpm


def test_tempo_pull_is_small_and_only_lowers():
    base, slow_music, fast_music = (VirtualListener(seed=11, hr_wander_bpm=0.0) for _ in range(3))
    slow_music.set_hr_pull(50.0)
    fast_music.set_hr_pull(120.0)
    for listener in (base, slow_music, fast_music):
        run(listener, 600.0, pace=14.0)
    assert 1.5 < base.baseline_hr_bpm - slow_music.baseline_hr_bpm <= 2.01  # capped at max_hr_pull_bpm
    assert fast_music.baseline_hr_bpm == pytest.approx(base.baseline_hr_bpm, abs=1e-9)


def test_ectopic_beats_are_premature_with_a_compensatory_pause():
    beats, _ = run(VirtualListener(seed=12, ectopic_probability=0.05), 600.0, pace=12.0)
    rr = np.diff(beats)
    local = np.median(np.lib.stride_tricks.sliding_window_view(rr, 9), axis=1)
    ratio = rr[4:-4] / local
    premature = np.flatnonzero(ratio < 0.8)
    assert 0.02 < len(premature) / len(rr) < 0.08
    pair = ratio[premature] + ratio[np.minimum(premature + 1, len(ratio) - 1)]
    assert np.median(pair) == pytest.approx(2.0, abs=0.1)  # full compensatory pause


def test_default_ectopic_rate_is_rare():
    beats, _ = run(VirtualListener(seed=13), 1200.0, pace=12.0, step=5.0)
    rr = np.diff(beats)
    local = np.median(np.lib.stride_tricks.sliding_window_view(rr, 9), axis=1)
    assert np.mean(rr[4:-4] / local < 0.8) < 0.015


def test_invalid_inputs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="pass None to remove the guide"):
        VirtualListener().set_pacer(0.0, 0.0)
    with pytest.raises(ValueError, match="inhale_fraction"):
        VirtualListener(inhale_fraction=1.0)
