"""Corpus extraction: parse music21's folk-tune and chorale melodies into a cached, compact bar dataset (npz).

Each piece becomes a tonic-relative melody (pitch minus the tonic pitch class, so every key is the same
key to the model; transposition augmentation therefore reduces to octave shifts, done in ``tokens``),
quantised to sixteenth notes and split into bars whose attributes (mode, notes per beat, mean register
relative to the tonic, contour) are what the model is conditioned on. The held-out split is by piece.

Sources (all ship with music21 10.5): O'Neill's 1850 (Irish), Ryan's Mammoth Collection, Aird's Airs
(Scottish), Bach chorale sopranos; optionally the Essen folksong collection, whose licence allows
non-commercial use only, so the shipped checkpoint is trained without it.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators.controls import MODE_STEPS, MODES

TICKS_PER_BEAT = 4  # sixteenth-note grid; a beat is a quarter note
BAR_BEATS = (2, 3, 4, 6)  # bar lengths (quarter notes) kept; others (9/8, 5/4, ...) are dropped
SOURCES = ("oneills1850", "ryansMammoth", "airdsAirs", "bach")
ESSEN = "essenFolksong"
PENTATONIC_SHARE = 0.93  # duration share inside a pentatonic scale that makes a tune (gapped, passing notes) pentatonic
VALID_FRACTION = 0.1  # share of pieces held out, chosen by a hash of the piece's title
CORPUS_VERSION = 2  # bump when extraction changes, so stale caches are not reused

# Mode names music21 gives ABC K: fields, mapped to ours.
_KEY_MODES = {"major": "major", "minor": "minor", "dorian": "dorian", "lydian": "lydian",
              "mixolydian": "mixolydian", "ionian": "major", "aeolian": "minor"}


@dataclass(frozen=True)
class Piece:
    """A melody in tonic-relative pitches. ``bars`` is a list of (bar_beats, [(onset_tick, dur_ticks, rel_pitch)])."""

    name: str
    source: str
    tonic: int  # pitch class 0-11
    mode: str
    bars: list


def cache_dir() -> Path:
    """The user cache directory where corpora are stored (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("heartsong")) / "corpus"


def mode_of_melody(rel_pitches: np.ndarray, weights: np.ndarray, declared: str) -> str:
    """Label a tonic-relative melody with one of MODES.

    A melody with PENTATONIC_SHARE of its duration on the five notes of a pentatonic scale (a gapped tune
    with passing notes, common in Irish and Scottish music) is pentatonic; otherwise the heptatonic
    mode whose scale holds the most duration-weighted notes wins, ties going to the ``declared`` mode
    (the ABC K: field or the key analysis), so a tune with one stray accidental keeps its declared mode.
    """
    hist = np.bincount(rel_pitches % 12, weights=weights, minlength=12)
    hist = hist / hist.sum()
    for penta in ("pentatonic-major", "pentatonic-minor"):
        if hist[list(MODE_STEPS[penta])].sum() >= PENTATONIC_SHARE:
            return penta
    best, best_in = declared, -1.0
    for mode in ("major", "minor", "dorian", "lydian", "mixolydian"):
        inside = hist[list(MODE_STEPS[mode])].sum()
        if inside > best_in + 1e-9 or (abs(inside - best_in) <= 1e-9 and mode == declared):
            best, best_in = mode, inside
    return best


def _melody_notes(measure):
    """(offset, quarterLength, midi) of the top line of a measure, grace notes and chord symbols skipped."""
    from music21 import chord, harmony, note

    out = []
    for el in measure.notes:
        if el.duration.isGrace or isinstance(el, harmony.Harmony):
            continue
        if isinstance(el, note.Note):
            midi = el.pitch.midi
        elif isinstance(el, chord.Chord):
            midi = max(p.midi for p in el.pitches)
        else:
            continue
        out.append((float(el.offset), float(el.duration.quarterLength), int(midi)))
    return out


