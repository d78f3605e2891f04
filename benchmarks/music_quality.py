"""Listens to offline sessions the way issue 12 does: swell, envelope vs breath arc, level rises, stereo and mono
fold, limiter, tempo, harmony, form, closure and modes, per protocol and generator; prints the issue's table.

Run: .venv/bin/python benchmarks/music_quality.py [--minutes 5] [--synth builtin|fluidsynth]
     [--protocols coherent-6,hr-winddown,sleep-onset] [--generators model,rules] [--corpus-limit 40]
The corpus column (recurring 4-note patterns, characteristic degrees) needs a parsed corpus: the cached full one,
or one built here from the first --corpus-limit files (a progress bar shows the parse).
"""
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from generators import listening, music_analysis  # noqa: E402
from generators.controls import MODE_STEPS, MusicControls  # noqa: E402
from generators.form import Composer  # noqa: E402
from generators.mastering import CEILING  # noqa: E402
from wellness_app.session import SessionOptions, build_engine, make_generator, run_offline  # noqa: E402


class ArrangerTap:
    """Wraps the engine's arranger and keeps every (start frame, frames, bar, controls) it arranged."""

    def __init__(self, arranger):
        self.arranger, self.bars, self.beat_maps = arranger, [], []

    def __getattr__(self, name):
        return getattr(self.arranger, name)

    def arrange(self, bar, controls, start_frame):
        messages, n_frames = self.arranger.arrange(bar, controls, start_frame)
        self.bars.append((start_frame, n_frames, bar, controls))
        self.beat_maps.append(self.arranger.beat_frames)
        return messages, n_frames


