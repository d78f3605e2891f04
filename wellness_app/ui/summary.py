"""Summary screen: before and after, the session's charts, and the 1-5 rating that feeds personalisation."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen

from wellness_app.ui import theme
from wellness_app.ui.session_screen import clock_text
from wellness_app.personalised import rate_session
from wellness_app.ui.widgets import CalmButton, Header, LineChart, Text, scrolling_column

# (summary key stem, what it is, unit, digits)
BEFORE_AFTER = (
    ("heart_rate_bpm", "Heart rate", "beats/min", 0),
    ("rmssd_ms", "HRV (RMSSD)", "ms", 0),
    ("breathing_rate_bpm", "Breathing", "breaths/min", 1),
    ("guide_rate_bpm", "Guide", "breaths/min", 1),
    ("tempo_bpm", "Music tempo", "beats/min", 0),
)
RATINGS = ("1 · worse", "2", "3 · same", "4", "5 · much better")


def _fmt(value, digits: int) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


class SummaryScreen(Screen):
    """Shows one stored session (``show(record, session_id)``), whether it just ended or comes from History."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name="summary", **kwargs)
        self.app = app
        self.session_id: int | None = None
        self.rating: int | None = None
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("Summary", on_back=lambda: app.go(self.back_to)))
        scroll, self.column = scrolling_column()
        root.add_widget(scroll)
        done = CalmButton("Done", primary=True)
        done.bind(on_release=lambda *_: app.go(self.back_to))
        root.add_widget(done)
        self.add_widget(root)
        self.back_to = "home"

    def show(self, record: dict, session_id: int | None, rating: int | None = None, back_to: str = "home") -> None:
        """``record``: protocol, summary and seconds; ``session_id``: its row in the store (None: nothing was
        stored, e.g. it ended before its first second, so it cannot be rated)."""
        self.session_id, self.rating, self.back_to = session_id, rating, back_to
        summary = record["summary"]
        column = self.column
        column.clear_widgets()
        name = record.get("protocol", {}).get("name", "session")
        state = "complete" if summary.get("complete") else "stopped early"
        column.add_widget(Text(f"{name} · {clock_text(summary.get('duration_s', 0))} · {state} · "
                               f"{summary.get('beats', 0)} beats", size=theme.FONT_LARGE, bold=True))
        column.add_widget(Text(f"Before and after: {summary.get('summary_windows', '')}.", size=theme.FONT_SMALL,
                               colour=theme.TEXT_MUTED))
        table = GridLayout(cols=3, size_hint_y=None, row_default_height=theme.ROW_HEIGHT * 0.7,
                           row_force_default=True, spacing=(theme.GAP, 0))
        table.bind(minimum_height=table.setter("height"))
        for text in ("", "before", "after"):
            table.add_widget(Text(text, colour=theme.TEXT_MUTED, fit_height=False))
        self.after_values = {}
        for key, label, unit, digits in BEFORE_AFTER:
            before, after = summary.get(f"{key}_start"), summary.get(f"{key}_end")
            table.add_widget(Text(f"{label}, {unit}", fit_height=False))
            table.add_widget(Text(_fmt(before, digits), size=theme.FONT_LARGE, fit_height=False))
            table.add_widget(Text(_fmt(after, digits), size=theme.FONT_LARGE, bold=True, fit_height=False))
            self.after_values[key] = after
        column.add_widget(table)

        seconds = record.get("seconds", [])
        hr_chart = LineChart(size_hint_y=None, height=theme.ROW_HEIGHT * 3, title="heart rate over the session",
                             y_unit="beats/min")
        hr_chart.series = [([(r["t_s"], r["heart_rate_bpm"]) for r in seconds], theme.HEART)]
        breath_chart = LineChart(size_hint_y=None, height=theme.ROW_HEIGHT * 3,
                                 title="breathing (lavender) vs guide (green)", y_unit="breaths/min")
        breath_chart.series = [([(r["t_s"], r["guide_rate_bpm"]) for r in seconds], theme.INHALE),
                               ([(r["t_s"], r["breathing_rate_bpm"]) for r in seconds], theme.BREATH)]
        self.charts = (hr_chart, breath_chart)
        column.add_widget(hr_chart)
        column.add_widget(breath_chart)

        column.add_widget(Text("How do you feel compared with before?", size=theme.FONT_LARGE, bold=True))
        column.add_widget(Text("Your rating helps Heartsong choose music for you next time.", size=theme.FONT_SMALL,
                               colour=theme.TEXT_MUTED))
        row = GridLayout(cols=5, size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.rating_buttons = []
        for value, label in enumerate(RATINGS, start=1):
            button = CalmButton(label.split(" · ")[0], primary=value == rating)
            button.bind(on_release=lambda _b, v=value: self.rate(v))
            self.rating_buttons.append(button)
            row.add_widget(button)
        column.add_widget(row)
        self.rating_note = Text("1 = worse · 3 = the same · 5 = much better", size=theme.FONT_SMALL,
                                colour=theme.TEXT_MUTED)
        column.add_widget(self.rating_note)

    def rate(self, value: int) -> None:
        """Save the rating with the session in the store, as ``heartsong rate`` does: for a client's session
        played with a personalisation choice the client's bandit learns from it, else only the rating is kept."""
        self.rating = value
        for index, button in enumerate(self.rating_buttons, start=1):
            button.primary = index == value
        if self.session_id is None:
            self.rating_note.text = "This session was too short to be saved, so it cannot be rated."
            return
        try:
            rate_session(self.app.store, self.session_id, value)
        except Exception as error:  # a damaged client document must not take the screen down: say so
            self.rating_note.text = f"The rating could not be saved ({error})."
            return
        self.rating_note.text = f"Saved: {RATINGS[value - 1]}. Thank you."
