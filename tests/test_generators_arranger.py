"""Arranger: exact bar tiling, note pairing and clipping, breath swells, programs, textures, levels, tempo glides."""
import collections

import numpy as np
import pytest

from generators.arranger import BASS, BREATH, MELODY, PAD, PARTS, Arranger, glided_beat_times
from generators.controls import MusicControls
from generators.events import Bar, Chord, NoteEvent
from generators.form import BREATHS_PER_PHRASE, PHRASES_PER_SECTION, Composer
from generators.rules import RuleBasedGenerator

SR = 48000


def controls(**changes) -> MusicControls:
    return MusicControls(**(dict(tempo_bpm=71.3, beats_per_breath=7, inhale_beats=3) | changes))


def test_bars_tile_exactly_without_drift_over_100_bars():
    arranger, generator, c = Arranger(SR), RuleBasedGenerator(seed=1), controls()
    exact_bar = 7 * 60 / 71.3 * SR  # 282748.95... frames: not an integer
    start = 0
    lengths = set()
    for _ in range(100):
        messages, n = arranger.arrange(generator.next_bar(c), c, start)
        assert all(start <= m.frame <= start + n for m in messages)
        lengths.add(n)
        start += n
    assert lengths == {282749} or len(lengths) == 2  # rounding alternates, never accumulates
    assert abs(start - 100 * exact_bar) <= 0.5


def test_tempo_changes_keep_tiling_and_bar_length_matches_tempo():
    arranger, generator = Arranger(SR), RuleBasedGenerator(seed=1)
    start, exact = 0, 0.0
    for tempo in np.linspace(50, 90, 37):
        c = controls(tempo_bpm=float(tempo))
        _, n = arranger.arrange(generator.next_bar(c), c, start)
        start += n
        exact += 7 * 60 / tempo * SR
        assert abs(start - exact) <= 0.5


def test_notes_pair_up_and_only_pad_tones_cross_the_bar_line():
    arranger, generator, c = Arranger(SR), RuleBasedGenerator(seed=4), controls(density=3)
    start = 0
    sounding = collections.Counter()
    for _ in range(10):
        messages, n = arranger.arrange(generator.next_bar(c), c, start)
        for m in messages:
            if m.kind == "note_on":
                assert sounding[(m.channel, m.a)] == 0, "a note is never started twice"
                assert m.frame < start + n
                sounding[(m.channel, m.a)] += 1
            elif m.kind == "note_off":
                assert sounding[(m.channel, m.a)] > 0, "note_off without note_on"
                sounding[(m.channel, m.a)] -= 1
        held = {key for key, count in sounding.items() if count}
        assert held and {channel for channel, _ in held} == {PAD}, "the pad is held into the next bar, nothing else"
        assert [m.frame for m in messages] == sorted(m.frame for m in messages)
        start += n
    assert {m.channel for m in messages if m.kind == "note_on"} == {MELODY, PAD, BASS}


def test_notes_straddling_the_bar_end_are_clipped():
    bar = Bar(beats=4, inhale_beats=2, notes=(NoteEvent(3.0, 5.0, 70, 60),), chords=(Chord(0.0, 2, (2, 6, 9)),))
    messages, n = Arranger(SR).arrange(bar, controls(tempo_bpm=60, beats_per_breath=4, inhale_beats=2), 1000)
    melody = [m for m in messages if m.channel == MELODY and m.kind.startswith("note")]
    assert [(m.kind, m.frame) for m in melody] == [("note_on", 1000 + 3 * SR), ("note_off", 1000 + 4 * SR)]
    assert n == 4 * SR


