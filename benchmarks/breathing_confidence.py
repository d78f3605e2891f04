"""Breathing error per confidence bin: the data behind ``biosignals.types.BREATHING_SURE_CONFIDENCE``.

Run: .venv/bin/python benchmarks/breathing_confidence.py [--quick]   (80 s; --quick: simulator seed 0 only, 30 s)

The same data as benchmarks/breathing.py: systole Task1 and pyphysio medical replayed through the H10 path (RR
only, as a strap without ECG streaming gives; regular windows against the belt's breath count), and the simulator
scenarios (tests/breathing_scenarios.py) against the virtual listener's truth, RR only. Two cases that sessions
meet less often are added: slow unguided listeners (5, 6 and 7/min, no guide), and listeners paced at 5, 6 and
7/min by a guide that the estimator is not told, as `heartsong analyze` replays a guided session's beats.
For each bin of ``breathing_confidence``: windows, MAE (breaths/min) and the share within +-2/min; then, for each
candidate threshold, the same over all windows below it (what "unsure" would hide) and at or above it (what stays
shown).

The first minute (states read 10-59 s after the first beat, before the tracker's 60 s window is full; the
benchmarks above start at 60 s) is tabled apart: systole restarted every 120 s (the reference: the belt's last
60 s of the whole recording, regular windows), and every simulator scenario run for its first minute.
"""
import contextlib
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

import numpy as np  # noqa: E402

import breathing_scenarios  # noqa: E402
from breathing_recordings import belt_reference, replay  # noqa: E402
from breathing_scenarios import NO_GUIDE_RATES, SCENARIOS, run_scenario  # noqa: E402
from estimator_data import pyphysio_medical, systole_task1  # noqa: E402

from biosignals.estimator import PhysioEstimator  # noqa: E402

BIN_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.01)
SLOW_UNGUIDED_RATES = (5.0, 6.0, 7.0)
FIRST_MINUTE_S = np.arange(10.0, 60.0, 1.0)
RESTART_EVERY_S = 120.0


