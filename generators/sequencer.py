"""Sequencer: plays MidiMessages stamped with absolute frames into a Synth, splitting rendering exactly at
message frames so timing is sample-accurate and independent of the block size."""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

import numpy as np

from generators.events import MidiMessage
from generators.synth.base import Synth


class Sequencer:
    """Owns the music clock of one synth: ``frame`` is the next frame ``render`` will produce."""

    def __init__(self, synth: Synth) -> None:
        self.synth = synth
        self.frame = 0
        self._pending: list[tuple[int, int, MidiMessage]] = []
        self._order = itertools.count()  # messages on the same frame are sent in the order scheduled

    def schedule(self, messages: Iterable[MidiMessage]) -> None:
        """Queue messages; each must be at or after the current frame."""
        for message in messages:
            if message.frame < self.frame:
                raise ValueError(
                    f"MidiMessage at frame {message.frame} is in the past (sequencer is at frame {self.frame}): "
                    "schedule bars before rendering them"
                )
            heapq.heappush(self._pending, (message.frame, next(self._order), message))

    @property
    def pending(self) -> int:
        """Messages scheduled but not yet sent."""
        return len(self._pending)

    def render(self, n_frames: int) -> np.ndarray:
        """The next ``n_frames`` frames, float32 (n_frames, 2); messages take effect exactly at their frame."""
        out = np.empty((n_frames, 2), dtype=np.float32)
        done = 0
        end = self.frame + n_frames
        while done < n_frames:
            while self._pending and self._pending[0][0] <= self.frame:
                self.synth.send(heapq.heappop(self._pending)[2])
            next_event = self._pending[0][0] if self._pending else end
            chunk = min(next_event, end) - self.frame
            out[done:done + chunk] = self.synth.render(chunk)
            done += chunk
            self.frame += chunk
        return out
