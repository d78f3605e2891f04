"""Form above the bar: the phrase plan (breaths -> phrases -> sections, A A' B A'), per-mode progressions with
cadences, motif memory, and the Composer that drives a Generator through them.

One breath is one bar. BREATHS_PER_PHRASE breaths make a phrase, PHRASES_PER_SECTION phrases a section,
played A A' B A': A' recalls A's breaths (the melody re-used, varied to its new chords) and closes with an
authentic cadence; B departs. Each breath carries two chords, one for the inhale and one for the exhale.
Beats per breath change only at a phrase boundary; inside a phrase the tempo absorbs changes of the guide's
rate (tempo = beats per breath x guide rate, so the guide stays exact) while it stays within TEMPO_ABSORB of
the policy's tempo; past that the phrase closes early. A jump of the guide's rate larger than TEMPO_STEP per
breath (the policy stepping its guide) is spread over several breaths, the guide following the music. A phrase's last breath glides half way to the next
phrase's tempo and the next breath glides the rest (``arranger.glided_beat_time``). Each new section changes
texture.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from generators import theory
from generators.base import Generator
from generators.controls import MusicControls
from generators.events import Bar, Chord, NoteEvent

BREATHS_PER_PHRASE = 4
PHRASES_PER_SECTION = 4
SECTION_FORM = ("A", "A'", "B", "A'")
TEMPO_ABSORB = 0.05  # holding beats per breath may bend the policy's tempo by this fraction at most
TEMPO_STEP = 0.05  # with beats per breath unchanged, the tempo moves at most this fraction per breath
MIN_TEMPO, MAX_TEMPO = 30.0, 140.0  # MusicControls.tempo_bpm range
TEXTURES = 3  # sections cycle through this many textures (see arranger.TEXTURE_PARTS)

# Per (parent) mode and phrase role: scale degrees (0 = tonic) for each breath's (inhale, exhale) chord.
# A ends open (a half cadence, or the mode's colour chord), A' closes with the mode's cadence into the tonic,
# B departs from the tonic and leads back. Modal cadences use the chord holding the characteristic degree:
# lydian II -> I (#4), dorian IV -> i (6), mixolydian bVII -> I (b7).
PROGRESSIONS: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "major": {"A": ((0, 0), (3, 0), (5, 3), (4, 4)), "A'": ((0, 0), (3, 0), (1, 4), (4, 0)),
              "B": ((5, 5), (3, 3), (1, 1), (4, 4))},
    "minor": {"A": ((0, 0), (5, 5), (3, 3), (6, 6)), "A'": ((0, 0), (5, 5), (3, 6), (4, 0)),
              "B": ((5, 5), (2, 2), (3, 3), (6, 6))},
    "dorian": {"A": ((0, 0), (3, 0), (6, 2), (3, 3)), "A'": ((0, 0), (3, 0), (6, 2), (3, 0)),
               "B": ((2, 2), (6, 6), (4, 4), (3, 3))},
    "lydian": {"A": ((0, 0), (1, 0), (5, 4), (1, 1)), "A'": ((0, 0), (1, 0), (5, 4), (1, 0)),
               "B": ((4, 4), (5, 5), (2, 2), (1, 1))},
    "mixolydian": {"A": ((0, 0), (6, 0), (3, 5), (6, 6)), "A'": ((0, 0), (6, 0), (3, 5), (6, 0)),
                   "B": ((3, 3), (5, 5), (4, 4), (6, 6))},
}
FINAL_BREATH = {"major": (4, 0), "minor": (4, 0), "dorian": (3, 0), "lydian": (1, 0), "mixolydian": (6, 0)}


@dataclass(frozen=True, slots=True)
class BarPlan:
    """Where a breath sits in the form and what it must do."""

    breath_in_phrase: int  # 0..BREATHS_PER_PHRASE-1
    phrase_in_section: int  # 0..PHRASES_PER_SECTION-1
    section: int  # 0, 1, ...
    role: str  # "A", "A'" or "B"
    degrees: tuple[int, int]  # scale degrees of the inhale and exhale chords
    phrase_end: bool = False  # the phrase's last breath (its cadence); phrases end early when the tempo must
    final: bool = False  # the session's last breath: cadence into the tonic, the melody ends on it
    glide_to_bpm: float | None = None  # the tempo this breath ends on, half way to the next phrase's; None: its own

    @property
    def texture(self) -> int:
        return self.section % TEXTURES

    @property
    def recalls(self) -> tuple[int, int] | None:
        """(section, breath) of the remembered A breath this breath re-uses: A' re-plays its section's A (the
        closing breath excepted), and a new section's A opens with the previous section's theme. None when
        the breath is composed afresh."""
        if self.phrase_end:
            return None
        if self.role == "A'":
            return self.section, self.breath_in_phrase
        if self.role == "A" and self.section > 0 and self.breath_in_phrase < 2:
            return self.section - 1, self.breath_in_phrase
        return None


def plan_for(index: int) -> tuple[int, int, int, str]:
    """(breath in phrase, phrase in section, section, role) of breath ``index`` (0 = the session's first)."""
    breath = index % BREATHS_PER_PHRASE
    phrase = index // BREATHS_PER_PHRASE % PHRASES_PER_SECTION
    section = index // (BREATHS_PER_PHRASE * PHRASES_PER_SECTION)
    return breath, phrase, section, SECTION_FORM[phrase]


def harmony(controls: MusicControls, degrees: tuple[int, int]) -> tuple[Chord, ...]:
    """The breath's chords: the inhale chord from beat 0, the exhale chord from the turn of the breath (one
    chord when both are the same or the breath is shorter than 4 beats). Triads; sevenths when bright."""
    palette = theory.diatonic_chords(controls.tonic, controls.mode, sevenths=controls.brightness >= 0.6)
    turn = float(min(max(round(controls.inhale_beats), 1), controls.beats_per_breath - 1))
    inhale, exhale = palette[degrees[0]], palette[degrees[1]]
    chords = [Chord(0.0, inhale.root, inhale.pitch_classes)]
    if exhale.degree != inhale.degree and controls.beats_per_breath >= 4:
        chords.append(Chord(turn, exhale.root, exhale.pitch_classes))
    return tuple(chords)


def fit_to_chords(notes: tuple[NoteEvent, ...], chords: tuple[Chord, ...], scale: tuple[int, ...]
                  ) -> tuple[NoteEvent, ...]:
    """Melody notes moved by the least amount so that none sits a semitone off a tone of its chord, and every
    note stays in ``scale`` (chord tones and whole-step neighbours survive unchanged)."""
    out = []
    for note in notes:
        tones = set(theory.chord_at(chords, note.start_beat).pitch_classes)
        ok = {pc for pc in scale if pc in tones or not ({(pc + 1) % 12, (pc - 1) % 12} & tones)}
        out.append(dataclasses.replace(note, pitch=theory.snap_to_scale(note.pitch, tuple(ok))))
    return tuple(out)


def fit_in_beats(notes: tuple[NoteEvent, ...], beats: int) -> tuple[NoteEvent, ...]:
    """Remembered notes in a breath of ``beats`` beats: notes past the end dropped, the last one cut at the end
    or, in a longer breath, held to it."""
    kept = [n for n in notes if n.start_beat < beats]
    if not kept:
        return ()
    last = kept[-1]
    return tuple(kept[:-1]) + (dataclasses.replace(last, duration_beats=beats - last.start_beat),) \
        if last.start_beat + last.duration_beats != beats else tuple(kept)


def close_phrase(bar: Bar, controls: MusicControls, to_tonic: bool) -> Bar:
    """The breath's last melody note moved to a stable degree (1, 3 or 5: a tonic-triad tone), held to the end
    of the breath: the tonic itself with ``to_tonic``; otherwise a tonic-triad tone of the final chord, or
    over a chord without one (lydian II) the tonic-triad tone that rubs no semitone against it."""
    if not bar.notes:
        return bar
    last = max(range(len(bar.notes)), key=lambda i: bar.notes[i].start_beat)
    note = bar.notes[last]
    final_chord = bar.chords[-1].pitch_classes
    tonic_triad = theory.diatonic_chords(controls.tonic, controls.mode)[0].pitch_classes
    smooth = tuple(pc for pc in tonic_triad if not {(pc + 1) % 12, (pc - 1) % 12} & set(final_chord))
    targets = (controls.tonic % 12,) if to_tonic else \
        tuple(pc for pc in final_chord if pc in tonic_triad) or smooth or tonic_triad
    ending = dataclasses.replace(note, pitch=theory.snap_to_scale(note.pitch, targets),
                                 duration_beats=bar.beats - note.start_beat)
    return dataclasses.replace(bar, notes=bar.notes[:last] + (ending,) + bar.notes[last + 1:])


class Composer:
    """Drives ``generator`` breath by breath through the phrase plan; same generator seed and controls
    sequence => the same bars. ``next_bar(controls, final)`` returns the controls actually used (beats per
    breath held over the phrase, tempo = beats x the guide's rate), the planned bar and its plan."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.index = 0
        self.beats_per_breath: int | None = None  # held over the current phrase
        self.next_beats: int | None = None  # committed for the next phrase when the last one closed
        self.last: MusicControls | None = None  # the controls of the previous breath
        self.memory: dict[tuple[int, int], Bar] = {}  # (section, breath in phrase) -> the A phrase's bars

    def plan(self, controls: MusicControls, final: bool = False) -> tuple[MusicControls, BarPlan]:
        breath, phrase, section, role = plan_for(self.index)
        requested = controls
        if self.beats_per_breath is None or breath == 0:
            # the N committed when the last phrase closed, which its last breath glided towards; should the
            # policy want another N already, this breath closes the phrase and glides on (a one-breath phrase)
            self.beats_per_breath = self.next_beats or controls.beats_per_breath
        scale = self.beats_per_breath / controls.beats_per_breath
        if scale != 1 and MIN_TEMPO <= controls.tempo_bpm * scale <= MAX_TEMPO:
            controls = dataclasses.replace(controls, beats_per_breath=self.beats_per_breath,
                                           tempo_bpm=controls.tempo_bpm * scale,
                                           inhale_beats=controls.inhale_beats * scale)
        self.beats_per_breath = controls.beats_per_breath
        if self.last is not None and self.last.beats_per_breath == controls.beats_per_breath:
            # a jump of the guide's rate (the policy stepping it) is spread over breaths, TEMPO_STEP at a time
            low, high = self.last.tempo_bpm * (1 - TEMPO_STEP), self.last.tempo_bpm * (1 + TEMPO_STEP)
            if not low <= controls.tempo_bpm <= high:
                controls = dataclasses.replace(controls, tempo_bpm=min(max(controls.tempo_bpm, low), high))
        self.last = controls
        bent = abs(controls.tempo_bpm - requested.tempo_bpm) / requested.tempo_bpm
        closing = final or breath == BREATHS_PER_PHRASE - 1 or bent > TEMPO_ABSORB
        glide_to = None
        if closing:
            self.next_beats = requested.beats_per_breath
            if self.next_beats != controls.beats_per_breath:
                glide_to = (controls.tempo_bpm + requested.tempo_bpm) / 2
            self.index += BREATHS_PER_PHRASE - 1 - breath  # the next breath opens a phrase
        parent = theory.chord_mode(controls.mode)
        progression = PROGRESSIONS[parent][role]
        degrees = FINAL_BREATH[parent] if final else progression[-1] if closing else progression[breath]
        return controls, BarPlan(breath, phrase, section, role, degrees, closing, final, glide_to)

    def next_bar(self, controls: MusicControls, final: bool = False) -> tuple[MusicControls, Bar, BarPlan]:
        controls, plan = self.plan(controls, final)
        chords = harmony(controls, plan.degrees)
        scale = theory.scale_pitch_classes(controls.tonic, controls.mode)
        # a breath missing from memory (its phrase closed early) recalls the phrase's opening breath instead
        remembered = self.memory.get(plan.recalls, self.memory.get((plan.recalls[0], 0))) if plan.recalls else None
        if remembered is not None:
            bar = Bar(controls.beats_per_breath, controls.inhale_beats,
                      fit_in_beats(remembered.notes, controls.beats_per_breath), chords)
        else:
            bar = self.generator.next_bar(controls, chords)
        bar = dataclasses.replace(bar, notes=fit_to_chords(bar.notes, chords, scale))
        if plan.phrase_end:
            bar = close_phrase(bar, controls, to_tonic=plan.final or plan.role == "A'")
        if plan.role == "A":
            self.memory[(plan.section, plan.breath_in_phrase)] = bar
            self.memory = {k: v for k, v in self.memory.items() if k[0] >= plan.section - 1}
        self.index += 1
        return controls, dataclasses.replace(bar, plan=plan), plan
