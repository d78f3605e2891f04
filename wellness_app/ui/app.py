"""The Kivy application: screens, navigation, the session plan, and the session runner on the app's asyncio loop."""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kivy.app import App
from kivy.core.window import Window
from kivy.uix.screenmanager import FadeTransition, ScreenManager

from wellness_app.storage import data_dir, open_store
from wellness_app.ui import theme
from wellness_app.ui.history import HistoryScreen
from wellness_app.ui.home import HomeScreen
from wellness_app.ui.runner import SessionRunner, new_session_dir
from wellness_app.ui.sensor import SensorScreen
from wellness_app.ui.session_screen import SessionScreen
from wellness_app.ui.store import TherapistStore, past_sessions, update_sidecar
from wellness_app.ui.summary import SummaryScreen
from wellness_app.ui.therapist import TherapistScreen


@dataclass
class SessionPlan:
    """What the listener chose on Home: a protocol (built-in name or file), its length, and where it came from."""

    protocol: str
    minutes: float
    label: str
    origin: dict = field(default_factory=dict)  # e.g. {"client": "c-017", "playlist": "evening", "entry": 0}
    protocol_name: str = ""


class HeartsongApp(App):
    """``accelerated``: None for real time, or a speed factor (virtual strap only; see ``runner``)."""

    title = "Heartsong"

    def __init__(self, *, accelerated: float | None = None, quick_minutes: float = 10.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.accelerated = accelerated
        self.quick_minutes = quick_minutes
        self.plan: SessionPlan | None = None
        self.sensor_spec: str | None = "virtual" if accelerated else None
        self.runner: SessionRunner | None = None
        self.session_folder: Path | None = None
        self.settings_path = data_dir() / "settings.json"
        self._store = None
        self.settings = self._load_settings()

    def build(self):
        Window.clearcolor = theme.BACKGROUND
        self.manager = ScreenManager(transition=FadeTransition(duration=0.2))
        self.screens = {}
        for screen_class in (HomeScreen, SensorScreen, SessionScreen, SummaryScreen, HistoryScreen, TherapistScreen):
            screen = screen_class(self)
            self.screens[screen.name] = screen
            self.manager.add_widget(screen)
        return self.manager

    # -- navigation ----------------------------------------------------------------------------------
    def go(self, name: str) -> None:
        if name != "session" and self.manager.current == "session" and self.runner and not self.runner.done:
            return  # a running session is left only through Stop, so it never ends by accident
        self.manager.current = name

    def plan_session(self, protocol: str, minutes: float, *, label: str, origin: dict | None = None) -> None:
        self.plan = SessionPlan(protocol, minutes, label, origin or {})
        self.go("sensor")

    def start_session(self) -> asyncio.Task:
        """Build the session from the plan and the chosen sensor (off the UI thread), then run it."""
        return asyncio.get_event_loop().create_task(self._start_session())

    async def _start_session(self):
        from wellness_app.session import SessionOptions, SessionSetupError

        sensor = self.screens["sensor"]
        sensor.start_button.disabled = True
        sensor.status.text = "Preparing the music…"
        folder = new_session_dir(Path(self.plan.protocol).stem)
        options = SessionOptions(protocol=self.plan.protocol, minutes=self.plan.minutes, out_dir=folder,
                                 sensor=self.sensor_spec or "virtual")
        try:
            self.runner = await asyncio.to_thread(SessionRunner.create, options, accelerated_speed=self.accelerated)
        except (SessionSetupError, ValueError) as error:
            sensor.status.text = f"Cannot start: {error}"
            sensor.start_button.disabled = False
            return
        self.session_folder = folder
        update_sidecar(folder, label=self.plan.label, mode=self.runner.mode, **self.plan.origin)
        sensor.status.text = ""
        sensor.start_button.disabled = False
        self.runner.set_volume(self.screens["session"].volume.value)
        self.runner.start()
        self.go("session")

    def show_summary(self) -> None:
        """The session has ended: show its summary (the record is already saved by the engine)."""
        record = self.runner.engine.record.to_json()
        self.screens["summary"].show(record, self.session_folder)
        self.manager.current = "summary"

    def show_summary_of(self, record: dict, folder: Path, rating: int | None, back_to: str) -> None:
        self.screens["summary"].show(record, folder, rating, back_to=back_to)
        self.go("summary")

    # -- the listener's assigned sessions ------------------------------------------------------------
    def todays_session(self) -> SessionPlan | None:
        """The next session of the active client's playlist (set on the Therapist screen with "Use here")."""
        client_id = self.settings.get("active_client")
        if not client_id:
            return None
        try:
            from therapy_profiles.schema import protocol_for_entry

            store = TherapistStore()
            client = next((c for c in store.clients() if c.client_id == client_id), None)
            if client is None or not client.playlist:
                return None
            playlist = store.playlist(client.playlist)
            done = sum(1 for s in past_sessions() if s.app.get("playlist") == playlist.name and s.summary.get("complete"))
            index = done % len(playlist.sessions)
            protocol = protocol_for_entry(playlist.sessions[index], store.root / "protocols")
            if client.resonance_rate_bpm:
                from therapy_profiles.schema import Overrides

                protocol = protocol.with_overrides(Overrides(breath_rate_bpm=client.resonance_rate_bpm))
        except (ValueError, OSError):
            return None  # an unreadable assignment is reported on the Therapist screen, not here
        prepared = store.root / "prepared" / f"{playlist.name}-{index + 1}.json"
        prepared.parent.mkdir(parents=True, exist_ok=True)
        prepared.write_text(json.dumps(protocol.model_dump(mode="json")))
        return SessionPlan(str(prepared), protocol.total_duration_s / 60.0,
                           f"{playlist.name}, session {index + 1} of {len(playlist.sessions)}",
                           {"client": client.client_id, "playlist": playlist.name, "entry": index},
                           protocol_name=protocol.name)

    @property
    def store(self):
        """The session database, opened once per app (``wellness_app.storage``)."""
        if self._store is None:
            self._store = open_store()
        return self._store

    # -- settings --------------------------------------------------------------------------------------
    def _load_settings(self) -> dict:
        try:
            return json.loads(self.settings_path.read_text())
        except (OSError, ValueError):
            return {}

    def save_settings(self, **values) -> None:
        self.settings.update(values)
        self.settings_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.settings_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.settings, indent=1))
        os.replace(tmp, self.settings_path)

    async def close_session(self) -> None:
        """App closing: end a running session at once; the engine saves everything recorded so far."""
        if self.runner is not None and not self.runner.done:
            await self.runner.abort()
