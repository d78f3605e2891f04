"""The policy against simulated listeners: iso start, capped glides, closed-loop holds, breath lock, level ramps."""
from __future__ import annotations

import math

import pytest

from biosignals.types import PhysioState
from therapy_profiles import Policy, PolicyDecision, builtin_protocol_names, load_protocol
from therapy_profiles.policy import LOCK_HYSTERESIS, UNKNOWN_HOLD_MAX_S, VOLUME_STEP_PER_BAR


def run(protocol, listener, seconds=None, seed=0) -> list[tuple[float, PolicyDecision]]:
    """Step once per bar; ``listener(t, previous_decision)`` returns the PhysioState the estimator would report."""
    policy = Policy(protocol, seed=seed)
    decisions, t, previous = [], 0.0, None
    end = protocol.total_duration_s if seconds is None else seconds
    while t < end:
        decision = policy.step(listener(t, previous), t)
        decisions.append((t, decision))
        previous = decision
        t += decision.controls.breath_period_s  # the next bar starts when this breath ends
    return decisions


def follows_guide(start_rate, heart_rate=72.0):
    """A listener who breathes at the rate of the bar they just heard."""
    def state(t, previous):
        rate = start_rate if previous is None else previous.guide_rate_bpm
        return PhysioState(t=t, heart_rate_bpm=heart_rate, breathing_rate_bpm=rate, breathing_confidence=0.9)
    return state


def test_coherent_6_glides_from_13_to_6_at_the_cap():
    protocol = load_protocol("coherent-6")
    decisions = run(protocol, follows_guide(13.0))
    first = decisions[0][1]
    assert "iso start at measured 13.0/min" in first.reason
    assert abs(first.guide_rate_bpm - 13.0) <= 13.0 / first.controls.beats_per_breath / 2  # meets the listener
    cap = protocol.ramp.guide_bpm_per_min
    for (t0, a), (t1, b) in zip(decisions, decisions[1:]):
        if b.phase_index >= 1:  # guided phases: the guide moves at most cap x elapsed minutes, never up
            assert 0 <= a.guide_rate_bpm - b.guide_rate_bpm <= cap * (t1 - t0) / 60 + 1e-9
    assert decisions[-1][1].guide_rate_bpm == pytest.approx(6.0, abs=0.1)
    reached = next(t for t, d in decisions if abs(d.guide_rate_bpm - 6.0) < 0.01)
    assert reached >= 60 + (13.2 - 6.0) / cap * 60 - 15  # not before the cap allows
    assert not any(d.ramp_held for _, d in decisions)


def test_ramp_holds_when_breathing_does_not_follow():
    protocol = load_protocol("coherent-6")

    def stuck(t, previous):
        return PhysioState(t=t, heart_rate_bpm=72.0, breathing_rate_bpm=13.0, breathing_confidence=0.9)

    decisions = run(protocol, stuck, seconds=600)
    tolerance = protocol.loop.breath_lag_tolerance_bpm
    assert min(d.guide_rate_bpm for _, d in decisions) >= 13.0 - tolerance - 0.05
    held = [d for _, d in decisions if d.ramp_held]
    assert len(held) > len(decisions) / 2
    assert "ramp held at 11.50/min: breathing 13.0/min lags guide by >1.5" in held[-1].reason


def test_unknown_breathing_holds_the_guide_then_goes_on_plan():
    def unsure(t, previous):
        return PhysioState(t=t, heart_rate_bpm=72.0, breathing_rate_bpm=13.0, breathing_confidence=0.1)

    decisions = run(load_protocol("coherent-6"), unsure)
    assert "iso start at default 12.0/min" in decisions[0][1].reason
    guided = [(t, d) for t, d in decisions if d.phase_index >= 1]
    held = [t for t, d in guided if "breathing rate unknown (confidence 0.10): not leading" in d.reason]
    assert held and held[0] == guided[0][0] and held[-1] - held[0] <= UNKNOWN_HOLD_MAX_S + 15
    assert all(d.guide_rate_bpm == guided[0][1].guide_rate_bpm for t, d in guided if t <= held[-1])
    assert decisions[-1][1].guide_rate_bpm == pytest.approx(6.0, abs=0.01)  # then on plan: never stuck