def recording(ecg_mv: np.ndarray, belt: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(absolute error, confidence) of the RR-only tracker in the regular windows of one recording; prints the
    share of all its windows with a rate (regular or not, as a listener would meet them) at each threshold."""
    ends = np.arange(60.0, len(ecg_mv) / fs, 1.0)
    reference = belt_reference(belt, fs, ends)
    states = replay(ecg_mv, fs, ends)
    rate = np.array([np.nan if s.breathing_rate_bpm is None else s.breathing_rate_bpm for s in states])
    confidence = np.array([s.breathing_confidence for s in states])
    keep = reference.regular & np.isfinite(rate)
    shown = ", ".join(f">= {t:.1f}: {100 * np.mean(confidence[np.isfinite(rate)] >= t):.0f} %" for t in BIN_EDGES[1:-1])
    print(f"  all {np.isfinite(rate).sum()} windows with a rate, share at or above each threshold: {shown}")
    return np.abs(rate[keep] - reference.rate[keep]), confidence[keep]


class GuideUntoldEstimator(PhysioEstimator):
    """An estimator that never hears of the breath guide, as in `heartsong analyze`."""

    def set_guide(self, *_args, **_kwargs) -> None:
        return None


@contextlib.contextmanager
def guide_untold():
    breathing_scenarios.PhysioEstimator = GuideUntoldEstimator
    try:
        yield
    finally:
        breathing_scenarios.PhysioEstimator = PhysioEstimator


def extra_families(seeds: tuple[int, ...], duration_s: float) -> dict[str, list]:
    """Runs of the two added cases: slow and unguided; paced by a guide the estimator is not told."""
    slow = [run_scenario(lambda t: None, duration_s, seed, spontaneous_rate_bpm=rate)
            for seed in seeds for rate in SLOW_UNGUIDED_RATES]
    with guide_untold():
        paced = [run_scenario(lambda t, rate=rate: rate, duration_s, seed)
                 for seed in seeds for rate in SLOW_UNGUIDED_RATES]
    return {"no guide, slow 5, 6 and 7/min": slow, "paced 5, 6 and 7/min, guide not told": paced}


def simulator(seeds: tuple[int, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(absolute error, confidence) per scenario family, RR only."""
    out = {}
    for name, (plan, duration, listener) in SCENARIOS.items():
        rates = NO_GUIDE_RATES if name.startswith("no guide") else (listener.get("spontaneous_rate_bpm", 14.0),)
        runs = [run_scenario(plan, duration, seed, **dict(listener, spontaneous_rate_bpm=rate))
                for seed in seeds for rate in rates]
        out[name] = (np.concatenate([r.error for r in runs]), np.concatenate([r.confidence for r in runs]))
    for name, runs in extra_families(seeds, 240.0).items():
        out[name] = (np.concatenate([r.error for r in runs]), np.concatenate([r.confidence for r in runs]))
    return out


def recording_first_minutes(ecg_mv: np.ndarray, belt: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(absolute error, confidence) in the first minute after each restart of the recording, regular windows."""
    errors, confidences = [], []
    for start in np.arange(RESTART_EVERY_S, len(ecg_mv) / fs - 60.0, RESTART_EVERY_S):
        piece = slice(int(start * fs), int((start + 60.0) * fs))
        states = replay(ecg_mv[piece], fs, FIRST_MINUTE_S)
        reference = belt_reference(belt, fs, start + FIRST_MINUTE_S)
        for state, rate, regular in zip(states, reference.rate, reference.regular):
            if regular and state.breathing_rate_bpm is not None:
                errors.append(abs(state.breathing_rate_bpm - rate))
                confidences.append(state.breathing_confidence)
    return np.array(errors), np.array(confidences)


def simulator_first_minute(seeds: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(absolute error, confidence) of every simulator scenario (and rate) in its first minute, RR only."""
    plans = [(plan, listener, NO_GUIDE_RATES if name.startswith("no guide") else
              (listener.get("spontaneous_rate_bpm", 14.0),)) for name, (plan, _, listener) in SCENARIOS.items()]
    warm_up, breathing_scenarios.WARM_UP_S = breathing_scenarios.WARM_UP_S, FIRST_MINUTE_S[0]
    try:
        runs = [run_scenario(plan, FIRST_MINUTE_S[-1], seed, **dict(listener, spontaneous_rate_bpm=rate))
                for plan, listener, rates in plans for seed in seeds for rate in rates]
        runs += [run for family in extra_families(seeds, FIRST_MINUTE_S[-1]).values() for run in family]
    finally:
        breathing_scenarios.WARM_UP_S = warm_up
    return np.concatenate([r.error for r in runs]), np.concatenate([r.confidence for r in runs])


def stats(error: np.ndarray) -> str:
    if not len(error):
        return f"{0:5d}     --      --"
    return f"{len(error):5d} {error.mean():6.2f} {100 * (error <= 2.0).mean():5.0f} %"


def table(name: str, error: np.ndarray, confidence: np.ndarray) -> None:
    print(f"\n{name}: {len(error)} windows")
    print("  confidence bin      n    MAE  within +-2")
    for low, high in zip(BIN_EDGES[:-1], BIN_EDGES[1:]):
        inside = (confidence >= low) & (confidence < high)
        label = f">= {low:.1f}" if high > 1 else f"{low:.1f}-{high:.1f}"
        print(f"  {label:14s} {stats(error[inside])}")
    print("  threshold     below: n    MAE  within +-2   at or above: n    MAE  within +-2")
    for threshold in BIN_EDGES[1:-1]:
        below = confidence < threshold
        print(f"  {threshold:.1f}          {stats(error[below])}         {stats(error[~below])}")


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--quick"]):
        sys.exit(f"breathing_confidence.py: unknown arguments {' '.join(sys.argv[1:])}: use no argument or --quick")
    seeds = (0,) if "--quick" in sys.argv else (0, 1, 2)
    ecg, belt, systole_fs = systole_task1(0.0, 1e6)
    print("systole 0.2.3 Task1")
    results = {"systole 0.2.3 Task1 (25.6 min), RR only": recording(ecg, belt, systole_fs)}
    data, fs = pyphysio_medical()
    print("pyphysio 4.10.0 medical")
    results["pyphysio 4.10.0 medical (120 s), RR only"] = recording(data[:, 0], data[:, 3], fs)
    results |= {f"simulator {name}, RR only, seeds {seeds}": v for name, v in simulator(seeds).items()}
    for name, (error, confidence) in results.items():
        table(name, error, confidence)
    simulated = [v for k, v in results.items() if k.startswith("simulator")]
    table("all simulator scenarios", *(np.concatenate(c) for c in zip(*simulated)))
    print("\nFIRST MINUTE (states 10-59 s after the first beat)")
    table("systole Task1, first minute after each 120 s restart, RR only", *recording_first_minutes(ecg, belt, systole_fs))
    table(f"all simulator scenarios, first minute, RR only, seeds {seeds}", *simulator_first_minute(seeds))
