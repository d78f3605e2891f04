"""Sensor screen: the virtual strap (chosen on a first run), chest straps found by a scan (and the Bluetooth lab's
virtual straps with Details), a check of the chosen one over a short test connection (battery, skin contact,
beat-to-beat intervals, ECG), remember or forget it, start; in plain words, with the technical why under Details."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.ui import theme
from wellness_app.ui.names import minutes_text
from wellness_app.ui.widgets import CalmButton, Header, Panel, Text, scrolling_column

SCAN_TIMEOUT_S = 6.0
LOW_BATTERY_PERCENT = 15
VIRTUAL_ADVICE = "Meanwhile you can practise with the virtual strap: it needs no strap (a simulated listener)."


def bluetooth_help(platform: str) -> str:
    """What a listener can do about Bluetooth on ``platform`` (``kivy.utils.platform``), in plain words."""
    permission = " and that Heartsong may use Nearby devices" if platform == "android" else ""
    return f"Check that Bluetooth is switched on{permission}, and that the strap is moist and worn."


def _platform() -> str:
    from kivy.utils import platform

    return platform


@dataclass(frozen=True)
class StrapChoice:
    """One strap in the list: what to show and the spec to open it with (``biosignals.sources.open_source``)."""

    spec: str
    name: str
    rssi_dbm: int | None = None
    battery_percent: int | None = None
    badges: tuple[str, ...] = ()
    note: str = ""  # e.g. "last used" for the remembered strap when a scan did not find it

    @property
    def line(self) -> str:
        """The row in plain words: name, note and battery."""
        parts = [f"{self.name} ({self.note})" if self.note else self.name]
        if self.battery_percent is not None:
            parts.append(f"battery {self.battery_percent}%")
        return "  ·  ".join(parts)

    @property
    def detail_line(self) -> str:
        """The row with Details: also the signal strength and what the strap sends (RR, contact, ECG, ACC)."""
        parts = [self.line]
        if self.rssi_dbm is not None:
            parts.append(f"signal {self.rssi_dbm} dBm")
        if self.badges:
            parts.append(" ".join(f"[{b}]" for b in self.badges))
        return "  ·  ".join(parts)


def check_summary(name: str, check) -> str:
    """One calm line about a ``biosignals.sources.ble.StrapCheck``: ready, or what to do first. The heart rate is
    the strap's own figure (the Heart Rate Measurement's value field, last packet), not Heartsong's estimate."""
    caps = check.capabilities
    if check.heart_rate_bpm is None:
        return f"{name} is connected but sent no heart rate: put it on (moisten the electrodes) and choose it again."
    if check.contact_detected is False:
        return f"{name} has no skin contact: moisten the electrodes and tighten the strap, then choose it again."
    parts = [f"{name}: heart rate {check.heart_rate_bpm} beats/min"]
    if caps.battery_percent is not None:
        low = caps.battery_percent < LOW_BATTERY_PERCENT
        parts.append(f"battery {'low, ' if low else ''}{caps.battery_percent}%{' (charge it soon)' if low else ''}")
    if caps.rr_present is False:
        parts.append("heart rate only (no beat-to-beat intervals), so HRV and breathing cannot be shown; "
                     "the music follows your heart rate")
    elif caps.rr_present is None:
        parts.append("beat-to-beat intervals not seen yet")
    return ", ".join(parts) + ". Ready."


def checked_choice(choice: StrapChoice, check) -> StrapChoice:
    """``choice`` with what the check learnt: battery and the RR / contact / ECG / ACC badges."""
    caps = check.capabilities
    badges = (("RR",) if caps.rr_present else ()) + (("contact",) if caps.contact_supported else ()) + tuple(
        kind for kind in ("ECG", "ACC") if kind in caps.pmd_features)
    return replace(choice, battery_percent=caps.battery_percent, badges=badges)


VIRTUAL_STRAP = StrapChoice("virtual", "Virtual strap", badges=("RR", "contact"),
                            note="no strap needed, a simulated listener")


