"""The therapist's protocol editor: name, description, source and the phases (name, minutes, guide rate, breath
ratio, musical mode), starting from a built-in or stored protocol whose other settings (tempo, instruments,
ramps, closed loop, limits) the new one keeps."""
from __future__ import annotations

import re
from typing import Any

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from generators.controls import MODES
from therapy_profiles import SCHEMA_VERSION, ProfileError, Protocol
from therapy_profiles.schema import MAX_SESSION_S, validate_document
from wellness_app.ui import theme
from wellness_app.ui.names import plain_error
from wellness_app.ui.widgets import CalmButton, Panel, Text, captioned, choice, field

# the schema's field paths in the form's words, so an error names the field the therapist sees
FORM_WORDS = {"duration_s": "length", "breath_rate_bpm": "guide, breaths/min", "breath_ratio": "breath ratio",
              "name": "phase name", "mode": "musical mode"}
FIELD_CAPTIONS = {"name": "Name", "description": "Description", "source": "Source"}
FOLLOW_LISTENER = ""  # an empty guide rate: the guide starts at the listener's own breathing (iso principle)
NEW_PHASE_MINUTES = 5


def ratio_text(ratio: dict[str, float]) -> str:
    """{"inhale": 4, "exhale": 6} -> "4:6"; with holds "inhale:hold:exhale:hold", e.g. "4:4:4:4"."""
    parts = [ratio["inhale"], ratio["exhale"]]
    if ratio.get("hold_in") or ratio.get("hold_out"):
        parts = [ratio["inhale"], ratio.get("hold_in", 0), ratio["exhale"], ratio.get("hold_out", 0)]
    return ":".join(f"{p:g}" for p in parts)


def parse_ratio(text: str, where: str) -> dict[str, float]:
    """"4:6" or "4:4:4:4" (inhale:hold:exhale:hold, in parts) -> a BreathRatio document."""
    try:
        parts = [float(p) for p in text.replace(" ", "").split(":")]
    except ValueError:
        parts = []
    if len(parts) == 2:
        return {"inhale": parts[0], "exhale": parts[1], "hold_in": 0.0, "hold_out": 0.0}
    if len(parts) == 4:
        return {"inhale": parts[0], "hold_in": parts[1], "exhale": parts[2], "hold_out": parts[3]}
    raise ValueError(f"{where}: breath ratio {text!r} must look like 4:6 (inhale:exhale) or 4:4:4:4 "
                     "(inhale:hold:exhale:hold)")


