"""The therapy policy: once per bar (one guided breath), maps protocol phase + PhysioState to MusicControls.

Rules, in order:
- Iso principle. The first bar starts the breath guide at the listener's measured breathing rate (when the
  estimate's confidence reaches ``protocol.loop.min_breathing_confidence``; otherwise ``DEFAULT_START_RATE_BPM``)
  and the tempo at the listener's heart rate (heart-rate tempo) or at the phase's absolute tempo. From there the
  guide glides toward the phase target at most ``protocol.ramp.guide_bpm_per_min`` breaths/min per minute and
  the tempo goal at most ``protocol.ramp.tempo_bpm_per_min`` beats/min per minute.
- Closed loop. The guide never leads the measured breathing (in the ramp's direction) by more than
  ``loop.breath_lag_tolerance_bpm``, and a heart-rate tempo never leads the heart rate by more than
  ``loop.hr_lead_limit_bpm``: when the body does not follow, the ramp holds where it is (it never reverses).
  A listener who is ahead is not pushed: the ramp keeps its normal capped pace and never passes the target.
  The ramp also holds while the estimator reports that breathing does not follow the guide
  (``PhysioState.following_guide`` False: rate at the guide, phase-locked, no competing rhythm; see
  ``biosignals.breathing``), and while beats arrive but the breathing rate is unknown (confidence under
  ``loop.min_breathing_confidence``), for at most ``UNKNOWN_HOLD_MAX_S`` in a row: it holds rather than
  leads a listener it cannot measure. Without any sensor data (no heart rate either) the ramp follows the
  plan, so a dropped sensor never stops a session.
- Follow phases (``breath_rate_bpm`` None) do not lead breathing: the guide tracks the measured rate at up to
  ``FOLLOW_GUIDE_BPM_PER_MIN``. Heart-rate tempo aims at (HR anchor - ``descend_bpm``): phases with
  ``descend_bpm`` 0 track the measured HR (anchor = current HR, glide up to ``FOLLOW_TEMPO_BPM_PER_MIN``), so a
  session whose first bars had no HR yet still meets the listener; the anchor freezes when a descent begins.
- Breath lock. One breath spans ``beats_per_breath`` (N) whole beats, tempo = N x guide rate exactly. N is
  kept while N x rate stays within ``LOCK_HYSTERESIS`` x rate of the tempo goal, so it does not flip between N
  and N+1; when it must change, tempo (guided phases) or the guide (follow phases) steps once by rate/N.
  In guided phases the guide rate is exact and the tempo bends; in follow phases the tempo is exact.
- Levels. Volume, density, brightness and register glide toward the phase's values by a capped step per bar,
  so phase edges never jump; volume starts at ``VOLUME_START_FRACTION`` of the first phase's ceiling.
Every decision carries a ``reason`` naming the rule that produced it, for the session record.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from biosignals.types import PhysioState
from generators.controls import LEAD_PROGRAMS, MusicControls
from therapy_profiles.schema import BREATH_RATE_RANGE, TEMPO_RANGE, AbsoluteTempo, Phase, Protocol

DEFAULT_START_RATE_BPM = 12.0  # typical adult resting breathing rate, used until breathing is measured
DEFAULT_START_TEMPO_BPM = 70.0  # typical resting heart rate, for heart-rate tempo before HR is measured
# Meeting the listener is not leading them, so it may move faster than the protocol's ramp caps.
FOLLOW_GUIDE_BPM_PER_MIN = 4.0  # breaths/min per minute, follow phases tracking the measured breathing
FOLLOW_TEMPO_BPM_PER_MIN = 12.0  # beats/min per minute, heart-rate phases with descend_bpm = 0 tracking HR
LOCK_HYSTERESIS = 0.65  # keep N while |N x rate - tempo goal| <= 0.65 rate (best N is always within 0.5 rate)
VOLUME_STEP_PER_BAR = 0.04  # largest volume change between consecutive bars (linear level)
VOLUME_START_FRACTION = 0.5
DENSITY_STEP_PER_BAR = 0.25  # notes/beat
BRIGHTNESS_STEP_PER_BAR = 0.05
REGISTER_STEP_PER_BAR = 2  # semitones
CALM_TONICS = (0, 2, 5, 7, 9)  # C, D, F, G, A: keys whose tonic sits comfortably for pads and piano
MUSIC_TEMPO_RANGE = (30.0, 140.0)  # what MusicControls accepts
BEATS_PER_BREATH_RANGE = (2, 24)
UNKNOWN_HOLD_MAX_S = 90.0  # longest hold for an unknown breathing rate; then the ramp goes on plan


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the policy asks of the next bar, and why."""

    controls: MusicControls
    phase_name: str
    phase_index: int
    phase_time_left_s: float  # seconds left in the phase at the start of this bar
    guide_rate_bpm: float  # breaths/min the bar guides (= controls.breath_rate_bpm)
    target_rate_bpm: float  # breaths/min the guide is heading to: the phase target, or the listener's rate
    tempo_target_bpm: float  # tempo goal before the breath lock (guided phases: tempo within 0.65 x guide rate)
    breath_pattern: tuple[float, float, float, float]  # inhale, hold_in, exhale, hold_out as fractions of one breath
    palette: tuple[str, ...]  # instrument hints of the phase
    ramp_held: bool  # True when the closed loop held the guide or the tempo this bar
    reason: str


