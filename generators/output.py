"""File outputs: a streaming WAV writer, a MIDI file writer that maps audio frames to ticks via a tempo map, and
the two ways every Heartsong file is created: never through a link at its path, readable by the user alone."""
from __future__ import annotations

import bisect
import contextlib
import io
import os
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import mido
import numpy as np

from generators.events import MidiMessage

TICKS_PER_BEAT = 480
DEFAULT_TEMPO_BPM = 120.0  # the MIDI default, used before the first tempo change


def _private_temporary(path: Path) -> tuple[int, Path]:
    """A new 0600 file under a fresh name beside ``path`` (``mkstemp``: O_EXCL, so nothing planted is opened)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(name)


def create_file(path: Path | str) -> BinaryIO:
    """A new, empty, user-only (0600) file now standing at ``path``, open for writing (binary).

    It is made under a temporary name in the same folder and renamed over ``path`` before anything is written, so
    a symbolic link (or any file) at ``path`` is replaced, never followed or truncated, and what is written later
    is already at ``path`` if the process is killed."""
    path = Path(path)
    fd, temporary = _private_temporary(path)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return os.fdopen(fd, "w+b")


def replace_file(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to a new user-only (0600) file and rename it over ``path``: readers see the old file or the
    new one, never half of one; a link at ``path`` is replaced, not followed. On failure (a full disk) the old
    file stays as it was and no temporary file is left."""
    path = Path(path)
    fd, temporary = _private_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path


class WavWriter:
    """Appends stereo float blocks to a 16-bit PCM WAV file as they are rendered (``create_file``: a new 0600 file).

    Use as a context manager. The header's sizes are rewritten after every block (two 4-byte writes), so a
    process killed at any moment leaves a valid WAV file holding everything up to the last block written."""

    def __init__(self, path: Path | str, sample_rate: int = 48000, channels: int = 2):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames_written = 0
        try:
            self._raw = create_file(self.path)
        except OSError as error:
            raise OSError(f"cannot write WAV file {self.path} ({error.strerror or error}); choose another output "
                          "directory") from None
        self._file = wave.open(self._raw, "wb")
        self._file.setnchannels(channels)
        self._file.setsampwidth(2)
        self._file.setframerate(sample_rate)

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` float (frames, channels) in -1..1 (clipped to that range)."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"WavWriter expects blocks shaped (frames, {self.channels}), got {block.shape}")
        pcm = np.rint(np.clip(block, -1.0, 1.0) * 32767.0).astype("<i2")
        try:
            self._file.writeframes(pcm.tobytes())  # also brings the header's sizes up to date
        except OSError as error:
            raise OSError(f"cannot write WAV file {self.path} after {self.frames_written / self.sample_rate:.1f} s "
                          f"({error.strerror or error}); free some space or choose another output directory") from None
        self.frames_written += len(block)

    def close(self) -> None:
        if not self._raw.closed:
            with contextlib.suppress(OSError):  # the header is already current; a full disk changes nothing here
                self._file.close()
            with contextlib.suppress(OSError):
                self._raw.close()

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _TempoMap:
    """Converts audio frames to MIDI ticks through piecewise-constant tempo segments."""

    def __init__(self, sample_rate: int, tempo_changes: Sequence[tuple[int, float]]) -> None:
        changes = sorted(tempo_changes)
        if not changes or changes[0][0] > 0:
            changes.insert(0, (0, DEFAULT_TEMPO_BPM))
        self.sample_rate = sample_rate
        self.frames = [frame for frame, _ in changes]
        self.bpms = [bpm for _, bpm in changes]
        self.start_ticks = [0.0]
        for i in range(1, len(changes)):
            self.start_ticks.append(self._ticks_in_segment(i - 1, self.frames[i]))

    def _ticks_in_segment(self, i: int, frame: int) -> float:
        seconds = (frame - self.frames[i]) / self.sample_rate
        return self.start_ticks[i] + seconds * self.bpms[i] / 60.0 * TICKS_PER_BEAT

    def ticks(self, frame: int) -> int:
        i = bisect.bisect_right(self.frames, frame) - 1
        return int(round(self._ticks_in_segment(i, frame)))

    def tempo_events(self) -> list[tuple[int, float]]:
        return [(int(round(t)), bpm) for t, bpm in zip(self.start_ticks, self.bpms)]


def _mido_message(m: MidiMessage, time: int) -> mido.Message:
    if m.kind == "note_on":
        return mido.Message("note_on", channel=m.channel, note=m.a, velocity=m.b, time=time)
    if m.kind == "note_off":
        return mido.Message("note_off", channel=m.channel, note=m.a, velocity=0, time=time)
    if m.kind == "control_change":
        return mido.Message("control_change", channel=m.channel, control=m.a, value=m.b, time=time)
    if m.kind == "program_change":
        return mido.Message("program_change", channel=m.channel, program=m.a, time=time)
    raise ValueError(f"unknown MIDI message kind {m.kind!r}")


def truncate_messages(messages: Sequence[MidiMessage], end_frame: int) -> list[MidiMessage]:
    """The messages before ``end_frame``, with a note_off at ``end_frame`` for every note still sounding, so a
    MIDI file of music composed ahead ends where the audio ends."""
    kept = [m for m in messages if m.frame < end_frame]
    sounding: dict[tuple[int, int], int] = {}
    for m in sorted(kept, key=lambda m: m.frame):
        key = (m.channel, m.a)
        if m.kind == "note_on" and m.b > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif m.kind in ("note_off", "note_on") and sounding.get(key):
            sounding[key] -= 1
    for (channel, key), count in sorted(sounding.items()):
        kept.extend(MidiMessage(end_frame, "note_off", channel, key) for _ in range(count))
    return kept


def write_midi(path: Path | str, messages: Sequence[MidiMessage], sample_rate: int,
               tempo_changes: Sequence[tuple[int, float]] = (), end_frame: int | None = None) -> Path:
    """Write a type-1 MIDI file (``replace_file``: whole or not at all, user-only): track 0 holds the tempo map (a set_tempo at each (frame, bpm) change, which
    the engine places on bar boundaries), then one track per channel. Frames become ticks (TICKS_PER_BEAT per
    quarter note) through the tempo map; ``end_frame`` (default: the last message) places end_of_track."""
    tempo_map = _TempoMap(sample_rate, tempo_changes)
    ordered = sorted(enumerate(messages), key=lambda im: (im[1].frame, im[0]))
    last_frame = max([m.frame for m in messages] + [end_frame or 0])
    end_tick = tempo_map.ticks(last_frame)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)

    conductor = mido.MidiTrack([mido.MetaMessage("track_name", name="tempo", time=0)])
    previous = 0
    for tick, bpm in tempo_map.tempo_events():
        conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=tick - previous))
        previous = tick
    conductor.append(mido.MetaMessage("end_of_track", time=max(end_tick - previous, 0)))
    midi.tracks.append(conductor)

    for channel in sorted({m.channel for m in messages}):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=f"channel {channel}", time=0)])
        previous = 0
        for _, m in ordered:
            if m.channel == channel:
                tick = tempo_map.ticks(m.frame)
                track.append(_mido_message(m, tick - previous))
                previous = tick
        track.append(mido.MetaMessage("end_of_track", time=max(end_tick - previous, 0)))
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return replace_file(path, buffer.getvalue())
