"""Breathing rate from real ECG (our R peaks -> RSA, and R-amplitude EDR) vs a respiration belt: systole Task1 and pyphysio.

Run: .venv/bin/python benchmarks/validate_estimators.py  (downloads the packages into the test-data cache like the tests).
Belt reference: the same spectral estimate (biosignals.respiration.breathing_from_series) on the belt at 10 Hz, 60 s windows every 10 s.
"""
import sys; from pathlib import Path; sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]
import numpy as np
from scipy.signal import resample_poly

from estimator_data import systole_task1, pyphysio_medical
from biosignals.ecg import RPeakDetector
from biosignals.respiration import rsp_from_rr, rsp_from_edr, breathing_from_series, Fusion
def peaks130(ecg, fs):
    x = resample_poly(ecg, 130, int(fs)); t = np.arange(len(x))/130
    d = RPeakDetector(); p=[]
    for i in range(0,len(x),73): p += d.add(x[i:i+73], t[i:i+73])
    return np.array([q.t for q in p]), np.array([q.amplitude_uv for q in p])
def belt_rate(belt, fs, t0, t1):
    b = resample_poly(belt, 10, int(fs)); tb = np.arange(len(b))/10
    sel=(tb>t0)&(tb<=t1)
    return breathing_from_series('belt', tb[sel], b[sel], 10.0)
def evaluate(ecg, belt, fs, name):
    pt, amp = peaks130(ecg, fs)
    rr = np.diff(pt)*1000; tr = pt[1:]
    errs=[]; errs_e=[]; errs_f=[]
    for t1 in np.arange(60, len(ecg)/fs, 10):
        ref = belt_rate(belt, fs, t1-60, t1)
        sel=(tr>t1-60)&(tr<=t1); e = rsp_from_rr(tr[sel], rr[sel])
        sel2=(pt>t1-60)&(pt<=t1); g = rsp_from_edr(pt[sel2], amp[sel2])
        f = Fusion().fuse([e,g], t1)
        errs.append(abs(e.rate_bpm-ref.rate_bpm)); errs_e.append(abs(g.rate_bpm-ref.rate_bpm)); errs_f.append(abs(f.rate_bpm-ref.rate_bpm) if f else np.nan)
        print(round(t1), 'belt %.1f rr %.1f (%.2f) edr %.1f (%.2f) fused %.1f' % (ref.rate_bpm, e.rate_bpm, e.confidence, g.rate_bpm, g.confidence, f.rate_bpm if f else -1))
    print(name, 'MAE rr', np.mean(errs), 'edr', np.mean(errs_e), 'fused', np.nanmean(errs_f))
ecg, belt, fs = systole_task1(120, 300)
evaluate(ecg*1000, belt, fs, 'systole')
m, fs = pyphysio_medical()
evaluate(m[:,0]*1000, m[:,3], fs, 'pyphysio')
