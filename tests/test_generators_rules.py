"""Theory helpers and the rule-based generator: in mode, density, register, breath contour, determinism."""
import numpy as np
import pytest

from generators.controls import MODES, MusicControls
from generators.rules import RuleBasedGenerator
from generators.theory import (breath_arc, diatonic_chords, scale_pitch_classes, snap_to_scale,
                               step_in_scale)


def controls(**changes) -> MusicControls:
    base = dict(tempo_bpm=60, beats_per_breath=10, inhale_beats=4)
    return MusicControls(**(base | changes))


def test_scales_and_chords_match_music_theory():
    assert scale_pitch_classes(2, "major") == (2, 4, 6, 7, 9, 11, 1)  # D major
    assert scale_pitch_classes(9, "pentatonic-minor") == (9, 0, 2, 4, 7)  # A minor pentatonic
    c_major = diatonic_chords(0, "major")
    assert [c.quality for c in c_major] == ["major", "minor", "minor", "major", "major", "minor", "diminished"]
    assert c_major[4].pitch_classes == (7, 11, 2)  # G B D
    assert diatonic_chords(0, "major", sevenths=True)[4].pitch_classes == (7, 11, 2, 5)  # G7
    assert diatonic_chords(9, "pentatonic-minor") == diatonic_chords(9, "minor")  # parent's chords
    assert [c.quality for c in diatonic_chords(2, "dorian")][:4] == ["minor", "minor", "major", "major"]


def test_pitch_helpers():
    c_major = scale_pitch_classes(0, "major")
    assert snap_to_scale(61, c_major) == 60  # C# -> C (tie goes down)
    assert snap_to_scale(66, c_major) == 65  # F# -> F
    assert step_in_scale(60, 2, c_major) == 64  # C + 2 degrees = E
    assert step_in_scale(60, -3, c_major) == 55  # C - 3 degrees = G below
    with pytest.raises(ValueError, match="unknown mode"):
        scale_pitch_classes(0, "phrygian-dominant")


def test_breath_arc_rises_on_inhale_and_falls_on_exhale():
    assert breath_arc(0, 4, 10) == pytest.approx(0)
    assert breath_arc(4, 4, 10) == pytest.approx(1)
    assert breath_arc(10, 4, 10) == pytest.approx(0)
    assert breath_arc(2, 4, 10) == pytest.approx(0.5)


@pytest.mark.parametrize("mode", MODES)
def test_melody_stays_in_mode_and_chords_are_diatonic(mode):
    generator = RuleBasedGenerator(seed=3)
    c = controls(mode=mode, tonic=7, density=2.0)
    scale = set(scale_pitch_classes(7, mode))
    parent_chords = {(ch.root, ch.pitch_classes) for s in (False, True) for ch in diatonic_chords(7, mode, s)}
    for _ in range(12):
        bar = generator.next_bar(c)
        assert {n.pitch % 12 for n in bar.notes} <= scale
        assert all((ch.root, ch.pitch_classes) in parent_chords for ch in bar.chords)
        assert bar.beats == 10 and sum(n.duration_beats for n in bar.notes) == pytest.approx(10)


def test_density_sets_notes_per_beat():
    counts = {}
    for density in (0.5, 1.0, 2.0, 4.0):
        generator = RuleBasedGenerator(seed=1)
        counts[density] = sum(len(generator.next_bar(controls(density=density)).notes) for _ in range(10)) / 100
    assert counts == pytest.approx({0.5: 0.5, 1.0: 1.0, 2.0: 2.0, 4.0: 4.0}, abs=0.05)


@pytest.mark.parametrize("register", [52, 67, 80])
def test_register_centres_the_melody(register):
    generator = RuleBasedGenerator(seed=2)
    pitches = [n.pitch for _ in range(20) for n in generator.next_bar(controls(register_midi=register)).notes]
    assert abs(np.mean(pitches) - register) <= 3
    assert max(pitches) - min(pitches) <= 24


def test_contour_rises_through_the_inhale_and_falls_through_the_exhale():
    generator = RuleBasedGenerator(seed=5)
    c = controls(beats_per_breath=12, inhale_beats=5, density=1.5)
    inhale_steps, exhale_steps, peaks_minus_ends = [], [], []
    for _ in range(30):
        notes = generator.next_bar(c).notes
        for a, b in zip(notes, notes[1:]):
            (inhale_steps if b.start_beat <= c.inhale_beats else exhale_steps).append(b.pitch - a.pitch)
        peak = max(n.pitch for n in notes if 3 <= n.start_beat <= 7)
        peaks_minus_ends.append(peak - notes[-1].pitch)
    assert np.mean(inhale_steps) > 0.8
    assert np.mean(exhale_steps) < -0.5
    assert np.mean(peaks_minus_ends) >= 5


def test_mostly_stepwise_and_ends_on_a_chord_tone():
    generator = RuleBasedGenerator(seed=9)
    c = controls(density=2.0)
    leaps = []
    for _ in range(20):
        bar = generator.next_bar(c)
        leaps += [abs(b.pitch - a.pitch) for a, b in zip(bar.notes, bar.notes[1:])]
        assert bar.notes[-1].pitch % 12 in bar.chords[-1].pitch_classes[:3]
    assert np.mean(np.array(leaps) <= 2) >= 0.6
    assert max(leaps) <= 7


def test_same_seed_same_music_and_controls_apply_at_the_next_bar():
    a, b = RuleBasedGenerator(seed=11), RuleBasedGenerator(seed=11)
    assert [a.next_bar(controls()) for _ in range(4)] == [b.next_bar(controls()) for _ in range(4)]
    minor = controls(mode="pentatonic-minor", tonic=9, register_midi=60)
    bar = a.next_bar(minor)
    assert {n.pitch % 12 for n in bar.notes} <= set(scale_pitch_classes(9, "pentatonic-minor"))
    assert abs(bar.notes[0].pitch - b.next_bar(controls()).notes[0].pitch) <= 12  # continues, no reset


def test_bad_controls_are_named():
    with pytest.raises(ValueError, match="density"):
        RuleBasedGenerator().next_bar(controls(density=9))
