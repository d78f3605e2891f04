"""REMI-style bar tokens: each bar opens with its length and control tokens, then (position, pitch, duration) triples.

    BAR LEN_<beats> MODE_<mode> DENS_<bucket> REG_<bucket> CONT_<up|flat|down>  (POS_<tick> PITCH_<rel> DUR_<ticks>)*

Pitches are relative to the tonic pitch class (PITCH_60 is the tonic at MIDI 60 + tonic); positions and
durations are in sixteenth-note ticks. The control tokens are computed from the bar itself at training time
(attribute controls), so at generation time they are requests the model has learned to honour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generators.controls import MODES
from generators.model.corpus import BAR_BEATS, TICKS_PER_BEAT

DENSITY_CENTRES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # notes per beat
REG_LOW, REG_STEP, REG_COUNT = 36, 3, 21  # register buckets: mean tonic-relative pitch 36..96 in 3-semitone steps
CONTOURS = ("up", "flat", "down")
CONTOUR_SEMITONES = 2.0  # second-half mean minus first-half mean beyond which a bar rises or falls
PITCH_LOW, PITCH_HIGH = 36, 100  # tonic-relative pitch range the vocabulary covers (inclusive)
MAX_TICKS = max(BAR_BEATS) * TICKS_PER_BEAT
DURATIONS = (1, 2, 3, 4, 6, 8, 12, 16, 24)  # ticks; other lengths snap to the nearest


def _build_vocab() -> list[str]:
    names = ["PAD", "BOS", "BAR"]
    names += [f"LEN_{b}" for b in BAR_BEATS]
    names += [f"MODE_{m}" for m in MODES]
    names += [f"DENS_{i}" for i in range(len(DENSITY_CENTRES))]
    names += [f"REG_{i}" for i in range(REG_COUNT)]
    names += [f"CONT_{c}" for c in CONTOURS]
    names += [f"POS_{t}" for t in range(MAX_TICKS)]
    names += [f"PITCH_{p}" for p in range(PITCH_LOW, PITCH_HIGH + 1)]
    names += [f"DUR_{d}" for d in DURATIONS]
    return names


VOCAB = _build_vocab()
TOKEN = {name: i for i, name in enumerate(VOCAB)}
PAD, BOS, BAR = TOKEN["PAD"], TOKEN["BOS"], TOKEN["BAR"]
POS0, PITCH0, DUR0 = TOKEN["POS_0"], TOKEN[f"PITCH_{PITCH_LOW}"], TOKEN["DUR_1"]
N_PITCH = PITCH_HIGH - PITCH_LOW + 1


@dataclass(frozen=True)
class BarControls:
    """The control tokens of one model bar. density and register are bucket indices; see the bucket functions."""

    beats: int  # one of BAR_BEATS
    mode: str
    density: int
    register: int
    contour: str


def density_bucket(notes_per_beat: float) -> int:
    """Index of the nearest DENSITY_CENTRES entry on a log scale (notes per beat, > 0)."""
    logs = np.log(np.array(DENSITY_CENTRES))
    return int(np.argmin(np.abs(logs - np.log(max(notes_per_beat, 0.125)))))


def register_bucket(mean_rel_pitch: float) -> int:
    """Bucket of a bar's mean tonic-relative pitch (semitones; 60 = tonic an octave above middle-C's octave)."""
    return int(np.clip(round((mean_rel_pitch - REG_LOW) / REG_STEP), 0, REG_COUNT - 1))


def register_centre(bucket: int) -> float:
    """Mean tonic-relative pitch a register bucket stands for."""
    return REG_LOW + REG_STEP * bucket


def contour_of(notes: list[tuple[int, int, int]], beats: int) -> str:
    """'up' / 'down' when the second half of the bar sits CONTOUR_SEMITONES above / below the first."""
    half = beats * TICKS_PER_BEAT / 2
    first = [p for t, _, p in notes if t < half]
    second = [p for t, _, p in notes if t >= half]
    if not first or not second:
        return "flat"
    diff = np.mean(second) - np.mean(first)
    return "up" if diff >= CONTOUR_SEMITONES else "down" if diff <= -CONTOUR_SEMITONES else "flat"


def bar_controls(beats: int, notes: list[tuple[int, int, int]], mode: str, fallback_register: float) -> BarControls:
    """The controls a bar actually realises: what the model is conditioned on during training."""
    mean = float(np.mean([p for _, _, p in notes])) if notes else fallback_register
    return BarControls(beats, mode, density_bucket(len(notes) / beats), register_bucket(mean), contour_of(notes, beats))


def control_tokens(c: BarControls) -> list[int]:
    """BAR and the five control tokens that open a bar."""
    return [BAR, TOKEN[f"LEN_{c.beats}"], TOKEN[f"MODE_{c.mode}"], TOKEN[f"DENS_{c.density}"],
            TOKEN[f"REG_{c.register}"], TOKEN[f"CONT_{c.contour}"]]


def snap_duration(ticks: int) -> int:
    return min(DURATIONS, key=lambda d: (abs(d - ticks), d))


def note_tokens(notes: list[tuple[int, int, int]]) -> list[int]:
    """POS PITCH DUR per note: (onset tick, duration ticks, tonic-relative pitch); pitches must be in range."""
    out = []
    for t, d, p in notes:
        if not PITCH_LOW <= p <= PITCH_HIGH:
            raise ValueError(f"relative pitch {p} outside {PITCH_LOW}-{PITCH_HIGH}; shift the piece by octaves")
        out += [POS0 + t, PITCH0 + p - PITCH_LOW, DUR0 + DURATIONS.index(snap_duration(d))]
    return out


def encode_bar(c: BarControls, notes: list[tuple[int, int, int]]) -> list[int]:
    return control_tokens(c) + note_tokens(notes)


def decode(tokens: list[int]) -> list[tuple[BarControls, list[tuple[int, int, int]]]]:
    """Inverse of a sequence of ``encode_bar`` outputs (BOS and PAD ignored): [(controls, notes)]."""
    bars = []
    i = 0
    while i < len(tokens):
        if tokens[i] != BAR:
            i += 1
            continue
        names = [VOCAB[t] for t in tokens[i + 1:i + 6]]
        c = BarControls(int(names[0][4:]), names[1][5:], int(names[2][5:]), int(names[3][4:]), names[4][5:])
        i += 6
        notes = []
        while i + 2 < len(tokens) and tokens[i] != BAR and POS0 <= tokens[i] < POS0 + MAX_TICKS:
            notes.append((int(tokens[i] - POS0), DURATIONS[tokens[i + 2] - DUR0], int(tokens[i + 1] - PITCH0 + PITCH_LOW)))
            i += 3
        bars.append((c, notes))
    return bars


def piece_shifts(rel_pitches: np.ndarray) -> list[int]:
    """Octave shifts (the tonic-relative form of transposition) that keep the piece inside the vocabulary
    and its mean inside the register range users can request (MIDI 48-84 minus a tonic of 0-11)."""
    shifts = []
    for s in (-24, -12, 0, 12):
        lo, hi, mean = rel_pitches.min() + s, rel_pitches.max() + s, rel_pitches.mean() + s
        if PITCH_LOW <= lo and hi <= PITCH_HIGH and 40 <= mean <= 84:
            shifts.append(s)
    return shifts


def encode_corpus(arrays: dict, split: int, augment: bool = True) -> list[np.ndarray]:
    """Token sequences (BOS + bars) for every piece in ``split`` (0 train, 1 held-out), once per octave
    shift when ``augment``, else once at the shift nearest the original register."""
    pieces, bars, notes = arrays["pieces"], arrays["bars"], arrays["notes"]
    bar_end = np.append(pieces[1:, 4], len(bars))
    seqs = []
    for pid, (mode_idx, _tonic, _src, sp, first_bar) in enumerate(pieces):
        if sp != split:
            continue
        piece_bars = [(int(b[1]), [tuple(int(v) for v in n) for n in notes[b[2]:b[2] + b[3]]])
                      for b in bars[first_bar:bar_end[pid]]]
        rel = np.array([p for _, ns in piece_bars for _, _, p in ns])
        shifts = piece_shifts(rel)
        if not shifts:
            continue
        if not augment:
            shifts = [min(shifts, key=abs)]
        for s in shifts:
            fallback = float(rel.mean() + s)
            seq = [BOS]
            for beats, ns in piece_bars:
                shifted = [(t, d, p + s) for t, d, p in ns]
                seq += encode_bar(bar_controls(beats, shifted, MODES[mode_idx], fallback), shifted)
            seqs.append(np.array(seq, dtype=np.int16))
    return seqs
