"""R-peak detection on real ECG (resampled to the H10's 130 Hz) vs neurokit2, chunk invariance, and resonance."""
import numpy as np
import pytest
from scipy.signal import resample_poly

from biosignals import hrv
from biosignals.ecg import RPeakDetector
from biosignals.physiology import VirtualListener
from biosignals.resonance import assess_resonance, paced_steps
from biosignals.types import Beat
from estimator_data import pyhrv_ecg, pyphysio_medical, systole_task1


def detect(x, chunk):
    t = np.arange(len(x)) / 130.0
    detector, peaks = RPeakDetector(130.0), []
    for i in range(0, len(x), chunk):
        peaks += detector.add(x[i:i + chunk], t[i:i + chunk])
    return np.array([p.t for p in peaks])


@pytest.mark.parametrize("load", ["pyhrv", "pyphysio", "systole"])
def test_r_peaks_match_neurokit2_on_real_ecg(load):
    nk = pytest.importorskip("neurokit2")
    if load == "pyhrv":
        ecg, fs = pyhrv_ecg()
    elif load == "pyphysio":
        data, fs = pyphysio_medical()
        ecg = data[:, 0] * 1000
    else:
        ecg, _, fs = systole_task1(120.0, 180.0)
        ecg = ecg * 1000
    ref = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=int(fs)), sampling_rate=int(fs))[1]["ECG_R_Peaks"] / fs
    ref = ref[(ref > 2.5) & (ref < len(ecg) / fs - 0.5)]  # our detector learns for 2 s; the last beat is unconfirmed
    ours = detect(resample_poly(ecg, 130, int(fs)), 73)
    tp = sum(np.min(np.abs(ours - r)) < 0.05 for r in ref)
    fp = len(ours[(ours > 2.5) & (ours < len(ecg) / fs - 0.5)]) - tp
    assert 2 * tp / (2 * tp + fp + len(ref) - tp) >= 0.98
    if len(ref) > 100:
        ours_rr = np.diff(ours[ours > 2.5]) * 1000
        assert hrv.hrv_mean_hr(ours_rr) == pytest.approx(hrv.hrv_mean_hr(np.diff(ref) * 1000), rel=0.01)
        assert hrv.hrv_rmssd(ours_rr) == pytest.approx(hrv.hrv_rmssd(np.diff(ref) * 1000), rel=0.1)


def test_chunking_does_not_change_the_peaks():
    ecg, _, fs = systole_task1(300.0, 60.0)
    x = resample_poly(ecg * 1000, 130, int(fs))
    a, b = detect(x, 73), detect(x, 7)
    assert len(a) > 50 and np.array_equal(a, b)


@pytest.mark.parametrize("resonance", [4.5, 5.5, 6.5])
def test_resonance_assessment_finds_the_listeners_resonance(resonance):
    listener = VirtualListener(seed=1, resonance_rate_bpm=resonance, rate_lag_s=10.0, rsa_base_bpm=0.0,
                               mayer_rms_bpm=0.2, vlf_rms_bpm=0.2, hr_wander_bpm=0.3)
    steps = paced_steps(60.0)
    beats, last, t = [], None, 0.0
    while t < steps[-1].t_end:
        t += 0.5
        step = next((s for s in steps if s.t_start <= t < s.t_end), None)
        listener.set_pacer(step.rate_bpm if step else 6.5, ((t - step.t_start) * step.rate_bpm / 60) % 1 if step else 0.0)
        for bt in listener.advance(t):
            if last is not None:
                beats.append(Beat(bt, round((bt - last) * 1024), (bt - last) * 1000))
            last = bt
    result = assess_resonance(beats, steps)
    assert abs(result.winner_rate_bpm - resonance) <= 0.5  # one protocol step; the model's resonance is broad
    assert result.criteria == ("peak_trough_bpm", "lf_power_ms2", "coherence", "synchrony")
    assert all(s.synchrony > 0.8 for s in result.steps)  # the model's heart rate follows the chest in phase
