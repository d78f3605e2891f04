"""Sensor screen: scan for chest straps (and virtual ones when asked), check the chosen one over a short test
connection (battery, skin contact, beat-to-beat intervals, ECG), remember or forget it, start."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.ui import theme
from wellness_app.ui.widgets import CalmButton, Header, Text, scrolling_column

SCAN_TIMEOUT_S = 6.0
LOW_BATTERY_PERCENT = 15
BLUETOOTH_HELP = (
    "Check that Bluetooth is switched on (Linux: `bluetoothctl power on`), that the strap "
    "is moist and worn, and, on Android, that Heartsong may use Nearby devices and Location. "
    "Meanwhile you can use a virtual strap."
)


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
        parts = [f"{self.name} ({self.note})" if self.note else self.name]
        if self.rssi_dbm is not None:
            parts.append(f"signal {self.rssi_dbm} dBm")
        if self.battery_percent is not None:
            parts.append(f"battery {self.battery_percent}%")
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


VIRTUAL_STRAP = StrapChoice("virtual", "Virtual strap, in-process (simulated listener)", badges=("RR", "contact"))


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
    return StrapChoice(spec, info.name or "unnamed strap", rssi_dbm=info.rssi_dbm, badges=badges)


class SensorScreen(Screen):
    def __init__(self, app, **kwargs) -> None:
        super().__init__(name="sensor", **kwargs)
        self.app = app
        self.choices: list[StrapChoice] = []
        self.show_virtual = True
        self._scan_task: asyncio.Task | None = None
        self.check_task: asyncio.Task | None = None
        root = BoxLayout(orientation="vertical", padding=theme.PAD, spacing=theme.GAP)
        root.add_widget(Header("Sensor", on_back=lambda: app.go("home")))
        self.plan_text = Text("", size=theme.FONT_BODY, colour=theme.TEXT_MUTED)
        root.add_widget(self.plan_text)
        actions = BoxLayout(size_hint_y=None, height=theme.BUTTON_HEIGHT, spacing=theme.GAP)
        self.scan_button = CalmButton("Scan for straps")
        self.scan_button.bind(on_release=lambda *_: self.scan())
        self.virtual_button = CalmButton("Virtual straps: shown", primary=True)
        self.virtual_button.bind(on_release=lambda *_: self.toggle_virtual())
        actions.add_widget(self.scan_button)
        actions.add_widget(self.virtual_button)
        root.add_widget(actions)
        self.status = Text("", colour=theme.TEXT_MUTED)
        root.add_widget(self.status)
        scroll, self.column = scrolling_column()
        root.add_widget(scroll)
        self.start_button = CalmButton("Start session", primary=True, disabled=True)
        self.start_button.bind(on_release=lambda *_: app.start_session())
        root.add_widget(self.start_button)
        self.add_widget(root)

    def on_pre_enter(self, *_):
        plan = self.app.plan
        self.plan_text.text = (f"Next: {plan.label}, {plan.minutes:g} min. Choose the strap you are wearing."
                               if plan else "Choose the strap you are wearing.")
        self.start_button.disabled = plan is None or self.app.sensor_spec is None
        self.rebuild()
        if not self.choices:
            self.scan()

    def toggle_virtual(self) -> None:
        self.show_virtual = not self.show_virtual
        self.virtual_button.text = f"Virtual straps: {'shown' if self.show_virtual else 'hidden'}"
        self.virtual_button.primary = self.show_virtual
        self.rebuild()

    def scan(self) -> None:
        if self._scan_task is not None and not self._scan_task.done():
            return
        self.scan_button.disabled = True
        self._scan_task = asyncio.get_event_loop().create_task(self._scan())

    async def _scan(self) -> None:
        from biosignals.sources import scan_straps

        self.status.text = f"Scanning for straps (up to {SCAN_TIMEOUT_S:.0f} s)…"
        problems = []
        self.choices = []
        try:
            await request_ble_permissions()
            self.choices += [strap_choice(i) for i in await scan_straps(virtual=False, timeout=SCAN_TIMEOUT_S)]
        except Exception as error:  # BLE errors vary by platform: show the one-line reason and the way on
            reason = str(error).split(":")[0]  # the rest of a SensorError is command-line advice
            problems.append(f"{reason}. {BLUETOOTH_HELP}")
        if self.show_virtual:
            try:
                lab = await scan_straps(virtual=True, timeout=1.0)
                self.choices += [strap_choice(i, virtual=True) for i in lab]
            except Exception as error:
                problems.append(f"Virtual Bluetooth straps unavailable: {error}")
        real = sum(1 for c in self.choices if not c.spec.startswith("virtual"))
        self.status.text = " ".join(problems) or (
            f"Found {real} strap(s) nearby." if real else
            "No strap found nearby. Wear the strap (moisten the electrodes) and scan again.")
        self.scan_button.disabled = False
        self.rebuild()

    @property
    def remembered(self) -> StrapChoice | None:
        """The strap chosen last time (kept in the app's settings until forgotten)."""
        strap = self.app.settings.get("strap")
        return StrapChoice(strap["spec"], strap["name"], note="last used") if strap else None

    def rebuild(self) -> None:
        self.column.clear_widgets()
        shown = [c for c in self.choices if self.show_virtual or not c.spec.startswith("virtual")]
        shown += [VIRTUAL_STRAP] if self.show_virtual else []
        remembered = self.remembered
        if remembered is not None and remembered.spec not in {c.spec for c in shown}:
            shown.insert(0, remembered)
        if not shown:
            self.column.add_widget(Text("No straps to show.", colour=theme.TEXT_MUTED))
        for choice in shown:
            row = CalmButton(choice.line, primary=choice.spec == self.app.sensor_spec, height=theme.ROW_HEIGHT)
            row.bind(on_release=lambda _b, c=choice: self.select(c))
            self.column.add_widget(row)
        if remembered is not None:
            forget = CalmButton(f"Forget {remembered.name}")
            forget.bind(on_release=lambda *_: self.forget())
            self.column.add_widget(forget)

    def select(self, choice: StrapChoice | None) -> None:
        """Choose a strap; a Bluetooth one is checked over a short test connection and remembered."""
        self.app.sensor_spec = choice.spec if choice else None
        self.start_button.disabled = self.app.plan is None or choice is None
        self.rebuild()
        if choice is not None and choice.spec != VIRTUAL_STRAP.spec:
            self.start_button.disabled = True
            self.status.text = f"Connecting to {choice.name} to check it (a few seconds)…"
            self.check_task = asyncio.get_event_loop().create_task(self._check(choice))

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
        except Exception as error:  # BLE errors vary by platform: the one-line reason and the way on
            check, problem = None, f"{str(error).split(':')[0]}. {BLUETOOTH_HELP}"
        if self.app.sensor_spec != choice.spec:
            return  # the listener chose another strap meanwhile; that one's check reports
        if check is None:
            self.status.text = problem
        else:
            self.choices = [checked_choice(c, check) if c.spec == choice.spec else c for c in self.choices]
            self.status.text = check_summary(choice.name, check)
            self.app.save_settings(strap={"spec": choice.spec, "name": choice.name})
        self.start_button.disabled = self.app.plan is None
        self.rebuild()
