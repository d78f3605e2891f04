"""Prints how many times faster than real time each synthesiser renders: 4 sustained voices, and a full
arrangement (melody, pad, bass) from the rule-based generator; one core, 2400-frame blocks."""
from __future__ import annotations

import time

from generators.arranger import Arranger
from generators.controls import MusicControls
from generators.rules import RuleBasedGenerator
from generators.sequencer import Sequencer
from generators.synth.base import Synth
from generators.synth.builtin import BuiltinSynth
from generators.synth.fluid import FluidSynthSynth, default_soundfont, import_fluidsynth

SR = 48000
BLOCK = 2400
SECONDS = 60


def four_voices(synth: Synth) -> float:
    synth.program_change(0, 89)
    for key in (50, 57, 62, 66):
        synth.note_on(0, key, 70)
    start = time.perf_counter()
    for _ in range(SECONDS * SR // BLOCK):
        synth.render(BLOCK)
    return SECONDS / (time.perf_counter() - start)


def arrangement(synth: Synth) -> float:
    controls = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, density=1.5)
    arranger, generator, sequencer = Arranger(SR), RuleBasedGenerator(seed=1), Sequencer(synth)
    sequencer.schedule(arranger.initial_messages(controls))
    total = 0
    while total < SECONDS * SR:
        messages, n = arranger.arrange(generator.next_bar(controls), controls, total)
        sequencer.schedule(messages)
        total += n
    start = time.perf_counter()
    for _ in range(SECONDS * SR // BLOCK):
        sequencer.render(BLOCK)
    return SECONDS / (time.perf_counter() - start)


def main() -> None:
    makers = {"builtin": lambda: BuiltinSynth(SR)}
    try:
        import_fluidsynth()
        if default_soundfont() is not None:
            makers["fluidsynth"] = lambda: FluidSynthSynth(default_soundfont(), SR)
    except (ImportError, OSError) as error:
        print(f"fluidsynth: skipped ({error})")
    for name, make in makers.items():
        for label, bench in (("4 pad voices", four_voices), ("arrangement", arrangement)):
            synth = make()
            speed = bench(synth)
            synth.close()
            print(f"{name:10s} {label:13s} {speed:7.1f}x real time")


if __name__ == "__main__":
    main()
