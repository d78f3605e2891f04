"""The eval-generator report: control adherence, similarity to held-out corpus music, and speed.

Systems compared: the model as shipped (default decoding: register window, out-of-scale pitches penalised),
the model with out-of-scale pitches forbidden ("strict"), the model with only the token grammar enforced
("learned only": what the network does by itself), the rule-based generator and an order-2 Markov chain.

- Control adherence on a seeded grid of control settings (every mode x every density bucket, random tonic,
  register and breath length), 8-bar passages: mode accuracy = music21 Krumhansl-Schmuckler key
  (``analyze('key.krumhansl')``) of the sounding passage (melody + chord tones) names the requested tonic and
  the requested mode's family (major, lydian, mixolydian, pentatonic-major -> major; minor, dorian,
  pentatonic-minor -> minor); in-scale ratio = share of melody notes in the requested mode's scale; Spearman
  correlation of requested vs measured notes per beat; register error = |mean melody pitch - register_midi|.
- Similarity (Yang & Lerch 2018): for each feature, the overlapped area between the intra-set distance
  distribution of held-out corpus passages and the inter-set distances generated-vs-held-out (Gaussian KDE),
  1 = indistinguishable. Generators get the held-out passages' own controls (mode, tonic, bar length,
  notes per beat, register): the held-out control settings.
- Speed: music seconds per CPU second at default controls, one thread, in a fresh subprocess that also
  reports model load time and peak resident memory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from generators.base import Generator
from generators.controls import MODE_STEPS, MODES, MusicControls
from generators.model import tokens as tk
from generators.model.corpus import TICKS_PER_BEAT, build_corpus, corpus_path, load_corpus

PASSAGE_BARS = 8
MAJOR_FAMILY = {"major", "lydian", "mixolydian", "pentatonic-major"}
INTERVAL_BINS = 13  # |interval| 0..11 semitones, 12+ in the last bin
DURATION_EDGES = (0.0, 0.3, 0.6, 0.9, 1.25, 1.75, 2.5, 3.5, np.inf)  # beats
FEATURES = ("pitch_class_entropy", "scale_consistency", "in_key_ratio", "pitch_range", "interval_hist",
            "duration_hist")
Notes = list[tuple[float, float, int]]  # (start beat, duration beats, MIDI pitch)


# -- features ------------------------------------------------------------------------------------------
def passage_features(notes: Notes, tonic: int, mode: str) -> dict:
    """Yang & Lerch style features of a melody: entropy (bits) of the pitch-class histogram, scale
    consistency (best share of notes in any of the 24 major/natural-minor scales), in-key ratio (share in
    ``mode`` on ``tonic``), pitch range (semitones), |interval| and duration histograms (normalised)."""
    pitches = np.array([p for _, _, p in notes])
    pcs = np.bincount(pitches % 12, minlength=12).astype(float)
    prob = pcs / pcs.sum()
    nz = prob[prob > 0]
    scales = [np.isin(np.arange(12), [(t + s) % 12 for s in MODE_STEPS[m]]) for t in range(12)
              for m in ("major", "minor")]
    in_key = np.isin(pitches % 12, [(tonic + s) % 12 for s in MODE_STEPS[mode]]).mean()
    intervals = np.minimum(np.abs(np.diff(pitches)), INTERVAL_BINS - 1)
    ih = np.bincount(intervals, minlength=INTERVAL_BINS).astype(float)
    dh = np.histogram([d for _, d, _ in notes], bins=DURATION_EDGES)[0].astype(float)
    return {
        "pitch_class_entropy": float(-(nz * np.log2(nz)).sum()),
        "scale_consistency": float(max(prob[s].sum() for s in scales)),
        "in_key_ratio": float(in_key),
        "pitch_range": float(pitches.max() - pitches.min()),
        "interval_hist": ih / max(ih.sum(), 1),
        "duration_hist": dh / max(dh.sum(), 1),
    }


def _distances(a: list, b: list | None) -> np.ndarray:
    """Pairwise Euclidean distances within ``a`` (b None, i<j) or between ``a`` and ``b``."""
    A = np.array([np.atleast_1d(x) for x in a], dtype=float)
    if b is None:
        d = np.linalg.norm(A[:, None] - A[None], axis=-1)
        return d[np.triu_indices(len(A), 1)]
    B = np.array([np.atleast_1d(x) for x in b], dtype=float)
    return np.linalg.norm(A[:, None] - B[None], axis=-1).ravel()


def overlapped_area(intra: np.ndarray, inter: np.ndarray) -> float:
    """Area under min(KDE(intra), KDE(inter)): 1 when the two distance distributions coincide."""
    from scipy.stats import gaussian_kde

    lo, hi = min(intra.min(), inter.min()), max(intra.max(), inter.max())
    if hi - lo < 1e-9:
        return 1.0
    grid = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 2000)
    jitter = 1e-6 * (hi - lo)  # a KDE of identical values is singular
    rng = np.random.default_rng(0)
    k1 = gaussian_kde(intra + rng.normal(0, jitter, len(intra)))(grid)
    k2 = gaussian_kde(inter + rng.normal(0, jitter, len(inter)))(grid)
    return float(np.trapezoid(np.minimum(k1, k2), grid))


def similarity(generated: list[dict], reference: list[dict]) -> dict[str, float]:
    """Overlapped area per feature between intra-reference and generated-vs-reference distances."""
    return {f: overlapped_area(_distances([r[f] for r in reference], None),
                               _distances([g[f] for g in generated], [r[f] for r in reference]))
            for f in FEATURES}


# -- passages ------------------------------------------------------------------------------------------
def generate_passage(gen: Generator, controls: MusicControls, bars: int = PASSAGE_BARS) -> tuple[Notes, list]:
    """``bars`` bars under fixed controls: melody notes and (start, end, pitch classes) chord spans, in beats."""
    notes, chords, offset = [], [], 0.0
    for _ in range(bars):
        bar = gen.next_bar(controls)
        notes += [(offset + n.start_beat, n.duration_beats, n.pitch) for n in bar.notes]
        bounds = [c.start_beat for c in bar.chords] + [bar.beats]
        chords += [(offset + c.start_beat, offset + bounds[i + 1], c.pitch_classes) for i, c in enumerate(bar.chords)]
        offset += bar.beats
    return notes, chords


def krumhansl_key(notes: Notes, chords: list | None = None) -> tuple[int, str]:
    """(tonic pitch class, 'major'|'minor') from music21's Krumhansl-Schmuckler analysis of melody (+ chords)."""
    from music21 import chord, key, note, stream

    s = stream.Stream()
    for start, dur, pitch in notes:
        n = note.Note(pitch)
        n.quarterLength = max(dur, 0.25)
        s.insert(start, n)
    for start, end, pcs in chords or []:
        c = chord.Chord([48 + pc for pc in pcs])
        c.quarterLength = end - start
        s.insert(start, c)
    k: key.Key = s.analyze("key.krumhansl")
    return k.tonic.pitchClass, k.mode