def _piece_from_part(part, name: str, source: str, tonic: int, declared: str) -> Piece | None:
    """Quantise a music21 part into bars of a supported length; None when nothing usable remains."""
    from music21 import stream

    part = part.stripTies()
    bars = []
    for m in part.getElementsByClass(stream.Measure):
        beats = float(m.barDuration.quarterLength)
        # Pickups and half-bars before repeats are shorter than the metre: they would teach wrong bar lengths.
        if beats not in BAR_BEATS or abs(float(m.duration.quarterLength) - beats) > 1e-6:
            continue
        notes, last_onset = [], -1
        for off, ql, midi in _melody_notes(m):
            onset = int(round(off * TICKS_PER_BEAT))
            if onset <= last_onset or onset >= beats * TICKS_PER_BEAT:
                continue  # triplets rounded onto one grid point keep their first note
            dur = max(1, int(round(ql * TICKS_PER_BEAT)))
            notes.append((onset, dur, midi - tonic))
            last_onset = onset
        bars.append((int(beats), notes))
    pitched = [n for _, ns in bars for n in ns]
    if len(bars) < 4 or len(pitched) < 8:
        return None
    rel = np.array([p for _, _, p in pitched])
    if rel.min() < 24 or rel.max() > 108:
        return None
    mode = mode_of_melody(rel, np.array([d for _, d, _ in pitched], dtype=float), declared)
    return Piece(name=name, source=source, tonic=tonic, mode=mode, bars=bars)


def parse_abc_file(path: str) -> list[Piece]:
    """Every tune of one ABC file; the tonic and mode come from its K: field."""
    from music21 import converter, key, stream

    source = Path(path).parent.name
    try:
        parsed = converter.parse(path)
    except Exception:  # a malformed file in a folk collection must not stop the build
        return []
    scores = parsed.scores if isinstance(parsed, stream.Opus) else [parsed]
    pieces = []
    for i, score in enumerate(scores):
        try:
            keys = list(score.recurse().getElementsByClass(key.Key))
            if not keys:
                continue
            k = keys[0]
            declared = _KEY_MODES.get(str(k.mode).lower())
            if declared is None:
                continue
            title = (score.metadata.title if score.metadata and score.metadata.title else f"{Path(path).stem}#{i}")
            part = score.parts[0] if score.parts else score
            piece = _piece_from_part(part, f"{source}/{title}", source, k.tonic.pitchClass, declared)
        except Exception:  # music21 raises assorted errors on odd tunes; skip the tune, keep the file
            continue
        if piece is not None:
            pieces.append(piece)
    return pieces


def _parse_chorale(path: str) -> list[Piece]:
    """The soprano of one Bach chorale; the key comes from Krumhansl-Schmuckler analysis of all voices."""
    from music21 import converter

    try:
        score = converter.parse(path)
        k = score.analyze("key.krumhansl")
        declared = "major" if k.mode == "major" else "minor"
        piece = _piece_from_part(score.parts[0], f"bach/{Path(path).stem}", "bach", k.tonic.pitchClass, declared)
    except Exception:  # a chorale music21 cannot read is skipped, not fatal
        return []
    return [piece] if piece is not None else []


def _jobs(include_essen: bool) -> list[tuple[str, str]]:
    """(parser, path) jobs, largest file first so the worker pool finishes evenly."""
    from music21 import corpus

    jobs = []
    for src in SOURCES[:3] + ((ESSEN,) if include_essen else ()):
        jobs += [("abc", str(p)) for p in corpus.getWork(src) if str(p).endswith(".abc")]
    jobs += [("chorale", str(p)) for p in corpus.chorales.Iterator(returnType="filename")]
    if include_essen:
        jobs = [j for j in jobs if not re.search(r"essenFolksong/test", j[1])]
    size = lambda j: Path(j[1]).stat().st_size if j[0] == "abc" else 0  # noqa: E731 (chorales are small)
    return sorted(jobs, key=size, reverse=True)


def _run_job(job: tuple[str, str]) -> list[Piece]:
    kind, path = job
    if kind == "chorale":
        from music21 import corpus

        path = str(corpus.getWork(path))
        return _parse_chorale(path)
    return parse_abc_file(path)


def _split_of(name: str) -> int:
    """0 = train, 1 = held-out; by a hash of the normalised title so duplicate tunes share a split."""
    norm = re.sub(r"[^a-z]", "", name.split("/", 1)[-1].lower())
    h = int(hashlib.sha1(norm.encode()).hexdigest()[:8], 16)
    return int(h / 0xFFFFFFFF < VALID_FRACTION)