def run_session(protocol: str, generator: str, minutes: float, synth: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        options = SessionOptions(protocol=protocol, minutes=minutes, out_dir=Path(out), synth=synth,
                                 generator=generator, offline=True)
        engine, _ = build_engine(options)
        tap = engine.arranger = ArrangerTap(engine.arranger)
        started = time.process_time()
        run_offline(engine)
        cpu = time.process_time() - started
        audio, rate = soundfile.read(Path(out) / "session.wav", dtype="float32")
    return {"audio": audio, "rate": rate, "bars": tap.bars, "beat_maps": tap.beat_maps, "cpu_s": cpu, "synth": type(engine.synth).__name__,
            "limited_frames": getattr(engine.master, "limited_frames", None)}


def audio_figures(run: dict) -> dict:
    audio, rate = run["audio"], run["rate"]
    times, lufs = listening.loudness_envelope(audio, rate)
    end_s = len(audio) / rate
    breaths = [(s / rate, (s + n) / rate, c.inhale_fraction) for s, n, _, c in run["bars"]
               if s / rate >= 5.0 and (s + n) / rate <= end_s - 8.0]  # skip the fade-in and the final fade
    swells = listening.breath_swells(times, lufs, breaths)
    body = (times >= breaths[0][0]) & (times < breaths[-1][1])
    fast_times, fast_lufs = listening.loudness_envelope(audio, rate, window_s=0.1, hop_s=0.01)
    fast_body = (fast_times >= breaths[0][0]) & (fast_times < breaths[-1][1])
    rises = listening.level_rises_db(fast_times[fast_body], fast_lufs[fast_body], 0.2)
    swing = np.array([s for s, _ in swells])
    r = np.array([c for _, c in swells if np.isfinite(c)])
    return {
        "swing_lu": (float(np.median(swing)), float(np.percentile(swing, 10)), float(np.percentile(swing, 90))),
        "min_lufs": float(lufs[body].min()),
        "rise_p99_db": float(np.percentile(rises, 99)), "rise_max_db": float(rises.max()),
        "envelope_r": (float(np.median(r)), float(np.percentile(r, 10)), float(np.percentile(r, 90))),
        "lr_corr": listening.stereo_correlation(audio), "mono_loss_db": listening.mono_fold_loss_db(audio, rate),
        "ceiling_runs": listening.ceiling_runs(audio, CEILING),
        "limited_pct": (100 * run["limited_frames"] / len(audio)) if run["limited_frames"] is not None else None,
        "peak_dbfs": float(20 * np.log10(np.abs(audio).max() + 1e-12)),
        "loudness_lufs": float(listening.loudness_envelope(audio, rate, window_s=len(audio) / rate - 1e-3)[1][0]),
    }


def tempo_figures(run: dict) -> dict:
    """Breath-to-breath steps of the mean tempo, beat-to-beat steps of the tempo heard (beat onsets from the
    arranger's tempo map) and where beats per breath change."""
    bars = run["bars"]
    tempi = np.array([c.tempo_bpm for _, _, _, c in bars])
    steps = np.abs(np.diff(tempi)) / tempi[:-1] * 100
    n = [c.beats_per_breath for _, _, _, c in bars]
    positions = [b.plan.breath_in_phrase if b.plan is not None else None for _, _, b, _ in bars]
    changes = [i for i in range(1, len(n)) if n[i] != n[i - 1]]
    at_boundary = [i for i in changes if positions[i] == 0]
    beats = np.unique(np.concatenate([np.asarray(f, dtype=float) for f in run["beat_maps"]]))
    intervals = np.diff(beats)
    intervals = intervals[intervals > 0.2 * np.median(intervals)]  # a bar's rounding remainder is not a beat
    beat_steps = np.abs(np.diff(intervals)) / intervals[1:] * 100
    same_n = np.array([n[i] == n[i + 1] for i in range(len(n) - 1)], dtype=bool)
    held_steps = steps[same_n] if same_n.any() else np.zeros(1)
    over = 5 + 1e-6  # a step capped at exactly 5 % is within the goal
    return {"max_step_pct": float(steps.max()) if len(steps) else 0.0, "steps_over_5": int((steps > over).sum()),
            "held_max_step_pct": float(held_steps.max()), "held_steps_over_5": int((held_steps > over).sum()),
            "n_changes": len(changes), "n_changes_at_phrase": len(at_boundary) if positions[0] is not None else None,
            "max_beat_step_pct": float(beat_steps.max()) if len(beat_steps) else 0.0,
            "tempi": tempi}


def score_figures(run: dict) -> dict:
    entries = run["bars"]
    bars = [b for _, _, b, _ in entries]
    tonic, rate = entries[0][3].tonic, run["rate"]
    longest_hold_s, hold_start, current = 0.0, 0.0, None
    for start, n, bar, c in entries:
        spb = 60.0 / c.tempo_bpm
        for chord in bar.chords:
            t = start / rate + chord.start_beat * spb
            if chord.pitch_classes != current:
                hold_start, current = t, chord.pitch_classes
        longest_hold_s = max(longest_hold_s, (start + n) / rate - hold_start)
    phrase_ends = [(b, c) for (_, _, b, c), nxt in zip(entries, entries[1:] + [None])
                   if nxt is None or nxt[2].plan is None or nxt[2].plan.breath_in_phrase == 0]
    stable = [music_analysis.ends_on_stable_degree(b, c.tonic, c.mode) for b, c in phrase_ends]
    stable = [s for s in stable if s is not None]
    last_start, last_n, last_bar, last_controls = entries[-1]
    final_chords = [ch for _, _, b, _ in entries[-2:] for ch in b.chords][-2:]  # the cadence: V, IV, bVII or
    # lydian II, then I
    tonic_pcs = set(final_chords[-1].pitch_classes[:3]) if final_chords else set()
    ends_on_tonic = final_chords[-1].root == last_controls.tonic % 12 if final_chords else False
    penultimate_root = (final_chords[0].root - tonic) % 12 if len(final_chords) == 2 else None
    end_frame = len(run["audio"])
    bar_ends = np.array([s + n for s, n, _, _ in entries])
    tail = run["audio"][-int(0.05 * rate):]
    return {
        "clash_pct": 100 * music_analysis.semitone_clash_fraction(bars),
        "longest_chord_s": longest_hold_s,
        "chords_per_bar": float(np.mean([len({c.pitch_classes for c in b.chords}) for b in bars])),
        "patterns_pct": 100 * music_analysis.recurring_pattern_fraction(music_analysis.session_melody(bars)),
        "phrase_end_stable_pct": 100 * float(np.mean(stable)) if stable else float("nan"),
        "breath_end_tonic_pct": 100 * float(np.mean([max(b.notes, key=lambda x: x.start_beat).pitch % 12 == tonic
                                                     for b in bars if b.notes])),
        "end_cadence": bool(ends_on_tonic and penultimate_root in (2, 5, 7, 10, 11) and tonic_pcs),
        "end_on_breath_ms": float(np.abs(bar_ends - end_frame).min() / rate * 1000),
        "end_silent": bool(np.abs(tail).max() < 1e-3),
        "mode_bars": {c.mode for _, _, _, c in entries},
    }


def mode_figures(generator: str, bars_per_mode: int = 48) -> dict:
    """Characteristic degree of lydian, dorian and mixolydian under default controls (10-beat breaths, D)."""
    out = {}
    for mode in music_analysis.CHARACTERISTIC_DEGREE:
        composer = Composer(make_generator(generator, seed=3))
        controls = MusicControls(tempo_bpm=60, beats_per_breath=10, inhale_beats=4, mode=mode, density=0.75)
        bars = [composer.next_bar(controls)[1] for _ in range(bars_per_mode)]
        out[mode] = music_analysis.characteristic_degree_fraction(bars, controls.tonic, mode)
    return out


def corpus_figures(limit: int) -> dict:
    from generators.model.corpus import TICKS_PER_BEAT, build_corpus, corpus_path, load_corpus

    full = corpus_path(False, None)
    path = full if full.exists() else build_corpus(limit=limit, workers=1, progress=True)
    arrays = load_corpus(path)
    notes, bars, pieces = arrays["notes"], arrays["bars"], arrays["pieces"]
    shapes_pct, modes = [], {m: [0, 0] for m in music_analysis.CHARACTERISTIC_DEGREE}
    mode_names = list(MODE_STEPS)
    for p in range(len(pieces)):
        rows = bars[bars[:, 0] == p]
        melody, offset = [], 0.0
        for _, beats, first, count in rows:
            melody += [(offset + t / TICKS_PER_BEAT, rel) for t, _, rel in notes[first:first + count]]
            offset += beats
        shapes_pct.append((music_analysis.recurring_pattern_fraction(melody), len(melody)))
        mode = mode_names[pieces[p, 0]]
        if mode in modes:
            special, plain = music_analysis.CHARACTERISTIC_DEGREE[mode]
            for _, _, first, count in rows:
                rel = {int(r) % 12 for r in notes[first:first + count, 2]}
                if special in rel or plain in rel:
                    modes[mode][0] += 1
                    modes[mode][1] += special in rel
    weights = np.array([n for _, n in shapes_pct], dtype=float)
    return {"pieces": len(pieces), "source": path.name,
            "patterns_pct": 100 * float(np.average([f for f, _ in shapes_pct], weights=weights)),
            "modes": {m: (hits / counted if counted else float("nan"), counted) for m, (counted, hits) in modes.items()}}


def fmt(value, spec=".1f"):
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        return f"{value[0]:{spec}} ({value[1]:{spec}}-{value[2]:{spec}})"
    return format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--synth", default="builtin")
    parser.add_argument("--protocols", default="coherent-6,hr-winddown,sleep-onset")
    parser.add_argument("--generators", default="model,rules")
    parser.add_argument("--corpus-limit", type=int, default=40, help="files to parse when no full corpus is cached")
    parser.add_argument("--no-corpus", action="store_true")
    args = parser.parse_args()
    if "HEARTSONG_DATA_DIR" not in os.environ:  # benchmark sessions stay out of the user's history
        os.environ["HEARTSONG_DATA_DIR"] = tempfile.mkdtemp(prefix="heartsong-bench-")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = []
    for generator in args.generators.split(","):
        for protocol in args.protocols.split(","):
            run = run_session(protocol, generator, args.minutes, args.synth)
            rows.append((f"{generator}/{protocol}", audio_figures(run), tempo_figures(run), score_figures(run),
                         len(run["audio"]) / run["rate"] / run["cpu_s"], run["synth"]))
    print(f"music quality, {args.minutes:g}-minute offline sessions, synth {rows[0][5]}, one core")
    table = [
        ("swell per breath, LU median (p10-p90)   [6-12]", lambda a, t, s: fmt(a["swing_lu"])),
        ("quietest 400 ms in the body, LUFS       [not silent]", lambda a, t, s: fmt(a["min_lufs"])),
        ("level rise within 200 ms, p99 / max dB  [<= 6]", lambda a, t, s: f"{a['rise_p99_db']:.1f} / {a['rise_max_db']:.1f}"),
        ("envelope vs guide arc, r median (p10-p90) [>= 0.7]", lambda a, t, s: fmt(a["envelope_r"], ".2f")),
        ("stereo L/R correlation                  [>= +0.3]", lambda a, t, s: fmt(a["lr_corr"], "+.2f")),
        ("mono fold loss, dB                      [>= -3]", lambda a, t, s: fmt(a["mono_loss_db"], "+.1f")),
        ("limiter: ceiling runs / % of time limited", lambda a, t, s: f"{a['ceiling_runs']} / {fmt(a['limited_pct'], '.2f')}"),
        ("peak, dBFS / whole-session loudness, LUFS (ungated)", lambda a, t, s: f"{a['peak_dbfs']:.1f} / {a['loudness_lufs']:.1f}"),
        ("tempo step between breaths, max %      [<= 5]", lambda a, t, s: f"{t['max_step_pct']:.1f} ({t['steps_over_5']} > 5 %)"),
        ("  the same, beats/breath unchanged", lambda a, t, s: f"{t['held_max_step_pct']:.1f} ({t['held_steps_over_5']} > 5 %)"),
        ("tempo step between beats, max %        [<= 5]", lambda a, t, s: fmt(t["max_beat_step_pct"], ".2f")),
        ("beats/breath changes (at phrase start)", lambda a, t, s: f"{t['n_changes']} ({fmt(t['n_changes_at_phrase'], 'd')})"),
        ("melody a semitone off the chord, %     [<= 3]", lambda a, t, s: fmt(s["clash_pct"])),
        ("longest chord, s / chords per breath", lambda a, t, s: f"{s['longest_chord_s']:.0f} / {s['chords_per_bar']:.2f}"),
        ("recurring 4-note patterns, %           [>= 15]", lambda a, t, s: fmt(s["patterns_pct"])),
        ("phrase ends on degree 1/3/5, %", lambda a, t, s: fmt(s["phrase_end_stable_pct"], ".0f")),
        ("breath's last note on the tonic, %", lambda a, t, s: fmt(s["breath_end_tonic_pct"], ".0f")),
        ("ends: cadence / on a breath (ms) / silent", lambda a, t, s: f"{s['end_cadence']} / {s['end_on_breath_ms']:.0f} / {s['end_silent']}"),
    ]
    width = 52
    print(" " * width + "".join(f"{name:>26}" for name, *_ in rows))
    for label, get in table:
        print(f"{label:<{width}}" + "".join(f"{get(a, t, s):>26}" for _, a, t, s, _, _ in rows))
    print(f"{'render speed, x real time (CPU)':<{width}}" + "".join(f"{speed:>26.0f}" for *_, speed, _ in rows))
    print("\ncharacteristic degree in bars where the degree sounds (lydian #4, dorian 6, mixolydian b7)  [>= 0.60]")
    for generator in args.generators.split(","):
        figures = mode_figures(generator)
        print(f"  {generator:<8}" + "".join(f"  {m} {f:.2f} (n={n})" for m, (f, n) in figures.items()))
    if not args.no_corpus:
        corpus = corpus_figures(args.corpus_limit)
        print("  corpus  " + "".join(f"  {m} {f:.2f} (n={n})" for m, (f, n) in corpus["modes"].items()))
        print(f"\ncorpus ({corpus['source']}, {corpus['pieces']} tunes): recurring 4-note patterns "
              f"{corpus['patterns_pct']:.1f} %")


if __name__ == "__main__":
    main()