def adherence_grid(seed: int = 7, per_cell: int = 1) -> list[MusicControls]:
    """Held-out control settings: every mode x every density bucket centre, random tonic/register/breath."""
    rng = np.random.default_rng(seed)
    grid = []
    for mode in MODES:
        for density in tk.DENSITY_CENTRES:
            for _ in range(per_cell):
                beats = int(rng.choice([4, 6, 8, 10, 12]))
                grid.append(MusicControls(tempo_bpm=60.0, beats_per_breath=beats, inhale_beats=beats * 0.4,
                                          mode=mode, tonic=int(rng.integers(12)), density=float(density),
                                          register_midi=int(rng.integers(55, 80))))
    return grid


def adherence(gen: Generator, grid: list[MusicControls]) -> dict:
    """Mode accuracy (with and without chord tones), in-scale ratio, density Spearman, register error."""
    from scipy.stats import spearmanr

    hits, hits_melody, in_scale, req_d, got_d, reg_err = [], [], [], [], [], []
    for c in grid:
        notes, chords = generate_passage(gen, c)
        family = "major" if c.mode in MAJOR_FAMILY else "minor"
        hits.append(krumhansl_key(notes, chords) == (c.tonic, family))
        hits_melody.append(krumhansl_key(notes) == (c.tonic, family))
        pcs = np.array([p % 12 for _, _, p in notes])
        in_scale.append(np.isin(pcs, [(c.tonic + s) % 12 for s in MODE_STEPS[c.mode]]).mean())
        req_d.append(c.density)
        got_d.append(len(notes) / (c.beats_per_breath * PASSAGE_BARS))
        reg_err.append(abs(np.mean([p for _, _, p in notes]) - c.register_midi))
    by_mode = lambda hs: {m: float(np.mean([h for h, c in zip(hs, grid) if c.mode == m])) for m in MODES}  # noqa: E731
    return {
        "mode_accuracy": float(np.mean(hits)), "mode_accuracy_melody_only": float(np.mean(hits_melody)),
        "mode_accuracy_by_mode": by_mode(hits), "mode_accuracy_melody_only_by_mode": by_mode(hits_melody),
        "in_scale_ratio": float(np.mean(in_scale)), "in_scale_ratio_by_mode": by_mode(in_scale),
        "density_spearman": float(spearmanr(req_d, got_d).statistic),
        "density_measured_by_request": {str(d): float(np.mean([g for r, g in zip(req_d, got_d) if r == d]))
                                        for d in sorted(set(req_d))},
        "register_error_semitones": float(np.mean(reg_err)), "passages": len(grid),
    }


