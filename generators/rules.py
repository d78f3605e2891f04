"""RuleBasedGenerator: a seeded, deterministic melody-and-chords composer whose phrase rises on the inhale and
falls on the exhale, one breath-locked bar at a time."""
from __future__ import annotations

import numpy as np

from generators.base import Generator
from generators.controls import MusicControls
from generators.events import Bar, Chord, NoteEvent
from generators.theory import (breath_arc, chord_mode, diatonic_chords, scale_pitch_classes, scale_pitches,
                               snap_to_scale)

# Gentle four-chord walks per (parent) mode, as scale degrees from 0 = tonic; every walk starts on the tonic
# and none uses the diminished triad, so each cycle resolves home.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": ((0, 5, 3, 4), (0, 3, 5, 4), (0, 5, 1, 4), (0, 2, 3, 4), (0, 3, 0, 4), (0, 4, 5, 3)),
    "minor": ((0, 5, 2, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 6, 5, 6), (0, 3, 5, 6)),
    "dorian": ((0, 3, 0, 6), (0, 6, 3, 0), (0, 2, 3, 6), (0, 3, 4, 6)),
    "lydian": ((0, 1, 0, 4), (0, 1, 5, 4), (0, 5, 1, 0), (0, 2, 1, 4)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 0), (0, 4, 6, 3), (0, 5, 6, 3)),
}

CONTOUR_SPAN = 4  # semitones above/below register_midi that the breath arc reaches
CHOICE_TEMPERATURE = 0.7  # lower = always the best-scoring pitch, higher = more wandering


class RuleBasedGenerator(Generator):
    """Composes one breath-locked bar per call. Same ``seed`` and same controls sequence => same bars.

    Harmony: a gentle diatonic walk, one chord per bar (two, changing at the breath turn, when the bar has
    6 beats or more). Melody: ``density`` notes per beat on average, chord tones on strong beats, mostly
    stepwise, following an arc centred on ``register_midi`` that peaks at the end of the inhale and ends
    the exhale on a stable chord tone. Progression position and last pitch carry over between bars.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.walk: tuple[int, ...] = ()
        self.walk_position = 0
        self.last_pitch: int | None = None

    def next_bar(self, controls: MusicControls, harmony: tuple[Chord, ...] | None = None) -> Bar:
        controls.validate()
        beats = controls.beats_per_breath
        chords = list(harmony) if harmony else self._next_chords(controls)
        notes = self._melody(controls, chords)
        return Bar(beats=beats, inhale_beats=controls.inhale_beats, notes=tuple(notes), chords=tuple(chords))

    # -- harmony ----------------------------------------------------------------------------------
    def _next_degree(self, mode: str) -> int:
        if self.walk_position >= len(self.walk):
            walks = PROGRESSIONS[chord_mode(mode)]
            self.walk = walks[int(self.rng.integers(len(walks)))]
            self.walk_position = 0
        degree = self.walk[self.walk_position]
        self.walk_position += 1
        return degree

    def _next_chords(self, controls: MusicControls) -> list[Chord]:
        beats = controls.beats_per_breath
        starts = [0.0]
        if beats >= 6:
            starts.append(float(min(max(round(controls.inhale_beats), 1), beats - 1)))
        palette = diatonic_chords(controls.tonic, controls.mode, sevenths=controls.brightness >= 0.4)
        chords = []
        for start in starts:
            chord = palette[self._next_degree(controls.mode)]
            chords.append(Chord(start_beat=start, root=chord.root, pitch_classes=chord.pitch_classes))
        return chords

    # -- melody -----------------------------------------------------------------------------------
    def _onsets(self, beats: int, density: float) -> list[float]:
        """Note start times in beats: slot 0 always, the rest drawn on a grid, strong beats more likely."""
        grid = 0.25 if density > 2 else 0.5 if density > 1 else 1.0
        slots = np.arange(0.0, beats, grid)
        count = int(min(max(round(density * beats), 1), len(slots)))
        weights = np.array([4.0 if s % 2 == 0 else 3.0 if s % 1 == 0 else 1.5 if s % 0.5 == 0 else 1.0
                            for s in slots[1:]])
        chosen = self.rng.choice(slots[1:], size=count - 1, replace=False, p=weights / weights.sum()) \
            if count > 1 else np.array([])
        return [0.0] + sorted(float(s) for s in chosen)

    def _melody(self, controls: MusicControls, chords: list[Chord]) -> list[NoteEvent]:
        beats, inhale = controls.beats_per_breath, controls.inhale_beats
        scale = scale_pitch_classes(controls.tonic, controls.mode)
        centre = controls.register_midi
        low_target, high_target = centre - CONTOUR_SPAN, centre + CONTOUR_SPAN
        pool = scale_pitches(max(centre - 2 * CONTOUR_SPAN - 2, 24), min(centre + 2 * CONTOUR_SPAN + 2, 108), scale)
        if self.last_pitch is None:
            self.last_pitch = snap_to_scale(low_target, scale)
        onsets = self._onsets(beats, controls.density)
        notes = []
        for i, onset in enumerate(onsets):
            height = breath_arc(onset, inhale, beats)
            target = low_target + (high_target - low_target) * height
            chord = [c for c in chords if c.start_beat <= onset][-1]
            is_last = i == len(onsets) - 1
            strong = onset % 1 == 0 and (onset % 2 == 0 or onset == chord.start_beat)
            pitch = self._choose_pitch(pool, target, chord, scale, strong, is_last, controls.tonic)
            end = onsets[i + 1] if not is_last else float(beats)
            velocity = int(round(50 + 18 * height + self.rng.integers(-3, 4)))
            notes.append(NoteEvent(onset, end - onset, pitch, velocity))
            self.last_pitch = pitch
        return notes

    def _choose_pitch(self, pool: list[int], target: float, chord: Chord, scale: tuple[int, ...], strong: bool,
                      is_last: bool, tonic: int) -> int:
        last = self.last_pitch
        candidates = [p for p in pool if abs(p - last) <= 7] or [snap_to_scale(round(target), scale)]
        if is_last or strong:
            # A phrase ends on the triad of its chord (root or tonic preferred); strong beats on any chord tone.
            allowed = set(chord.pitch_classes[:3] if is_last else chord.pitch_classes) & set(scale)
            restricted = [p for p in candidates if p % 12 in allowed]
            candidates = restricted or candidates
        scores = []
        for p in candidates:
            leap = abs(p - last)
            leap_cost = 1.0 if leap == 0 else 0.0 if leap <= 2 else 1.5 if leap <= 4 else 1.5 + (leap - 4)
            stable_bonus = 1.0 if is_last and p % 12 in (chord.root, tonic) else 0.0
            scores.append(abs(p - target) + leap_cost - stable_bonus)
        weights = np.exp(-(np.array(scores) - min(scores)) / CHOICE_TEMPERATURE)
        return int(candidates[int(self.rng.choice(len(candidates), p=weights / weights.sum()))])

