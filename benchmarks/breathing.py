"""Breathing rate and "following the guide": the full sweep behind docs/validation.md (issue 13).

Run: .venv/bin/python benchmarks/breathing.py [--quick]   (about 20 minutes on 2 cores; --quick: one seed, about 8)

Real recordings (systole 0.2.3 Task1, pyphysio 4.10.0 medical) replayed through the H10 path
(tests/breathing_recordings.py), 60 s windows every 1 s, errors on the regular windows against the belt's breath
count; simulator scenarios (tests/breathing_scenarios.py) against the virtual listener's truth. Methods:
- tracker: biosignals.breathing as the session runs it (RR only; "+ecg" with PMD ECG frames; "+acc" with ACC);
- before: the previous estimator (linear detrend, Hann, highest peak in 3-30/min of the RR series);
- counting: advanced breath counting (Schaefer & Kratky 2008) alone on the detrended RR series;
- neurokit2: offline, ECG -> ecg_process -> ecg_rsp (EDR from the heart rate) -> rsp_process, rate averaged per window.
Cost: CPU time per tracker update (one per change of a source's series), mean over the run (updates that only
fuse the sources' kept analyses are cheap, those that analyse a new series are not: the mean is the cost per
update as a session pays it); benchmarks/estimator_cost.py measures it at the session engine's cadence.
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

import numpy as np  # noqa: E402

from biosignals import breathing  # noqa: E402
from breathing_recordings import belt_reference, ecg_at_130, r_peak_times, replay  # noqa: E402
from breathing_scenarios import NO_GUIDE_RATES, SCENARIOS, run_scenario  # noqa: E402
from estimator_data import pyphysio_medical, systole_task1  # noqa: E402
from biosignals.artifacts import correct_rr  # noqa: E402
from biosignals.physiology import R_MODULATION  # noqa: E402
from biosignals.respiration import rr_series  # noqa: E402
from tracker_timing import update_seconds  # noqa: E402

STREAMS = (  # (name, chest ACC, ECG R-wave breathing modulation or None)
    ("rr", False, None), ("rr+acc", True, None), ("h10", True, R_MODULATION),
    ("h10 flat EDR", True, 0.0),  # a strap whose R waves do not move with breathing: the EDR is noise
)

GOALS = "goals: RR MAE <= 2.0, >= 65 % within +-2; fused <= 1.5, >= 70 %; paced MAE <= 0.5, phase <= 45 deg; " \
        "false following <= 5 %; confident (>= 0.5) error <= half the rest; <= 0.2 ms per update"


def summary(error: np.ndarray, confidence: np.ndarray | None = None) -> str:
    error = error[np.isfinite(error)]
    text = f"MAE {error.mean():5.2f}  within +-2 {100 * (error <= 2).mean():4.0f} %"
    if confidence is not None and len(confidence) == len(error):
        high, low = error[confidence >= 0.5], error[confidence < 0.5]
        if len(high) and len(low):
            text += f"  conf>=0.5 {100 * len(high) / len(error):3.0f} % of windows, error {high.mean():.2f} vs {low.mean():.2f}"
    return text


def baseline_rates(beat_times: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(before, counting) rates per window end from the R-peak beats directly."""
    rr, times = np.diff(beat_times) * 1000.0, beat_times[1:]
    before, counted = [], []
    for end in ends:
        window = (times > end - 60.0) & (times <= end)
        series = None
        if window.sum() > 10:
            corrected = correct_rr(rr[window]).rr_ms
            axis = times[window][0] - rr[window][0] / 1000.0 + np.cumsum(corrected) / 1000.0
            series = rr_series(axis, corrected)
        if series is None:
            before.append(np.nan)
            counted.append(np.nan)
            continue
        slow = breathing._power(breathing._linear_detrend(series.signal), breathing.SLOW_BAND)
        band = breathing.SLOW_BAND
        before.append(breathing.FREQS_BPM[band][np.argmax(slow[band])])
        rate = breathing.count_breaths(breathing.sp_detrend(series.signal), 4.0)
        counted.append(np.nan if rate is None else rate)
    return np.array(before), np.array(counted)


def neurokit_rates(ecg_mv: np.ndarray, fs: float, ends: np.ndarray) -> np.ndarray:
    import neurokit2 as nk
    signals, _ = nk.ecg_process(np.asarray(ecg_mv, dtype=float), sampling_rate=int(fs))
    edr = nk.ecg_rsp(signals["ECG_Rate"].to_numpy(), sampling_rate=int(fs))
    rsp, _ = nk.rsp_process(edr, sampling_rate=int(fs))
    rate = rsp["RSP_Rate"].to_numpy()
    t = np.arange(len(rate)) / fs
    return np.array([np.nanmean(rate[(t > end - 60.0) & (t <= end)]) for end in ends])


