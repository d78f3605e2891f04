"""The virtual sensor lab: virtual chest straps and the app's Bluetooth adapter, all on one in-process Bumble link.

A ``VirtualLab`` owns a ``bumble.link.LocalLink``. Each device on it (the central that the bleak backend in
``bumble_backend`` drives, and every virtual strap from ``peripherals``) has its own Bumble ``Controller`` and
host, so the bytes between them are real HCI, LL, L2CAP and ATT. The lab also owns the clock the straps
live on: ``time_scale`` > 1 runs the simulated listener faster than real time for tests.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.link import LocalLink

if TYPE_CHECKING:
    from biosignals.lab.peripherals import VirtualBleStrap

CENTRAL_ADDRESS = "F0:F1:F2:F3:F4:F5"


class VirtualLab:
    """One radio space: a Bumble link, a central (the app's 'adapter') and the virtual straps on it.

    ``now()`` is the lab clock in seconds: ``time_scale`` times real monotonic time since the lab was made.
    Pass ``clock=lab.now`` to a ``BleStrapSource`` so arrival times and the straps share one timeline.
    """

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self.link = LocalLink()
        self.straps: dict[str, VirtualBleStrap] = {}
        self.connect_lock = asyncio.Lock()
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._scanners = 0
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Lab time in seconds since the lab was created (real seconds x ``time_scale``)."""
        return (time.monotonic() - self._t0) * self.time_scale

    async def sleep(self, lab_seconds: float) -> None:
        await asyncio.sleep(max(0.0, lab_seconds) / self.time_scale)

    async def sleep_until(self, lab_time: float) -> None:
        await self.sleep(lab_time - self.now())

    def controller(self, name: str) -> Controller:
        return Controller(name, link=self.link)

    async def central(self) -> Device:
        """The central Bumble device that plays the computer's Bluetooth adapter (created on first use)."""
        async with self._central_lock:
            if self._central is None:
                controller = self.controller("heartsong-central")
                device = Device.with_hci("heartsong", hci.Address(CENTRAL_ADDRESS), controller, controller)
                await device.power_on()
                self._central = device
            return self._central

    async def acquire_scanning(self) -> None:
        """Start the central scanning for the first scanner; later scanners share it."""
        central = await self.central()
        self._scanners += 1
        if self._scanners == 1:
            await central.start_scanning(filter_duplicates=False)

    async def release_scanning(self) -> None:
        central = await self.central()
        self._scanners = max(0, self._scanners - 1)
        if self._scanners == 0:
            await central.stop_scanning()

    async def add(self, strap: VirtualBleStrap) -> VirtualBleStrap:
        """Power a strap on, on this lab's link, and start it advertising."""
        self.straps[strap.address] = strap
        await strap.power_on(self)
        return strap

    def rssi(self, address: str) -> int:
        """Received signal strength (dBm) the central sees from a strap; straps set it, -60 by default."""
        strap = self.straps.get(address)
        return strap.rssi_dbm if strap is not None else -127

    def name_of(self, address: str) -> str | None:
        strap = self.straps.get(address)
        return strap.name if strap is not None else None

    async def close(self) -> None:
        """Stop every strap and the central."""
        for strap in list(self.straps.values()):
            await strap.power_off()
        if self._central is not None:
            await self._central.power_off()
            self._central = None