def parse_number(text: str, where: str, what: str, example: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {what} {text!r} must be a number, e.g. {example}") from None


def in_form_words(message: str) -> str:
    """"protocol: phases[1].duration_s = 0 is out of range" -> "phase 2: length = 0 is out of range"."""
    def phase_field(match: re.Match) -> str:
        field_path = match.group(2)
        words = FORM_WORDS.get(field_path.split(".")[0], field_path)
        detail = field_path.split(".")[1:]
        return f"phase {int(match.group(1)) + 1}: {words}" + (f" ({detail[0]})" if detail else "")

    return re.sub(r"phases\[(\d+)\]\.([\w.]+)", phase_field, message.removeprefix("protocol: "))


class PhaseRow(Panel):
    """One phase's fields; the settings the form does not show are kept from ``template`` (a Phase document)."""

    def __init__(self, template: dict[str, Any], on_remove, **kwargs) -> None:
        super().__init__(size_hint_y=None, surface=theme.BACKGROUND, **kwargs)
        self.bind(minimum_height=self.setter("height"))
        self.template = template
        rate = template.get("breath_rate_bpm")
        self.name = field("e.g. slow-down", text=template["name"])
        self.minutes = field("minutes", text=f"{template['duration_s'] / 60:g}", input_filter="float")
        self.rate = field("follow the listener", text=FOLLOW_LISTENER if rate is None else f"{rate:g}",
                          input_filter="float")
        self.ratio = field("4:6", text=ratio_text(template["breath_ratio"]))
        self.mode = choice(template["mode"], MODES)
        self.remove = CalmButton("Remove phase")
        self.remove.bind(on_release=lambda *_: on_remove(self))
        self.heading = Text("", bold=True)
        self.error = Text("", size=theme.FONT_SMALL, colour=theme.NOTICE)
        self.add_widget(self.heading)
        self.add_widget(self.error)
        grid = GridLayout(cols=2, size_hint_y=None, spacing=theme.GAP)  # two columns fit a phone's width
        grid.bind(minimum_height=grid.setter("height"))
        for caption, widget in (("phase name", self.name), ("minutes", self.minutes),
                                ("guide, breaths/min", self.rate), ("breath ratio in:out", self.ratio),
                                ("musical mode", self.mode), ("", self.remove)):
            grid.add_widget(captioned(caption, widget))
        self.add_widget(grid)

    def document(self, number: int) -> dict[str, Any]:
        """This phase as a Phase document; ValueError (one line naming phase ``number`` and the field)."""
        where = f"phase {number}"
        rate = self.rate.text.strip()
        minutes = parse_number(self.minutes.text.strip(), where, "minutes", "5")
        if not 0.1 <= minutes <= MAX_SESSION_S / 60:
            raise ValueError(f"{where}: minutes = {minutes:g} is out of range (allowed 0.1-{MAX_SESSION_S / 60:g})")
        return self.template | {
            "name": self.name.text.strip(),
            "duration_s": 60.0 * minutes,
            "breath_rate_bpm": None if rate == FOLLOW_LISTENER else parse_number(rate, where, "guide rate", "6"),
            "breath_ratio": parse_ratio(self.ratio.text, where),
            "mode": self.mode.text,
        }


class ProtocolForm(Panel):
    """Create a protocol from a template, or edit a stored one; ``document()`` is what Save validates."""

    def __init__(self, on_problem, **kwargs) -> None:
        super().__init__(size_hint_y=None, **kwargs)
        self.bind(minimum_height=self.setter("height"))
        self.on_problem = on_problem  # called with a one-line message, e.g. on removing the only phase
        self.title = Text("", size=theme.FONT_LARGE, bold=True)
        self.name = field("name, e.g. calm-5 (playlists then name it calm-5.json)")
        self.description = field("description: what the listener is guided to do")
        self.source = field("source: the published practice it follows")
        self.phases = BoxLayout(orientation="vertical", size_hint_y=None, spacing=theme.GAP)
        self.phases.bind(minimum_height=self.phases.setter("height"))
        self.add_phase_button = CalmButton("Add phase")
        self.add_phase_button.bind(on_release=lambda *_: self.add_phase())
        self.save_button = CalmButton("Save protocol", primary=True)
        self.add_widget(self.title)
        self.errors = {key: Text("", size=theme.FONT_SMALL, colour=theme.NOTICE) for key in FIELD_CAPTIONS}
        for key, widget in (("name", self.name), ("description", self.description), ("source", self.source)):
            self.add_widget(captioned(key, widget))
            self.add_widget(self.errors[key])
        self.add_widget(Text("Phases, in order", bold=True))
        self.add_widget(self.phases)
        buttons = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        buttons.add_widget(self.add_phase_button)
        buttons.add_widget(self.save_button)
        self.add_widget(buttons)
        self.editing: str | None = None  # the stored file name being edited, None for a new protocol
        self.template: dict[str, Any] = {}

    @property
    def rows(self) -> list[PhaseRow]:
        return list(reversed(self.phases.children))  # Kivy keeps children last-added first

    def load(self, protocol: Protocol, *, editing: str | None = None) -> None:
        """Fill the form from ``protocol``: a copy to save under a new name, or (``editing``) the stored one."""
        self.template = protocol.model_dump(mode="json")
        self.editing = editing
        self.title.text = f"Edit {editing}" if editing else f"New protocol, starting from {protocol.name}"
        self.name.text = protocol.name if editing else ""
        self.description.text, self.source.text = protocol.description, protocol.source
        self.phases.clear_widgets()
        for phase in self.template["phases"]:
            self._add_row(phase)

    def add_phase(self) -> None:
        """A new last phase: a copy of the last one's settings (as the template has them), five minutes long."""
        last = self.rows[-1].template if self.rows else self.template["phases"][-1]
        self._add_row(last | {"name": f"phase-{len(self.rows) + 1}", "duration_s": 60.0 * NEW_PHASE_MINUTES})

    def remove_phase(self, row: PhaseRow) -> None:
        if len(self.rows) == 1:
            raise ValueError("a protocol needs at least one phase: change this one instead of removing it")
        self.phases.remove_widget(row)
        self._number_rows()

    def _add_row(self, phase: dict[str, Any]) -> None:
        self.phases.add_widget(PhaseRow(phase, on_remove=self._remove_from_button))
        self._number_rows()

    def _number_rows(self) -> None:
        for number, row in enumerate(self.rows, start=1):
            row.heading.text = f"Phase {number}"

    def _remove_from_button(self, row: PhaseRow) -> None:
        try:
            self.remove_phase(row)
        except ValueError as error:
            self.on_problem(str(error))

    def show_error(self, message: str) -> str:
        """Put a refused save's one line next to the field or phase it names, in the form's words (no schema
        patterns); returns those words ("" clears every error line)."""
        for line in (*self.errors.values(), *(row.error for row in self.rows)):
            line.text = ""
        if not message:
            return ""
        key, plain = plain_error(message, FIELD_CAPTIONS)
        if key is not None:
            self.errors[key].text = plain
            return plain
        phase = re.match(r"phase (\d+): (.*)", message)
        if phase and 0 < int(phase.group(1)) <= len(self.rows):
            self.rows[int(phase.group(1)) - 1].error.text = phase.group(2)[:1].upper() + phase.group(2)[1:]
        return message

    def document(self) -> Protocol:
        """The form as a validated Protocol; ValueError (one line naming the field and the fix) when it is not."""
        data = self.template | {
            "schema_version": SCHEMA_VERSION,
            "name": self.name.text.strip(),
            "description": self.description.text.strip(),
            "source": self.source.text.strip(),
            "phases": [row.document(number) for number, row in enumerate(self.rows, start=1)],
        }
        try:
            return validate_document(Protocol, data, "protocol")
        except ProfileError as error:
            raise ProfileError(in_form_words(str(error))) from None
