"""BuiltinSynth: a small numpy-only General MIDI style synthesiser (wavetable voices with envelopes) that
needs no system library and renders much faster than real time."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generators.synth.base import Synth

TABLE_BITS = 11
TABLE_SIZE = 2**TABLE_BITS
FRAC_MASK = 2 ** (32 - TABLE_BITS) - 1
LEVEL_SMOOTHING_S = 0.015  # time constant of CC7/CC11 gain glides: removes zipper noise, still feels instant
STEAL_RELEASE_S = 0.008  # a stolen voice fades this fast instead of stopping with a click
MIX_GAIN = 1.8  # brings a typical 6-10 voice arrangement to about -27 dBFS RMS before mastering
SILENT = 3e-5  # voice level (-90 dBFS) below which a released voice is dropped


@dataclass(frozen=True)
class Timbre:
    """A voice recipe. Harmonic amplitudes of the steady wave and of a bright layer that decays with time
    constant ``bright_decay_s``; a second oscillator ``detune_cents`` away (0 = none, panned opposite);
    envelope: linear attack, exponential decay (time constant) to ``sustain`` 0-1, exponential release."""

    harmonics: tuple[float, ...]
    attack_s: float
    decay_s: float
    sustain: float
    release_s: float
    gain: float
    bright: tuple[float, ...] = ()
    bright_decay_s: float = 0.2
    detune_cents: float = 0.0


TIMBRES = {
    "pad": Timbre((1, .45, .25, .14, .08, .05, .03, .02), attack_s=0.9, decay_s=1.5, sustain=0.85, release_s=0.7,
                  gain=0.16, detune_cents=7.0),
    "keys": Timbre((1, .3, .12, .05, .02), attack_s=0.004, decay_s=1.6, sustain=0.0, release_s=0.35, gain=0.42,
                   bright=(0, .35, .25, .15, .1, .06), bright_decay_s=0.18),
    "bell": Timbre((1, 0, 0, .22, 0, 0, 0, 0, .05), attack_s=0.003, decay_s=2.4, sustain=0.0, release_s=0.9,
                   gain=0.36, bright=(0, 0, 0, .3, 0, 0, 0, 0, 0, .15), bright_decay_s=0.12),
    "pluck": Timbre((1, .4, .18, .08, .03), attack_s=0.003, decay_s=1.1, sustain=0.0, release_s=0.5, gain=0.42,
                    bright=(0, .4, .3, .2, .12, .08, .05), bright_decay_s=0.08),
    "wind": Timbre((1, .22, .07, .03), attack_s=0.16, decay_s=0.4, sustain=0.85, release_s=0.3, gain=0.32),
    "bowed": Timbre((1, .5, .33, .22, .15, .1, .07, .05), attack_s=0.22, decay_s=1.0, sustain=0.9,
                    release_s=0.45, gain=0.26, detune_cents=3.0),
    "bass": Timbre((1, .3, .08, .03), attack_s=0.012, decay_s=1.8, sustain=0.55, release_s=0.3, gain=0.5),
}


def timbre_name(program: int) -> str:
    """The built-in timbre used for GM program 0-127 (by GM family)."""
    if program < 8:
        return "keys"
    if program < 16:
        return "bell"
    if 24 <= program < 32 or program == 46:
        return "pluck"
    if 32 <= program < 40:
        return "bass"
    if 40 <= program < 52:
        return "bowed"
    if 56 <= program < 88:
        return "wind"
    return "pad"


def _wavetable(harmonics: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One cycle of TABLE_SIZE float32 samples, peak-normalised, and its forward differences (for linear
    interpolation without a second gather)."""
    phase = np.arange(TABLE_SIZE + 1) / TABLE_SIZE * 2 * np.pi
    wave = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(harmonics) if a)
    wave = wave / np.abs(wave).max()
    return wave[:-1].astype(np.float32), np.diff(wave).astype(np.float32)


