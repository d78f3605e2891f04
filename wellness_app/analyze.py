"""`heartsong analyze FILE`: run the estimator over a recorded session, print a state summary and chart it (PNG).

Accepts the session engine's ``session.json`` (a ``beats`` list of {t_s, rr_raw, rr_ms, after_gap}, at most
``MAX_SESSION_BYTES``) and the raw sensor recording of ``biosignals.sources.replay`` (JSON Lines: Heart Rate
Measurements, and PMD ECG/ACC frames from an H10, whose sensor-clock sample times are mapped to host time by the
least-delayed frame's offset; read within that module's bounds). Beats that cannot be real are dropped and
counted (``dropped_beats``): a time outside ``TIME_RANGE_S`` (NaN and infinities included) or going back; an RR
interval outside ``PLAUSIBLE_RR_MS`` (20-250 beats/min).

Breathing: ``mean_breathing_rate_bpm`` is the mean over the states whose rate is sure
(``biosignals.types.breathing_rate_if_sure``), "unsure" when none is (None when no state has a rate at all), and
``breathing_sure_percent`` the share of states with a sure rate; the chart draws sure rates only. A recording has
no breath guide, so a listener breathing slower than 8/min mostly reads as unsure (docs/validation.md).
"""
from __future__ import annotations

import argparse
import collections
import io
import json
from pathlib import Path

import numpy as np

from biosignals.estimator import PhysioEstimator
from biosignals.heart_rate_measurement import PLAUSIBLE_HEART_RATE_BPM
from biosignals.packet_decoder import HostSamples, PacketDecoder
from biosignals.sources.replay import FORMAT_NAME, MAX_LINE_BYTES, MAX_RECORDING_S
from biosignals.types import BREATHING_SURE_CONFIDENCE, Beat, breathing_rate_if_sure
from generators.output import replace_file
from wellness_app.errors import CliError
from wellness_app.ui.names import UNSURE

STATE_EVERY_S = 1.0
MAX_SESSION_BYTES = 64 * 1024 * 1024  # a 4-hour session.json is about 12 MiB
PLAUSIBLE_RR_MS = (60000.0 / PLAUSIBLE_HEART_RATE_BPM[1], 60000.0 / PLAUSIBLE_HEART_RATE_BPM[0])  # 240-3000 ms
# Session times (s from the session's start): the first beats are back-dated before it, and nothing lasts a day.
TIME_RANGE_S = (-600.0, MAX_RECORDING_S)


def _session_beats(path: Path) -> list[Beat]:
    with path.open("rb") as handle:
        raw = handle.read(MAX_SESSION_BYTES + 1)  # bounded: stat sizes lie for pipes and /dev files
    if len(raw) > MAX_SESSION_BYTES:
        raise ValueError(f"{path} is larger than the {MAX_SESSION_BYTES // 2**20} MiB a session.json can be")
    try:
        data = json.loads(raw)
        return [Beat(float(b["t_s"]), int(b["rr_raw"]), float(b["rr_ms"]), bool(b.get("after_gap", False)))
                for b in data["beats"]]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise ValueError("session file's beats are not {t_s, rr_raw, rr_ms, after_gap} rows: is it a Heartsong session.json?") from None


def _is_recording(path: Path) -> bool:
    """Whether ``path`` starts with a sensor recording's header line (else it must be a session.json)."""
    with path.open("rb") as handle:
        first = handle.readline(MAX_LINE_BYTES)
    if not first.lstrip().startswith(b"{"):
        raise ValueError("it is neither JSON nor JSON Lines")
    try:
        header = json.loads(first)
    except ValueError:
        return False  # the first line of a (pretty-printed) session.json
    return isinstance(header, dict) and header.get("format") == FORMAT_NAME


def _recording_inputs(path: Path) -> list[tuple[float, str, object]]:
    """Events (time, kind, payload) from a raw recording, in arrival order."""
    from biosignals.sources.replay import load_recording

    _, packets = load_recording(path)
    decoder = PacketDecoder()
    events = []
    for packet in packets:
        for item in decoder.feed(packet):
            if isinstance(item, Beat):
                events.append((item.t, "beat", item))
            elif isinstance(item, HostSamples):
                payload = (item.values, item.times_s, item.r_peaks) if item.kind == "ecg" else (item.values, item.times_s)
                events.append((packet.t_arrival, item.kind, payload))
    return events


def plausible_events(events: list[tuple[float, str, object]]) -> tuple[list, collections.Counter]:
    """The events whose times lie in ``TIME_RANGE_S`` and do not go back, and the beats among them whose RR lies
    in ``PLAUSIBLE_RR_MS``; and a count of what was dropped, by reason."""
    kept, dropped = [], collections.Counter()
    for t, kind, payload in events:
        if not TIME_RANGE_S[0] <= t <= TIME_RANGE_S[1]:  # also NaN
            dropped[f"time outside {TIME_RANGE_S[0]:g} to {TIME_RANGE_S[1]:g} s"] += 1
        elif kept and t < kept[-1][0]:
            dropped["time out of order"] += 1
        elif kind == "beat" and not PLAUSIBLE_RR_MS[0] <= payload.rr_ms <= PLAUSIBLE_RR_MS[1]:
            dropped[f"RR outside {PLAUSIBLE_RR_MS[0]:g}-{PLAUSIBLE_RR_MS[1]:g} ms"] += 1
        else:
            kept.append((t, kind, payload))
    return kept, dropped


