"""Arranger: turns a breath-locked Bar into timed MIDI for melody, pad, bass and a sustained breath voice, with
expression swells that follow the breath guide's arc and tempo changes glided inside the breath."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generators.controls import LEAD_PROGRAMS, MusicControls
from generators.events import Bar, MidiMessage
from generators.theory import breath_arc

MELODY, PAD, BASS, BREATH = 0, 1, 2, 3  # MIDI channels (9 is GM drums, avoided)
SWELL_STEP_S = 0.02  # CC11 may change every 20 ms (0.1 dB per step at 6 breaths/min): continuous to the ear
VOLUME_RAMP_S = 1.0  # a volume change glides over this long, never a step
EXHALE_SOFTENING = 0.2  # melody attacks are up to 20 % softer (velocity) at the end of the exhale
PAD_WINDOW = (55, 67)  # pad voices are placed in G3..F#4: close voicing, smooth motion between chords
BASS_WINDOW = (38, 50)  # bass roots in D2..C#3
GLIDE_GRID = 1025  # points of the tempo-glide table that beat times are interpolated from
KIND_ORDER = {"program_change": 0, "control_change": 1, "note_off": 2, "note_on": 3}
# Leads whose notes decay (keys, mallets, plucked strings): a sustained voice doubles them to carry the swell.
DECAYING_PROGRAMS = frozenset(range(0, 16)) | frozenset(range(24, 32)) | {45, 46, 47} | frozenset(range(104, 120))


@dataclass(frozen=True, slots=True)
class Part:
    """One instrument of the arrangement: its channel, relative level 0-1, CC11 swell range (breath low ->
    breath high; the gain in dB follows the arc), GM programs by brightness (thresholds ascending), per
    texture (``generators.form.BarPlan.texture``; the first entry when there is no plan), reverb send (CC91)
    and velocity 1-127 (for the melody, a cap on the composed velocity, which keeps it soft)."""

    channel: int
    level: float
    swell: tuple[int, int]
    programs: tuple[tuple[float, tuple[int, ...]], ...]  # (brightness below which to use them, GM program per texture)
    reverb: int
    velocity: int

    def program_for(self, controls: MusicControls, texture: int = 0) -> int:
        """The melody plays the protocol's lead instrument when it names one; otherwise brightness decides."""
        if self.channel == MELODY and controls.lead is not None:
            return LEAD_PROGRAMS[controls.lead]
        choices = next((programs for upper, programs in self.programs if controls.brightness < upper),
                       self.programs[-1][1])
        return choices[texture % len(choices)]


# Sustained, mono-compatible voices only. The FluidR3 pads (88-95) and synth strings are anti-phase stereo
# samples (L/R correlation -0.6 to -0.9, -7 to -13 dB folded to mono) and are not used; the chosen presets fold
# to mono within -2.5 dB on their own (benchmarks/music_quality.py, docs/generator.md).
PARTS = (
    # Melody: flute (dark) -> pan flute -> ocarina (bright); a protocol's lead overrides.
    Part(MELODY, 0.62, (82, 118), ((0.4, (73,)), (0.75, (75,)), (2.0, (79,))), reverb=70, velocity=72),
    # Pad, by texture: slow strings, voice oohs, choir aahs.
    Part(PAD, 0.6, (76, 120), ((2.0, (49, 53, 52)),), reverb=90, velocity=56),
    # Bass: cello, bowed, so it swells with the rest.
    Part(BASS, 0.6, (84, 112), ((2.0, (42,)),), reverb=40, velocity=58),
    # Breath voice: doubles a decaying lead (piano, harp) with a sustained flute.
    Part(BREATH, 0.45, (82, 118), ((2.0, (73,)),), reverb=70, velocity=60),
)