def test_swells_follow_the_breath():
    arranger, c = Arranger(SR), controls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4)
    arranger.initial_messages(c)
    messages, n = arranger.arrange(RuleBasedGenerator(seed=1).next_bar(c), c, 0)
    pad = [(m.frame, m.b) for m in messages if m.kind == "control_change" and m.a == 11 and m.channel == PAD]
    frames, values = np.array(pad).T
    # On a 20 ms grid; only unchanged values are skipped (around the turns of the breath).
    assert np.all(frames % (SR // 50) == 0) and np.diff(frames).max() <= 0.8 * SR
    value_at_inhale_end = values[frames <= 4 * SR][-1]
    assert value_at_inhale_end == values.max() == 120  # the peak of the swell is the end of the inhale
    assert 4 * SR - frames[values.argmax()] <= 0.25 * SR  # reached just before it (flat top of the cosine)
    low, high = PARTS[PAD].swell
    assert values.min() == low and 40 * np.log10(high / low) == pytest.approx(7.9, abs=0.1)  # dB on the GM curve
    rising, falling = values[frames < 4 * SR], values[frames > 4.1 * SR]
    assert np.all(np.diff(rising) > 0) and np.all(np.diff(falling) < 0)
    steps_db = 40 * np.abs(np.diff(np.log10(values)))
    assert steps_db.max() < 0.4  # each CC step is below the just-noticeable level change


def test_programs_follow_brightness_and_are_sustained_mono_safe_voices():
    arranger = Arranger(SR)
    initial = arranger.initial_messages(controls(brightness=0.1, volume=0.7))
    programs = {m.channel: m.a for m in initial if m.kind == "program_change"}
    assert programs == {MELODY: 73, PAD: 49, BASS: 42, BREATH: 73}  # flute, slow strings, cello
    assert not [m for m in initial if m.kind == "control_change" and m.a == 93 and m.b], "chorus stays off"
    assert {m.b for m in initial if m.kind == "control_change" and m.a == 7 and m.channel == BREATH} == {0}
    bright = controls(brightness=0.9, volume=0.3)
    messages, _ = arranger.arrange(RuleBasedGenerator().next_bar(bright), bright, 0)
    assert {m.channel: m.a for m in messages if m.kind == "program_change"} == {MELODY: 79}  # ocarina
    pad_volume = [m.b for m in messages if m.kind == "control_change" and m.a == 7 and m.channel == PAD]
    assert len(pad_volume) >= 10 and np.all(np.diff(pad_volume) <= 0)  # a glide down, not a step
    assert pad_volume[-1] == round(127 * np.sqrt(0.6 * 0.3))
    assert max(m.b for m in messages if m.kind == "note_on" and m.channel == MELODY) <= 72  # soft


def test_a_new_section_changes_the_pad_texture():
    arranger, c = Arranger(SR), controls(brightness=0.5)
    arranger.initial_messages(c)
    composer = Composer(RuleBasedGenerator(seed=2))
    pads, start = [], 0
    for _ in range(2 * BREATHS_PER_PHRASE * PHRASES_PER_SECTION + 1):
        used, bar, plan = composer.next_bar(c)
        messages, n = arranger.arrange(bar, used, start)
        start += n
        pads += [(plan.section, m.a) for m in messages if m.kind == "program_change" and m.channel == PAD]
    assert pads == [(1, 53), (2, 52)]  # slow strings -> voice oohs -> choir aahs, one change per section


def test_melody_attacks_soften_on_the_exhale():
    c = controls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4)
    notes = tuple(NoteEvent(float(b), 1.0, 67, 70) for b in range(10))
    bar = Bar(10, 4, notes, (Chord(0.0, 0, (0, 4, 7)),))
    messages, _ = Arranger(SR).arrange(bar, c, 0)
    velocity = [m.b for m in messages if m.kind == "note_on" and m.channel == MELODY]
    assert velocity[:5] == [70] * 5 and velocity[-1] <= 0.82 * 70 and velocity == sorted(velocity, reverse=True)


def test_a_plucked_lead_is_doubled_by_a_sustained_breath_voice():
    c = controls(lead="harp")
    arranger = Arranger(SR)
    initial = arranger.initial_messages(c)
    assert [m.b for m in initial if m.kind == "control_change" and m.a == 7 and m.channel == BREATH][0] > 0
    messages, _ = arranger.arrange(RuleBasedGenerator(seed=1).next_bar(c), c, 0)
    lead = [(m.frame, m.a) for m in messages if m.kind == "note_on" and m.channel == MELODY]
    assert lead and lead == [(m.frame, m.a) for m in messages if m.kind == "note_on" and m.channel == BREATH]


def test_tempo_change_glides_inside_the_breath_and_keeps_its_length():
    arranger, start = Arranger(SR), 0
    beat_lengths = []
    for tempo in (60.0, 60.0, 54.0, 54.0):
        c = controls(tempo_bpm=tempo, beats_per_breath=9, inhale_beats=4)
        _, n = arranger.arrange(Bar(9, 4, (), (Chord(0.0, 0, (0, 4, 7)),)), c, start)
        assert n == round(9 * 60 / tempo * SR)  # the breath lasts what the guide says
        beat_lengths += list(np.diff(arranger.beat_frames))
        start += n
    beat_lengths = np.array(beat_lengths, dtype=float)
    steps = np.abs(np.diff(beat_lengths)) / beat_lengths[1:]
    assert steps.max() < 0.05  # a 10 % tempo change, but no beat is more than 5 % longer than the last


def test_glided_beat_times_keep_the_bar_length_and_start_tempo():
    times = glided_beat_times(np.array([0.0, 0.01, 8.0]), 8, 60.0, 50.0, 60.0)
    assert times[0] == 0 and times[2] == pytest.approx(8.0, abs=1e-9)
    assert times[1] == pytest.approx(0.01 * 60 / 50, rel=1e-3)  # starts at the previous bar's tempo


@pytest.mark.parametrize("tempo", [30.0, 140.0])
def test_extreme_tempos_arrange(tempo):
    c = controls(tempo_bpm=tempo, beats_per_breath=2, inhale_beats=1, density=4)
    messages, n = Arranger(SR).arrange(RuleBasedGenerator().next_bar(c), c, 0)
    assert n == round(2 * 60 / tempo * SR) and messages


def test_the_protocols_lead_instrument_plays_the_melody():
    from generators.arranger import MELODY, Arranger
    from generators.controls import LEAD_PROGRAMS, MusicControls
    from generators.rules import RuleBasedGenerator

    controls = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, lead="harp", brightness=0.1)
    arranger = Arranger(48000)
    bar = RuleBasedGenerator(seed=1).next_bar(controls)
    programs = [m.a for m in arranger.initial_messages(controls) + arranger.arrange(bar, controls, 0)[0]
                if m.kind == "program_change" and m.channel == MELODY]
    assert programs and set(programs) == {LEAD_PROGRAMS["harp"]}, "harp despite a dark brightness (flute)"