def chart_path(file: str | Path, png: str | Path | None) -> Path:
    """Where the chart of ``file`` goes: ``png`` if it names a .png file, ``png/<file stem>.png`` if it is a
    folder, ``file`` with .png when None; ValueError for anything else."""
    if png is None:
        return Path(file).with_suffix(".png")
    png = Path(png)
    if png.is_dir():
        return png / (Path(file).stem + ".png")
    if png.suffix.lower() != ".png":
        raise ValueError(f"--png {png} is neither a .png file nor a folder: give e.g. {png.with_suffix('.png')}")
    return png


def analyze_recording(path: str | Path, out_png: str | Path) -> dict:
    """Estimate the state through a recorded session; write a chart to ``out_png``; return the summary dict."""
    path = Path(path)
    est = PhysioEstimator()
    if _is_recording(path):
        events = _recording_inputs(path)
    else:
        events = [(b.t, "beat", b) for b in _session_beats(path)]
    events, dropped = plausible_events(events)
    if not any(kind == "beat" for _, kind, _ in events):
        raise ValueError(f"{path} holds no usable beats: nothing to analyze (record a session with a strap first)")

    rows, beat_t, beat_rr = [], [], []
    next_state = events[0][0] + STATE_EVERY_S
    for t, kind, payload in events:
        while t >= next_state:
            rows.append(est.state(next_state))
            next_state += STATE_EVERY_S
        if kind == "beat":
            est.add_beat(payload)
            beat_t.append(payload.t)
            beat_rr.append(payload.rr_ms)
        elif kind == "ecg":
            est.add_ecg(*payload)
        else:
            est.add_acc(*payload)
    rows.append(est.state(events[-1][0]))

    def mean_of(name: str) -> float | None:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return round(float(np.mean(values)), 2) if values else None

    sure_rates = [rate for r in rows if (rate := _sure_rate(r)) is not None]
    if sure_rates:
        breathing = round(float(np.mean(sure_rates)), 2)
    else:
        breathing = UNSURE if any(r.breathing_rate_bpm is not None for r in rows) else None
    issues = sorted({i for r in rows for i in r.quality_issues})
    summary = {
        "file": str(path),
        "duration_s": round(events[-1][0] - events[0][0], 1),
        "beats": len(beat_t),
        "dropped_beats": ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items())) or 0,
        **{f"mean_{name}": mean_of(name) for name in (
            "heart_rate_bpm", "rmssd_ms", "sdnn_ms", "pnn50", "lf_hf", "coherence")},
        "mean_breathing_rate_bpm": breathing,
        "breathing_sure_percent": round(100 * len(sure_rates) / len(rows)),
        **{f"mean_{name}": mean_of(name) for name in ("artifact_percent", "signal_quality")},
        "breathing_sources": sorted({r.breathing_source for r in rows if r.breathing_source}),
        "quality_issues": issues,
        "chart": str(out_png),
    }
    _chart(rows, np.array(beat_t), np.array(beat_rr), Path(out_png))
    return summary


def _sure_rate(state) -> float | None:
    return breathing_rate_if_sure(state.breathing_rate_bpm, state.breathing_confidence)


def _chart(rows, beat_t, beat_rr, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r.t for r in rows])
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    axes[0].plot(beat_t, beat_rr, lw=0.8)
    axes[0].set_ylabel("RR (ms)")
    axes[0].set_title("Tachogram (raw RR)")
    rate = np.array([np.nan if (sure := _sure_rate(r)) is None else sure for r in rows])
    axes[1].plot(t, rate, lw=1.0)
    axes[1].set_ylabel("breaths/min")
    axes[1].set_title(f"Breathing rate where sure (confidence >= {BREATHING_SURE_CONFIDENCE:g}; gaps: unsure or "
                      "none; see biosignals.breathing)")
    coherence = np.array([np.nan if r.coherence is None else r.coherence for r in rows])
    axes[2].plot(t, coherence, lw=1.0)
    axes[2].set_ylabel("peak / (total - peak)")
    axes[2].set_title("Coherence (HeartMath-style, 64 s window; see biosignals.hrv)")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)
    replace_file(out_png, image.getvalue())


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``analyze FILE [--png OUT]``; the handler prints the summary and returns 0."""
    parser = subparsers.add_parser("analyze", help="estimate the state through a recorded session and chart it")
    parser.add_argument("file", help="session.json or a raw sensor recording (.jsonl)")
    parser.add_argument("--png", help="chart file (.png) or folder (default: FILE with .png)")

    def run(args: argparse.Namespace) -> int:
        from biosignals.sources.base import SensorError
        try:
            out = chart_path(args.file, args.png)
        except ValueError as error:
            raise CliError(str(error)) from None
        try:
            summary = analyze_recording(args.file, out)
        except (ValueError, OSError, SensorError) as error:  # a file that is not a session or recording
            raise CliError(f"cannot analyze {args.file} ({error}); give a session.json or a recording made with "
                           "`heartsong record`") from None
        for key, value in summary.items():
            print(f"{key:>24}: {value}")
        return 0

    parser.set_defaults(func=run)