def heldout_passages(arrays: dict, count: int, seed: int = 11) -> list[tuple[MusicControls, Notes]]:
    """Up to ``count`` 8-bar passages from held-out pieces, each with the controls it realises."""
    pieces, bars, notes = arrays["pieces"], arrays["bars"], arrays["notes"]
    bar_end = np.append(pieces[1:, 4], len(bars))
    rng = np.random.default_rng(seed)
    out = []
    for pid in rng.permutation(np.flatnonzero(pieces[:, 3] == 1)):
        mode_idx, tonic, _s, _sp, first = pieces[pid]
        rows = bars[first:bar_end[pid]]
        if len(rows) < PASSAGE_BARS:
            continue
        start = int(rng.integers(0, len(rows) - PASSAGE_BARS + 1))
        rows = rows[start:start + PASSAGE_BARS]
        beats = int(rows[0, 1])
        if (rows[:, 1] != beats).any():
            continue
        melody = [(i * beats + t / TICKS_PER_BEAT, d / TICKS_PER_BEAT, int(p) + int(tonic))
                  for i, b in enumerate(rows) for t, d, p in notes[b[2]:b[2] + b[3]]]
        if len(melody) < 8:
            continue
        density = float(np.clip(len(melody) / (beats * PASSAGE_BARS), 0.25, 4))
        register = int(np.clip(round(np.mean([p for _, _, p in melody])), 48, 84))
        controls = MusicControls(tempo_bpm=60.0, beats_per_breath=beats, inhale_beats=beats * 0.4,
                                 mode=MODES[mode_idx], tonic=int(tonic), density=density, register_midi=register)
        out.append((controls, melody))
        if len(out) == count:
            break
    return out


def corpus_passages(arrays: dict, split: int, count: int, seed: int) -> list[tuple[MusicControls, Notes]]:
    """Like ``heldout_passages`` for either split (the train split gives the corpus-vs-corpus ceiling)."""
    flipped = dict(arrays, pieces=arrays["pieces"].copy())
    flipped["pieces"][:, 3] = (arrays["pieces"][:, 3] == split).astype(np.int32)
    return heldout_passages(flipped, count, seed)


# -- speed ---------------------------------------------------------------------------------------------
_SPEED_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from generators.model.generator import ModelGenerator
from generators.controls import MusicControls
from generators.form import harmony
gen = ModelGenerator(seed=0, backend=sys.argv[1])
load_s = time.perf_counter() - t0
c = MusicControls(tempo_bpm=60.0, beats_per_breath=10, inhale_beats=4.0)
chords = harmony(c, (3, 0))  # every bar decoded over planned chords: the phrase plan's recalls cost nothing
gen.next_bar(c, chords)
cpu0, beats = time.process_time(), 0
while time.process_time() - cpu0 < float(sys.argv[2]):
    beats += gen.next_bar(c, chords).beats
cpu = time.process_time() - cpu0
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"music_seconds_per_cpu_second": beats * 60.0 / c.tempo_bpm / cpu, "load_seconds": load_s,
                  "ms_per_token": 1000 * cpu / gen.tokens_fed, "peak_rss_mb": int(hwm) / 1024,
                  "torch_imported": "torch" in sys.modules}))
"""


def speed(backend: str = "torch", seconds: float = 5.0) -> dict:
    """Speed of a fresh one-thread process at default controls (60 bpm, density 1, 10-beat breaths)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _SPEED_SCRIPT, backend, str(seconds)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the report ----------------------------------------------------------------------------------------
def cached_corpus(progress: bool = True) -> Path:
    """The parsed corpus from the cache; on a fresh machine it is built first (about 10 minutes on 2 cores),
    which is said on stderr with a progress bar."""
    path = corpus_path(include_essen=False, limit=None)
    if not path.exists() and progress:
        print(f"building the corpus cache {path} (once; about 10 min on 2 cores, then reused)", file=sys.stderr)
    return build_corpus(progress=progress)


