"""File outputs: a streaming WAV writer and a MIDI file writer that maps audio frames to ticks via a tempo map."""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np
import soundfile

from generators.events import MidiMessage

TICKS_PER_BEAT = 480
DEFAULT_TEMPO_BPM = 120.0  # the MIDI default, used before the first tempo change


class WavWriter:
    """Appends stereo float blocks to a WAV file as they are rendered (16-bit PCM by default, or "FLOAT").

    Use as a context manager. The header is brought up to date once ``flush_every_s`` of audio has been
    written (a flush rewrites the header and costs milliseconds), so a crash loses at most that much.
    """

    flush_every_s = 5.0

    def __init__(self, path: Path | str, sample_rate: int = 48000, subtype: str = "PCM_16", channels: int = 2):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames_written = 0
        self._flushed_frames = 0
        try:
            self._file = soundfile.SoundFile(self.path, "w", samplerate=sample_rate, channels=channels,
                                             format="WAV", subtype=subtype)
        except (soundfile.LibsndfileError, OSError) as error:
            raise OSError(f"cannot write WAV file {self.path}: {error}; choose another output directory") from None

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` float (frames, channels) in -1..1."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"WavWriter expects blocks shaped (frames, {self.channels}), got {block.shape}")
        try:
            self._file.write(block)
            self.frames_written += len(block)
            if self.frames_written - self._flushed_frames >= self.flush_every_s * self.sample_rate:
                self._file.flush()
                self._flushed_frames = self.frames_written
        except (soundfile.LibsndfileError, OSError) as error:
            raise OSError(f"cannot write WAV file {self.path} after {self.frames_written / self.sample_rate:.1f} s "
                          f"(disk full? {error}); free some space or choose another output directory") from None

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

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
    """Write a type-1 MIDI file: track 0 holds the tempo map (a set_tempo at each (frame, bpm) change, which
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
    path = Path(path)
    midi.save(path)
    return path
