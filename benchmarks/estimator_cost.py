"""Cost of the whole estimator with every H10 stream (RR + 130 Hz ECG + 200 Hz ACC), as a share of one core in real time.

Run: .venv/bin/python benchmarks/estimator_cost.py [minutes]. Inputs are generated up front (a virtual listener's
beats; ECG and ACC synthesised from its chest expansion) so only the estimator is timed; state(t) is asked every
0.1 s as the session engine does, and told the 6/min breath guide the listener follows (the engine tells it the
guide it plays). Goals: under 1 % of one core; the breathing tracker (``BreathingTracker.update``, run on each
change of a source's series) under 0.2 ms per update on average (issue 13).
"""
import sys
import time

import numpy as np

from biosignals.estimator import PhysioEstimator
from biosignals.physiology import VirtualListener
from biosignals.types import Beat
from tracker_timing import update_seconds as tracker_seconds

try:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
except ValueError:
    sys.exit(f"estimator_cost.py: minutes must be a number, not {sys.argv[1]!r} (e.g. estimator_cost.py 5)")
if not 0.5 <= minutes <= 120:
    sys.exit(f"estimator_cost.py: minutes must be 0.5-120, not {minutes:g}")
duration = minutes * 60.0
listener = VirtualListener(seed=0)
listener.set_pacer(6.0, 0.0)
grid = np.arange(0, duration, listener.dt)
chest, beat_times = [], []
for t in grid:
    beat_times += listener.advance(t)
    chest.append(listener.chest_expansion)
chest = np.array(chest)
beat_times = np.array(beat_times)
rng = np.random.default_rng(0)
te = np.arange(0, duration, 1 / 130.0)
ecg = rng.normal(0, 8, len(te)) + 40 * (np.interp(te, grid, chest) - 0.5)
for b in beat_times:
    near = np.abs(te - b) < 0.1
    ecg[near] += 1100 * np.exp(-0.5 * ((te[near] - b) / 0.011) ** 2)
ta = np.arange(0, duration, 1 / 200.0)
tilt = np.radians(4 + 3 * (np.interp(ta, grid, chest) - 0.5))
acc = np.round(np.column_stack([-1000 * np.cos(tilt), np.full(len(ta), 20.0), 1000 * np.sin(tilt)]) + rng.normal(0, 3, (len(ta), 3)))

events = [(b, "beat", i) for i, b in enumerate(beat_times[1:], 1)]
events += [(te[min(i + 72, len(te) - 1)], "ecg", i) for i in range(0, len(te), 73)]
events += [(ta[min(i + 35, len(ta) - 1)], "acc", i) for i in range(0, len(ta), 36)]
events += [(t, "state", 0) for t in np.arange(0.1, duration, 0.1)]
events.sort(key=lambda e: e[0])

est = PhysioEstimator()
start = time.process_time()
for t, kind, i in events:
    if kind == "beat":
        rr = (beat_times[i] - beat_times[i - 1]) * 1000
        est.add_beat(Beat(float(t), round(rr * 1.024), float(rr)))
    elif kind == "ecg":
        est.add_ecg(ecg[i:i + 73], te[i:i + 73])
    elif kind == "acc":
        est.add_acc(acc[i:i + 36], ta[i:i + 36])
    else:
        est.set_guide(6.0, (6.0 / 60.0 * t) % 1.0, float(t))
        state = est.state(float(t))
cpu = time.process_time() - start
n_beats = len(beat_times) - 1
print(f"{minutes:.0f} min of H10 streams: {n_beats} beats, {len(te)} ECG + {len(ta)} ACC samples, "
      f"{len(np.arange(0.1, duration, 0.1))} state() calls")
print(f"CPU {cpu:.2f} s = {1000 * cpu / n_beats:.2f} ms per beat; ratio to real time {100 * cpu / duration:.3f} % of one core")
print(f"breathing tracker: {len(tracker_seconds)} updates ({len(tracker_seconds) / duration:.2f} a second), "
      f"mean {1000 * np.mean(tracker_seconds):.3f} ms per update (median {1000 * np.median(tracker_seconds):.3f}, "
      f"p90 {1000 * np.percentile(tracker_seconds, 90):.3f}); goal <= 0.2 ms")
print(f"final state: HR {state.heart_rate_bpm:.1f} bpm, breathing {state.breathing_rate_bpm:.2f}/min from {state.breathing_source}"
      f" at confidence {state.breathing_confidence:.2f} ({state.breathing_method}, following {state.following_guide})")