def _glide(current: float, target: float, max_step: float) -> float:
    return current + max(-max_step, min(max_step, target - current))


def _closed_loop_glide(
    before: float, goal: float, max_step: float, measured: float | None, lead_limit: float
) -> tuple[float, bool, bool]:
    """One capped step from ``before`` toward ``goal`` that never leads ``measured`` by more than ``lead_limit``
    in the direction of travel and never reverses. Returns (new value, held by the body, listener ahead)."""
    new = _glide(before, goal, max_step)
    if measured is None:
        return new, False, False
    direction = 1.0 if goal > before else -1.0
    furthest = measured + direction * lead_limit
    if direction * (new - furthest) > 0:  # the step would lead the body too far
        return (before if direction * (before - furthest) >= 0 else furthest), True, False
    return new, False, direction * (measured - before) > lead_limit


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class Policy:
    """Stateful policy for one session of ``protocol``; call ``step`` once per bar with non-decreasing times.

    ``seed`` picks the key when the protocol leaves ``tonic`` open, so a session is reproducible.
    """

    def __init__(self, protocol: Protocol, seed: int = 0) -> None:
        self.protocol = protocol
        self.tonic = protocol.tonic if protocol.tonic is not None else random.Random(seed).choice(CALM_TONICS)
        self._started = False
        self._last_elapsed_s = 0.0
        self._phase_index = 0
        self._guide_rate = DEFAULT_START_RATE_BPM  # breaths/min the music guides (last bar)
        self._listener_rate = DEFAULT_START_RATE_BPM  # smoothed listener rate that follow phases track
        self._tempo_goal = DEFAULT_START_TEMPO_BPM  # glided tempo goal before the breath lock
        self._hr_anchor: float | None = None  # listener HR that heart-rate tempo descends from (see module doc)
        self._beats_per_breath: int | None = None
        self._unknown_s = 0.0  # seconds in a row the guide was held because breathing was unknown
        self._volume = 0.0
        self._density = 1.0
        self._brightness = 0.5
        self._register = 67

    @property
    def total_duration_s(self) -> float:
        return self.protocol.total_duration_s

    def step(self, state: PhysioState, elapsed_s: float) -> PolicyDecision:
        """The decision for the bar that starts at session time ``elapsed_s`` (s), given the latest ``state``."""
        if not math.isfinite(elapsed_s) or elapsed_s < 0:
            raise ValueError(f"elapsed_s={elapsed_s!r} must be a finite session time >= 0 s")
        index, phase, time_left = self.protocol.phase_at(elapsed_s)
        loop = self.protocol.loop
        breathing = _finite(state.breathing_rate_bpm)
        if state.breathing_confidence < loop.min_breathing_confidence:
            breathing = None
        heart_rate = _finite(state.heart_rate_bpm)
        if heart_rate is not None and heart_rate <= 0:
            heart_rate = None

        first_bar = not self._started
        if first_bar:
            reasons = self._start(phase, breathing, heart_rate)
            dt_min = 0.0
        else:
            reasons = []
            dt_min = max(0.0, elapsed_s - self._last_elapsed_s) / 60.0
            if index != self._phase_index:
                reasons.append(f"phase {self.protocol.phases[self._phase_index].name} -> {phase.name}")
                self._listener_rate = self._guide_rate  # a follow phase tracks on from what the listener heard
        tracking_hr = not isinstance(phase.tempo, AbsoluteTempo) and phase.tempo.descend_bpm == 0
        if heart_rate is not None and (self._hr_anchor is None or tracking_hr):
            self._hr_anchor = heart_rate
        self._started = True
        self._last_elapsed_s = max(self._last_elapsed_s, elapsed_s)
        self._phase_index = index

        sensing = heart_rate is not None  # beats are arriving, so an unknown breathing rate is unknown, not absent
        target_rate, breath_held, breath_reason = self._breath_step(phase, breathing, dt_min, state, sensing)
        tempo_held, tempo_reason = self._tempo_step(phase, heart_rate, dt_min)
        reasons += [breath_reason, tempo_reason]

        guided = phase.breath_rate_bpm is not None
        lock_rate = self._guide_rate if guided else self._listener_rate
        n, tempo, guide, lock_reason = self._lock(lock_rate, guided)
        self._beats_per_breath, self._guide_rate = n, guide
        reasons.append(lock_reason)

        if not first_bar:
            ceiling = min(phase.volume, self.protocol.limits.max_volume)
            self._volume = _glide(self._volume, ceiling, VOLUME_STEP_PER_BAR)
            self._density = _glide(self._density, phase.density, DENSITY_STEP_PER_BAR)
            self._brightness = _glide(self._brightness, phase.brightness, BRIGHTNESS_STEP_PER_BAR)
            self._register = round(_glide(self._register, phase.register_midi, REGISTER_STEP_PER_BAR))

        ratio = phase.breath_ratio
        controls = MusicControls(
            tempo_bpm=tempo,
            beats_per_breath=n,
            inhale_beats=n * ratio.inhale_fraction,
            mode=phase.mode,
            tonic=self.tonic,
            density=self._density,
            register_midi=self._register,
            brightness=self._brightness,
            volume=self._volume,
            lead=next((name for name in phase.palette if name in LEAD_PROGRAMS), None),
        ).validate()
        return PolicyDecision(
            controls=controls,
            phase_name=phase.name,
            phase_index=index,
            phase_time_left_s=time_left,
            guide_rate_bpm=controls.breath_rate_bpm,
            target_rate_bpm=target_rate,
            tempo_target_bpm=self._tempo_goal,
            breath_pattern=tuple(
                part / ratio.total for part in (ratio.inhale, ratio.hold_in, ratio.exhale, ratio.hold_out)
            ),
            palette=tuple(phase.palette),
            ramp_held=breath_held or tempo_held,
            reason="; ".join(r for r in reasons if r),
        )

    # -- the rules ----------------------------------------------------------------------------------------
    def _start(self, phase: Phase, breathing: float | None, heart_rate: float | None) -> list[str]:
        """Iso start: meet the listener's breathing and heart rate."""
        if breathing is not None:
            self._guide_rate = _clamp(breathing, BREATH_RATE_RANGE)
            reasons = [f"iso start at measured {breathing:.1f}/min"]
        else:
            self._guide_rate = DEFAULT_START_RATE_BPM
            reasons = [f"iso start at default {DEFAULT_START_RATE_BPM:.1f}/min (breathing not measured confidently)"]
        self._listener_rate = self._guide_rate
        if isinstance(phase.tempo, AbsoluteTempo):
            self._tempo_goal = phase.tempo.bpm
            reasons.append(f"tempo starts at the protocol's {phase.tempo.bpm:.1f} bpm")
        elif heart_rate is not None:
            self._tempo_goal = _clamp(heart_rate, TEMPO_RANGE)
            reasons.append(f"tempo starts at heart rate {heart_rate:.1f} bpm")
        else:
            reasons.append(f"tempo starts at default {DEFAULT_START_TEMPO_BPM:.1f} bpm (no heart rate yet)")
        self._tempo_goal = max(self._tempo_goal, self.protocol.limits.min_tempo_bpm)
        self._volume = VOLUME_START_FRACTION * min(phase.volume, self.protocol.limits.max_volume)
        self._density, self._brightness, self._register = phase.density, phase.brightness, phase.register_midi
        return reasons

    def _breath_step(self, phase: Phase, breathing: float | None, dt_min: float, state: PhysioState,
                     sensing: bool) -> tuple[float, bool, str]:
        """Move the guide (guided phase) or the listener reference (follow phase); returns (target, held, reason)."""
        if phase.breath_rate_bpm is None:
            target = breathing if breathing is not None else self._listener_rate
            self._listener_rate = _glide(self._listener_rate, target, FOLLOW_GUIDE_BPM_PER_MIN * dt_min)
            if breathing is None:
                return target, False, "following the listener (breathing not measured confidently)"
            return target, False, f"following the listener (measured {breathing:.1f}/min)"

        target = phase.breath_rate_bpm
        before = self._guide_rate
        if abs(target - before) < 1e-9:
            return target, False, f"guide at target {target:.2f}/min"
        loop = self.protocol.loop
        direction = 1.0 if target > before else -1.0
        ahead = breathing is not None and direction * (breathing - before) > loop.breath_lag_tolerance_bpm
        held_reason = self._breath_hold_reason(state, breathing, sensing, dt_min, ahead) if loop.enabled else None
        if held_reason:
            return target, True, f"ramp held at {before:.2f}/min: {held_reason}"
        measured = breathing if loop.enabled else None
        tolerance = loop.breath_lag_tolerance_bpm
        max_step = self.protocol.ramp.guide_bpm_per_min * dt_min
        self._guide_rate, held, ahead = _closed_loop_glide(before, target, max_step, measured, tolerance)
        if held:
            return target, True, (
                f"ramp held at {self._guide_rate:.2f}/min: breathing {breathing:.1f}/min lags guide by >{tolerance:g}"
            )
        if measured is None:
            why = "open loop" if not loop.enabled else "breathing not measured confidently: on plan"
        elif ahead:
            why = f"listener ahead ({breathing:.1f}/min): not pushing"
        else:
            why = f"breathing {breathing:.1f}/min follows"
        return target, False, f"guide {before:.2f} -> {self._guide_rate:.2f}/min toward {target:.2f} ({why})"

    def _breath_hold_reason(self, state: PhysioState, breathing: float | None, sensing: bool,
                            dt_min: float, ahead: bool) -> str | None:
        """Why the guide must not lead this bar, or None: the listener (not already ahead of it) is measured not
        to follow it, or the sensor is there but the breathing rate is unknown (at most ``UNKNOWN_HOLD_MAX_S``)."""
        if breathing is None:
            self._unknown_s = self._unknown_s + 60.0 * dt_min if sensing else 0.0
            if sensing and self._unknown_s <= UNKNOWN_HOLD_MAX_S:
                return f"breathing rate unknown (confidence {state.breathing_confidence:.2f}): not leading"
            return None
        self._unknown_s = 0.0
        if state.following_guide is False and not ahead:
            return f"breathing {breathing:.1f}/min does not follow the guide (judged on {state.following_basis})"
        return None

    def _tempo_step(self, phase: Phase, heart_rate: float | None, dt_min: float) -> tuple[bool, str]:
        """Glide the tempo goal; heart-rate tempo holds while HR does not follow. Returns (held, reason)."""
        tempo = phase.tempo
        if isinstance(tempo, AbsoluteTempo):
            goal = tempo.bpm
        elif self._hr_anchor is not None:
            goal = max(tempo.floor_bpm, self._hr_anchor - tempo.descend_bpm)
        else:
            return False, f"tempo goal {self._tempo_goal:.1f} bpm kept (no heart rate yet)"
        goal = max(goal, self.protocol.limits.min_tempo_bpm)
        before = self._tempo_goal
        gap = goal - before
        if abs(gap) < 1e-9:
            return False, ""
        if not isinstance(tempo, AbsoluteTempo) and tempo.descend_bpm == 0:  # meeting the listener's HR
            self._tempo_goal = _glide(before, goal, FOLLOW_TEMPO_BPM_PER_MIN * dt_min)
            return False, f"tempo goal {before:.1f} -> {self._tempo_goal:.1f} bpm tracking heart rate {goal:.1f}"
        max_step = self.protocol.ramp.tempo_bpm_per_min * dt_min
        loop = self.protocol.loop
        measured = heart_rate if loop.enabled and not isinstance(tempo, AbsoluteTempo) else None
        self._tempo_goal, held, ahead = _closed_loop_glide(before, goal, max_step, measured, loop.hr_lead_limit_bpm)
        if held:
            return True, (
                f"tempo held at {self._tempo_goal:.1f} bpm: HR {heart_rate:.1f} not following "
                f"(lead >{loop.hr_lead_limit_bpm:g})"
            )
        why = ""
        if measured is not None:
            why = f" (HR {heart_rate:.1f} ahead: not pushing)" if ahead else f" (HR {heart_rate:.1f} follows)"
        return False, f"tempo goal {before:.1f} -> {self._tempo_goal:.1f} bpm toward {goal:.1f}{why}"

    def _lock(self, rate: float, guided: bool) -> tuple[int, float, float, str]:
        """Whole beats per breath: returns (N, tempo, guide rate, reason) with tempo = N x guide rate."""
        goal = self._tempo_goal
        if guided:  # the guide rate is exact; tempo bends
            floor = max(MUSIC_TEMPO_RANGE[0], self.protocol.limits.min_tempo_bpm)
            low = max(BEATS_PER_BREATH_RANGE[0], math.ceil(floor / rate - 1e-9))
            high = min(BEATS_PER_BREATH_RANGE[1], math.floor(MUSIC_TEMPO_RANGE[1] / rate + 1e-9))
        else:  # the tempo is exact; the guide bends toward the listener
            low = max(BEATS_PER_BREATH_RANGE[0], math.ceil(goal / BREATH_RATE_RANGE[1] - 1e-9))
            high = min(BEATS_PER_BREATH_RANGE[1], math.floor(goal / BREATH_RATE_RANGE[0] + 1e-9))
        low = min(low, high)
        previous = self._beats_per_breath
        n = previous
        if n is None or not low <= n <= high or abs(n * rate - goal) > LOCK_HYSTERESIS * rate:
            n = min(max(round(goal / rate), low), high)
        guide = rate if guided else goal / n
        tempo = n * guide
        changed = f", beats per breath {previous} -> {n}" if previous is not None and n != previous else ""
        return n, tempo, guide, f"tempo {tempo:.1f} = {n} beats x {guide:.2f}/min{changed}"
