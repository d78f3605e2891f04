"""A stored session as CSV files (seconds, beats, decisions, events) and as one self-contained HTML report for a
therapist: summary, charts (inline PNG) of heart rate, breathing against the guide, RMSSD and coherence, a
per-phase table and the event log. The CSV files keep every breathing rate with its confidence; the report shows
only sure ones (``wellness_app.record.sure_breathing``) and says "unsure" where there is none."""
from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from pathlib import Path
from typing import Any

from biosignals.types import BREATHING_SURE_CONFIDENCE
from wellness_app.record import SECOND_COLUMNS, guide_gaps, shown_value, sure_breathing
from wellness_app.storage import Store, private_folder, write_private
from wellness_app.ui.names import UNSURE

COHERENCE_DEFINITION = (
    "Coherence (biosignals.hrv.hrv_coherence, HeartMath-style ratio, McCraty et al. 2009): over the last 64 s "
    "of RR intervals, the power within 0.015 Hz of the highest peak in 0.04-0.26 Hz divided by the rest of the "
    "power in 0.0033-0.4 Hz; 0 = no dominant rhythm, a clean 0.1 Hz breathing rhythm scores well above 1."
)
PHASE_COLUMNS = ("heart_rate_bpm", "rmssd_ms", "breathing_rate_bpm", "guide_rate_bpm", "tempo_bpm")
UNSURE_NOTE = (f"Breathing rates with a confidence under {BREATHING_SURE_CONFIDENCE:g} are not shown "
               f"(biosignals.types.BREATHING_SURE_CONFIDENCE): in the tables {UNSURE} means that no second's rate "
               "was sure, in the chart they are gaps.")


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is prefixed with ' (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in columns])
    write_private(path, text.getvalue())
    return path


def export_csv(store: Store, session_id: int, out_dir: Path) -> dict[str, Path]:
    """seconds.csv (columns as ``SECOND_COLUMNS``, then any extra), beats.csv, decisions.csv, events.csv."""
    private_folder(out_dir)
    seconds = store.seconds(session_id)
    second_columns = list(SECOND_COLUMNS)
    second_columns += sorted({k for r in seconds for k in r} - set(second_columns))
    decisions = store.decisions(session_id)
    decision_columns = ["t_s"] + sorted({k for r in decisions for k in r} - {"t_s", "reason"}) + ["reason"]
    return {
        "seconds": _write_csv(out_dir / "seconds.csv", seconds, second_columns),
        "beats": _write_csv(out_dir / "beats.csv", store.beats(session_id), ["t_s", "rr_raw", "rr_ms", "after_gap"]),
        "decisions": _write_csv(out_dir / "decisions.csv", decisions, decision_columns),
        "events": _write_csv(out_dir / "events.csv", store.events(session_id), ["t_s", "kind", "message"]),
    }


def phase_summary(seconds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per protocol phase in the order played: start and end second, duration (s), the means of
    ``PHASE_COLUMNS`` and breathing adherence = mean |breathing - guide| (breaths/min; None without breathing),
    breathing over sure seconds only (``wellness_app.record.shown_value``, ``guide_gaps``)."""
    phases: list[dict[str, Any]] = []
    for row in seconds:
        if not phases or phases[-1]["phase"] != row.get("phase"):
            phases.append({"phase": row.get("phase"), "rows": []})
        phases[-1]["rows"].append(row)
    table = []
    for phase in phases:
        rows = phase["rows"]
        entry = {"phase": phase["phase"], "start_s": rows[0]["t_s"], "end_s": rows[-1]["t_s"] + 1,
                 "duration_s": rows[-1]["t_s"] + 1 - rows[0]["t_s"]}
        for column in PHASE_COLUMNS:
            values = [v for r in rows if (v := shown_value(r, column)) is not None]
            entry[column] = statistics.fmean(values) if values else None
        gaps = guide_gaps(rows)
        entry["breathing_minus_guide_bpm"] = statistics.fmean(gaps) if gaps else None
        table.append(entry)
    return table


def _chart(series: list[tuple[str, list[float], list[float | None], str]], ylabel: str, title: str) -> str:
    """A line chart as an inline PNG ``<img>``; ``series``: (label, t_s, values with None gaps, colour)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.6), dpi=90)
    axes = figure.add_subplot()
    for label, t, values, colour in series:
        axes.plot([x / 60 for x in t], [float("nan") if v is None else v for v in values], label=label,
                  color=colour, linewidth=1.4)
    axes.set_xlabel("session time (min)")
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _fmt(value: Any, digits: int = 1, missing: str = "—") -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _missing(column: str) -> str:
    """What a missing value of ``column`` reads as: a breathing figure is missing when no rate was sure."""
    return UNSURE if column == "breathing_rate_bpm" else "—"


