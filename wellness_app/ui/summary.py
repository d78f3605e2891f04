"""Summary screen: one sentence of what changed, the 1-5 rating that feeds personalisation, before and after, and
the session's charts."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.personalised import rate_session
from wellness_app.record import sure_breathing
from wellness_app.ui import theme
from wellness_app.ui.names import UNSURE, change_sentence, protocol_title
from wellness_app.ui.session_screen import clock_text
from wellness_app.ui.widgets import CalmButton, Header, LineChart, Text, is_figure, scrolling_column

# (summary key stem, what it is, unit, digits, what a missing value reads as, shown only with Details); the summary's
# breathing is None when its window has no sure second (wellness_app.record)
BEFORE_AFTER = (
    ("heart_rate_bpm", "Heart rate", "beats/min", 0, "--", False),
    ("rmssd_ms", "HRV (RMSSD)", "ms", 0, "--", False),
    ("breathing_rate_bpm", "Breathing", "breaths/min", 1, UNSURE, False),
    ("guide_rate_bpm", "Guide", "breaths/min", 1, "--", True),
    ("tempo_bpm", "Music tempo", "beats/min", 0, "--", True),
)
RATINGS = ("1 · worse", "2", "3 · same", "4", "5 · much better")


def _fmt(value, digits: int, missing: str) -> str:
    return missing if value is None else f"{value:.{digits}f}"


def _cell_size(text: str) -> float:
    """Figures large; a word ("unsure") in body type, as on the session screen, so that it fits its column."""
    return theme.FONT_LARGE if is_figure(text) else theme.FONT_BODY


class SummaryScreen(Screen):
    """Shows one stored session (``show(record, session_id)``), whether it just ended or comes from History."""
    NAME = "summary"


    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        self.session_id: int | None = None
        self.rating: int | None = None
        self.record: dict | None = None
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("Summary", on_back=lambda: app.go(self.back_to)))
        self.scroll, self.column = scrolling_column()
        root.add_widget(self.scroll)
        self.done_button = CalmButton("Done", primary=True)
        self.done_button.bind(on_release=lambda *_: app.go(self.back_to))
        root.add_widget(self.done_button)
        self.add_widget(root)
        self.back_to = "home"

    def details_changed(self) -> None:
        if self.record is not None:
            self.show(self.record, self.session_id, self.rating, self.back_to)

    def show(self, record: dict, session_id: int | None, rating: int | None = None, back_to: str = "home") -> None:
        """``record``: protocol, summary and seconds; ``session_id``: its row in the store (None: nothing was
        stored, e.g. it ended before its first second, so it cannot be rated)."""
        self.record, self.session_id, self.rating, self.back_to = record, session_id, rating, back_to
        summary = record["summary"]
        column = self.column
        column.clear_widgets()
        column.add_widget(Text(change_sentence(summary), size=theme.FONT_LARGE, bold=True))
        state = "complete" if summary.get("complete") else "stopped early"
        column.add_widget(Text(f"{protocol_title(record.get('protocol', {}))} · "
                               f"{clock_text(summary.get('duration_s', 0))} · {state}", colour=theme.TEXT_MUTED))
        self._rating(column, rating)
        self._table(column, summary)
        seconds = record.get("seconds", [])
        hr_chart = LineChart(size_hint_y=None, height=theme.ROW_HEIGHT * 3, title="Heart rate", y_unit="beats/min",
                             x_unit="min", x_scale=60.0)
        hr_chart.series = [([(r["t_s"], r["heart_rate_bpm"]) for r in seconds], theme.HEART)]
        breath_chart = LineChart(size_hint_y=None, height=theme.ROW_HEIGHT * 3, title="Breathing",
                                 y_unit="breaths/min", x_unit="min", x_scale=60.0,
                                 legend=[("you", theme.BREATH), ("guide", theme.INHALE)])
        breath_chart.series = [([(r["t_s"], r["guide_rate_bpm"]) for r in seconds], theme.INHALE),
                               ([(r["t_s"], sure_breathing(r)) for r in seconds], theme.BREATH)]
        self.charts = (hr_chart, breath_chart)
        column.add_widget(hr_chart)
        column.add_widget(breath_chart)
        self.scroll.scroll_y = 1  # a summary always opens at its sentence, also when chosen far down in History

    def _rating(self, column, rating: int | None) -> None:
        column.add_widget(Text("How do you feel compared with before?", bold=True))
        row = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.rating_buttons = []
        for value in range(1, len(RATINGS) + 1):
            button = CalmButton(str(value), selected=value == rating)
            button.bind(on_release=lambda _b, v=value: self.rate(v))
            self.rating_buttons.append(button)
            row.add_widget(button)
        column.add_widget(row)
        self.rating_note = Text("1 = worse · 3 = the same · 5 = much better. Your rating helps Heartsong choose "
                                "music for you next time.", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED)
        column.add_widget(self.rating_note)

    def _table(self, column, summary: dict) -> None:
        """Before and after (first and last 30 s): a row per figure, its name wrapping in a wide first column."""
        column.add_widget(Text("Before and after", bold=True))
        details = self.app.show_details
        self.after_values = {}
        for key, label, unit, digits, missing, technical in (("", "", "", 0, "", False), *BEFORE_AFTER):
            if technical and not details:
                continue
            row = BoxLayout(size_hint_y=None, height=theme.ROW_HEIGHT * 0.8, spacing=theme.GAP)
            if not key:
                cells = [Text("", fit_height=False), *(Text(w, colour=theme.TEXT_MUTED, fit_height=False, halign="right")
                                                       for w in ("before", "after"))]
                row.height = theme.FONT_BODY * 1.6
            else:
                before, after = summary.get(f"{key}_start"), summary.get(f"{key}_end")
                self.after_values[key] = after
                before, after = (_fmt(value, digits, missing) for value in (before, after))
                cells = [Text(f"{label}\n[size={theme.FONT_SMALL:.0f}]{unit}[/size]", fit_height=False),
                         Text(before, size=_cell_size(before), fit_height=False, halign="right"),
                         Text(after, size=_cell_size(after), bold=True, fit_height=False, halign="right")]
            for cell, share in zip(cells, (0.5, 0.25, 0.25)):
                cell.size_hint_x = share
                row.add_widget(cell)
            column.add_widget(row)
        column.add_widget(Text(f"Before and after: {summary.get('summary_windows', '')}.", size=theme.FONT_SMALL,
                               colour=theme.TEXT_MUTED))

    def rate(self, value: int) -> None:
        """Save the rating with the session in the store, as ``heartsong rate`` does: for a client's session
        played with a personalisation choice the client's bandit learns from it, else only the rating is kept."""
        self.rating = value
        for index, button in enumerate(self.rating_buttons, start=1):
            button.selected = index == value
        if self.session_id is None:
            self.rating_note.text = "This session was too short to be saved, so it cannot be rated."
            return
        try:
            rate_session(self.app.store, self.session_id, value)
        except Exception as error:  # a damaged client document must not take the screen down: say so
            self.rating_note.text = f"The rating could not be saved ({error})."
            return
        self.rating_note.text = f"Saved: {RATINGS[value - 1]}. Thank you."