async def request_ble_permissions() -> None:
    """Android 12+ grants BLUETOOTH_SCAN/CONNECT at runtime and bleak does not ask for them; ask before scanning.

    A no-op off Android. Returns when the user has answered (bleak reports a refusal when it scans).
    """
    from kivy.utils import platform

    if platform != "android":
        return
    from android.permissions import request_permissions  # python-for-android only

    answered = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    request_permissions(["android.permission.BLUETOOTH_SCAN", "android.permission.BLUETOOTH_CONNECT"],
                        lambda *_: loop.call_soon_threadsafe(answered.set_result, None))
    await answered


def strap_choice(info, *, virtual: bool = False) -> StrapChoice:
    """A ``biosignals.sources.ble.StrapInfo`` from a scan as a list row; lab straps get their ``virtual:<kind>`` spec."""
    spec = info.address
    if virtual:
        from biosignals.lab.peripherals import STRAP_KINDS

        spec = f"virtual:{STRAP_KINDS[int(info.address[-2:], 16) - 1]}"  # the lab numbers its kinds in the address
    badges = ("ECG", "ACC") if info.offers_pmd else ()
    return StrapChoice(spec, info.name or "unnamed strap", rssi_dbm=info.rssi_dbm, badges=badges,
                       note="virtual" if virtual else "")