def evaluate_generator(corpus: Path | str | None = None, passages: int = 120, grid_per_cell: int = 1,
                       seed: int = 0, speed_seconds: float = 5.0, systems: tuple[str, ...] | None = None,
                       progress: bool = True) -> dict:
    """Run the whole evaluation and return it as a JSON-ready dict (see the module docstring). ``progress``:
    show the corpus parse (first run only) on stderr."""
    from generators.model.generator import ModelGenerator
    from generators.model.markov import MarkovGenerator
    from generators.model.train import CHECKPOINT
    from generators.rules import RuleBasedGenerator

    arrays = load_corpus(corpus if corpus is not None else cached_corpus(progress))
    factories = {
        "model": lambda: ModelGenerator(seed=seed),
        "model_strict": lambda: ModelGenerator(seed=seed, scale_penalty=float("inf")),
        "model_learned_only": lambda: ModelGenerator(seed=seed, constrain=False),
        "rules": lambda: RuleBasedGenerator(seed=seed),
        "markov2": lambda: MarkovGenerator(arrays, seed=seed),
    }
    systems = systems or tuple(factories)
    grid = adherence_grid(per_cell=grid_per_cell)
    held = heldout_passages(arrays, passages)
    reference = [passage_features(m, c.tonic, c.mode) for c, m in held]
    ceiling = [passage_features(m, c.tonic, c.mode) for c, m in corpus_passages(arrays, 0, passages, seed + 1)]
    # How often the key analysis names the labelled tonic and family for real held-out melodies: the
    # ceiling for the melody-only mode accuracy of any corpus-like generator.
    corpus_key_hits = [krumhansl_key(m) == (c.tonic, "major" if c.mode in MAJOR_FAMILY else "minor") for c, m in held]
    report = {"corpus_hash": arrays["meta"]["hash"], "heldout_passages": len(held), "systems": {},
              "corpus_train_split": {"similarity": similarity(ceiling, reference)},
              "heldout_melody_mode_accuracy": float(np.mean(corpus_key_hits))}
    for name in systems:
        t0 = time.perf_counter()
        gen = factories[name]()
        feats = [passage_features(generate_passage(gen, c)[0], c.tonic, c.mode) for c, _ in held]
        entry = {"adherence": adherence(factories[name](), grid), "similarity": similarity(feats, reference)}
        entry["similarity_mean"] = float(np.mean(list(entry["similarity"].values())))
        entry["eval_seconds"] = round(time.perf_counter() - t0, 1)
        report["systems"][name] = entry
    report["corpus_train_split"]["similarity_mean"] = float(np.mean(list(
        report["corpus_train_split"]["similarity"].values())))
    if speed_seconds > 0:
        report["speed"] = {b: speed(b, speed_seconds) for b in ("torch", "numpy")}
        report["checkpoint_mb"] = CHECKPOINT.stat().st_size / 1e6
        report["numpy_weights_mb"] = CHECKPOINT.with_name("weights.npz").stat().st_size / 1e6
    return report


def print_report(report: dict, file=None) -> None:
    """Human-readable tables of ``evaluate_generator``'s result."""
    p = lambda *a: print(*a, file=file or sys.stdout)  # noqa: E731
    p(f"corpus {report['corpus_hash']}, {report['heldout_passages']} held-out 8-bar passages; key analysis of "
      f"their melodies names the labelled tonic and mode family in {report['heldout_melody_mode_accuracy']:.0%}")
    p("\ncontrol adherence       mode acc  (melody)  in-scale  density rho  register err")
    for name, e in report["systems"].items():
        a = e["adherence"]
        p(f"  {name:20s}  {a['mode_accuracy']:7.2f}  {a['mode_accuracy_melody_only']:8.2f}  "
          f"{a['in_scale_ratio']:8.2f}  {a['density_spearman']:11.2f}  {a['register_error_semitones']:8.1f} st")
    p("\nsimilarity to held-out (overlapped area, 1 = same)")
    p("  " + " " * 20 + "".join(f"{f[:12]:>13s}" for f in FEATURES) + "         mean")
    rows = dict(report["systems"])
    rows["corpus (train split)"] = report["corpus_train_split"]
    for name, e in rows.items():
        p(f"  {name:20s}" + "".join(f"{e['similarity'][f]:13.3f}" for f in FEATURES)
          + f"{e['similarity_mean']:13.3f}")
    if "speed" in report:
        p("\nspeed (one thread, default controls)")
        for b, s in report["speed"].items():
            p(f"  {b:6s} {s['music_seconds_per_cpu_second']:8.0f}x real time, {s['ms_per_token']:.3f} ms/token, "
              f"load {s['load_seconds']:.2f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
        p(f"  checkpoint {report['checkpoint_mb']:.2f} MB, numpy weights {report['numpy_weights_mb']:.2f} MB")