def pack_pieces(pieces: list[Piece]) -> dict[str, np.ndarray]:
    """Flatten pieces into the npz arrays described in ``load_corpus``, dropping exact duplicates."""
    piece_rows, bar_rows, note_rows, names = [], [], [], []
    seen = set()
    for p in pieces:
        fingerprint = hashlib.sha1(repr(p.bars).encode()).hexdigest()
        if fingerprint in seen:  # O'Neill's files overlap; a tune twice would leak into both splits
            continue
        seen.add(fingerprint)
        pid = len(piece_rows)
        piece_rows.append((MODES.index(p.mode), p.tonic, SOURCES.index(p.source) if p.source in SOURCES else len(SOURCES),
                           _split_of(p.name), len(bar_rows)))
        names.append(p.name)
        for beats, notes in p.bars:
            bar_rows.append((pid, beats, len(note_rows), len(notes)))
            note_rows += notes
    return {
        "pieces": np.array(piece_rows, dtype=np.int32).reshape(-1, 5),
        "bars": np.array(bar_rows, dtype=np.int32).reshape(-1, 4),
        "notes": np.array(note_rows, dtype=np.int16).reshape(-1, 3),
        "names": np.array(names, dtype=np.str_),
    }


def data_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (first 16 hex digits) over the dataset arrays: identifies exactly what a model was trained on."""
    h = hashlib.sha256()
    for k in ("pieces", "bars", "notes"):
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


def corpus_path(include_essen: bool, limit: int | None) -> Path:
    tag = f"v{CORPUS_VERSION}-{'essen' if include_essen else 'noessen'}-{limit if limit else 'all'}"
    return cache_dir() / f"corpus-{tag}.npz"


def build_corpus(include_essen: bool = False, limit: int | None = None, progress: bool = True,
                 workers: int = 2, force: bool = False) -> Path:
    """Parse the corpus (or reuse the cache) and return the path of the npz dataset.

    include_essen: add the Essen folksongs (non-commercial licence; off for the shipped checkpoint).
    limit: parse only the first ``limit`` files of the job list (for quick tests); None = all.
    workers: parallel parser processes (music21 parsing is CPU-bound; about 9 CPU-minutes without Essen).
    """
    out = corpus_path(include_essen, limit)
    if out.exists() and not force:
        return out
    jobs = _jobs(include_essen)
    if limit is not None:
        # Interleave sources so a small limit still has airs, reels and chorales.
        by_kind = {}
        for j in jobs:
            by_kind.setdefault(Path(j[1]).parent.name if j[0] == "abc" else "bach", []).append(j)
        mixed = [j for group in zip(*[v for v in by_kind.values()]) for j in group]
        jobs = mixed[:limit]
    from tqdm import tqdm

    pieces: list[Piece] = []
    with multiprocessing.get_context("spawn").Pool(max(1, workers)) as pool:
        for result in tqdm(pool.imap_unordered(_run_job, jobs), total=len(jobs), desc="parsing corpus",
                           disable=not progress, unit="file"):
            pieces += result
    pieces.sort(key=lambda p: p.name)  # worker order is not deterministic; the data hash must be
    save_corpus(pack_pieces(pieces), out, include_essen=include_essen, limit=limit)
    return out


def save_corpus(arrays: dict[str, np.ndarray], path: Path, **meta) -> None:
    """Write ``pack_pieces`` arrays (atomically) with a JSON meta record holding the data hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    record = dict(meta, version=CORPUS_VERSION, hash=data_hash(arrays))
    np.savez_compressed(tmp, **{k: arrays[k] for k in ("pieces", "bars", "notes", "names")},
                        meta=np.array(json.dumps(record)))
    tmp.replace(path)


def load_corpus(path: Path | str) -> dict[str, np.ndarray]:
    """Load a dataset written by ``build_corpus``.

    Arrays: ``pieces`` [P, 5] = (mode index into MODES, tonic pc, source index, split 0/1, first bar row);
    ``bars`` [B, 4] = (piece, bar length in beats, first note row, note count);
    ``notes`` [N, 3] = (onset tick, duration ticks, pitch relative to the tonic pitch class);
    ``names`` [P] piece names; ``meta`` JSON string with the data hash.
    """
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = json.loads(str(arrays["meta"]))
    return arrays


def corpus_summary(arrays: dict) -> dict:
    """Counts per source, mode and split: pieces, bars, notes."""
    pieces, bars = arrays["pieces"], arrays["bars"]
    return {
        "pieces": int(len(pieces)), "bars": int(len(bars)), "notes": int(len(arrays["notes"])),
        "held_out_pieces": int(pieces[:, 3].sum()),
        "modes": {m: int((pieces[:, 0] == i).sum()) for i, m in enumerate(MODES)},
        "sources": {s: int((pieces[:, 2] == i).sum()) for i, s in enumerate(SOURCES + (ESSEN,))},
        "hash": arrays["meta"]["hash"],
    }