def test_listener_measured_not_following_holds_the_guide_even_at_the_guide_rate():
    """Mayer waves at the guide rate can put the RR rate on the guide; the estimator's following flag decides."""
    def fooled(t, previous):
        rate = 13.0 if previous is None else previous.guide_rate_bpm
        return PhysioState(t=t, heart_rate_bpm=72.0, breathing_rate_bpm=rate, breathing_confidence=0.9,
                           following_guide=previous is None or previous.phase_index == 0, following_basis="rr only")

    decisions = run(load_protocol("coherent-6"), fooled, seconds=600)
    guided = [d for _, d in decisions if d.phase_index >= 1]
    assert all(d.ramp_held for d in guided[1:])
    assert "does not follow the guide (judged on rr only)" in guided[-1].reason
    assert guided[-1].guide_rate_bpm > 12.0


def test_listener_ahead_is_not_pushed():
    protocol = load_protocol("coherent-6")

    def fast_learner(t, previous):
        rate = 13.0 if previous is None else 5.0  # drops below the target at once
        return PhysioState(t=t, heart_rate_bpm=72.0, breathing_rate_bpm=rate, breathing_confidence=0.9)

    decisions = run(protocol, fast_learner)
    cap = protocol.ramp.guide_bpm_per_min
    guided = [(t, d) for t, d in decisions if d.phase_index >= 1]
    for (t0, a), (t1, b) in zip(guided, guided[1:]):
        assert a.guide_rate_bpm - b.guide_rate_bpm <= cap * (t1 - t0) / 60 + 1e-9
    assert min(d.guide_rate_bpm for _, d in decisions) == pytest.approx(6.0)  # never past the target
    assert any("listener ahead (5.0/min): not pushing" in d.reason for _, d in guided)


@pytest.mark.parametrize("name", ["coherent-6", "resonance-assessment", "hr-winddown", "4-7-8"])
def test_breath_lock_whole_beats_and_stable_beats_per_breath(name):
    decisions = run(load_protocol(name), follows_guide(14.0))
    counts = []
    for _, d in decisions:
        c = d.controls
        assert isinstance(c.beats_per_breath, int)
        assert c.tempo_bpm == pytest.approx(c.beats_per_breath * d.guide_rate_bpm, rel=1e-12)
        assert c.inhale_beats == pytest.approx(c.beats_per_breath * c.inhale_fraction)
        if load_protocol(name).phases[d.phase_index].breath_rate_bpm is not None:  # guided: tempo bends, bounded
            assert abs(c.tempo_bpm - d.tempo_target_bpm) <= LOCK_HYSTERESIS * d.guide_rate_bpm + 1e-9
        else:  # follow: tempo exact
            assert c.tempo_bpm == pytest.approx(d.tempo_target_bpm)
        counts.append(c.beats_per_breath)
    flips = [i for i in range(2, len(counts)) if counts[i] == counts[i - 2] != counts[i - 1]]
    assert flips == []  # never N -> N+1 -> N


def test_coherent_6_resonance_phase_is_exactly_60_bpm_10_beats():
    decisions = run(load_protocol("coherent-6"), follows_guide(13.0))
    resonance = [d.controls for _, d in decisions if d.phase_name == "resonance"]
    assert {(c.tempo_bpm, c.beats_per_breath, c.inhale_beats) for c in resonance} == {(60.0, 10, 4.0)}


def hr_listener(follows: bool, start_hr=75.0):
    """HR 75 through the settle phase; then either 1 bpm above the tempo goal of the last bar, or stuck at 75.
    Breathing follows the guide."""
    def state(t, previous):
        settling = previous is None or previous.phase_index == 0
        hr = start_hr if settling or not follows else previous.tempo_target_bpm + 1.0
        rate = 12.0 if previous is None else previous.guide_rate_bpm
        return PhysioState(t=t, heart_rate_bpm=hr, breathing_rate_bpm=rate, breathing_confidence=0.9)
    return state


