"""Arranger: turns a breath-locked Bar into timed MIDI for melody, pad and bass, with expression swells that
rise on the inhale and fall on the exhale."""
from __future__ import annotations

import math
from dataclasses import dataclass

from generators.controls import LEAD_PROGRAMS, MusicControls
from generators.events import Bar, MidiMessage
from generators.theory import breath_arc

MELODY, PAD, BASS = 0, 1, 2  # MIDI channels (9 is GM drums, avoided)
SWELL_STEP_S = 0.05  # one CC11 update every 50 ms: smooth to the ear, few messages
VOLUME_RAMP_S = 1.0  # a volume change glides over this long, never a step
PAD_WINDOW = (55, 67)  # pad voices are placed in G3..F#4: close voicing, smooth motion between chords
BASS_WINDOW = (38, 50)  # bass roots in D2..C#3
KIND_ORDER = {"program_change": 0, "control_change": 1, "note_off": 2, "note_on": 3}


@dataclass(frozen=True, slots=True)
class Part:
    """One instrument of the arrangement: its channel, relative level 0-1, CC11 swell range (breath low ->
    breath high), GM programs by brightness (thresholds ascending), reverb send (CC91) and velocity 1-127
    (for the melody, a cap on the composed velocity, which keeps it soft)."""

    channel: int
    level: float
    swell: tuple[int, int]
    programs: tuple[tuple[float, int], ...]  # (brightness below which to use it, GM program)
    reverb: int
    velocity: int

    def program_for(self, controls: MusicControls) -> int:
        """The melody plays the protocol's lead instrument when it names one; otherwise brightness decides."""
        if self.channel == MELODY and controls.lead is not None:
            return LEAD_PROGRAMS[controls.lead]
        for upper, program in self.programs:
            if controls.brightness < upper:
                return program
        return self.programs[-1][1]


PARTS = (
    # Melody: flute (dark) -> piano -> harp -> vibraphone (bright).
    Part(MELODY, 0.75, (64, 118), ((0.3, 73), (0.55, 0), (0.8, 46), (2.0, 11)), reverb=70, velocity=72),
    # Pad: warm pad -> new age pad -> choir pad.
    Part(PAD, 0.6, (60, 120), ((0.35, 89), (0.7, 88), (2.0, 91)), reverb=90, velocity=56),
    # Bass: acoustic bass (round) when dark, cello when brighter.
    Part(BASS, 0.7, (56, 108), ((0.5, 32), (2.0, 42)), reverb=40, velocity=62),
)


def _level_cc(gain: float) -> int:
    """CC7 value for a linear gain 0-1, assuming the GM curve gain = (cc/127)^2 that FluidSynth uses."""
    return int(round(127 * math.sqrt(min(max(gain, 0.0), 1.0))))