def glided_beat_times(beats: np.ndarray, n_beats: int, bpm: float, start_bpm: float, end_bpm: float) -> np.ndarray:
    """Seconds from the bar start to each of ``beats`` when the tempo moves from ``start_bpm`` to ``end_bpm``
    along a parabola whose mean is ``bpm``, so the bar still lasts exactly ``n_beats`` beats at ``bpm`` (the
    breath period is kept): tempo(x) = a + (e - a) x + q x (1 - x), x = t / duration, q = 6 (bpm - (a + e) / 2).
    Equal tempos give beat x 60 / bpm."""
    duration = n_beats * 60.0 / bpm
    a, e = start_bpm, end_bpm
    q = 6 * (bpm - (a + e) / 2)
    x = np.linspace(0.0, 1.0, GLIDE_GRID)
    beats_at = duration / 60.0 * (a * x + (e - a) * x**2 / 2 + q * (x**2 / 2 - x**3 / 3))
    return np.interp(beats, beats_at, x) * duration


def _level_cc(gain: float) -> int:
    """CC7 value for a linear gain 0-1, assuming the GM curve gain = (cc/127)^2 that FluidSynth uses."""
    return int(round(127 * math.sqrt(min(max(gain, 0.0), 1.0))))


class Arranger:
    """Arranges bars on the music clock (audio frames at ``sample_rate`` Hz).

    Bars placed end to end (each ``start_frame`` = previous start + returned length) tile exactly: the
    arranger keeps the fractional frame position, so rounding never accumulates into drift. A bar lasts
    ``beats`` x 60 / ``tempo_bpm`` seconds (one breath of the guide); when the tempo changes from the last
    bar, the beats inside it glide from the old tempo (``glided_beat_times``), so the pulse never jumps.
    ``beat_frames`` holds the frame of every beat of the last arranged bar and its end (its tempo map).
    """

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self.programs: dict[int, int] = {}
        self.pad_sounding: set[int] = set()  # pad pitches still sounding at the end of the last bar
        self.volume_cc: dict[int, int] = {}
        self.expression_cc: dict[int, int] = {}
        self.next_start_frame: int | None = None
        self.next_start_exact = 0.0
        self.tempo_now: float | None = None  # bpm at the end of the last bar
        self.beat_frames: list[int] = []

    def initial_messages(self, controls: MusicControls | None = None) -> list[MidiMessage]:
        """Programs, channel levels, reverb sends (chorus off: it is not mono-safe) and resting expression at
        frame 0."""
        controls = controls or MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4)
        messages = []
        for part in PARTS:
            program = part.program_for(controls)
            volume = self._volume_for(part, controls, program if part.channel == MELODY else None)
            expression = part.swell[0]
            messages += [
                MidiMessage(0, "program_change", part.channel, program),
                MidiMessage(0, "control_change", part.channel, 7, volume),
                MidiMessage(0, "control_change", part.channel, 11, expression),
                MidiMessage(0, "control_change", part.channel, 91, part.reverb),
                MidiMessage(0, "control_change", part.channel, 93, 0),
            ]
            self.programs[part.channel] = program
            self.volume_cc[part.channel] = volume
            self.expression_cc[part.channel] = expression
        return messages

    def _volume_for(self, part: Part, controls: MusicControls, lead_program: int | None = None) -> int:
        """CC7 of ``part``: the breath voice is silent unless the lead decays."""
        if part.channel == BREATH:
            lead = lead_program if lead_program is not None else self.programs.get(MELODY, 0)
            if lead not in DECAYING_PROGRAMS:
                return 0
        return _level_cc(part.level * controls.volume)

    def arrange(self, bar: Bar, controls: MusicControls, start_frame: int) -> tuple[list[MidiMessage], int]:
        """MIDI messages for ``bar`` starting at audio frame ``start_frame``, sorted by frame, and the bar's
        length in frames. Melody and bass notes end inside the bar (notes reaching past the end are cut); pad
        tones may be held into the next bar."""
        if not self.programs:
            self.initial_messages(controls)  # state only: the caller decides whether to send them
        bpm = controls.tempo_bpm
        start_bpm = self.tempo_now if self.tempo_now is not None else bpm
        end_bpm = bar.plan.glide_to_bpm if bar.plan is not None and bar.plan.glide_to_bpm else bpm
        exact_start = self.next_start_exact if start_frame == self.next_start_frame else float(start_frame)
        exact_end = exact_start + bar.beats * 60.0 / bpm * self.sample_rate
        end_frame = math.floor(exact_end + 0.5)
        self.next_start_frame, self.next_start_exact = end_frame, exact_end
        self.tempo_now = end_bpm

        def frame_at(beat: float) -> int:
            seconds = glided_beat_times(np.array([min(beat, bar.beats)]), bar.beats, bpm, start_bpm, end_bpm)[0]
            return min(max(math.floor(exact_start + seconds * self.sample_rate + 0.5), start_frame), end_frame)

        self.beat_frames = [frame_at(b) for b in range(bar.beats)] + [end_frame]
        texture = bar.plan.texture if bar.plan is not None else 0
        messages: list[MidiMessage] = []
        for part in PARTS:
            messages += self._program_and_volume(part, controls, texture, start_frame, end_frame)
        messages += self._swells(bar, start_frame, end_frame)
        doubled = self.volume_cc[BREATH] > 0
        for note in bar.notes:
            on, off = frame_at(note.start_beat), frame_at(note.start_beat + note.duration_beats)
            if on < off:
                phase = (on - start_frame) / max(end_frame - start_frame, 1)
                softening = 1 - EXHALE_SOFTENING * (1 - _arc(phase, bar)) * (phase >= bar.inhale_beats / bar.beats)
                velocity = max(1, round(min(note.velocity, PARTS[MELODY].velocity) * softening))
                messages += [MidiMessage(on, "note_on", MELODY, note.pitch, velocity),
                             MidiMessage(off, "note_off", MELODY, note.pitch)]
                if doubled:
                    messages += [MidiMessage(on, "note_on", BREATH, note.pitch, PARTS[BREATH].velocity),
                                 MidiMessage(off, "note_off", BREATH, note.pitch)]
        messages += self._pad_and_bass(bar, frame_at, end_frame)
        messages.sort(key=lambda m: (m.frame, KIND_ORDER[m.kind]))
        return messages, end_frame - start_frame

    def _program_and_volume(self, part: Part, controls: MusicControls, texture: int, start: int,
                            end: int) -> list[MidiMessage]:
        messages = []
        program = part.program_for(controls, texture)
        if program != self.programs[part.channel]:
            messages.append(MidiMessage(start, "program_change", part.channel, program))
            self.programs[part.channel] = program
        old, new = self.volume_cc[part.channel], self._volume_for(part, controls)
        if new != old:
            ramp_frames = min(VOLUME_RAMP_S * self.sample_rate, end - start)
            steps = max(1, int(ramp_frames / (SWELL_STEP_S * self.sample_rate)))
            for k in range(1, steps + 1):
                value = round(old + (new - old) * k / steps)
                messages.append(MidiMessage(start + int((k - 1) * ramp_frames / steps), "control_change",
                                            part.channel, 7, value))
            self.volume_cc[part.channel] = new
        return messages

    def _swells(self, bar: Bar, start: int, end: int) -> list[MidiMessage]:
        """CC11 on every part every SWELL_STEP_S, following the guide's arc in time (the bar's phase, whatever
        the tempo glide): the gain in dB rises with a raised cosine over the inhale and falls over the exhale."""
        step = max(1, round(SWELL_STEP_S * self.sample_rate))
        messages = []
        for frame in range(start, end, step):
            height = _arc((frame - start) / (end - start), bar)
            for part in PARTS:
                low, high = part.swell
                value = int(round(low * (high / low) ** height))
                if value != self.expression_cc[part.channel]:
                    messages.append(MidiMessage(frame, "control_change", part.channel, 11, value))
                    self.expression_cc[part.channel] = value
        return messages

    def _pad_and_bass(self, bar: Bar, frame_at, end_frame: int) -> list[MidiMessage]:
        """Pad: each chord voiced in PAD_WINDOW, common tones held across a chord change and across the bar line
        (so the breath's turn is a swell, not a re-attack; the held tones are released by the next bar or by
        ``truncate_messages`` at the end). Bass: the root, held for its chord."""
        pad, bass = PARTS[PAD], PARTS[BASS]
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


def _arc(phase: float, bar: Bar) -> float:
    """The guide's arc 0-1 at breath phase 0-1 of ``bar``."""
    return breath_arc(min(phase, 1.0) * bar.beats, bar.inhale_beats, bar.beats)


def _place(pitch_class: int, window: tuple[int, int]) -> int:
    """The MIDI pitch of ``pitch_class`` inside [low, high)."""
    low, _ = window
    return low + (pitch_class - low) % 12