def test_hr_winddown_starts_at_heart_rate_and_descends_while_hr_follows():
    protocol = load_protocol("hr-winddown")
    decisions = run(protocol, hr_listener(follows=True))
    assert abs(decisions[0][1].controls.tempo_bpm - 75.0) <= 5.0
    cap = protocol.ramp.tempo_bpm_per_min
    for (t0, a), (t1, b) in zip(decisions, decisions[1:]):
        assert 0 <= a.tempo_target_bpm - b.tempo_target_bpm <= cap * (t1 - t0) / 60 + 1e-9
    assert decisions[-1][1].tempo_target_bpm == pytest.approx(75.0 - 15.0)  # the wind-down phase's descend_bpm
    last = decisions[-1][1]
    assert last.guide_rate_bpm == pytest.approx(7.0)  # breathing led gently to 7/min
    assert abs(last.controls.tempo_bpm - 60.0) <= LOCK_HYSTERESIS * 7.0  # whole beats per breath: tempo bends
    assert not any(d.ramp_held for _, d in decisions)


def test_hr_winddown_holds_when_hr_does_not_follow():
    protocol = load_protocol("hr-winddown")
    decisions = run(protocol, hr_listener(follows=False))
    lowest = min(d.tempo_target_bpm for _, d in decisions)
    assert lowest == pytest.approx(75.0 - protocol.loop.hr_lead_limit_bpm)
    assert sum(d.ramp_held for _, d in decisions) > len(decisions) / 2
    assert "tempo held at 69.0 bpm: HR 75.0 not following (lead >6)" in decisions[-1][1].reason


@pytest.mark.parametrize("name", builtin_protocol_names())
def test_every_builtin_runs_full_and_scaled_with_gentle_levels(name):
    for protocol in (load_protocol(name), load_protocol(name).scaled_to(3)):
        decisions = run(protocol, follows_guide(14.0))
        assert [d.phase_name for _, d in decisions][-1] == protocol.phases[-1].name
        assert {d.phase_name for _, d in decisions} == {p.name for p in protocol.phases}
        volumes = [d.controls.volume for _, d in decisions]
        assert all(abs(b - a) <= VOLUME_STEP_PER_BAR + 1e-12 for a, b in zip(volumes, volumes[1:]))
        assert volumes[0] <= 0.5 * protocol.phases[0].volume + 1e-12  # starts softly
        assert all(v <= protocol.limits.max_volume + 1e-12 for v in volumes)


def test_no_sensor_data_still_plays_the_plan():
    decisions = run(load_protocol("hr-winddown"), lambda t, previous: PhysioState(t=t))
    assert "tempo starts at default 70.0 bpm (no heart rate yet)" in decisions[0][1].reason
    assert all(d.controls.validate() for _, d in decisions)


def test_decision_record_fields_and_seeded_key():
    protocol = load_protocol("box-breathing")
    first = Policy(protocol, seed=1).step(PhysioState(t=0.0), 0.0)
    assert first.phase_name == "settle" and first.phase_index == 0
    assert first.phase_time_left_s == pytest.approx(60.0)
    assert first.palette == ("pad", "piano")
    later = Policy(protocol, seed=1)
    later.step(PhysioState(t=0.0), 0.0)
    practice = later.step(PhysioState(t=300.0), 300.0)
    assert practice.breath_pattern == (0.25, 0.25, 0.25, 0.25)
    assert practice.controls.inhale_fraction == pytest.approx(0.5)  # inhale + hold_in, as the schema documents
    tonics = {Policy(protocol, seed=s).tonic for s in range(20)}
    assert len(tonics) > 1 and Policy(protocol, seed=3).tonic == Policy(protocol, seed=3).tonic
    with pytest.raises(ValueError, match=r"elapsed_s=nan must be a finite session time"):
        Policy(protocol).step(PhysioState(t=0.0), math.nan)


def test_limits_override_phase_levels_and_tempo():
    from therapy_profiles import Overrides

    protocol = load_protocol("coherent-6").with_overrides(Overrides(max_volume=0.3, min_tempo_bpm=70))
    decisions = run(protocol, follows_guide(13.0))
    assert max(d.controls.volume for _, d in decisions) <= 0.3
    assert min(d.controls.tempo_bpm for _, d in decisions) >= 70.0
