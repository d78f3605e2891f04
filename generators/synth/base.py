"""The Synth interface, shared by FluidSynth and the built-in synthesiser: MIDI channel messages in,
stereo float audio out."""
from __future__ import annotations

import abc

import numpy as np

from generators.events import MidiMessage


class Synth(abc.ABC):
    """A General MIDI style synthesiser rendered block by block (no real-time thread of its own)."""

    sample_rate: int  # Hz
    # Gain (dB) the master applies so that every synth plays a session at a similar listening level
    # (measured with benchmarks/music_quality.py: about -18 to -20 LUFS over a 5-minute coherent-6 session,
    # swells included, peaks below -3 dBFS so the limiter stays out).
    makeup_db: float = 0.0

    @abc.abstractmethod
    def program_change(self, channel: int, program: int) -> None:
        """Select General MIDI program 0-127 on channel 0-15."""

    @abc.abstractmethod
    def note_on(self, channel: int, key: int, velocity: int) -> None: ...

    @abc.abstractmethod
    def note_off(self, channel: int, key: int) -> None: ...

    @abc.abstractmethod
    def control_change(self, channel: int, control: int, value: int) -> None:
        """CC 7 (channel volume) and CC 11 (expression) at least; values 0-127."""

    @abc.abstractmethod
    def render(self, n_frames: int) -> np.ndarray:
        """The next ``n_frames`` frames as float32 of shape (n_frames, 2), nominally within -1..1."""

    def send(self, message: MidiMessage) -> None:
        """Apply one MidiMessage (its frame is the caller's business)."""
        if message.kind == "note_on":
            self.note_on(message.channel, message.a, message.b)
        elif message.kind == "note_off":
            self.note_off(message.channel, message.a)
        elif message.kind == "control_change":
            self.control_change(message.channel, message.a, message.b)
        elif message.kind == "program_change":
            self.program_change(message.channel, message.a)
        else:
            raise ValueError(f"unknown MIDI message kind {message.kind!r}")

    def close(self) -> None:
        """Release native resources."""