def render_html(store: Store, session_id: int) -> str:
    """The report as one HTML document (no external resources; inline PNG charts)."""
    info = store.session(session_id)
    details = store.session_details(session_id)
    seconds = store.seconds(session_id)
    events = store.events(session_id)
    t = [r["t_s"] for r in seconds]

    def col(name: str) -> list[float | None]:
        return [r.get(name) for r in seconds]

    charts = []
    if seconds:
        hr = [("measured heart rate", t, col("heart_rate_bpm"), "#c0392b")]
        if any(v is not None for v in col("virtual_heart_rate_bpm")):
            hr.append(("simulated listener (virtual strap)", t, col("virtual_heart_rate_bpm"), "#999999"))
        hr.append(("music tempo", t, col("tempo_bpm"), "#2e86c1"))
        charts.append(("Heart rate and tempo", _chart(hr, "beats/min", "Heart rate (10 s mean) and music tempo"),
                       SECOND_COLUMNS["heart_rate_bpm"]))
        breath = [("guide", t, col("guide_rate_bpm"), "#27ae60"),
                  ("measured breathing (sure)", t, [sure_breathing(r) for r in seconds], "#8e44ad")]
        if any(v is not None for v in col("virtual_breathing_rate_bpm")):
            breath.append(("simulated listener (virtual strap)", t, col("virtual_breathing_rate_bpm"), "#999999"))
        charts.append(("Breathing against the guide", _chart(breath, "breaths/min", "Breathing rate and breath guide"),
                       SECOND_COLUMNS["breathing_rate_bpm"] + "; guide: " + SECOND_COLUMNS["guide_rate_bpm"] + ". "
                       + UNSURE_NOTE))
        charts.append(("Heart-rate variability", _chart([("RMSSD", t, col("rmssd_ms"), "#d35400")], "ms", "RMSSD"),
                       SECOND_COLUMNS["rmssd_ms"]))
        if any(v is not None for v in col("coherence")):
            charts.append(("Coherence", _chart([("coherence", t, col("coherence"), "#16a085")], "ratio", "Coherence"),
                           COHERENCE_DEFINITION))
    coherence_note = "" if any(r.get("coherence") is not None for r in seconds) else (
        f"<p><b>Coherence:</b> not available for this session (the estimator did not compute it). "
        f"{html.escape(COHERENCE_DEFINITION)}</p>")

    summary = info.summary
    client = ""
    if info.client_id:
        profile = store.get_document("clients", info.client_id)
        name = profile.get("display_name", "") if profile else ""
        client = f"<tr><th>Client</th><td>{html.escape(info.client_id)} {html.escape(name)}</td></tr>"
    status = {"complete": "complete", "incomplete": "incomplete (stopped or interrupted before its planned end)",
              "running": "still running"}[info.status]
    rows = "".join(
        f"<tr><td>{_fmt(p['phase'])}</td><td>{p['start_s'] / 60:.1f}–{p['end_s'] / 60:.1f}</td>"
        + "".join(f"<td>{_fmt(p[c], missing=_missing(c))}</td>" for c in PHASE_COLUMNS)
        + f"<td>{_fmt(p['breathing_minus_guide_bpm'], 2, _missing('breathing_rate_bpm'))}</td></tr>"
        for p in phase_summary(seconds)
    )
    event_rows = "".join(f"<tr><td>{e['t_s']:.0f}</td><td>{html.escape(e['kind'])}</td>"
                         f"<td>{html.escape(e['message'])}</td></tr>" for e in events) or "<tr><td colspan=3>none</td></tr>"
    definitions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in SECOND_COLUMNS.items())
    personal = details["personalisation"]
    personal_row = (f"<tr><th>Personalisation</th><td>{html.escape(', '.join(f'{k} {v}' for k, v in personal.items()))}</td></tr>"
                    if personal else "")
    chart_html = "".join(f"<h2>{html.escape(title)}</h2>{img}<p class=def>{html.escape(definition)}</p>"
                         for title, img, definition in charts)

    def before_after(column: str, label: str, unit: str) -> str:
        start, end = (_fmt(summary.get(f"{column}_{edge}"), missing=_missing(column)) for edge in ("start", "end"))
        return f"<tr><th>{label}, start → end</th><td>{start} → {end} {unit}</td></tr>"

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Heartsong session {info.id}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}} img{{max-width:100%}} .def{{color:#555;font-size:.9em}}</style>
</head><body>
<h1>Heartsong session {info.id}: {html.escape(info.protocol)}</h1>
<table>
<tr><th>Started</th><td>{info.started.astimezone():%Y-%m-%d %H:%M %Z}</td></tr>{client}
<tr><th>Length</th><td>{summary.get('duration_s', 0) / 60:.1f} min, {status}</td></tr>
<tr><th>Rating</th><td>{info.rating or 'not rated'}</td></tr>{personal_row}
<tr><th>Beats recorded</th><td>{summary.get('beats', 0)}</td></tr>
{before_after('heart_rate_bpm', 'Heart rate', 'beats/min')}{before_after('rmssd_ms', 'RMSSD', 'ms')}
{before_after('breathing_rate_bpm', 'Breathing', 'breaths/min')}{before_after('guide_rate_bpm', 'Breath guide', 'breaths/min')}
</table>
<p class=def>{html.escape(summary.get('summary_windows', 'first 30 s vs last 30 s'))}. {html.escape(UNSURE_NOTE)}</p>
{chart_html}{coherence_note}
<h2>Per phase</h2>
<table><tr><th>phase</th><th>min</th><th>HR (bpm)</th><th>RMSSD (ms)</th><th>breathing (/min)</th>
<th>guide (/min)</th><th>tempo (bpm)</th><th>|breathing − guide| (/min)</th></tr>{rows}</table>
<p class=def>Means of the per-second values in each phase (breathing: its sure seconds); — means not measured,
unsure that no breathing rate was sure.</p>
<h2>Events</h2><table><tr><th>s</th><th>kind</th><th>message</th></tr>{event_rows}</table>
<h2>Definitions</h2><table>{definitions}</table>
</body></html>
"""


def write_report(store: Store, session_id: int, out_dir: Path) -> dict[str, Path]:
    """CSV files and ``report.html`` in ``out_dir`` (user-only files); returns their paths by name."""
    files = export_csv(store, session_id, out_dir)
    report = out_dir / "report.html"
    write_private(report, render_html(store, session_id))
    return files | {"html": report}
