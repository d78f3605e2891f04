"""MarkovGenerator: the order-2 Markov-chain baseline, trained on the same tonic-relative corpus notes.

States are the last two notes as (tonic-relative pitch, duration in ticks); unseen contexts back off to
order 1, then to the mode's note frequencies. Tables are kept per mode (falling back to all modes when a
mode has no data). The chain knows nothing about density; register is met by whole-octave shifts.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from generators import theory
from generators.base import Generator
from generators.controls import MODES, MusicControls
from generators.events import Bar, Chord, NoteEvent
from generators.model.corpus import TICKS_PER_BEAT


class MarkovGenerator(Generator):
    """Order-2 chain over (pitch, duration) notes. Same seed and controls sequence => same bars."""

    def __init__(self, arrays: dict, seed: int = 0, split: int = 0):
        self.rng = np.random.default_rng(seed)
        pieces, bars, notes = arrays["pieces"], arrays["bars"], arrays["notes"]
        bar_end = np.append(pieces[1:, 4], len(bars))
        tables = {m: (defaultdict(Counter), defaultdict(Counter), Counter()) for m in MODES + ("any",)}
        for pid, (mode_idx, _t, _s, sp, first) in enumerate(pieces):
            if sp != split:
                continue
            seq = [(int(p), int(d)) for b in bars[first:bar_end[pid]] for _, d, p in notes[b[2]:b[2] + b[3]]]
            for key in (MODES[mode_idx], "any"):
                o2, o1, o0 = tables[key]
                for i, ev in enumerate(seq):
                    o0[ev] += 1
                    if i >= 1:
                        o1[seq[i - 1]][ev] += 1
                    if i >= 2:
                        o2[(seq[i - 2], seq[i - 1])][ev] += 1
        self.tables = {m: t for m, t in tables.items() if t[2]}
        self.history: list[tuple[int, int]] = []

    def _draw(self, counter: Counter) -> tuple[int, int]:
        events = list(counter)
        p = np.array([counter[e] for e in events], dtype=float)
        return events[int(self.rng.choice(len(events), p=p / p.sum()))]

    def _next(self, mode: str) -> tuple[int, int]:
        o2, o1, o0 = self.tables.get(mode, self.tables["any"])
        if len(self.history) >= 2 and tuple(self.history[-2:]) in o2:
            return self._draw(o2[tuple(self.history[-2:])])
        if self.history and self.history[-1] in o1:
            return self._draw(o1[self.history[-1]])
        return self._draw(o0)

    def next_bar(self, controls: MusicControls, harmony: tuple[Chord, ...] | None = None) -> Bar:
        controls.validate()
        ticks = controls.beats_per_breath * TICKS_PER_BEAT
        events, t = [], 0
        while t < ticks:
            ev = self._next(controls.mode)
            self.history = (self.history + [ev])[-2:]
            events.append((t, ev[1], ev[0]))
            t += ev[1]
        mean = np.mean([p for _, _, p in events]) + controls.tonic
        octave = 12 * round((controls.register_midi - mean) / 12)
        notes = tuple(NoteEvent(t / TICKS_PER_BEAT, min(d, ticks - t) / TICKS_PER_BEAT,
                                int(np.clip(p + controls.tonic + octave, 0, 127))) for t, d, p in events)
        tonic_chord = theory.diatonic_chords(controls.tonic, controls.mode)[0]
        return Bar(controls.beats_per_breath, controls.inhale_beats, notes,
                   harmony or (Chord(0.0, tonic_chord.root, tonic_chord.pitch_classes),))