class Arranger:
    """Arranges bars on the music clock (audio frames at ``sample_rate`` Hz).

    Bars placed end to end (each ``start_frame`` = previous start + returned length) tile exactly: the
    arranger keeps the fractional frame position, so rounding never accumulates into drift.
    """

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self.programs: dict[int, int] = {}
        self.pad_sounding: set[int] = set()  # pad pitches still sounding at the end of the last bar
        self.volume_cc: dict[int, int] = {}
        self.expression_cc: dict[int, int] = {}
        self.next_start_frame: int | None = None
        self.next_start_exact = 0.0

    def initial_messages(self, controls: MusicControls | None = None) -> list[MidiMessage]:
        """Programs, channel levels, reverb/chorus sends and resting expression at frame 0."""
        controls = controls or MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4)
        messages = []
        for part in PARTS:
            program = part.program_for(controls)
            volume = _level_cc(part.level * controls.volume)
            expression = part.swell[0]
            messages += [
                MidiMessage(0, "program_change", part.channel, program),
                MidiMessage(0, "control_change", part.channel, 7, volume),
                MidiMessage(0, "control_change", part.channel, 11, expression),
                MidiMessage(0, "control_change", part.channel, 91, part.reverb),
                MidiMessage(0, "control_change", part.channel, 93, 30 if part.channel == PAD else 0),
            ]
            self.programs[part.channel] = program
            self.volume_cc[part.channel] = volume
            self.expression_cc[part.channel] = expression
        return messages

    def arrange(self, bar: Bar, controls: MusicControls, start_frame: int) -> tuple[list[MidiMessage], int]:
        """MIDI messages for ``bar`` starting at audio frame ``start_frame``, sorted by frame, and the bar's
        length in frames. Melody and bass notes end inside the bar (notes reaching past the end are cut); pad
        tones may be held into the next bar."""
        if not self.programs:
            self.initial_messages(controls)  # state only: the caller decides whether to send them
        frames_per_beat = 60.0 / controls.tempo_bpm * self.sample_rate
        exact_start = self.next_start_exact if start_frame == self.next_start_frame else float(start_frame)
        exact_end = exact_start + bar.beats * frames_per_beat
        end_frame = math.floor(exact_end + 0.5)
        self.next_start_frame, self.next_start_exact = end_frame, exact_end

        def frame_at(beat: float) -> int:
            return min(max(math.floor(exact_start + beat * frames_per_beat + 0.5), start_frame), end_frame)

        messages: list[MidiMessage] = []
        for part in PARTS:
            messages += self._program_and_volume(part, controls, start_frame, end_frame)
        messages += self._swells(bar, start_frame, end_frame, frames_per_beat)
        for note in bar.notes:
            on, off = frame_at(note.start_beat), frame_at(note.start_beat + note.duration_beats)
            if on < off:
                messages += [MidiMessage(on, "note_on", MELODY, note.pitch, min(note.velocity, PARTS[0].velocity)),
                             MidiMessage(off, "note_off", MELODY, note.pitch)]
        messages += self._pad_and_bass(bar, frame_at, end_frame)
        messages.sort(key=lambda m: (m.frame, KIND_ORDER[m.kind]))
        return messages, end_frame - start_frame

    def _program_and_volume(self, part: Part, controls: MusicControls, start: int, end: int) -> list[MidiMessage]:
        messages = []
        program = part.program_for(controls)
        if program != self.programs[part.channel]:
            messages.append(MidiMessage(start, "program_change", part.channel, program))
            self.programs[part.channel] = program
        old, new = self.volume_cc[part.channel], _level_cc(part.level * controls.volume)
        if new != old:
            ramp_frames = min(VOLUME_RAMP_S * self.sample_rate, end - start)
            steps = max(1, int(ramp_frames / (SWELL_STEP_S * self.sample_rate)))
            for k in range(1, steps + 1):
                value = round(old + (new - old) * k / steps)
                messages.append(MidiMessage(start + int((k - 1) * ramp_frames / steps), "control_change",
                                            part.channel, 7, value))
            self.volume_cc[part.channel] = new
        return messages

    def _swells(self, bar: Bar, start: int, end: int, frames_per_beat: float) -> list[MidiMessage]:
        """CC11 on every part every SWELL_STEP_S: a raised-cosine rise over the inhale, fall over the exhale."""
        step = max(1, round(SWELL_STEP_S * self.sample_rate))
        messages = []
        for frame in range(start, end, step):
            height = breath_arc((frame - start) / frames_per_beat, bar.inhale_beats, bar.beats)
            for part in PARTS:
                low, high = part.swell
                value = int(round(low + (high - low) * height))
                if value != self.expression_cc[part.channel]:
                    messages.append(MidiMessage(frame, "control_change", part.channel, 11, value))
                    self.expression_cc[part.channel] = value
        return messages

    def _pad_and_bass(self, bar: Bar, frame_at, end_frame: int) -> list[MidiMessage]:
        """Pad: each chord voiced in PAD_WINDOW, common tones held across a chord change and across the bar line
        (so the breath's turn is a swell, not a re-attack; the held tones are released by the next bar or by
        ``truncate_messages`` at the end). Bass: the root, held for its chord."""
        pad, bass = PARTS[1], PARTS[2]
        messages = []
        sounding = self.pad_sounding
        for i, chord in enumerate(bar.chords):
            start = frame_at(chord.start_beat)
            stop = frame_at(bar.chords[i + 1].start_beat) if i + 1 < len(bar.chords) else end_frame
            if start >= stop:
                continue
            voicing = {_place(pc, PAD_WINDOW) for pc in chord.pitch_classes}
            messages += [MidiMessage(start, "note_off", PAD, p) for p in sorted(sounding - voicing)]
            messages += [MidiMessage(start, "note_on", PAD, p, pad.velocity) for p in sorted(voicing - sounding)]
            sounding = voicing
            root = _place(chord.root, BASS_WINDOW)
            messages += [MidiMessage(start, "note_on", BASS, root, bass.velocity),
                         MidiMessage(stop, "note_off", BASS, root)]
        self.pad_sounding = sounding
        return messages


def _place(pitch_class: int, window: tuple[int, int]) -> int:
    """The MIDI pitch of ``pitch_class`` inside [low, high)."""
    low, _ = window
    return low + (pitch_class - low) % 12
