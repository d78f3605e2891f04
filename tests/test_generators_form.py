"""Phrase plan: progressions with cadences, beats per breath held over a phrase, motif memory, closure, the
planned melody's clashes with its chords, and the modes' characteristic degrees."""
import pytest

from generators import music_analysis
from generators.controls import MusicControls
from generators.form import BREATHS_PER_PHRASE, PHRASES_PER_SECTION, TEMPO_ABSORB, Composer
from generators.model import ModelGenerator
from generators.rules import RuleBasedGenerator

C = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, density=0.75)
SECTION = BREATHS_PER_PHRASE * PHRASES_PER_SECTION


def compose(generator, count: int, controls: MusicControls = C, final: bool = True) -> list:
    composer = Composer(generator)
    return [composer.next_bar(controls, final=final and i == count - 1) for i in range(count)]


@pytest.fixture(scope="module")
def model_section():
    return compose(ModelGenerator(seed=4, backend="numpy"), SECTION + 2)


def test_a_section_is_a_a_b_a_with_cadences(model_section):
    plans = [plan for _, _, plan in model_section]
    assert [p.role for p in plans[:SECTION:BREATHS_PER_PHRASE]] == ["A", "A'", "B", "A'"]
    assert all(p.phrase_end == (p.breath_in_phrase == BREATHS_PER_PHRASE - 1) for p in plans[:-1])
    for _, bar, plan in model_section[:SECTION]:
        if plan.role == "A'" and plan.phrase_end:  # V -> I: an authentic cadence
            assert [c.root for c in bar.chords] == [(C.tonic + 7) % 12, C.tonic]
    chords = [c.root for _, bar, _ in model_section[:BREATHS_PER_PHRASE] for c in bar.chords]
    assert len(set(chords)) >= 4, "a progression over the phrase, not one chord"


def test_a_prime_recalls_the_a_phrase_and_a_new_section_recalls_the_theme(model_section):
    bars = [bar for _, bar, _ in model_section]
    for breath in range(BREATHS_PER_PHRASE - 1):
        a, a_prime = bars[breath], bars[BREATHS_PER_PHRASE + breath]
        assert [(n.start_beat, n.duration_beats) for n in a.notes] == [(n.start_beat, n.duration_beats)
                                                                       for n in a_prime.notes]
    theme, reprise = bars[0], bars[SECTION]
    assert [n.start_beat for n in theme.notes] == [n.start_beat for n in reprise.notes]
    melody = music_analysis.session_melody(bars)
    assert music_analysis.recurring_pattern_fraction(melody) >= 0.15


def test_phrases_close_on_stable_degrees_and_the_session_on_the_tonic(model_section):
    ends = [music_analysis.ends_on_stable_degree(bar, C.tonic, C.mode) for _, bar, p in model_section if p.phrase_end]
    assert all(ends)
    _, last, plan = model_section[-1]
    assert plan.final and last.chords[-1].root == C.tonic and last.chords[0].root == (C.tonic + 7) % 12
    final_note = max(last.notes, key=lambda n: n.start_beat)
    assert final_note.pitch % 12 == C.tonic and final_note.start_beat + final_note.duration_beats == last.beats


@pytest.mark.parametrize("generator", [lambda: ModelGenerator(seed=2, backend="numpy"),
                                       lambda: RuleBasedGenerator(seed=2)])
def test_the_melody_rarely_rubs_a_semitone_against_its_chord(generator):
    bars = [bar for _, bar, _ in compose(generator(), 24)]
    assert music_analysis.semitone_clash_fraction(bars) <= 0.03


@pytest.mark.parametrize("mode", ["lydian", "dorian", "mixolydian"])
def test_the_modes_characteristic_degree_is_heard(mode):
    controls = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, mode=mode, tonic=7)
    bars = [bar for _, bar, _ in compose(ModelGenerator(seed=1, backend="numpy"), 16, controls)]
    fraction, counted = music_analysis.characteristic_degree_fraction(bars, 7, mode)
    assert counted >= 6 and fraction >= 0.6


def test_beats_per_breath_change_only_at_a_phrase_boundary():
    composer = Composer(RuleBasedGenerator(seed=1))
    rate = 6.0  # breaths/min, exact: the guide is the therapy's
    played = []
    for i in range(3 * BREATHS_PER_PHRASE):
        n = 10 if i < 2 else 11  # the policy asks for 11 beats from the third breath on
        requested = MusicControls(tempo_bpm=n * rate, beats_per_breath=n, inhale_beats=0.4 * n)
        used, _, plan = composer.next_bar(requested)
        assert used.breath_rate_bpm == pytest.approx(rate) and used.inhale_fraction == pytest.approx(0.4)
        assert abs(used.tempo_bpm / requested.tempo_bpm - 1) <= TEMPO_ABSORB + 1e-9 or plan.phrase_end
        played.append((used.beats_per_breath, plan.breath_in_phrase))
    changes = [k for k in range(1, len(played)) if played[k][0] != played[k - 1][0]]
    assert changes and all(played[k][1] == 0 for k in changes)


def test_a_tempo_bend_beyond_five_percent_closes_the_phrase_early():
    composer = Composer(RuleBasedGenerator(seed=1))
    composer.next_bar(MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4))
    _, _, plan = composer.next_bar(MusicControls(tempo_bpm=48, beats_per_breath=8, inhale_beats=3.2))
    assert plan.phrase_end and plan.breath_in_phrase == 1  # holding 10 beats would bend the tempo 25 %
    used, _, plan = composer.next_bar(MusicControls(tempo_bpm=48, beats_per_breath=8, inhale_beats=3.2))
    assert plan.breath_in_phrase == 0 and used.beats_per_breath == 8