def real_recording(name: str, ecg_mv: np.ndarray, belt: np.ndarray, fs: float) -> None:
    ends = np.arange(60.0, len(ecg_mv) / fs, 1.0)
    reference = belt_reference(belt, fs, ends)
    keep = reference.regular
    print(f"\n{name}: {len(ends)} windows, {keep.sum()} regular")
    for ecg in (False, True):
        update_seconds.clear()
        states = replay(ecg_mv, fs, ends, ecg=ecg)
        rate = np.array([np.nan if s.breathing_rate_bpm is None else s.breathing_rate_bpm for s in states])
        confidence = np.array([s.breathing_confidence for s in states])
        ok = keep & np.isfinite(rate)
        label = "tracker rr+ecg" if ecg else "tracker rr"
        print(f"  {label:16s} {summary(np.abs(rate[ok] - reference.rate[ok]), confidence[ok])}"
              f"  (no estimate in {(keep & ~np.isfinite(rate)).sum()} regular windows)"
              f"  {1000 * np.mean(update_seconds):.2f} ms/update")
    beats = r_peak_times(ecg_at_130(ecg_mv, fs))
    before, counted = baseline_rates(beats, ends)
    print(f"  {'before':16s} {summary(np.abs(before[keep] - reference.rate[keep]))}")
    print(f"  {'counting (RR)':16s} {summary(np.abs(counted[keep] - reference.rate[keep]))}")
    try:
        peer = neurokit_rates(ecg_mv, fs, ends)
        print(f"  {'neurokit2':16s} {summary(np.abs(peer[keep] - reference.rate[keep]))}")
    except Exception as error:  # noqa: BLE001 - the peer is optional; say why it is missing
        print(f"  neurokit2 failed: {error}")


def scenarios(seeds: tuple[int, ...]) -> None:
    print("\nsimulator (virtual listener with VLF 1.8 bpm and Mayer 2.2 bpm RMS), per second after the first minute;"
          " h10 = rr + acc + ecg")
    for name, (plan, duration, listener) in SCENARIOS.items():
        for streams, acc, ecg in STREAMS:
            update_seconds.clear()
            runs = [run_scenario(plan, duration, seed, acc=acc, ecg_modulation=ecg,
                                 **dict(listener, spontaneous_rate_bpm=rate))
                    for seed in seeds for rate in (NO_GUIDE_RATES if name.startswith("no guide") else
                                                   (listener.get("spontaneous_rate_bpm", 14.0),))]
            error = np.concatenate([r.error for r in runs])
            confidence = np.concatenate([r.confidence for r in runs])
            following = np.concatenate([r.following for r in runs])
            phase = np.degrees(2 * np.pi * np.abs(np.concatenate([r.phase_error for r in runs]))).mean()
            flag = f"following {100 * np.nanmean(following):3.0f} %" if np.isfinite(following).any() else "no guide"
            print(f"  {name:34s} {streams:12s} {summary(error, confidence)}  phase {phase:3.0f} deg"
                  f"  {flag}  {1000 * np.mean(update_seconds):.2f} ms/update")
        if name.startswith("no guide"):
            for rate in NO_GUIDE_RATES:
                r = run_scenario(plan, duration, seeds[0], spontaneous_rate_bpm=rate)
                print(f"      {rate:4.0f}/min rr, seed {seeds[0]}: {summary(r.error)}")
        if name.startswith("guided 6.5"):
            rates = (6.5, 6.0, 5.5, 5.0, 4.5)
            for seed in seeds:
                r = run_scenario(plan, duration, seed, **listener)
                reach = []
                for k in range(1, len(rates)):
                    after = r.t >= 120.0 * k
                    hit = np.flatnonzero(r.rate[after] <= rates[k - 1] - 0.9 * (rates[k - 1] - rates[k]))
                    reach.append(f"{r.t[after][hit[0]] - 120.0 * k:.0f}" if len(hit) else "never")
                print(f"      seed {seed}: 90 % of each 0.5/min step reached after {', '.join(reach)} s")


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--quick"]):
        sys.exit(f"breathing.py: unknown arguments {' '.join(sys.argv[1:])}: use no argument or --quick")
    print(GOALS)
    ecg, belt, fs = systole_task1(0.0, 1e6)
    real_recording("systole 0.2.3 Task1 (25.6 min)", ecg, belt, fs)
    data, fs = pyphysio_medical()
    real_recording("pyphysio 4.10.0 medical (120 s)", data[:, 0], data[:, 3], fs)
    scenarios((0,) if "--quick" in sys.argv else (0, 1, 2))