class _Voice:
    """One sounding note: 32-bit fixed-point oscillator phases (exact, so block size cannot change the
    output), age in frames, release state."""

    def __init__(self, channel: int, key: int, velocity: int, timbre: Timbre, tables: dict, sample_rate: int):
        self.channel, self.key, self.timbre, self.tables = channel, key, timbre, tables
        self.sample_rate = sample_rate
        self.amplitude = timbre.gain * (velocity / 127.0) ** 1.5
        hz = 440.0 * 2.0 ** ((key - 69) / 12)
        cents = timbre.detune_cents / 1200.0
        ratios = (2.0 ** cents, 2.0 ** -cents) if cents else (1.0,)
        self.increments = [int(round(hz * r / sample_rate * 2**32)) for r in ratios]
        self.phases = [0, 2**31][: len(ratios)]  # the detuned twin starts half a cycle away
        self.age = 0
        self.release_age: int | None = None
        self.release_level = 0.0
        self.release_s = timbre.release_s

    def held_level(self, seconds: float) -> float:
        """Envelope 0-1 before release, ``seconds`` after note-on."""
        tb = self.timbre
        if seconds < tb.attack_s:
            return seconds / tb.attack_s
        return tb.sustain + (1 - tb.sustain) * math.exp(-(seconds - tb.attack_s) / tb.decay_s)

    def level_now(self) -> float:
        if self.release_age is None:
            return self.held_level(self.age / self.sample_rate)
        return self.release_level * math.exp(-(self.age - self.release_age) / self.sample_rate / self.release_s)

    def release(self, release_s: float | None = None) -> None:
        """Start the release (or shorten it, re-anchored at the current level so the envelope stays continuous)."""
        if self.release_age is None or release_s is not None:
            self.release_level = self.level_now()
            self.release_age = self.age
        if release_s is not None:
            self.release_s = min(self.release_s, release_s)

    @property
    def finished(self) -> bool:
        return self.release_age is not None and self.amplitude * self.level_now() < SILENT

    def envelope(self, ramp: np.ndarray, decay_curve) -> np.ndarray | float:
        """Envelope times amplitude for the next ``len(ramp)`` frames: exponentials are a start value times a
        cached per-frame decay curve, so the cost is one multiply per frame."""
        n, sr, tb = len(ramp), self.sample_rate, self.timbre
        if self.release_age is not None:
            return self.amplitude * self.level_now() * decay_curve(self.release_s * sr, n)
        attack_frames = tb.attack_s * sr
        if self.age >= attack_frames:
            if self.age - attack_frames > 20 * tb.decay_s * sr or tb.sustain == 1:
                return self.amplitude * self.level_now()
            excess = self.amplitude * (1 - tb.sustain) * math.exp(-(self.age / sr - tb.attack_s) / tb.decay_s)
            return self.amplitude * tb.sustain + excess * decay_curve(tb.decay_s * sr, n)
        env = (ramp + float(self.age)) * (self.amplitude / attack_frames)
        split = int(math.ceil(attack_frames - self.age))
        if split < n:  # the attack ends inside this block
            env[split:] = self.amplitude * (tb.sustain + (1 - tb.sustain) * decay_curve(tb.decay_s * sr, n - split)
                                            * math.exp(-(self.age + split - attack_frames) / (tb.decay_s * sr)))
        return env

    def render(self, ramp: np.ndarray, decay_curve, mono: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
        """Add ``len(ramp)`` frames: a single oscillator into ``mono``, detuned twins into ``left``/``right``.
        ``ramp`` is 0..n-1 (uint32); ``decay_curve(tau_frames, n)`` returns exp(-k / tau_frames), k = 0..n-1."""
        n = len(ramp)
        env = self.envelope(ramp, decay_curve)
        bright_env = None
        bright_tau = self.timbre.bright_decay_s * self.sample_rate
        if "bright" in self.tables and self.age < 12 * bright_tau:  # later it is below -100 dB
            bright_env = math.exp(-self.age / bright_tau) * decay_curve(bright_tau, n)
        for i, increment in enumerate(self.increments):
            phase = ramp * np.uint32(increment) + np.uint32(self.phases[i])  # wraps modulo 2**32
            self.phases[i] = (self.phases[i] + increment * n) & 0xFFFFFFFF
            index = phase >> np.uint32(32 - TABLE_BITS)
            frac = (phase & np.uint32(FRAC_MASK)).astype(np.float32) * np.float32(1.0 / (FRAC_MASK + 1))
            table, slope = self.tables["steady"]
            wave = table[index] + frac * slope[index]
            if bright_env is not None:
                table, slope = self.tables["bright"]
                wave += bright_env * (table[index] + frac * slope[index])
            wave *= env
            target = mono if len(self.increments) == 1 else left if i == 0 else right
            target += wave
        self.age += n


class BuiltinSynth(Synth):
    """Soft GM-style voices (pad, keys, bell, pluck, wind, bowed, bass by GM family) in numpy.

    CC7 (volume) and CC11 (expression) set a channel gain ((cc7/127)^2 * (cc11/127)^2, the GM curve) that
    glides per sample with a LEVEL_SMOOTHING_S time constant. At most ``max_voices`` notes sound; a new note
    beyond that steals the oldest (released voices first), which fades out in STEAL_RELEASE_S.
    Output is the same whatever the block sizes used to render it (to float rounding).
    """

    makeup_db = 5.0

    def __init__(self, sample_rate: int = 48000, max_voices: int = 24) -> None:
        self.sample_rate = sample_rate
        self.max_voices = max_voices
        self.tables = {}
        for name, timbre in TIMBRES.items():
            self.tables[name] = {"steady": _wavetable(timbre.harmonics)}
            if timbre.bright:
                self.tables[name]["bright"] = _wavetable(timbre.bright)
        self.programs = [0] * 16
        self.cc7 = [100] * 16
        self.cc11 = [127] * 16
        self.gain_now = [self._target(c) for c in range(16)]
        self.voices: list[_Voice] = []
        self.smoothing = math.exp(-1.0 / (LEVEL_SMOOTHING_S * sample_rate))
        self._ramp = np.arange(0, dtype=np.uint32)
        self._decay_curves: dict[float, np.ndarray] = {}

    def _decay_curve(self, tau_frames: float, n: int) -> np.ndarray:
        """exp(-k / tau_frames) for k = 0..n-1, float32, from a per-tau cache grown on demand."""
        curve = self._decay_curves.get(tau_frames)
        if curve is None or len(curve) < n:
            curve = np.exp(-np.arange(max(n, 8192)) / tau_frames).astype(np.float32)
            self._decay_curves[tau_frames] = curve
        return curve[:n]

    def _target(self, channel: int) -> float:
        return (self.cc7[channel] / 127.0) ** 2 * (self.cc11[channel] / 127.0) ** 2

    def program_change(self, channel: int, program: int) -> None:
        self.programs[channel] = program

    def note_on(self, channel: int, key: int, velocity: int) -> None:
        if velocity == 0:
            self.note_off(channel, key)
            return
        self.note_off(channel, key)
        counted = [v for v in self.voices if v.release_s > STEAL_RELEASE_S]
        if len(counted) >= self.max_voices:
            victim = min(counted, key=lambda v: (v.release_age is None, -v.age))
            victim.release(STEAL_RELEASE_S)
        name = timbre_name(self.programs[channel])
        self.voices.append(_Voice(channel, key, velocity, TIMBRES[name], self.tables[name], self.sample_rate))

    def note_off(self, channel: int, key: int) -> None:
        for voice in self.voices:
            if voice.channel == channel and voice.key == key and voice.release_age is None:
                voice.release()

    def control_change(self, channel: int, control: int, value: int) -> None:
        if control == 7:
            self.cc7[channel] = value
        elif control == 11:
            self.cc11[channel] = value
        elif control in (120, 123):  # all sound off (fast fade) / all notes off (normal release)
            for voice in self.voices:
                if voice.channel == channel:
                    voice.release(STEAL_RELEASE_S if control == 120 else None)

    def render(self, n_frames: int) -> np.ndarray:
        if len(self._ramp) < n_frames:
            self._ramp = np.arange(n_frames, dtype=np.uint32)
        ramp = self._ramp[:n_frames]
        out = np.zeros((n_frames, 2), dtype=np.float32)
        decay = None
        for channel in range(16):
            target = self._target(channel)
            voices = [v for v in self.voices if v.channel == channel]
            if voices:
                mono, left, right = (np.zeros(n_frames, dtype=np.float32) for _ in range(3))
                for voice in voices:
                    voice.render(ramp, self._decay_curve, mono, left, right)
                if decay is None:
                    decay = self._decay_curve(LEVEL_SMOOTHING_S * self.sample_rate, n_frames + 1)[1:]
                gain = np.float32(target) + np.float32(self.gain_now[channel] - target) * decay
                # Detuned twins are panned apart: a wide, slowly beating pad.
                out[:, 0] += gain * (0.7071 * mono + 0.9 * left + 0.45 * right)
                out[:, 1] += gain * (0.7071 * mono + 0.45 * left + 0.9 * right)
            # Channels without voices glide too, so a later note starts at the right level.
            self.gain_now[channel] = target + (self.gain_now[channel] - target) * self.smoothing ** n_frames
        self.voices = [v for v in self.voices if not v.finished]
        out *= MIX_GAIN
        return out
