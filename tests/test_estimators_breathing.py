"""Breathing rate and phase vs the virtual listener's truth (RR, chest ACC, ECG and their fusion), and quality rules."""
import numpy as np

from biosignals.beat_timing import BeatTimeline
from biosignals.estimator import PhysioEstimator
from biosignals.heart_rate_measurement import parse_heart_rate_measurement
from biosignals.physiology import VirtualListener
from biosignals.sources.virtual import VirtualStrap

ECG_HZ, ACC_HZ = 130.0, 200.0


def paced_rr_session(pace, seed, duration=240.0):
    """Strap bytes -> parse -> timeline -> estimator; returns (mean |rate error|, phase errors in cycles)."""
    strap = VirtualStrap(seed=seed)
    timeline, est = BeatTimeline(), PhysioEstimator()
    rate_err, phase_err = [], []
    for i in range(1, int(duration / 0.1) + 1):
        t = i * 0.1
        strap.listener.set_pacer(pace, (t * pace / 60.0) % 1.0)
        est.set_guide(pace, (t * pace / 60.0) % 1.0, t)
        for p in strap.packets_until(t):
            for beat in timeline.add(p.t_arrival, parse_heart_rate_measurement(p.data)):
                est.add_beat(beat)
        if t > duration - 60.0 and i % 5 == 0:
            s = est.state(t)
            rate_err.append(abs(s.breathing_rate_bpm - strap.listener.breathing_rate_bpm))
            phase_err.append((s.breath_phase - strap.listener.breath_phase + 0.5) % 1.0 - 0.5)
    return float(np.mean(rate_err)), np.array(phase_err), s


def test_rr_breathing_rate_over_paced_rates_4_to_15():
    errors = [paced_rr_session(pace, seed=7)[0] for pace in (4.0, 6.0, 9.0, 12.0, 15.0)]
    assert np.mean(errors) <= 1.0, errors


def test_rr_breath_phase_within_45_degrees_at_6_per_min():
    _, phase_err, state = paced_rr_session(6.0, seed=3)
    assert np.degrees(2 * np.pi * np.mean(np.abs(phase_err))) <= 45.0
    assert state.breathing_source == "rr" and state.breath_phase_confidence > 0.5


def h10_session(pace, seed, duration=150.0, stuck_axes=(), ecg=True, acc=True):
    """A listener's beats as RR, plus a synthetic H10 ECG (R amplitude follows the chest) and chest ACC (tilt)."""
    rng = np.random.default_rng(seed)
    listener = VirtualListener(seed=seed)
    est = PhysioEstimator()
    beats, last, out = [], None, []
    dt = 0.5
    for i in range(1, int(duration / dt) + 1):
        t = i * dt
        listener.set_pacer(pace, (t * pace / 60.0) % 1.0)
        est.set_guide(pace, (t * pace / 60.0) % 1.0, t)
        chest0 = listener.chest_expansion
        fired = listener.advance(t)
        chest1 = listener.chest_expansion
        te = np.arange(int((t - dt) * ECG_HZ), int(t * ECG_HZ)) / ECG_HZ
        ta = np.arange(int((t - dt) * ACC_HZ), int(t * ACC_HZ)) / ACC_HZ
        if ecg:
            chest_e = np.interp(te, [t - dt, t], [chest0, chest1])
            beats += fired
            x = rng.normal(0, 8, len(te)) + 40 * (chest_e - 0.5)
            for b in beats[-4:]:
                x += (1 + 0.12 * (chest_e - 0.5)) * 1100 * np.exp(-0.5 * ((te - b) / 0.011) ** 2)
                x += 260 * np.exp(-0.5 * ((te - b - 0.28) / 0.055) ** 2)
            est.add_ecg(x, te)
        if acc:
            chest_a = np.interp(ta, [t - dt, t], [chest0, chest1])
            tilt = np.radians(4 + 3 * (chest_a - 0.5))
            xyz = np.column_stack([-1000 * np.cos(tilt), np.full(len(ta), 20.0), 1000 * np.sin(tilt)])
            xyz = np.round(xyz + rng.normal(0, 3, xyz.shape))
            for axis in stuck_axes:
                xyz[:, axis] = 7.0
            est.add_acc(xyz, ta)
        from biosignals.types import Beat
        for b in fired:
            if last is not None:
                est.add_beat(Beat(b, round((b - last) * 1024), (b - last) * 1000))
            last = b
        if t > duration - 40:
            s = est.state(t)
            out.append((s, listener.breathing_rate_bpm, listener.breath_phase))
    return out


def test_acc_and_ecg_fuse_with_rr_at_6_per_min():
    out = h10_session(6.0, seed=2)
    s = out[-1][0]
    assert s.breathing_source == "acc+ecg+rr"
    assert np.mean([abs(st.breathing_rate_bpm - r) for st, r, _ in out]) < 1.0
    phase_err = [abs((st.breath_phase - p + 0.5) % 1 - 0.5) for st, _, p in out]
    assert np.degrees(2 * np.pi * np.mean(phase_err)) <= 45.0


def test_acc_alone_tracks_fast_breathing_where_rsa_is_weak():
    out = h10_session(15.0, seed=4, ecg=False)
    assert np.mean([abs(st.breathing_rate_bpm - r) for st, r, _ in out]) < 1.0


def test_stuck_acc_axis_is_reported_and_the_others_still_used():
    out = h10_session(6.0, seed=5, stuck_axes=(1,), ecg=False)
    s = out[-1][0]
    assert "acc_stuck_axis" in s.quality_issues and s.signal_quality < 1.0
    assert abs(s.breathing_rate_bpm - out[-1][1]) < 1.0


def test_no_contact_gives_none_not_numbers():
    out_est = PhysioEstimator()
    from biosignals.types import Beat
    for k in range(100):
        out_est.add_beat(Beat(0.8 * (k + 1), 819, 800.0 + 20 * np.sin(k)))
    out_est.set_contact(False)
    s = out_est.state(80.0)
    assert s.heart_rate_bpm is None and s.rmssd_ms is None and s.breathing_rate_bpm is None
    assert s.quality_issues == ("no_contact",) and s.signal_quality == 0.0
