"""Breathing error per confidence bin: the data behind ``biosignals.types.BREATHING_SURE_CONFIDENCE``.

Run: .venv/bin/python benchmarks/breathing_confidence.py [--quick]   (--quick: simulator seed 0 only)

The same data as benchmarks/breathing.py: systole Task1 and pyphysio medical replayed through the H10 path (RR
only, as a strap without ECG streaming gives; regular windows against the belt's breath count), and the simulator
scenarios (tests/breathing_scenarios.py) against the virtual listener's truth, RR only. Unguided slow
listeners (5, 6 and 7/min, no guide) are added: the case of `heartsong analyze` and of a listener who does not follow.
For each bin of ``breathing_confidence``: windows, MAE (breaths/min) and the share within +-2/min; then, for each
candidate threshold, the same over all windows below it (what "unsure" would hide) and at or above it (what stays
shown).
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

import numpy as np  # noqa: E402

from breathing_recordings import belt_reference, replay  # noqa: E402
from breathing_scenarios import NO_GUIDE_RATES, SCENARIOS, run_scenario  # noqa: E402
from estimator_data import pyphysio_medical, systole_task1  # noqa: E402

BIN_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.01)
SLOW_UNGUIDED_RATES = (5.0, 6.0, 7.0)


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


def simulator(seeds: tuple[int, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(absolute error, confidence) per scenario family, RR only."""
    out = {}
    for name, (plan, duration, listener) in SCENARIOS.items():
        rates = NO_GUIDE_RATES if name.startswith("no guide") else (listener.get("spontaneous_rate_bpm", 14.0),)
        runs = [run_scenario(plan, duration, seed, **dict(listener, spontaneous_rate_bpm=rate))
                for seed in seeds for rate in rates]
        out[name] = (np.concatenate([r.error for r in runs]), np.concatenate([r.confidence for r in runs]))
    runs = [run_scenario(lambda t: None, 240.0, seed, spontaneous_rate_bpm=rate)
            for seed in seeds for rate in SLOW_UNGUIDED_RATES]
    out["no guide, slow 5, 6 and 7/min"] = (np.concatenate([r.error for r in runs]),
                                         np.concatenate([r.confidence for r in runs]))
    return out


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
    seeds = (0,) if "--quick" in sys.argv else (0, 1, 2)
    ecg, belt, fs = systole_task1(0.0, 1e6)
    print("systole 0.2.3 Task1")
    results = {"systole 0.2.3 Task1 (25.6 min), RR only": recording(ecg, belt, fs)}
    data, fs = pyphysio_medical()
    print("pyphysio 4.10.0 medical")
    results["pyphysio 4.10.0 medical (120 s), RR only"] = recording(data[:, 0], data[:, 3], fs)
    results |= {f"simulator {name}, RR only, seeds {seeds}": v for name, v in simulator(seeds).items()}
    for name, (error, confidence) in results.items():
        table(name, error, confidence)
    simulated = [v for k, v in results.items() if k.startswith("simulator")]
    table("all simulator scenarios", *(np.concatenate(c) for c in zip(*simulated)))
