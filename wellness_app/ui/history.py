"""History screen: the sessions in the shared store (as ``heartsong history`` lists them), newest first, trends of
heart rate and HRV session by session, and a line per week (``wellness_app.trends``)."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.trends import week_line, weekly_trends
from wellness_app.ui import theme
from wellness_app.ui.names import count_text, protocol_title, readable
from wellness_app.ui.session_screen import clock_text
from wellness_app.ui.store import session_record
from wellness_app.ui.widgets import CalmButton, Header, LineChart, Panel, Text, scrolling_column


WEEKS_SHOWN = 12


def trend_points(sessions, key: str) -> list[tuple[float, float | None]]:
    """(days since the first session, summary[key]) for each stored session (``SessionInfo``), oldest first."""
    ordered = sorted(sessions, key=lambda s: s.started)
    if not ordered:
        return []
    first = ordered[0].started
    return [((s.started - first).total_seconds() / 86400.0, s.summary.get(key)) for s in ordered]


class HistoryScreen(Screen):
    NAME = "history"

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("History", on_back=lambda: app.go("home")))
        scroll, self.column = scrolling_column()
        root.add_widget(scroll)
        self.add_widget(root)
        self.sessions = []

    def on_pre_enter(self, *_):
        self.refresh()

    def refresh(self) -> None:
        from therapy_profiles import builtin_protocols

        self.sessions = self.app.store.list_sessions()
        titles = {name: protocol_title(protocol) for name, protocol in builtin_protocols().items()}
        column = self.column
        column.clear_widgets()
        if not self.sessions:
            column.add_widget(self._empty_state())
            return
        column.add_widget(Text(f"{count_text(len(self.sessions), 'session')}", size=theme.FONT_LARGE, bold=True))
        column.add_widget(Text("From session to session: the last 30 s of each, by days since your first session.",
                               size=theme.FONT_SMALL,
                               colour=theme.TEXT_MUTED))
        self.trends = []
        for key, title, unit, colour in (("heart_rate_bpm_end", "Heart rate", "beats/min", theme.HEART),
                                         ("rmssd_ms_end", "HRV (RMSSD)", "ms", theme.INHALE)):
            chart = LineChart(size_hint_y=None, height=theme.ROW_HEIGHT * 2.6, title=title, y_unit=unit,
                              x_unit="days")
            chart.series = [(trend_points(self.sessions, key), colour)]
            self.trends.append(chart)
            column.add_widget(chart)
        column.add_widget(Text("Week by week", size=theme.FONT_LARGE, bold=True))
        column.add_widget(Text("Means over each week's sessions; a change is the session's last 30 s minus its "
                               "first 30 s (heart rate falling and RMSSD rising within a session are signs of relaxation).",
                               size=theme.FONT_SMALL, colour=theme.TEXT_MUTED))
        self.week_lines = [week_line(week) for week in reversed(weekly_trends(self.sessions)[-WEEKS_SHOWN:])]
        for line in self.week_lines:
            column.add_widget(Text(line))
        column.add_widget(Text("Sessions, newest first", size=theme.FONT_LARGE, bold=True))
        for session in self.sessions:
            s = session.summary
            hr = (f"heart rate {s['heart_rate_bpm_start']:.0f} to {s['heart_rate_bpm_end']:.0f}"
                  if s.get("heart_rate_bpm_start") and s.get("heart_rate_bpm_end") else "")
            facts = [f"{session.started.astimezone():%d %b %H:%M}", clock_text(s.get("duration_s", 0)), hr,
                     "stopped early" if session.status != "complete" else "",
                     f"rated {session.rating}" if session.rating else "", session.client_id or ""]
            line = f"[b]{titles.get(session.protocol, readable(session.protocol))}[/b]\n{' · '.join(f for f in facts if f)}"
            row = CalmButton(line, height=theme.ROW_HEIGHT, fit_height=True, halign="left")
            row.bind(on_release=lambda _b, ps=session: self.open(ps))
            column.add_widget(row)

    def _empty_state(self) -> Panel:
        panel = Panel(size_hint_y=None)
        panel.bind(minimum_height=panel.setter("height"))
        panel.add_widget(Text("No sessions yet", size=theme.FONT_LARGE, bold=True))
        panel.add_widget(Text("After your first session you will find it here, with how your heart rate and HRV "
                              "change from session to session and week by week.", colour=theme.TEXT_MUTED))
        start = CalmButton("Start a session", primary=True)
        start.bind(on_release=lambda *_: self.app.go("home"))
        panel.add_widget(start)
        return panel

    def open(self, session) -> None:
        self.app.show_summary_of(session_record(self.app.store, session.id), session.id, session.rating,
                                 back_to="history")
