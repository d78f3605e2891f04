"""`heartsong analyze FILE`: run the estimator over a recorded session, print a state summary and chart it (PNG).

Accepts the session engine's ``session.json`` (a ``beats`` list of {t_s, rr_raw, rr_ms, after_gap}) and the raw
sensor recording of ``biosignals.sources.replay`` (JSON Lines: Heart Rate Measurements, and PMD ECG/ACC frames
from an H10, whose sensor-clock sample times are mapped to host time by the least-delayed frame's offset).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from biosignals.estimator import PhysioEstimator
from biosignals.packet_decoder import HostSamples, PacketDecoder
from biosignals.types import Beat
from wellness_app.errors import CliError

STATE_EVERY_S = 1.0


def _session_beats(data: dict) -> list[Beat]:
    try:
        return [Beat(float(b["t_s"]), int(b["rr_raw"]), float(b["rr_ms"]), bool(b.get("after_gap", False)))
                for b in data["beats"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError("session file's beats are not {t_s, rr_raw, rr_ms, after_gap} rows: is it a Heartsong session.json?") from None


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


def analyze_recording(path: str | Path, out_png: str | Path) -> dict:
    """Estimate the state through a recorded session; write a chart to ``out_png``; return the summary dict."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    est = PhysioEstimator()
    first = text.lstrip()[:1]
    if first == "{" and '"beats"' in text[:200_000] and "\n{" not in text.strip():
        events = [(b.t, "beat", b) for b in _session_beats(json.loads(text))]
    else:
        events = _recording_inputs(path)
    if not events:
        raise ValueError(f"{path} holds no beats: nothing to analyze (record a session with a strap first)")

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

    issues = sorted({i for r in rows for i in r.quality_issues})
    summary = {
        "file": str(path),
        "duration_s": round(events[-1][0] - events[0][0], 1),
        "beats": len(beat_t),
        **{f"mean_{name}": mean_of(name) for name in (
            "heart_rate_bpm", "rmssd_ms", "sdnn_ms", "pnn50", "lf_hf", "coherence", "breathing_rate_bpm",
            "artifact_percent", "signal_quality")},
        "breathing_sources": sorted({r.breathing_source for r in rows if r.breathing_source}),
        "quality_issues": issues,
        "chart": str(out_png),
    }
    _chart(rows, np.array(beat_t), np.array(beat_rr), Path(out_png))
    return summary


def _chart(rows, beat_t, beat_rr, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r.t for r in rows])
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    axes[0].plot(beat_t, beat_rr, lw=0.8)
    axes[0].set_ylabel("RR (ms)")
    axes[0].set_title("Tachogram (raw RR)")
    rate = np.array([np.nan if r.breathing_rate_bpm is None else r.breathing_rate_bpm for r in rows])
    axes[1].plot(t, rate, lw=1.0)
    axes[1].set_ylabel("breaths/min")
    axes[1].set_title("Breathing rate (gated tracker; see biosignals.breathing)")
    coherence = np.array([np.nan if r.coherence is None else r.coherence for r in rows])
    axes[2].plot(t, coherence, lw=1.0)
    axes[2].set_ylabel("peak / (total - peak)")
    axes[2].set_title("Coherence (HeartMath-style, 64 s window; see biosignals.hrv)")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``analyze FILE [--png OUT]``; the handler prints the summary and returns 0."""
    parser = subparsers.add_parser("analyze", help="estimate the state through a recorded session and chart it")
    parser.add_argument("file", help="session.json or a raw sensor recording (.jsonl)")
    parser.add_argument("--png", help="chart path (default: FILE with .png)")

    def run(args: argparse.Namespace) -> int:
        out = args.png or str(Path(args.file).with_suffix(".png"))
        from biosignals.sources.base import SensorError
        try:
            summary = analyze_recording(args.file, out)
        except (ValueError, OSError, SensorError) as error:  # a file that is not a session or recording
            raise CliError(f"cannot analyze {args.file} ({error}); give a session.json or a recording made with "
                           "`heartsong record`") from None
        for key, value in summary.items():
            print(f"{key:>24}: {value}")
        return 0

    parser.set_defaults(func=run)
