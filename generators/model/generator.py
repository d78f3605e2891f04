"""ModelGenerator: streams breath-locked bars from the trained melody GRU, keeping its state between bars.

A breath bar of N beats is composed as a few corpus-style model bars ("units" of 2, 3 or 4 beats). Each
unit opens with control tokens the model was trained to honour: mode, a density bucket, a register bucket
(tonic-relative; the target follows the breath arc and the model picks within REGISTER_BAND of it) and a
contour (rising in the inhale, falling in the exhale). Decoding always enforces the token grammar
(positions move forward inside the unit); with ``constrain`` it also keeps pitches within REGISTER_REACH
of the requested register and penalises (by default forbids) pitches outside the mode's scale. Requests
sparser than SPARSE_DENSITY are composed in half time. Harmony: given by the phrase plan
(``generators.form``), the melody is composed over it (pitches a semitone off the sounding chord's tones are
penalised); otherwise chosen afterwards, per unit the diatonic chord that best covers the melody, every
breath opening on the tonic chord and the tonic favoured at its end.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from generators import theory
from generators.base import Generator
from generators.controls import MODE_STEPS, MusicControls
from generators.events import Bar, Chord, NoteEvent
from generators.model import tokens as tk
from generators.model.corpus import TICKS_PER_BEAT

REGISTER_ARC_SEMITONES = 5.0  # the register bucket rises this much from breath start to the inhale peak
SPARSE_DENSITY = 0.5  # notes per beat below which bars are composed in half time (see next_bar)
REGISTER_BAND = 2  # the model picks each unit's register bucket within this many buckets of the arc's target
REGISTER_REACH = 12  # with constrain, pitches stay within this many semitones of the requested register
SCALE_PENALTY = 1.0  # default logit penalty (nats) for pitches outside a heptatonic mode's scale
TONIC_CHORD_BONUS = 1.5  # favours the tonic chord on a breath's last unit (in note-beats); the first is always I
CLASH_PENALTY = 4.0  # logit penalty (nats) for a pitch a semitone off a tone of the planned chord
VELOCITY, ACCENT = 72, 10  # MIDI velocity of melody notes, plus ACCENT on each unit's downbeat


def split_beats(beats: int) -> list[int]:
    """Unit lengths (each 2, 3 or 4 beats) that add up to a breath bar of ``beats`` (2-24) beats."""
    if beats < 2:
        raise ValueError(f"a bar needs at least 2 beats, got {beats}; raise beats_per_breath")
    units, rest = [], beats
    while rest > 0:
        take = 4 if rest >= 7 or rest == 4 else 3 if rest in (3, 5, 6) else 2
        units.append(take)
        rest -= take
    return units


def _clashes(pitches: np.ndarray, harmony: tuple[Chord, ...], beat: float) -> np.ndarray:
    """1.0 where a MIDI pitch is a semitone off a tone of the chord sounding at ``beat`` (and not a tone of it)."""
    tones = np.array(theory.chord_at(harmony, beat).pitch_classes)
    pcs = pitches % 12
    near = np.isin((pcs + 1) % 12, tones) | np.isin((pcs - 1) % 12, tones)
    return (near & ~np.isin(pcs, tones)).astype(float)


def _existing(path: Path | str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"model weights {path} not found; train them with `heartsong train` "
                                "(or reinstall heartsong, which ships them)")
    return Path(path)


class _TorchBackend:
    def __init__(self, checkpoint: Path | str | None):
        import torch

        from generators.model.train import CHECKPOINT, load_checkpoint

        torch.set_num_threads(1)
        self.torch = torch
        self.model, self.meta = load_checkpoint(_existing(checkpoint or CHECKPOINT))
        self.state = None

    def feed(self, token: int) -> np.ndarray:
        with self.torch.inference_mode():
            logits, self.state = self.model(self.torch.tensor([[token]]), self.state)
        return logits[0, -1].double().numpy()


class _NumpyBackend:
    def __init__(self, weights: Path | str | None):
        from generators.model.numpy_infer import WEIGHTS, NumpyMelodyGRU

        self.model = NumpyMelodyGRU(_existing(weights or WEIGHTS))
        if self.model.vocab != list(tk.VOCAB):
            raise ValueError(f"{weights or WEIGHTS} uses a different token vocabulary; re-export it with `heartsong train`")
        self.meta = {"data_hash": self.model.data_hash, "config": self.model.config}
        self.state = self.model.initial_state()

    def feed(self, token: int) -> np.ndarray:
        logits, self.state = self.model.step(token, self.state)
        return logits


def sample_top_p(logits: np.ndarray, allowed: np.ndarray, temperature: float, top_p: float,
                 rng: np.random.Generator) -> int:
    """Sample a token among ``allowed`` ids: softmax at ``temperature``, then the smallest set of most likely
    tokens whose probability reaches ``top_p`` (nucleus sampling). temperature 0 picks the most likely."""
    sub = logits[allowed]
    if temperature <= 0:
        return int(allowed[int(np.argmax(sub))])
    p = np.exp((sub - sub.max()) / temperature)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)]
    q = p[keep] / p[keep].sum()
    return int(allowed[keep[int(rng.choice(len(keep), p=q))]])


class ModelGenerator(Generator):
    """The learned generator. Same seed, backend and controls sequence => the same bars.

    backend: "torch" (checkpoint.pt) or "numpy" (weights.npz, no torch needed).
    temperature: > 0 sampling temperature (1 = the model's distribution); top_p: nucleus mass 0-1.
    constrain: keep pitches within REGISTER_REACH of the register and penalise those outside the mode's scale
    by ``scale_penalty`` nats of logit (inf = forbid them; pentatonic modes always forbid them, their point
    being no semitone clashes); the token grammar is always enforced. The default penalty lets the rare,
    confident chromatic note through (leading tones in minor), as in the corpus.
    """

    def __init__(self, seed: int = 0, backend: str = "torch", temperature: float = 1.0, top_p: float = 0.99,
                 constrain: bool = True, scale_penalty: float = SCALE_PENALTY, weights: Path | str | None = None):
        if backend not in ("torch", "numpy"):
            raise ValueError(f"unknown backend {backend!r}; use 'torch' or 'numpy'")
        if not (0 < top_p <= 1) or temperature < 0:
            raise ValueError(f"need 0 < top_p <= 1 and temperature >= 0, got top_p={top_p}, temperature={temperature}")
        self.net = _TorchBackend(weights) if backend == "torch" else _NumpyBackend(weights)
        self.rng = np.random.default_rng(seed)
        self.temperature, self.top_p, self.constrain = temperature, top_p, constrain
        self.scale_penalty = scale_penalty
        self.logits = self.net.feed(tk.BOS)
        self.tokens_fed = 1

    # -- streaming ---------------------------------------------------------------------------------
    def next_bar(self, controls: MusicControls, harmony: tuple[Chord, ...] | None = None) -> Bar:
        controls.validate()
        beats = controls.beats_per_breath
        # The corpus has few bars sparser than a note every two beats; such requests are composed at twice
        # the density in half the beats and played at half speed.
        stretch = 2 if controls.density < SPARSE_DENSITY and beats % 2 == 0 and beats >= 4 else 1
        units = split_beats(beats // stretch)
        notes: list[NoteEvent] = []
        chords: list[Chord] = []
        offset = 0
        for i, unit in enumerate(units):
            span = unit * stretch
            unit_notes = self._unit(self.unit_controls(unit, offset, span, controls, controls.density * stretch),
                                    controls, harmony, offset, stretch)
            if harmony is None:
                chord = self._chord(unit_notes, controls, first=i == 0, last=i == len(units) - 1)
                if not chords or chord.pitch_classes != chords[-1].pitch_classes:
                    chords.append(Chord(float(offset), chord.root, chord.pitch_classes))
            for t, d, rel in unit_notes:
                start = offset + stretch * t / TICKS_PER_BEAT
                notes.append(NoteEvent(start, min(stretch * d / TICKS_PER_BEAT, beats - start), rel + controls.tonic,
                                       VELOCITY + (ACCENT if t == 0 else 0)))
            offset += span
        return Bar(beats=beats, inhale_beats=controls.inhale_beats, notes=tuple(notes),
                   chords=harmony or tuple(chords))

    def unit_controls(self, unit: int, offset: float, span: float, controls: MusicControls,
                      density: float) -> tk.BarControls:
        """Control tokens for a ``unit``-beat model bar played over ``span`` beats from ``offset`` beats into
        the breath bar: register and contour follow the breath arc; ``density`` in notes per model beat."""
        arc_at = lambda beat: theory.breath_arc(min(beat, controls.beats_per_breath - 1e-9),  # noqa: E731
                                                controls.inhale_beats, controls.beats_per_breath)
        register = controls.register_midi - controls.tonic + REGISTER_ARC_SEMITONES * (arc_at(offset + span / 2) - 0.5)
        rise = arc_at(offset + span) - arc_at(offset)
        contour = "up" if rise > 0.25 else "down" if rise < -0.25 else "flat"
        return tk.BarControls(unit, controls.mode, tk.density_bucket(density), tk.register_bucket(register), contour)

    def _feed(self, token: int) -> None:
        self.logits = self.net.feed(token)
        self.tokens_fed += 1

    def _unit(self, c: tk.BarControls, controls: MusicControls, harmony: tuple[Chord, ...] | None = None,
              offset: float = 0.0, stretch: int = 1) -> list[tuple[int, int, int]]:
        """Decode one model bar under controls ``c``: (onset tick, duration ticks, tonic-relative pitch). With
        ``harmony`` (the breath's chords; the unit starts ``offset`` beats into the breath, its ticks
        ``stretch`` times longer), pitches a semitone off a tone of the sounding chord get -CLASH_PENALTY."""
        forced = tk.control_tokens(c)
        for t in forced[:4]:
            self._feed(t)
        # The register bucket is sampled in a band around the target: corpus melodies move between bars, and
        # pinning every unit to one bucket makes melodies narrower than the music they learned from.
        lo, hi = max(0, c.register - REGISTER_BAND), min(tk.REG_COUNT - 1, c.register + REGISTER_BAND)
        reg0 = tk.TOKEN["REG_0"]
        self._feed(sample_top_p(self.logits, np.arange(reg0 + lo, reg0 + hi + 1), self.temperature, self.top_p,
                                self.rng))
        self._feed(forced[5])
        pitch_ids, pitch_offset = self._pitch_choices(controls)
        ticks = c.beats * TICKS_PER_BEAT
        notes, last = [], -1
        while True:
            allowed = np.array([tk.BAR] + list(range(tk.POS0 + last + 1, tk.POS0 + ticks)))
            choice = sample_top_p(self.logits, allowed, self.temperature, self.top_p, self.rng)
            if choice == tk.BAR:  # fed as the first token of the next unit
                return notes
            self._feed(choice)
            logits = self.logits.copy()
            logits[pitch_ids] += pitch_offset
            if harmony:
                beat = offset + stretch * (choice - tk.POS0) / TICKS_PER_BEAT
                logits[pitch_ids] -= CLASH_PENALTY * _clashes(pitch_ids - tk.PITCH0 + tk.PITCH_LOW + controls.tonic,
                                                              harmony, beat)
            pitch = sample_top_p(logits, pitch_ids, self.temperature, self.top_p, self.rng)
            self._feed(pitch)
            dur = sample_top_p(self.logits, np.arange(tk.DUR0, tk.DUR0 + len(tk.DURATIONS)), self.temperature,
                               self.top_p, self.rng)
            self._feed(dur)
            last = choice - tk.POS0
            notes.append((last, tk.DURATIONS[dur - tk.DUR0], pitch - tk.PITCH0 + tk.PITCH_LOW))

    def _pitch_choices(self, controls: MusicControls) -> tuple[np.ndarray, np.ndarray]:
        """Pitch token ids that may be sampled and the logit offset of each (0, or -scale_penalty outside
        the mode's scale)."""
        rel = np.arange(tk.PITCH_LOW, tk.PITCH_HIGH + 1)
        keep = rel + controls.tonic <= 127
        offset = np.zeros(len(rel))
        if self.constrain:
            keep &= np.abs(rel - (controls.register_midi - controls.tonic)) <= REGISTER_REACH
            outside = ~np.isin(rel % 12, MODE_STEPS[controls.mode])
            if np.isinf(self.scale_penalty) or controls.mode.startswith("pentatonic"):
                keep &= ~outside
            else:
                offset[outside] = -self.scale_penalty
        return tk.PITCH0 + np.flatnonzero(keep), offset[keep]

    def _chord(self, notes: list[tuple[int, int, int]], controls: MusicControls, first: bool,
               last: bool) -> theory.DiatonicChord:
        """Each breath opens on the tonic chord (it anchors the mode: lydian and mixolydian melodies alone sound
        like the major key a fifth away); later units take the triad covering most melody note-beats."""
        palette = [c for c in theory.diatonic_chords(controls.tonic, controls.mode) if c.quality != "diminished"]
        if first:
            return palette[0]
        def score(c: theory.DiatonicChord) -> float:
            s = sum(d / TICKS_PER_BEAT * (1.5 if t == 0 else 1.0)
                    for t, d, rel in notes if (rel + controls.tonic) % 12 in c.pitch_classes)
            return s + (TONIC_CHORD_BONUS if last and c.degree == 0 else 0.0)
        return max(palette, key=score)
