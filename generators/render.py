"""render_bars: compose (through the phrase plan), arrange and synthesise a list of bars offline into one audio
array (for tests, benchmarks and quick listening)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generators.arranger import Arranger
from generators.base import Generator
from generators.controls import MusicControls
from generators.form import Composer
from generators.mastering import Master
from generators.sequencer import Sequencer
from generators.synth.base import Synth


def render_bars(generator: Generator, controls_list: Sequence[MusicControls], synth: Synth,
                sample_rate: int = 48000, block_frames: int = 2400, master: Master | None = None) -> np.ndarray:
    """One bar per entry of ``controls_list`` (the last one closes with the final cadence), rendered in
    ``block_frames`` blocks; float32 (frames, 2) at ``sample_rate`` Hz, passed through ``master`` when one is
    given."""
    arranger = Arranger(sample_rate)
    composer = Composer(generator)
    sequencer = Sequencer(synth)
    sequencer.schedule(arranger.initial_messages(controls_list[0]))
    total = 0
    for i, requested in enumerate(controls_list):
        controls, bar, _ = composer.next_bar(requested, final=i == len(controls_list) - 1)
        messages, n_frames = arranger.arrange(bar, controls, total)
        sequencer.schedule(messages)
        total += n_frames
    out = np.empty((total, 2), dtype=np.float32)
    for start in range(0, total, block_frames):
        block = sequencer.render(min(block_frames, total - start))
        out[start:start + len(block)] = master.process(block) if master else block
    return out
