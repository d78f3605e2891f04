"""Synthesisers (FluidSynth with a SoundFont, or the built-in numpy synth) and ``open_synth`` to pick one."""
from __future__ import annotations

from generators.synth.base import Synth
from generators.synth.builtin import BuiltinSynth

INSTALL_HINT = "install it with: sudo apt-get install libfluidsynth3 fluid-soundfont-gm"


def open_synth(kind: str = "auto", sample_rate: int = 48000) -> tuple[Synth, str | None]:
    """A synth and a one-line notice (None when the requested synth was opened).

    ``kind``: "fluidsynth" or "auto" try FluidSynth with default_soundfont() and fall back to the built-in
    synth, naming what is missing; "builtin" always uses the built-in synth.
    """
    if kind == "builtin":
        return BuiltinSynth(sample_rate), None
    if kind not in ("auto", "fluidsynth"):
        raise ValueError(f"unknown synth {kind!r}: use auto, fluidsynth or builtin")
    from generators.synth.fluid import FluidSynthSynth, default_soundfont, import_fluidsynth

    try:
        import_fluidsynth()
    except (ImportError, OSError):
        notice = f"libfluidsynth3 not installed: using the built-in synthesiser; {INSTALL_HINT}"
        return BuiltinSynth(sample_rate), notice
    soundfont = default_soundfont()
    if soundfont is None:
        notice = f"no General MIDI SoundFont found: using the built-in synthesiser; {INSTALL_HINT}"
        return BuiltinSynth(sample_rate), notice
    try:
        return FluidSynthSynth(soundfont, sample_rate), None
    except (OSError, ValueError) as error:
        return BuiltinSynth(sample_rate), f"FluidSynth failed ({error}): using the built-in synthesiser"


__all__ = ["Synth", "BuiltinSynth", "open_synth"]
