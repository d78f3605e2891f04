"""Weekly trends over stored sessions: how much was practised each week and how heart rate and HRV changed within
the sessions, as the History screen and ``heartsong history --weeks`` show them.

Definitions (every figure is a mean over the week's sessions that have it):
- week: the ISO week (Monday to Sunday) of the session's local start time;
- sessions, minutes: sessions recorded that week (complete or stopped early) and their summed length;
- HR change, beats/min: ``heart_rate_bpm_end - heart_rate_bpm_start`` of each session, i.e. the mean of its
  last 30 s minus the mean of its first 30 s (``wellness_app.record.SessionRecord.summary``); negative = calmer;
- RMSSD change, ms: the same for RMSSD (each per-second value covers the last 60 s of corrected RR); positive =
  more beat-to-beat variability;
- HR at the end, beats/min: ``heart_rate_bpm_end``;
- rating: the listener's 1-5 rating, over rated sessions.
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from wellness_app.storage import SessionInfo


@dataclass(frozen=True)
class WeekTrend:
    week_start: dt.date  # the Monday
    sessions: int
    minutes: float
    hr_change_bpm: float | None
    rmssd_change_ms: float | None
    hr_end_bpm: float | None
    rating: float | None


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _change(summary: dict, stem: str) -> float | None:
    start, end = summary.get(f"{stem}_start"), summary.get(f"{stem}_end")
    return None if start is None or end is None else end - start


def weekly_trends(sessions: list[SessionInfo]) -> list[WeekTrend]:
    """One ``WeekTrend`` per ISO week that has sessions, oldest first (module docstring: definitions)."""
    weeks: dict[dt.date, list[SessionInfo]] = {}
    for info in sessions:
        day = info.started.astimezone().date()
        weeks.setdefault(day - dt.timedelta(days=day.weekday()), []).append(info)
    return [WeekTrend(
        week_start=monday,
        sessions=len(infos),
        minutes=sum(info.summary.get("duration_s", 0) for info in infos) / 60.0,
        hr_change_bpm=_mean(_change(info.summary, "heart_rate_bpm") for info in infos),
        rmssd_change_ms=_mean(_change(info.summary, "rmssd_ms") for info in infos),
        hr_end_bpm=_mean(info.summary.get("heart_rate_bpm_end") for info in infos),
        rating=_mean(info.rating for info in infos),
    ) for monday, infos in sorted(weeks.items())]


def week_line(week: WeekTrend) -> str:
    """One week in words, e.g. "week of 16 Nov: 3 sessions, 32 min, HR change -4.1 beats/min, ..."."""
    def signed(value: float | None, unit: str) -> str:
        return "--" if value is None else f"{value:+.1f} {unit}"

    parts = [f"week of {week.week_start:%d %b}: {week.sessions} session{'s' if week.sessions != 1 else ''}",
             f"{week.minutes:.0f} min", f"HR change {signed(week.hr_change_bpm, 'beats/min')}",
             f"RMSSD change {signed(week.rmssd_change_ms, 'ms')}"]
    if week.rating is not None:
        parts.append(f"rated {week.rating:.1f}")
    return ", ".join(parts)
