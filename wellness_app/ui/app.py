"""The Kivy application: screens, navigation, the session plan, and the session runner on the app's asyncio loop."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from kivy.app import App
from kivy.core.window import Window
from kivy.uix.screenmanager import FadeTransition, ScreenManager

from therapy_profiles.schema import WEEKDAYS
from wellness_app.clients import client_playlist, get_client
from wellness_app.errors import TherapistError
from wellness_app.personalised import personalised_protocol
from wellness_app.storage import StorageError, data_dir, open_store, write_private
from wellness_app.ui import theme
from wellness_app.ui.history import HistoryScreen
from wellness_app.ui.home import HomeScreen
from wellness_app.ui.names import protocol_title
from wellness_app.ui.runner import SessionRunner, new_session_dir
from wellness_app.ui.sensor import SensorScreen
from wellness_app.ui.session_screen import SessionScreen
from wellness_app.ui.summary import SummaryScreen
from wellness_app.ui.therapist import TherapistScreen


@dataclass
class SessionPlan:
    """What the listener chose on Home: a protocol (built-in name or file), its length, and where it came from."""

    protocol: str
    minutes: float
    label: str
    origin: dict = field(default_factory=dict)  # e.g. {"client": "c-017", "playlist": "evening", "entry": 0}
    # with a client, ``protocol`` is the playlist entry's protocol name: the session is built and stored for the
    # client (their overrides and the personalisation's choice), so their rating teaches it
    protocol_name: str = ""
    protocol_title: str = ""  # what the listener is shown, e.g. "Coherent breathing, 6 per minute"
    entry: object = None  # the client's PlaylistEntry (with its overrides), when the plan comes from a playlist
    done_today: bool = False  # a session of this playlist was completed today (local date)
    due_today: bool = True  # False when the playlist's schedule has no session on today's weekday
    schedule: str = ""  # the playlist's schedule in words, e.g. "mon, wed, fri at 19:30" ("" when unscheduled)


SCREENS = {screen.NAME: screen for screen in (HomeScreen, SensorScreen, SessionScreen, SummaryScreen, HistoryScreen,
                                               TherapistScreen)}


class Screens(dict):
    """The app's screens by name, each built (and added to the screen manager) the first time it is asked for."""

    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def __missing__(self, name: str):
        screen = self[name] = SCREENS[name](self.app)
        self.app.manager.add_widget(screen)
        return screen


