"""The Generator interface: composes one breath-locked bar at a time under the current controls."""
from __future__ import annotations

import abc

from generators.controls import MusicControls
from generators.events import Bar, Chord


class Generator(abc.ABC):
    """Streams music bar by bar. State (key, motif, model cache) carries over between bars, so a change
    of controls applies from the next bar without a restart."""

    @abc.abstractmethod
    def next_bar(self, controls: MusicControls, harmony: tuple[Chord, ...] | None = None) -> Bar:
        """Compose the next bar: ``controls.beats_per_breath`` beats, melody and chords, in ``controls.mode``.
        With ``harmony`` (the phrase plan's chords) the melody is composed over those chords, which the bar
        keeps; without, the generator chooses its own."""
