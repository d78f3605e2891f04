"""Music theory helpers: scales from MODE_STEPS, diatonic chords per mode, pitch snapping/stepping in a scale,
the chord sounding at a beat, and the breath arc that shapes phrases and swells."""
from __future__ import annotations

import math
from dataclasses import dataclass

from generators.controls import MODE_STEPS
from generators.events import Chord

# Pentatonic modes borrow the chords of the seven-note scale they are drawn from.
PARENT_MODE = {"pentatonic-major": "major", "pentatonic-minor": "minor"}


@dataclass(frozen=True, slots=True)
class DiatonicChord:
    """A chord built in thirds on scale degree ``degree`` (0 = tonic): root pitch class and its pitch classes
    (root, third, fifth[, seventh]); ``quality`` is "major", "minor", "diminished" or "augmented" (the triad)."""

    degree: int
    root: int
    pitch_classes: tuple[int, ...]
    quality: str


def _check_mode(mode: str) -> None:
    if mode not in MODE_STEPS:
        raise ValueError(f"unknown mode {mode!r}; use one of: {', '.join(MODE_STEPS)}")


def scale_pitch_classes(tonic: int, mode: str) -> tuple[int, ...]:
    """Pitch classes (0-11, 0 = C) of ``mode`` on ``tonic`` (0-11), in scale order starting at the tonic."""
    _check_mode(mode)
    return tuple((tonic + step) % 12 for step in MODE_STEPS[mode])


def chord_mode(mode: str) -> str:
    """The seven-note mode whose chords ``mode`` uses (itself, or the parent of a pentatonic mode)."""
    _check_mode(mode)
    return PARENT_MODE.get(mode, mode)


def _triad_quality(third: int, fifth: int) -> str:
    return {(4, 7): "major", (3, 7): "minor", (3, 6): "diminished", (4, 8): "augmented"}[(third, fifth)]


def diatonic_chords(tonic: int, mode: str, sevenths: bool = False) -> tuple[DiatonicChord, ...]:
    """The seven chords stacked in thirds on each degree of ``mode`` (of its parent scale for pentatonic modes),
    as triads or, with ``sevenths``, as seventh chords."""
    scale = scale_pitch_classes(tonic, chord_mode(mode))
    size = 3 + int(sevenths)
    chords = []
    for degree in range(7):
        pcs = tuple(scale[(degree + 2 * k) % 7] for k in range(size))
        third, fifth = (pcs[1] - pcs[0]) % 12, (pcs[2] - pcs[0]) % 12
        chords.append(DiatonicChord(degree, pcs[0], pcs, _triad_quality(third, fifth)))
    return tuple(chords)


def chord_at(chords: tuple[Chord, ...] | list[Chord], beat: float) -> Chord:
    """The chord sounding at ``beat`` of a bar (the first chord before any chord starts)."""
    sounding = [c for c in chords if c.start_beat <= beat + 1e-9]
    return sounding[-1] if sounding else chords[0]


def scale_pitches(low: int, high: int, scale: tuple[int, ...]) -> list[int]:
    """All MIDI pitches ``low``..``high`` (inclusive) whose pitch class is in ``scale``, ascending."""
    members = set(scale)
    return [p for p in range(low, high + 1) if p % 12 in members]


def snap_to_scale(pitch: int, scale: tuple[int, ...]) -> int:
    """The scale pitch nearest to MIDI ``pitch``; a tie goes to the lower pitch."""
    for distance in range(12):
        for candidate in (pitch - distance, pitch + distance):
            if candidate % 12 in scale:
                return candidate
    raise ValueError("empty scale: pass at least one pitch class")


def step_in_scale(pitch: int, steps: int, scale: tuple[int, ...]) -> int:
    """Move ``steps`` scale degrees (negative = down) from ``pitch``, which is first snapped to the scale."""
    current = snap_to_scale(pitch, scale)
    direction = 1 if steps > 0 else -1
    for _ in range(abs(steps)):
        current += direction
        while current % 12 not in scale:
            current += direction
    return current


def breath_arc(beat: float, inhale_beats: float, beats: float) -> float:
    """Height 0-1 of the breath phrase at ``beat`` of a bar: 0 at the bar start, rising to 1 at the end of the
    inhale (``inhale_beats``), back to 0 at the end of the exhale (``beats``); raised-cosine segments."""
    if beat < inhale_beats:
        return 0.5 - 0.5 * math.cos(math.pi * beat / inhale_beats)
    return 0.5 + 0.5 * math.cos(math.pi * min(beat - inhale_beats, beats - inhale_beats) / (beats - inhale_beats))
