"""``virtual:<kind>`` sensors: a lab with one virtual strap, read by the unchanged ``BleStrapSource`` through the Bumble backend."""
from __future__ import annotations

from biosignals.lab import VirtualLab
from biosignals.lab.bumble_backend import BumbleClient, BumbleScanner
from biosignals.lab.peripherals import STRAP_KINDS, VirtualBleStrap
from biosignals.physiology import VirtualListener
from biosignals.sources.base import SensorError
from biosignals.sources.ble import BleStrapSource, StrapInfo, discover_straps


class LabStrapSource(BleStrapSource):
    """A ``BleStrapSource`` whose strap is virtual: ``start()`` builds the lab and powers the strap on first.

    ``kind``: ``hrs``, ``hr-only`` or ``h10``. ``listener`` (the simulated body, for pacing and ground truth)
    exists from construction. ``time_scale`` > 1 runs the lab faster than real time; packets are then stamped
    with lab time so RR intervals and arrival times stay consistent.
    """

    def __init__(self, kind: str = "hrs", *, seed: int = 0, time_scale: float = 1.0, use_pmd: bool = True) -> None:
        if kind not in STRAP_KINDS:
            raise SensorError(f"unknown virtual strap 'virtual:{kind}': use one of " + ", ".join(f"virtual:{k}" for k in STRAP_KINDS))
        self.kind = kind
        self.seed = seed
        self.time_scale = time_scale
        self.listener = VirtualListener(seed=seed)
        self.lab: VirtualLab | None = None
        self.strap: VirtualBleStrap | None = None
        probe = VirtualBleStrap(kind, seed=seed, listener=self.listener)
        super().__init__(
            probe.address,
            use_pmd=use_pmd,
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
        )
        self.name = f"virtual {kind} strap"
        self.capability_window_s /= time_scale
        self._probe = probe

    async def start(self) -> None:
        if self.lab is None:
            self.lab = VirtualLab(time_scale=self.time_scale)
            if self.time_scale != 1.0:
                self.clock = self.lab.now
            self._backend_kwargs = {"bumble_lab": self.lab}
            self.strap = await self.lab.add(self._probe)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self.lab is not None:
            await self.lab.close()


async def scan_virtual_straps(timeout: float = 1.0, *, probe_pmd: bool = True) -> list[StrapInfo]:
    """Scan a fresh lab holding one virtual strap of each kind, through bleak exactly as a real scan runs."""
    lab = VirtualLab()
    try:
        for index, kind in enumerate(STRAP_KINDS):
            await lab.add(VirtualBleStrap(kind, seed=index, rssi_dbm=-55 - 7 * index))
        return await discover_straps(
            timeout, probe_pmd=probe_pmd, scanner_backend=BumbleScanner, client_backend=BumbleClient, bumble_lab=lab
        )
    finally:
        await lab.close()
