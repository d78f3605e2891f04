"""FluidSynthSynth: General MIDI rendering with FluidSynth (pyfluidsynth) and a SoundFont, offline, block by block."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from generators.synth.base import Synth

# Preferred first: FluidR3_GM is MIT-licensed; TimGM6mb is GPL-2; default-GM is the distribution's choice.
SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)


def default_soundfont() -> Path | None:
    """The first installed General MIDI SoundFont of SOUNDFONT_CANDIDATES, or None."""
    for path in SOUNDFONT_CANDIDATES:
        if path.is_file():
            return path
    return None


def import_fluidsynth():
    """The pyfluidsynth module; raises ImportError or OSError when it or libfluidsynth is missing."""
    import fluidsynth  # noqa: PLC0415 - imported late: loading it needs the system library

    if not hasattr(fluidsynth, "Synth"):
        raise ImportError("the installed 'fluidsynth' module is not pyfluidsynth")
    return fluidsynth


class FluidSynthSynth(Synth):
    """FluidSynth rendering offline (no audio driver is started): ``render`` pulls samples on demand.

    ``gain`` is FluidSynth's master gain, 0-10 (0.2 is its quiet default; 1.0 puts a soft 6-10 voice
    arrangement near -30 dBFS RMS).
    Reverb and chorus are on, their sends set per channel by CC91/CC93.
    """

    makeup_db = 10.0

    def __init__(self, soundfont: Path | str, sample_rate: int = 48000, gain: float = 1.0) -> None:
        soundfont = Path(soundfont)
        if not soundfont.is_file():
            raise FileNotFoundError(f"SoundFont {soundfont} not found: install fluid-soundfont-gm or pass its path")
        fluidsynth = import_fluidsynth()
        self.sample_rate = sample_rate
        self.soundfont = soundfont
        self._fs = fluidsynth.Synth(gain=gain, samplerate=float(sample_rate))
        self._sfid = self._fs.sfload(str(soundfont))
        if self._sfid < 0:
            self._fs.delete()
            raise ValueError(f"FluidSynth could not load SoundFont {soundfont}: is it a valid .sf2 file?")
        for channel in range(16):
            if channel != 9:
                self._fs.program_select(channel, self._sfid, 0, 0)

    def program_change(self, channel: int, program: int) -> None:
        self._fs.program_select(channel, self._sfid, 128 if channel == 9 else 0, program)

    def note_on(self, channel: int, key: int, velocity: int) -> None:
        self._fs.noteon(channel, key, velocity)

    def note_off(self, channel: int, key: int) -> None:
        self._fs.noteoff(channel, key)

    def control_change(self, channel: int, control: int, value: int) -> None:
        self._fs.cc(channel, control, value)

    def render(self, n_frames: int) -> np.ndarray:
        if n_frames == 0:
            return np.zeros((0, 2), dtype=np.float32)
        interleaved = np.asarray(self._fs.get_samples(n_frames), dtype=np.int16)
        return (interleaved.reshape(n_frames, 2) / 32768.0).astype(np.float32)

    def close(self) -> None:
        if self._fs is not None:
            self._fs.delete()
            self._fs = None
