"""The therapist's playlist editor: a name, the sessions in order (a protocol picked by its title, an optional
length), and a schedule picked as weekdays and a time of day; ``document()`` is what Save validates."""
from __future__ import annotations

from typing import Any

from kivy.uix.boxlayout import BoxLayout

from therapy_profiles.schema import WEEKDAYS
from wellness_app.ui import theme
from wellness_app.ui.names import plain_error
from wellness_app.ui.widgets import ButtonRow, CalmButton, Panel, Text, captioned, choice, field

HOURS = tuple(f"{h:02d}" for h in range(24))
MINUTES = ("00", "15", "30", "45")
DEFAULT_TIME = ("19", "00")


class EntryRow(Panel):
    """One session of the playlist: which protocol (``protocols``: value -> title) and, optionally, how long."""

    def __init__(self, protocols: dict[str, str], protocol: str, minutes: float | None, on_remove, **kwargs) -> None:
        super().__init__(size_hint_y=None, surface=theme.BACKGROUND, **kwargs)
        self.bind(minimum_height=self.setter("height"))
        self.heading = Text("", bold=True)
        self.protocol = choice(protocol, protocols, labels=protocols)
        self.minutes = field("as planned", text="" if minutes is None else f"{minutes:g}", input_filter="float")
        self.error = Text("", size=theme.FONT_SMALL, colour=theme.NOTICE)
        remove = CalmButton("Remove")
        remove.bind(on_release=lambda *_: on_remove(self))
        self.add_widget(self.heading)
        self.add_widget(captioned("protocol", self.protocol))
        row = BoxLayout(size_hint_y=None, spacing=theme.GAP)
        row.bind(minimum_height=row.setter("height"))
        row.add_widget(captioned("minutes (optional)", self.minutes))
        row.add_widget(captioned("", remove))
        self.add_widget(row)
        self.add_widget(self.error)

    def document(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"protocol": self.protocol.value}
        if self.minutes.text.strip():
            try:
                entry["overrides"] = {"minutes": float(self.minutes.text)}
            except ValueError:
                self.error.text = f"Minutes: {self.minutes.text!r} is not a number; e.g. 10, or leave it empty"
                raise ValueError(f"{self.heading.text}: {self.error.text}") from None
        return entry


class PlaylistForm(Panel):
    """Create a playlist or edit a stored one. ``protocols`` maps each protocol a session can use (built-in name
    or stored file name) to its title."""

    def __init__(self, protocols: dict[str, str], **kwargs) -> None:
        super().__init__(size_hint_y=None, **kwargs)
        self.bind(minimum_height=self.setter("height"))
        self.protocols = protocols
        self.name = field("e.g. evening-calm")
        self.name_error = Text("", size=theme.FONT_SMALL, colour=theme.NOTICE)
        self.entries = BoxLayout(orientation="vertical", size_hint_y=None, spacing=theme.GAP)
        self.entries.bind(minimum_height=self.entries.setter("height"))
        add = CalmButton("Add a session")
        add.bind(on_release=lambda *_: self.add_entry(next(iter(self.protocols)), None))
        self.day_chips = {day: CalmButton(day.capitalize()) for day in WEEKDAYS}
        for chip in self.day_chips.values():
            chip.bind(on_release=lambda c: setattr(c, "selected", not c.selected))
        self.hour = choice(DEFAULT_TIME[0], HOURS)
        self.minute = choice(DEFAULT_TIME[1], MINUTES)
        self.save_button = CalmButton("Save playlist", primary=True)
        self.title = Text("Create or edit a playlist", size=theme.FONT_LARGE, bold=True)
        self.add_widget(self.title)
        self.add_widget(captioned("playlist name", self.name))
        self.add_widget(self.name_error)
        self.add_widget(Text("Sessions, in order", bold=True))
        self.add_widget(self.entries)
        self.add_widget(add)
        self.add_widget(Text("Days (none chosen: no schedule)", bold=True))
        self.add_widget(ButtonRow(list(self.day_chips.values()), min_width=theme.BUTTON_HEIGHT * 1.1))
        time_row = BoxLayout(size_hint_y=None, spacing=theme.GAP)
        time_row.bind(minimum_height=time_row.setter("height"))
        time_row.add_widget(captioned("hour", self.hour))
        time_row.add_widget(captioned("minute", self.minute))
        self.add_widget(time_row)
        self.add_widget(self.save_button)
        self.clear()

    @property
    def rows(self) -> list[EntryRow]:
        return list(reversed(self.entries.children))  # Kivy keeps children last-added first

    def clear(self) -> None:
        """An empty form: one session of the first protocol, no schedule."""
        self.name.text = ""
        self.entries.clear_widgets()
        self.add_entry(next(iter(self.protocols)), None)
        self.set_schedule([], ":".join(DEFAULT_TIME))

    def load(self, playlist) -> None:
        """Fill the form from a stored Playlist."""
        self.name.text = playlist.name
        self.entries.clear_widgets()
        for entry in playlist.sessions:
            self.add_entry(entry.protocol, entry.overrides.minutes)
        schedule = playlist.schedule
        self.set_schedule(schedule.days if schedule else [], schedule.time if schedule else ":".join(DEFAULT_TIME))

    def set_schedule(self, days, time: str) -> None:
        for day, chip in self.day_chips.items():
            chip.selected = day in days
        hour, minute = time.split(":")
        self.hour.choose(hour)
        if minute not in MINUTES:  # a stored time off the quarter hours (written by the CLI) stays as it is
            self.minute.values = sorted({*self.minute.values, minute})
        self.minute.choose(minute)

    def add_entry(self, protocol: str, minutes: float | None) -> None:
        protocols = self.protocols if protocol in self.protocols else {**self.protocols, protocol: protocol}
        self.entries.add_widget(EntryRow(protocols, protocol, minutes, on_remove=self.remove_entry))
        self._number_rows()

    def remove_entry(self, row: EntryRow) -> None:
        if len(self.rows) == 1:
            row.error.text = "A playlist needs at least one session: change this one instead."
            return
        self.entries.remove_widget(row)
        self._number_rows()

    def _number_rows(self) -> None:
        for number, row in enumerate(self.rows, start=1):
            row.heading.text = f"Session {number}"

    def document(self) -> dict[str, Any]:
        """The form as a Playlist document (validated by Save)."""
        data: dict[str, Any] = {"name": self.name.text.strip(), "sessions": [row.document() for row in self.rows]}
        days = [day for day, chip in self.day_chips.items() if chip.selected]
        if days:
            data["schedule"] = {"days": days, "time": f"{self.hour.value}:{self.minute.value}"}
        return data

    def show_error(self, message: str) -> str:
        """Put a validator's one line next to the field it names, in the form's words; returns those words."""
        self.name_error.text = ""
        for row in self.rows:
            row.error.text = ""
        detail = message.split(": ", 1)[-1]
        if detail.startswith("sessions["):  # e.g. "sessions[0].overrides.minutes = 0.1 is out of range (...)"
            index = int(detail[len("sessions["):].split("]")[0])
            where, _, problem = detail.partition(" = ")
            plain = f"Minutes: {problem}" if where.endswith(".minutes") else detail
            if 0 <= index < len(self.rows):
                self.rows[index].error.text = plain
            return f"Session {index + 1}: {plain}"
        key, plain = plain_error(message, {"name": "Playlist name"})
        if key is not None:
            self.name_error.text = plain
        return plain