class HeartsongApp(App):
    """``accelerated``: None for real time, or a speed factor (virtual strap only; see ``runner``)."""

    title = "Heartsong"

    def __init__(self, *, accelerated: float | None = None, quick_minutes: float = 10.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.accelerated = accelerated
        self.quick_minutes = quick_minutes
        self.plan: SessionPlan | None = None
        self.runner: SessionRunner | None = None
        self.session_folder: Path | None = None
        self.settings_path = data_dir() / "settings.json"
        self._store = None
        self.settings = self._load_settings()
        remembered = self.settings.get("strap") or {}
        # a first run (no strap remembered) starts with the virtual strap chosen, so Start works at once
        self.sensor_spec: str | None = "virtual" if accelerated else remembered.get("spec", "virtual")

    def build(self):
        Window.clearcolor = theme.BACKGROUND
        self.manager = ScreenManager(transition=FadeTransition(duration=0.2))
        self.screens = Screens(self)
        self.screens["home"]  # the others are built when first shown: the first frame comes sooner
        return self.manager

    # -- navigation ----------------------------------------------------------------------------------
    def go(self, name: str) -> None:
        if name != "session" and self.manager.current == "session" and self.runner and not self.runner.done:
            return  # a running session is left only through Stop, so it never ends by accident
        self.screens[name]
        self.manager.current = name

    def plan_session(self, protocol: str, minutes: float, *, label: str) -> None:
        """The listener chose a protocol (built-in name or a stored protocol's file name): pick the sensor next."""
        self.follow_plan(SessionPlan(protocol, minutes, label))

    def follow_plan(self, plan: SessionPlan) -> None:
        self.plan = plan
        self.go("sensor")

    def start_session(self) -> asyncio.Task:
        """Build the session from the plan and the chosen sensor (off the UI thread), then run it."""
        return asyncio.get_event_loop().create_task(self._start_session())

    async def _start_session(self):
        from wellness_app.session import SessionOptions, SessionSetupError

        sensor = self.screens["sensor"]
        sensor.update_start(preparing=True)
        folder = new_session_dir(Path(self.plan.protocol).stem)
        options = SessionOptions(protocol=self.plan.protocol, minutes=self.plan.minutes, out_dir=folder,
                                 sensor=self.sensor_spec or "virtual", client_id=self.plan.origin.get("client"),
                                 playlist_entry=self.plan.entry, playlist=self.plan.origin.get("playlist"),
                                 playlist_index=self.plan.origin.get("entry"))
        try:
            self.runner = await asyncio.to_thread(SessionRunner.create, options, accelerated_speed=self.accelerated)
        except (SessionSetupError, ValueError) as error:
            sensor.status.text = f"Cannot start: {error}"
            sensor.update_start()
            return
        self.session_folder = folder
        sensor.update_start()
        self.runner.set_volume(self.screens["session"].volume.value)
        self.runner.start()
        self.go("session")

    def show_summary(self) -> None:
        """The session has ended: show its summary (the record is already saved by the engine); the volume the
        listener settled on is kept for the next session."""
        self.save_settings(volume=round(self.screens["session"].volume.value, 3))
        record = self.runner.engine.record
        self.screens["summary"].show(record.to_json(), record.session_id)
        self.manager.current = "summary"  # (the session has ended: go() would refuse while it was running)

    def show_summary_of(self, record: dict, session_id: int, rating: int | None, back_to: str) -> None:
        self.screens["summary"].show(record, session_id, rating, back_to=back_to)
        self.go("summary")

    # -- the listener's assigned sessions ------------------------------------------------------------
    def todays_session(self, today: dt.date | None = None) -> SessionPlan | None:
        """The next session of the active client's playlist (set on the Therapist screen with "Use here"): the
        entry after the one they last completed from this playlist, at the length the client hears it; with
        whether one was already completed on ``today`` (local date) and whether the schedule has one today."""
        client_id = self.settings.get("active_client")
        if not client_id:
            return None
        today = today or dt.date.today()
        try:
            client = get_client(self.store, client_id)
            if not client.playlist:
                return None
            playlist = client_playlist(self.store, client)
            last_index, last_date = self._last_completed(client_id, playlist.name)
            index = 0 if last_index is None else (last_index + 1) % len(playlist.sessions)
            entry = playlist.sessions[index]
            protocol, _choice = personalised_protocol(self.store, client_id, entry, explore=False)
        except (ValueError, TherapistError, StorageError):
            return None  # an unreadable assignment is reported on the Therapist screen, not here
        schedule = playlist.schedule
        return SessionPlan(entry.protocol, protocol.total_duration_s / 60.0,
                           f"{playlist.name}, session {index + 1} of {len(playlist.sessions)}",
                           {"client": client.client_id, "playlist": playlist.name, "entry": index},
                           protocol_name=protocol.name, protocol_title=protocol_title(protocol), entry=entry,
                           done_today=last_date == today,
                           due_today=schedule is None or WEEKDAYS[today.weekday()] in schedule.days,
                           schedule=f"{', '.join(schedule.days)} at {schedule.time}" if schedule else "")

    def _last_completed(self, client_id: str, playlist: str) -> tuple[int | None, dt.date | None]:
        """(entry index, local date) of the client's newest completed session from ``playlist``."""
        for info in self.store.list_sessions(client_id):
            settings = self.store.session_details(info.id)["settings"]
            if info.complete and settings.get("playlist") == playlist and settings.get("playlist_index", "None") != "None":
                return int(settings["playlist_index"]), info.started.astimezone().date()
        return None, None

    @property
    def store(self):
        """The session database, opened once per app (``wellness_app.storage``)."""
        if self._store is None:
            self._store = open_store()
        return self._store

    # -- settings --------------------------------------------------------------------------------------
    @property
    def show_details(self) -> bool:
        """The listener asked for the technical details (charts on a phone, tempo and mode, formulas, signal
        strengths, file paths); plain words only by default."""
        return bool(self.settings.get("details"))

    def set_details(self, shown: bool) -> None:
        self.save_settings(details=shown)
        for screen in self.screens.values():
            refresh = getattr(screen, "details_changed", None)
            if refresh is not None:
                refresh()

    def _load_settings(self) -> dict:
        """The app's settings file (active client, remembered strap); anything unreadable or mistyped is dropped."""
        try:
            settings = json.loads(self.settings_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(settings, dict):
            return {}
        strap = settings.get("strap")
        if not (isinstance(strap, dict) and all(isinstance(strap.get(k), str) for k in ("spec", "name"))):
            settings["strap"] = None
        if not isinstance(settings.get("active_client"), (str, type(None))):
            settings["active_client"] = None
        if not isinstance(settings.get("details"), bool):
            settings.pop("details", None)
        if not (isinstance(settings.get("volume"), (int, float)) and 0 <= settings["volume"] <= 1):
            settings.pop("volume", None)
        return settings

    def save_settings(self, **values) -> None:
        self.settings.update(values)
        write_private(self.settings_path, json.dumps(self.settings, indent=1))

    async def close_session(self) -> None:
        """App closing: end a running session at once; the engine saves everything recorded so far."""
        if self.runner is not None and not self.runner.done:
            await self.runner.abort()