class SensorScreen(Screen):
    NAME = "sensor"

    def __init__(self, app, **kwargs) -> None:
        super().__init__(name=self.NAME, **kwargs)
        self.app = app
        self.choices: list[StrapChoice] = []
        self.problem_details: list[str] = []  # the technical why of a failed scan or check (Details)
        self.checking = False
        self._scan_task: asyncio.Task | None = None
        self.check_task: asyncio.Task | None = None
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        self.info_button = CalmButton("Details", size_hint_x=None, width=theme.BUTTON_HEIGHT * 1.6)
        self.info_button.bind(on_release=lambda *_: app.set_details(not app.show_details))
        root.add_widget(Header("Sensor", on_back=lambda: app.go("home"), action=self.info_button))
        scroll, self.column = scrolling_column()
        self.plan_text = Text("", colour=theme.TEXT_MUTED)
        self.card = Panel(size_hint_y=None)
        self.card.bind(minimum_height=self.card.setter("height"))
        self.status = Text("")
        self.card.add_widget(self.status)
        self.details_text = Text("", size=theme.FONT_SMALL, colour=theme.TEXT_MUTED)
        self.scan_button = CalmButton("Scan again")
        self.scan_button.bind(on_release=lambda *_: self.scan())
        root.add_widget(scroll)
        self.start_button = CalmButton("Start session", primary=True, disabled=True)
        self.start_button.bind(on_release=lambda *_: app.start_session())
        root.add_widget(self.start_button)
        self.add_widget(root)

    def on_pre_enter(self, *_):
        plan = self.app.plan
        self.plan_text.text = (f"Next: {plan.label}, {minutes_text(plan.minutes)}. Choose the strap you are wearing."
                               if plan else "Choose the strap you are wearing.")
        self.rebuild()
        if not self.choices:
            self.scan()

    def details_changed(self) -> None:
        self.rebuild()

    def update_start(self, preparing: bool = False) -> None:
        """Start is enabled when a session is planned and a strap is chosen and checked; its words say which
        of those is missing."""
        reason = ("Preparing the music…" if preparing else
                  "Choose a session on Home first" if self.app.plan is None else
                  "Choose a strap to start" if self.app.sensor_spec is None else
                  "Checking the strap…" if self.checking else "")
        self.start_button.disabled = bool(reason)
        self.start_button.text = reason or "Start session"

    def scan(self) -> None:
        if self._scan_task is not None and not self._scan_task.done():
            return
        self.scan_button.disabled = True
        self._scan_task = asyncio.get_event_loop().create_task(self._scan())

    async def _scan(self) -> None:
        from biosignals.sources import scan_straps

        self.status.text = f"Looking for straps nearby (up to {SCAN_TIMEOUT_S:.0f} s)…"
        self.problem_details = []
        self.choices = []
        self.rebuild()
        bluetooth_off = False
        try:
            await request_ble_permissions()
            self.choices += [strap_choice(i) for i in await scan_straps(virtual=False, timeout=SCAN_TIMEOUT_S)]
        except Exception as error:  # BLE errors vary by platform: a plain line, the error itself under Details
            bluetooth_off = True
            self.problem_details.append(f"Scan: {error}")
        try:
            lab = await scan_straps(virtual=True, timeout=1.0)
            self.choices += [strap_choice(i, virtual=True) for i in lab]
        except Exception as error:
            self.problem_details.append(f"Bluetooth lab (virtual straps): {error}")
        real = sum(1 for c in self.choices if not c.spec.startswith("virtual"))
        if bluetooth_off:
            self.status.text = (f"Bluetooth is not available, so no strap can be found. "
                                f"{bluetooth_help(_platform())} {VIRTUAL_ADVICE}")
        elif real:
            self.status.text = f"Found {real} strap{'s' if real > 1 else ''} nearby: choose yours."
        else:
            self.status.text = f"No strap found nearby. Wear the strap (moisten the electrodes) and scan again. {VIRTUAL_ADVICE}"
        self.scan_button.disabled = False
        self.rebuild()

    @property
    def remembered(self) -> StrapChoice | None:
        """The strap chosen last time (kept in the app's settings until forgotten)."""
        strap = self.app.settings.get("strap")
        return StrapChoice(strap["spec"], strap["name"], note="last used") if strap else None

    def rebuild(self) -> None:
        """The plan, the card saying where things stand, then the straps: the virtual strap first (what works
        everywhere), straps found nearby, the lab's virtual straps with Details."""
        details = self.app.show_details
        self.info_button.selected = details
        column = self.column
        column.clear_widgets()
        column.add_widget(self.plan_text)
        column.add_widget(self.card)
        if self.details_text.parent is not None:
            self.card.remove_widget(self.details_text)
        self.details_text.text = "\n".join(self.problem_details) if details else ""
        if self.details_text.text:
            self.card.add_widget(self.details_text)
        found = [c for c in self.choices if details or not c.spec.startswith("virtual:")]
        shown = [VIRTUAL_STRAP, *found]
        remembered = self.remembered
        if remembered is not None and remembered.spec not in {c.spec for c in shown}:
            shown.insert(0, remembered)
        for choice in shown:
            row = CalmButton(choice.detail_line if details else choice.line, selected=choice.spec == self.app.sensor_spec,
                             height=theme.ROW_HEIGHT, fit_height=True)
            row.bind(on_release=lambda _b, c=choice: self.select(c))
            column.add_widget(row)
        column.add_widget(self.scan_button)
        if remembered is not None:
            forget = CalmButton(f"Forget {remembered.name}")
            forget.bind(on_release=lambda *_: self.forget())
            column.add_widget(forget)
        self.update_start()

    def select(self, choice: StrapChoice | None) -> None:
        """Choose a strap; a Bluetooth one is checked over a short test connection and remembered."""
        self.app.sensor_spec = choice.spec if choice else None
        self.checking = choice is not None and choice.spec != VIRTUAL_STRAP.spec
        if choice is not None and choice.spec == VIRTUAL_STRAP.spec:
            self.status.text = "The virtual strap is ready: a simulated listener, so you can try a session."
        if self.checking:
            self.status.text = f"Connecting to {choice.name} to check it (a few seconds)…"
            self.check_task = asyncio.get_event_loop().create_task(self._check(choice))
        self.rebuild()

    def forget(self) -> None:
        remembered = self.remembered
        self.app.save_settings(strap=None)
        if remembered is not None and self.app.sensor_spec == remembered.spec:
            self.select(None)
        self.status.text = "Forgotten. Choose a strap from the list, or scan again."
        self.rebuild()

    async def _check(self, choice: StrapChoice) -> None:
        """Connect for a few seconds (a strap takes one connection at a time, so Start waits for it)."""
        from biosignals.sources import check_strap

        try:
            check = await check_strap(choice.spec)
        except Exception as error:  # BLE errors vary by platform: a plain line, the error itself under Details
            check, problem = None, error
        if self.app.sensor_spec != choice.spec:
            return  # the listener chose another strap meanwhile; that one's check reports
        self.checking = False
        if check is None:
            self.status.text = f"{choice.name} could not be checked. {bluetooth_help(_platform())}"
            self.problem_details = [f"Check: {problem}"]
            self.app.sensor_spec = None
        else:
            self.choices = [checked_choice(c, check) if c.spec == choice.spec else c for c in self.choices]
            self.status.text = check_summary(choice.name, check)
            self.app.save_settings(strap={"spec": choice.spec, "name": choice.name})
        self.rebuild()
