"""Resonance-frequency assessment: which paced breathing rate makes the heart rate oscillate most (Lehrer/Shaffer).

Protocol (Lehrer, Vaschillo & Vaschillo 2000; Shaffer & Meehan 2020): the listener follows a pacer at 6.5, 6.0,
5.5, 5.0 and 4.5 breaths/min, about 2 min each (``paced_steps``). Per step, after ``settle_s`` (20 s) for the
body to follow, on the artifact-corrected beats (``biosignals.artifacts``):

- ``peak_trough_bpm``: mean over whole paced breaths of (max - min) instantaneous heart rate (4 Hz cubic
  tachogram of 60000 / RR).
- ``lf_power_ms2``: ``hrv.hrv_frequency`` LF power (0.04-0.15 Hz) of the step.
- ``coherence``: ``hrv.hrv_coherence`` of the step's last 64 s.
- ``synchrony``: (1 + cos d) / 2, d = phase difference at the pacing frequency between heart rate and the
  breathing reference (the pacer's chest curve, trough at inhale start: at resonance heart rate and breathing
  are in phase, d = 0, synchrony 1). ``hr_breath_phase_deg`` is d in degrees (positive: heart rate leads).

Winner: each criterion ranks the steps (best = number of steps, worst = 1); the rank sum decides, ties broken by
the larger peak-to-trough swing (the criterion practitioners weigh first). The result lists the criteria used.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from biosignals import hrv
from biosignals.artifacts import correct_rr
from biosignals.types import Beat

ASSESSMENT_RATES_BPM = (6.5, 6.0, 5.5, 5.0, 4.5)
STEP_S = 120.0
SETTLE_S = 20.0
CRITERIA = ("peak_trough_bpm", "lf_power_ms2", "coherence", "synchrony")


@dataclass(frozen=True, slots=True)
class PacedStep:
    """One pacer step: rate (breaths/min) from ``t_start`` to ``t_end`` (s, the beats' time base)."""

    rate_bpm: float
    t_start: float
    t_end: float


@dataclass(frozen=True, slots=True)
class StepResult:
    """The criteria measured for one step (see the module docstring; None where the step was too short)."""

    step: PacedStep
    n_beats: int
    peak_trough_bpm: float | None
    lf_power_ms2: float | None
    coherence: float | None
    hr_breath_phase_deg: float | None
    synchrony: float | None


@dataclass(frozen=True, slots=True)
class ResonanceResult:
    """The winning rate (breaths/min), the criteria it used, each step's measures and rank sums."""

    winner_rate_bpm: float | None
    criteria: tuple[str, ...]
    steps: tuple[StepResult, ...]
    rank_sums: tuple[float, ...]


def paced_steps(t_start: float = 0.0, rates_bpm: Sequence[float] = ASSESSMENT_RATES_BPM,
                step_s: float = STEP_S) -> list[PacedStep]:
    """The standard protocol's steps from ``t_start`` (s)."""
    return [PacedStep(r, t_start + i * step_s, t_start + (i + 1) * step_s) for i, r in enumerate(rates_bpm)]


def _measure(step: PacedStep, beats: list[Beat], settle_s: float,
             pacer_phase_at: Callable[[float], float]) -> StepResult:
    chosen = [b for b in beats if step.t_start + settle_s < b.t <= step.t_end]
    if len(chosen) < 20 or any(b.after_gap for b in chosen[1:]):
        return StepResult(step, len(chosen), None, None, None, None, None)
    rr = correct_rr(np.array([b.rr_ms for b in chosen])).rr_ms
    times = chosen[-1].t - rr.sum() / 1000.0 + np.cumsum(rr) / 1000.0
    grid = np.arange(times[0], times[-1], 1.0 / hrv.RESAMPLE_HZ)
    heart_rate = 60000.0 / hrv.resample_tachogram(times, rr)
    period = 60.0 / step.rate_bpm
    swings = []
    for start in np.arange(grid[0], grid[-1] - period, period):
        cycle = heart_rate[(grid >= start) & (grid < start + period)]
        swings.append(cycle.max() - cycle.min())
    peak_trough = float(np.mean(swings)) if swings else None
    lf = hrv.hrv_frequency(rr)["hrv_lf"] if times[-1] - times[0] >= 30.0 else None
    coherence = hrv.hrv_coherence(rr).hrv_coherence if times[-1] - times[0] >= hrv.COHERENCE_WINDOW_S else None

    w = 2.0 * math.pi * step.rate_bpm / 60.0
    basis = np.vstack([np.cos(w * grid), np.sin(w * grid), grid - grid.mean(), np.ones_like(grid)]).T
    a, b = np.linalg.lstsq(basis, heart_rate, rcond=None)[0][:2]
    phases = np.array([pacer_phase_at(t) for t in grid])
    chest = -np.cos(2.0 * math.pi * phases)  # trough at inhale start, crest mid-breath
    c, d = np.linalg.lstsq(basis, chest, rcond=None)[0][:2]
    difference = math.atan2(-b, a) - math.atan2(-d, c)  # phase of a cos + b sin is atan2(-b, a)
    difference = (difference + math.pi) % (2.0 * math.pi) - math.pi
    return StepResult(step, len(chosen), peak_trough, lf, coherence, math.degrees(difference),
                      (1.0 + math.cos(difference)) / 2.0)


def assess_resonance(beats: Sequence[Beat], steps: Sequence[PacedStep], *, settle_s: float = SETTLE_S,
                     pacer_phase_at: Callable[[float], float] | None = None) -> ResonanceResult:
    """Measure every step and pick the winner (module docstring).

    ``pacer_phase_at(t)`` is the guide's breath phase 0-1 (0 = inhale start) at time t; by default each step
    starts an inhale at its ``t_start`` and runs at its rate.
    """
    if not steps:
        raise ValueError("no paced steps given: use paced_steps(t_start) for the standard 6.5..4.5/min protocol")
    beats = list(beats)

    def default_phase(t: float) -> float:
        step = next((s for s in steps if s.t_start <= t < s.t_end), steps[-1])
        return ((t - step.t_start) * step.rate_bpm / 60.0) % 1.0

    results = tuple(_measure(s, beats, settle_s, pacer_phase_at or default_phase) for s in steps)
    usable = [r for r in results if r.peak_trough_bpm is not None]
    if not usable:
        return ResonanceResult(None, CRITERIA, results, tuple(0.0 for _ in results))
    rank_sums = []
    for r in results:
        total = 0.0
        if r.peak_trough_bpm is not None:
            for name in CRITERIA:
                value = getattr(r, name)
                others = [getattr(u, name) for u in usable if getattr(u, name) is not None]
                total += sum(value > o for o in others) + 0.5 * sum(value == o for o in others) + 0.5 \
                    if value is not None else 0.0
        rank_sums.append(total)
    best = max(range(len(results)), key=lambda i: (rank_sums[i], results[i].peak_trough_bpm or 0.0))
    return ResonanceResult(results[best].step.rate_bpm, CRITERIA, results, tuple(rank_sums))
