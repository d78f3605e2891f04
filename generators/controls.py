"""MusicControls: everything the music is asked to do for the next bar.

Defined here, in generators, because it is the generators' input contract: generators must not depend on
therapy_profiles (which depends on biosignals). therapy_profiles' policy produces these values.
"""
from __future__ import annotations

from dataclasses import dataclass

# Scale steps in semitones above the tonic.
MODE_STEPS: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic-major": (0, 2, 4, 7, 9),
    "pentatonic-minor": (0, 3, 5, 7, 10),
}
MODES = tuple(MODE_STEPS)

# Lead (melody) instruments a protocol or client may name, as General MIDI programs.
LEAD_PROGRAMS: dict[str, int] = {
    "piano": 0, "bells": 11, "guitar": 24, "harp": 46, "strings": 48, "choir": 52, "flute": 73,
}


@dataclass(frozen=True, slots=True)
class MusicControls:
    """Controls for one breath-locked bar.

    The breath guide spans exactly ``beats_per_breath`` beats at ``tempo_bpm``, so one bar = one breath:
    the first ``inhale_beats`` beats are the inhale (rising phrase, swell up), the rest the exhale.
    """

    tempo_bpm: float  # quarter-note beats per minute, 30-140
    beats_per_breath: int  # whole beats in one breath cycle (and one bar), 2-24
    inhale_beats: float  # 0 < inhale_beats < beats_per_breath
    mode: str = "major"  # one of MODES
    tonic: int = 2  # pitch class of the key, 0 = C, 2 = D
    density: float = 1.0  # melody notes per beat, 0.25-4
    register_midi: int = 67  # centre pitch of the melody, MIDI note number 48-84
    brightness: float = 0.5  # 0 (dark, soft timbres) to 1 (bright)
    volume: float = 0.7  # master level ceiling, 0-1 (linear)
    lead: str | None = None  # melody instrument from LEAD_PROGRAMS; None: chosen by brightness

    @property
    def breath_period_s(self) -> float:
        return self.beats_per_breath * 60.0 / self.tempo_bpm

    @property
    def breath_rate_bpm(self) -> float:
        """Breaths per minute that this bar guides."""
        return self.tempo_bpm / self.beats_per_breath

    @property
    def inhale_fraction(self) -> float:
        return self.inhale_beats / self.beats_per_breath

    def validate(self) -> "MusicControls":
        """Raise ValueError naming the first field out of range; return self when all are in range."""
        checks = (
            ("tempo_bpm", 30 <= self.tempo_bpm <= 140, "30-140"),
            ("beats_per_breath", 2 <= self.beats_per_breath <= 24, "2-24"),
            ("inhale_beats", 0 < self.inhale_beats < self.beats_per_breath, f"between 0 and {self.beats_per_breath}"),
            ("mode", self.mode in MODE_STEPS, ", ".join(MODES)),
            ("tonic", 0 <= self.tonic <= 11, "0-11"),
            ("density", 0.25 <= self.density <= 4, "0.25-4"),
            ("register_midi", 48 <= self.register_midi <= 84, "48-84"),
            ("brightness", 0 <= self.brightness <= 1, "0-1"),
            ("volume", 0 <= self.volume <= 1, "0-1"),
            ("lead", self.lead is None or self.lead in LEAD_PROGRAMS, "None or " + ", ".join(LEAD_PROGRAMS)),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"MusicControls.{name}={getattr(self, name)!r} is out of range; allowed: {allowed}")
        return self
