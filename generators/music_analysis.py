"""Score measurements of composed bars: melody clashes with the sounding chord, recurring 4-note patterns,
phrase closure on stable degrees and how often a mode's characteristic degree is heard."""
from __future__ import annotations

from collections.abc import Sequence

from generators import theory
from generators.events import Bar

# The degree that tells a mode from its major/minor neighbour: (semitones of the characteristic form, of the
# plain form) above the tonic.
CHARACTERISTIC_DEGREE = {"lydian": (6, 5), "dorian": (9, 8), "mixolydian": (10, 11)}
PATTERN_NOTES = 4
PATTERN_CHUNK = 100  # notes per piece-sized chunk of a long session (a corpus tune has ~90 notes)


def semitone_clash_fraction(bars: Sequence[Bar]) -> float:
    """Fraction of melody notes a semitone away from a tone of the chord sounding at their onset (and not
    themselves a chord tone): the harsh minor-second rub."""
    clashes = total = 0
    for bar in bars:
        for note in bar.notes:
            tones = set(theory.chord_at(bar.chords, note.start_beat).pitch_classes)
            pc = note.pitch % 12
            total += 1
            clashes += pc not in tones and ((pc + 1) % 12 in tones or (pc - 1) % 12 in tones)
    return clashes / total if total else 0.0


def recurring_pattern_fraction(melody: Sequence[tuple[float, int]], chunk: int = PATTERN_CHUNK) -> float:
    """Fraction of 4-note windows whose shape (3 pitch intervals and 3 inter-onset intervals in beats) already
    occurred earlier in the same chunk of ``chunk`` notes. ``melody``: (onset in beats, MIDI pitch) in order."""
    repeated = windows = 0
    for begin in range(0, max(len(melody) - PATTERN_NOTES + 1, 0), chunk):
        notes = melody[begin:begin + chunk]
        seen = set()
        for i in range(len(notes) - PATTERN_NOTES + 1):
            window = notes[i:i + PATTERN_NOTES]
            shape = tuple((b[1] - a[1], round((b[0] - a[0]) * 4)) for a, b in zip(window, window[1:]))
            windows += 1
            repeated += shape in seen
            seen.add(shape)
    return repeated / windows if windows else 0.0


def session_melody(bars: Sequence[Bar]) -> list[tuple[float, int]]:
    """All melody notes of consecutive bars as (onset in beats from the first bar, pitch)."""
    out, offset = [], 0.0
    for bar in bars:
        out += [(offset + n.start_beat, n.pitch) for n in bar.notes]
        offset += bar.beats
    return out


def ends_on_stable_degree(bar: Bar, tonic: int, mode: str) -> bool | None:
    """Whether the bar's last melody note is a tonic-triad tone (degree 1, 3 or 5 of the mode, of its parent
    scale for a pentatonic mode); None without notes."""
    if not bar.notes:
        return None
    stable = set(theory.diatonic_chords(tonic, mode)[0].pitch_classes)
    last = max(bar.notes, key=lambda n: n.start_beat)
    return last.pitch % 12 in stable


def characteristic_degree_fraction(bars: Sequence[Bar], tonic: int, mode: str) -> tuple[float, int]:
    """For a mode in CHARACTERISTIC_DEGREE: (fraction of bars using the characteristic form among the bars
    where either form of that degree sounds, in melody or chords; number of such bars)."""
    special, plain = CHARACTERISTIC_DEGREE[mode]
    hits = counted = 0
    for bar in bars:
        pcs = {n.pitch % 12 for n in bar.notes} | {pc for c in bar.chords for pc in c.pitch_classes}
        rel = {(pc - tonic) % 12 for pc in pcs}
        if special in rel or plain in rel:
            counted += 1
            hits += special in rel
    return (hits / counted if counted else 0.0), counted
