"""Home screen: today's assigned session, a quick start and the protocol library."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.playlists import custom_protocols
from wellness_app.ui import theme
from wellness_app.ui.names import minutes_text, protocol_title
from wellness_app.ui.widgets import CalmButton, Header, Panel, Text, scrolling_column

QUICK_PROTOCOL = "coherent-6"
MINUTE_CHOICES = (3, 5, 10, 20)


class HomeScreen(Screen):
    NAME = "home"

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("Heartsong"))
        scroll, self.column = scrolling_column()
        root.add_widget(scroll)
        footer = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        for label, screen in (("Sensor", "sensor"), ("History", "history"), ("Therapist", "therapist")):
            button = CalmButton(label)
            button.bind(on_release=lambda _b, s=screen: app.go(s))
            footer.add_widget(button)
        root.add_widget(footer)
        self.add_widget(root)

    def on_pre_enter(self, *_):
        self.refresh()

    def refresh(self) -> None:
        self.column.clear_widgets()
        self.column.add_widget(self._today_panel())
        self.column.add_widget(self._quick_panel())
        # one action in the accent colour: today's session when one is due, else the quick start
        self.quick_start.primary = not getattr(self.start_today, "primary", False)
        self.column.add_widget(Text("Protocol library", size=theme.FONT_LARGE, bold=True))
        try:
            from therapy_profiles import builtin_protocols

            protocols = sorted(builtin_protocols().items())
            custom = sorted(custom_protocols(self.app.store).items())
        except Exception as error:  # the library is optional for a quick start; say why it is missing
            self.column.add_widget(Text(f"The protocol library could not be loaded: {error}", colour=theme.NOTICE))
            return
        for name, protocol in protocols + custom:
            if custom and name == custom[0][0]:
                self.column.add_widget(Text("Your therapist's protocols", size=theme.FONT_LARGE, bold=True))
            minutes = protocol.total_duration_s / 60.0
            title = protocol_title(protocol)
            # one card per protocol: its title and length, its description under it
            row = CalmButton(f"[b]{title}[/b]  ·  {minutes_text(minutes)}\n[size={theme.FONT_SMALL:.0f}]"
                             f"{protocol.description}[/size]", height=theme.ROW_HEIGHT, fit_height=True,
                             halign="left")
            row.bind(on_release=lambda _b, n=name, m=minutes, t=title: self.app.plan_session(n, m, label=t))
            self.column.add_widget(row)

    def _today_panel(self) -> Panel:
        panel = Panel(size_hint_y=None)
        panel.bind(minimum_height=panel.setter("height"))
        today = self.app.todays_session()
        self.start_today = None
        panel.add_widget(Text("Today", size=theme.FONT_LARGE, bold=True))
        if today is None:
            panel.add_widget(Text("No session is assigned. A therapist can assign a playlist; until then, start "
                                  "coherent breathing below or choose from the library.", colour=theme.TEXT_MUTED))
            return panel
        when = f" · scheduled {today.schedule}" if today.schedule else ""
        if today.done_today:
            panel.add_widget(Text("Today's session is done. Well done.", colour=theme.ACCENT))
            panel.add_widget(Text(f"Next: {today.label}: {today.protocol_title}, {minutes_text(today.minutes)}{when}",
                                  colour=theme.TEXT_MUTED))
            label, primary = "Start the next one now", False
        elif not today.due_today:
            panel.add_widget(Text(f"No session is scheduled today. Next: {today.label}: {today.protocol_title}, "
                                  f"{minutes_text(today.minutes)}{when}", colour=theme.TEXT_MUTED))
            label, primary = "Start it now", False
        else:
            panel.add_widget(Text(f"{today.label}: {today.protocol_title}, {minutes_text(today.minutes)}{when}"))
            label, primary = "Start today's session", True
        self.start_today = CalmButton(label, primary=primary)
        self.start_today.bind(on_release=lambda *_: self.app.follow_plan(today))
        panel.add_widget(self.start_today)
        return panel

    def _quick_panel(self) -> Panel:
        panel = Panel(size_hint_y=None)
        panel.bind(minimum_height=panel.setter("height"))
        panel.add_widget(Text("Quick start: coherent breathing", size=theme.FONT_LARGE, bold=True))
        panel.add_widget(Text("The music leads your breath gently toward about 6 breaths a minute.",
                              colour=theme.TEXT_MUTED))
        chips = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.minute_buttons = {}
        for minutes in (*MINUTE_CHOICES,):
            chip = CalmButton(f"{minutes} min", selected=minutes == self.app.quick_minutes)
            chip.bind(on_release=lambda _b, m=minutes: self._choose_minutes(m))
            self.minute_buttons[minutes] = chip
            chips.add_widget(chip)
        panel.add_widget(chips)
        self.quick_start = CalmButton(f"Start ({self._quick_label()})", primary=True)
        self.quick_start.bind(on_release=lambda *_: self.app.plan_session(
            QUICK_PROTOCOL, self.app.quick_minutes, label="Coherent breathing"))
        panel.add_widget(self.quick_start)
        return panel

    def _quick_label(self) -> str:
        return f"{self.app.quick_minutes:g} min"

    def _choose_minutes(self, minutes: float) -> None:
        self.app.quick_minutes = minutes
        for value, chip in self.minute_buttons.items():
            chip.selected = value == minutes
        self.quick_start.text = f"Start ({self._quick_label()})"
