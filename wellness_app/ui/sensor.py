"""Sensor screen: scan for chest straps (and virtual ones when asked), show what each offers, choose one, start."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from wellness_app.ui import theme
from wellness_app.ui.widgets import CalmButton, Header, Text, scrolling_column

SCAN_TIMEOUT_S = 6.0
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

    @property
    def line(self) -> str:
        parts = [self.name]
        if self.rssi_dbm is not None:
            parts.append(f"signal {self.rssi_dbm} dBm")
        if self.battery_percent is not None:
            parts.append(f"battery {self.battery_percent}%")
        if self.badges:
            parts.append(" ".join(f"[{b}]" for b in self.badges))
        return "  ·  ".join(parts)


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

    def rebuild(self) -> None:
        self.column.clear_widgets()
        shown = [c for c in self.choices if self.show_virtual or not c.spec.startswith("virtual")]
        shown += [VIRTUAL_STRAP] if self.show_virtual else []
        if not shown:
            self.column.add_widget(Text("No straps to show.", colour=theme.TEXT_MUTED))
        for choice in shown:
            row = CalmButton(choice.line, primary=choice.spec == self.app.sensor_spec, height=theme.ROW_HEIGHT)
            row.bind(on_release=lambda _b, c=choice: self.select(c))
            self.column.add_widget(row)
        if self.app.sensor_spec is not None and self.app.sensor_spec not in {c.spec for c in shown}:
            forget = CalmButton(f"Forget {self.app.sensor_spec}")
            forget.bind(on_release=lambda *_: self.select(None))
            self.column.add_widget(forget)

    def select(self, choice: StrapChoice | None) -> None:
        self.app.sensor_spec = choice.spec if choice else None
        self.start_button.disabled = self.app.plan is None or choice is None
        self.rebuild()
