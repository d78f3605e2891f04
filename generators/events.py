"""Value types that generators produce: notes, chords, breath-locked bars and timed MIDI messages."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generators.form import BarPlan


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A note in a bar. Times in beats (quarter notes) from the bar start; pitch is a MIDI note number."""

    start_beat: float
    duration_beats: float
    pitch: int  # 0-127, 60 = middle C
    velocity: int = 80  # 1-127


@dataclass(frozen=True, slots=True)
class Chord:
    """A harmony from ``start_beat`` until the next chord: root pitch class (0 = C) and its pitch classes."""

    start_beat: float
    root: int  # 0-11
    pitch_classes: tuple[int, ...]  # 0-11, root first


@dataclass(frozen=True, slots=True)
class Bar:
    """One breath-locked bar: ``beats`` beats long, the first ``inhale_beats`` of them on the inhale.

    ``notes`` is the melody; ``chords`` the harmony the arranger voices as pad and bass; ``plan`` its place in
    the form when a ``generators.form.Composer`` made it.
    """

    beats: int
    inhale_beats: float
    notes: tuple[NoteEvent, ...]
    chords: tuple[Chord, ...]
    plan: BarPlan | None = None


@dataclass(frozen=True, slots=True)
class MidiMessage:
    """A channel message at an absolute audio frame (the music clock).

    kind: "note_on" (a=key, b=velocity), "note_off" (a=key), "control_change" (a=controller, b=value),
    "program_change" (a=program). Channels 0-15, values 0-127.
    """

    frame: int
    kind: str
    channel: int
    a: int
    b: int = 0
