"""A real Bluetooth LE chest strap through bleak's public API: scan, connect, read, subscribe, PMD, reconnect forever.

The same code drives a real strap (bleak's platform backend) and a virtual one (``backend=`` a custom bleak
backend such as ``biosignals.lab.bumble_backend``, plus its keyword arguments); nothing here knows which.

Stream contract (``packets()``): every Heart Rate Measurement (0x2A37) notification, PMD control-point
indication and PMD data notification is yielded raw as a ``SensorPacket`` stamped with ``clock()`` on
arrival. Two synthetic characteristics carry link events the engine must see:

- ``GAP_CHARACTERISTIC`` (``"heartsong:gap"``): the link dropped unexpectedly; ``data`` is a UTF-8 reason.
  Call ``BeatTimeline.mark_gap()`` so no HRV window bridges the gap. Reconnecting starts at once.
- ``CONNECTED_CHARACTERISTIC`` (``"heartsong:connected"``): (re)connected, PMD started; it comes before the
  connection's first heart-rate packet. ``data`` is the JSON of ``StrapCapabilities`` as known so far.
- ``CAPABILITIES_CHARACTERISTIC`` (``"heartsong:capabilities"``): RR presence was decided; ``data`` is the JSON
  of ``StrapCapabilities``. ``"hr_only": true`` means no RR: make no HRV or breathing claims.

Sources never parse for the estimator; this one only peeks at HRM packets to learn capabilities (RR
present, contact supported) and at control-point messages to run PMD.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from biosignals import pmd
from biosignals.heart_rate_measurement import (
    HEART_RATE_MEASUREMENT_UUID,
    HeartRateParseError,
    check_plausible,
    parse_heart_rate_measurement,
)
from biosignals.sources.base import SensorError, SensorSource
from biosignals.types import SensorPacket

log = logging.getLogger(__name__)

HEART_RATE_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
BODY_SENSOR_LOCATION_UUID = "00002a38-0000-1000-8000-00805f9b34fb"
DEVICE_INFORMATION_UUIDS = {
    "manufacturer": "00002a29-0000-1000-8000-00805f9b34fb",
    "model": "00002a24-0000-1000-8000-00805f9b34fb",
    "serial": "00002a25-0000-1000-8000-00805f9b34fb",
    "hardware": "00002a27-0000-1000-8000-00805f9b34fb",
    "firmware": "00002a26-0000-1000-8000-00805f9b34fb",
    "software": "00002a28-0000-1000-8000-00805f9b34fb",
}
BODY_SENSOR_LOCATIONS = ("other", "chest", "wrist", "finger", "hand", "ear lobe", "foot")

GAP_CHARACTERISTIC = "heartsong:gap"
CONNECTED_CHARACTERISTIC = "heartsong:connected"
CAPABILITIES_CHARACTERISTIC = "heartsong:capabilities"

NO_BLUETOOTH = "Bluetooth is not available on this machine (no adapter or BlueZ): use --sensor virtual:hrs to try the virtual strap"
CAPABILITY_WINDOW_S = 8.0  # RR presence is decided this long after connecting (when the strap is worn)
HR_ONLY_AFTER_PACKETS = 5  # beating HRM packets without any RR before a strap counts as HR-only
RECONNECT_BACKOFF_S = (0.5, 10.0)  # first and longest wait between reconnect attempts
PMD_RESPONSE_TIMEOUT_S = 5.0
# The streams a session asks of a PMD strap: (type, settings, nominal rate Hz).
PMD_STREAMS = (
    (pmd.MeasurementType.ECG, pmd.ECG_130HZ),
    (pmd.MeasurementType.ACC, pmd.ACC_200HZ_8G),
)


@dataclasses.dataclass
class StrapCapabilities:
    """What a connected strap offers. ``rr_present`` is None until decided (within ``CAPABILITY_WINDOW_S``)."""

    name: str | None = None
    battery_percent: int | None = None  # 0-100
    body_location: str | None = None  # one of BODY_SENSOR_LOCATIONS
    device_information: dict[str, str] = dataclasses.field(default_factory=dict)
    att_mtu: int | None = None  # as the platform reports it (BlueZ always says 23)
    rr_present: bool | None = None
    contact_supported: bool | None = None
    pmd_features: tuple[str, ...] = ()  # PMD measurement type names, e.g. ("ECG", "ACC")
    pmd_streaming: tuple[str, ...] = ()

    @property
    def hr_only(self) -> bool:
        """True when the strap sends no RR intervals: heart rate only, so no HRV and no breathing estimate."""
        return self.rr_present is False

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "hr_only": self.hr_only}, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class StrapInfo:
    """One strap seen while scanning. ``offers_pmd`` is None when it was not probed (see ``scan_straps``)."""

    address: str
    name: str | None
    rssi_dbm: int | None
    offers_pmd: bool | None


async def discover_straps(
    timeout: float = 5.0,
    *,
    probe_pmd: bool = True,
    scanner_backend: type[BaseBleakScanner] | None = None,
    client_backend: type[BaseBleakClient] | None = None,
    **backend_kwargs: Any,
) -> list[StrapInfo]:
    """Straps advertising the Heart Rate service, strongest signal first.

    Straps do not advertise PMD, so with ``probe_pmd`` each one found is briefly connected to look for the
    PMD service (``offers_pmd`` True/False); without it ``offers_pmd`` is None. Raises ``SensorError`` when
    there is no Bluetooth.
    """
    try:
        found = await BleakScanner.discover(
            timeout=timeout, return_adv=True, service_uuids=[HEART_RATE_SERVICE_UUID], backend=scanner_backend, **backend_kwargs
        )
    except (OSError, BleakError) as exc:
        raise SensorError(NO_BLUETOOTH) from exc  # bleak without BlueZ raises plain OSError
    straps = []
    for device, adv in sorted(found.values(), key=lambda pair: -pair[1].rssi):
        offers_pmd = None
        if probe_pmd:
            with contextlib.suppress(BleakError, OSError, asyncio.TimeoutError):
                async with BleakClient(device, timeout=timeout, backend=client_backend, **backend_kwargs) as client:
                    offers_pmd = client.services.get_service(pmd.PMD_SERVICE_UUID) is not None
        straps.append(StrapInfo(device.address, adv.local_name or device.name, adv.rssi, offers_pmd))
    return straps


@dataclasses.dataclass(frozen=True)
class StrapCheck:
    """What a short test connection learnt: the strap's capabilities and the last heart-rate reading.

    ``heart_rate_bpm`` is None when no Heart Rate Measurement arrived; ``contact_detected`` is None when the
    strap does not report skin contact. ``capabilities.rr_present`` stays None when the strap was not worn long
    enough to tell."""

    capabilities: StrapCapabilities
    heart_rate_bpm: int | None
    contact_detected: bool | None


async def check_strap(source: "BleStrapSource", timeout_s: float = CAPABILITY_WINDOW_S + 2.0) -> StrapCheck:
    """Connect ``source`` (build it with ``use_pmd=False``), read what the strap is, listen to its heart rate until
    RR presence is decided or ``timeout_s`` (s) passes, and disconnect: a real strap takes one central at a time,
    so the session can connect right after. Raises ``SensorError`` when it cannot connect."""
    await source.start()
    heart_rate = contact = None
    try:
        async with asyncio.timeout(timeout_s):
            async for packet in source.packets():
                if packet.characteristic == HEART_RATE_MEASUREMENT_UUID:
                    with contextlib.suppress(HeartRateParseError):
                        hrm = check_plausible(parse_heart_rate_measurement(packet.data))
                        heart_rate, contact = hrm.heart_rate_bpm, hrm.contact_detected
                if heart_rate is not None and source.capabilities_decided.is_set():
                    break
    except TimeoutError:
        pass  # not worn, or HR-only still undecided: report what is known
    finally:
        await source.stop()
    return StrapCheck(dataclasses.replace(source.capabilities), heart_rate, contact)


class BleStrapSource(SensorSource):
    """A chest strap over BLE. ``start()`` connects (``SensorError`` if it cannot), then the link is kept for the session.

    ``address``: the strap's Bluetooth address (a UUID on macOS). ``use_pmd``: start ECG and ACC when the strap
    offers PMD. ``clock``: arrival timestamps (host monotonic seconds by default). ``scanner_backend``,
    ``client_backend`` and ``backend_kwargs`` go to ``BleakScanner``/``BleakClient`` unchanged.
    """

    name = "BLE strap"

    def __init__(
        self,
        address: str,
        *,
        use_pmd: bool = True,
        connect_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        backend_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.use_pmd = use_pmd
        self.connect_timeout_s = connect_timeout_s
        self.clock = clock
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._backend_kwargs = dict(backend_kwargs or {})
        self.capabilities = StrapCapabilities()
        self.capability_window_s = CAPABILITY_WINDOW_S  # real seconds after connecting before HR-only is decided
        self.capabilities_decided = asyncio.Event()
        self.reconnects: list[tuple[float, float]] = []  # (clock at link loss, clock when streaming again)
        self.parse_errors = 0  # HRM packets unparsable or implausible (forwarded anyway; the decoder refuses them)
        self._queue: asyncio.Queue[SensorPacket | None] = asyncio.Queue()
        self._client: BleakClient | None = None
        self._link_lost = asyncio.Event()
        self._stopping = False
        self._supervisor: asyncio.Task | None = None
        self._cp_responses: asyncio.Queue[pmd.ControlPointResponse] = asyncio.Queue()
        self._wanted_streams: list[pmd.MeasurementType] = []
        self._beating_without_rr = 0

    # ------------------------------------------------------------------------------------------ public

    async def start(self) -> None:
        self._stopping = False
        device = await self._find(self.connect_timeout_s)
        if device is None:
            raise SensorError(
                f"strap {self.address} was not found within {self.connect_timeout_s:g} s: wear it (moistened electrodes "
                "wake it), keep it within a few metres, or run `heartsong scan` for its address"
            )
        try:
            await self._connect(device)
        except (BleakError, asyncio.TimeoutError) as exc:
            await self._drop_client()
            raise SensorError(f"could not connect to strap {self.address} ({exc}): switch it off and on, then retry") from exc
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Stop each PMD stream (STOP on the control point), unsubscribe and disconnect. Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        client = self._client
        if client is not None and client.is_connected:
            for measurement in list(self._wanted_streams):
                with contextlib.suppress(BleakError, asyncio.TimeoutError, SensorError, OSError):
                    await self._pmd_command(client, pmd.stop_command(measurement))
            with contextlib.suppress(BleakError, OSError):
                await client.stop_notify(HEART_RATE_MEASUREMENT_UUID)
        await self._drop_client()
        self._queue.put_nowait(None)

    async def packets(self) -> AsyncIterator[SensorPacket]:
        while True:
            packet = await self._queue.get()
            if packet is None:
                return
            yield packet

    # ------------------------------------------------------------------------------------------ connection

    async def _find(self, timeout: float) -> BLEDevice | None:
        try:
            return await BleakScanner.find_device_by_address(
                self.address, timeout=timeout, backend=self._scanner_backend, **self._backend_kwargs
            )
        except (OSError, BleakError) as exc:
            raise SensorError(NO_BLUETOOTH) from exc  # bleak without BlueZ raises plain OSError

    async def _connect(self, device: BLEDevice) -> None:
        """Connect, read what the strap is, start PMD, emit CONNECTED, subscribe to heart rate.

        CONNECTED goes out before the heart-rate subscription so that it precedes every beat of this connection
        (the first of them marks the end of a gap) and carries the PMD streams that were started."""
        client = BleakClient(
            device,
            disconnected_callback=self._on_disconnected,
            timeout=self.connect_timeout_s,
            backend=self._client_backend,
            **self._backend_kwargs,
        )
        self._client = client
        await client.connect()
        self._link_lost.clear()
        await self._read_capabilities(client)
        if self.use_pmd and client.services.get_service(pmd.PMD_SERVICE_UUID) is not None:
            await self._start_pmd(client)
        self._emit(CONNECTED_CHARACTERISTIC, self.capabilities.to_json().encode())
        await client.start_notify(HEART_RATE_MEASUREMENT_UUID, self._on_heart_rate)
        asyncio.get_running_loop().call_later(self.capability_window_s, self._decide_rr)

    async def _read_capabilities(self, client: BleakClient) -> None:
        caps = self.capabilities
        caps.name = client.name
        caps.att_mtu = client.mtu_size
        services = client.services
        if services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            caps.battery_percent = (await client.read_gatt_char(BATTERY_LEVEL_UUID))[0]
        if services.get_characteristic(BODY_SENSOR_LOCATION_UUID) is not None:
            code = (await client.read_gatt_char(BODY_SENSOR_LOCATION_UUID))[:1]
            caps.body_location = BODY_SENSOR_LOCATIONS[code[0]] if code and code[0] < len(BODY_SENSOR_LOCATIONS) else "other"
        for field, uuid in DEVICE_INFORMATION_UUIDS.items():
            if services.get_characteristic(uuid) is not None:
                caps.device_information[field] = bytes(await client.read_gatt_char(uuid)).decode("utf-8", "replace").strip("\0 ")
        if services.get_service(pmd.PMD_SERVICE_UUID) is not None:
            try:
                features = pmd.parse_features(bytes(await client.read_gatt_char(pmd.PMD_CONTROL_POINT_UUID)))
            except pmd.PmdParseError as exc:
                log.warning("strap %s: unreadable PMD features (%s); PMD off", self.address, exc)
                features = frozenset()
            caps.pmd_features = tuple(sorted(t.name for t in features))

    async def _start_pmd(self, client: BleakClient) -> None:
        """Subscribe to control-point indications and data, then start every stream the strap offers."""
        await client.start_notify(pmd.PMD_CONTROL_POINT_UUID, self._on_control_point)
        await client.start_notify(pmd.PMD_DATA_UUID, self._on_pmd_data)
        started = []
        for measurement, settings in PMD_STREAMS:
            if measurement.name not in self.capabilities.pmd_features:
                continue
            response = await self._pmd_command(client, pmd.start_command(measurement, settings))
            if response.ok or response.status == pmd.ResponseStatus.ALREADY_IN_STATE:
                started.append(measurement)
            else:
                log.warning("strap %s refused to start %s: %s", self.address, measurement.name, response.status_name)
        self._wanted_streams = started
        self.capabilities.pmd_streaming = tuple(m.name for m in started)

    async def _pmd_command(self, client: BleakClient, command: bytes) -> pmd.ControlPointResponse:
        """Write a control-point command and wait for the response with the same op and type (stale ones skipped)."""
        while not self._cp_responses.empty():
            self._cp_responses.get_nowait()
        await client.write_gatt_char(pmd.PMD_CONTROL_POINT_UUID, command, response=True)
        async with asyncio.timeout(PMD_RESPONSE_TIMEOUT_S):
            while True:
                response = await self._cp_responses.get()
                if response.op == command[0] and response.measurement_type == command[1]:
                    return response

    def _on_disconnected(self, client: BleakClient) -> None:
        if client is self._client and not self._stopping:
            self._emit(GAP_CHARACTERISTIC, b"link lost")
            self._link_lost.set()

    async def _supervise(self) -> None:
        """For the whole session: after an unexpected disconnect, look for the strap and reconnect, with backoff."""
        while True:
            await self._link_lost.wait()
            t_lost = self.clock()
            await self._drop_client()
            backoff = RECONNECT_BACKOFF_S[0]
            while True:
                # Listening for the strap's advertisement for `backoff` seconds: it is caught the moment it is back.
                device = await self._find_quietly(backoff)
                if device is not None:
                    try:
                        await self._connect(device)
                        self.reconnects.append((t_lost, self.clock()))
                        break
                    except (BleakError, OSError, asyncio.TimeoutError) as exc:
                        log.info("strap %s: reconnect failed (%s); retrying in %.1f s", self.address, exc, backoff)
                        await self._drop_client()
                        await asyncio.sleep(backoff)
                backoff = min(backoff * 2.0, RECONNECT_BACKOFF_S[1])

    async def _find_quietly(self, timeout: float) -> BLEDevice | None:
        try:
            return await self._find(timeout)
        except SensorError:
            await asyncio.sleep(timeout)  # the adapter went away too: keep the session and try again
            return None

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, OSError, asyncio.TimeoutError):
                await client.disconnect()

    # ------------------------------------------------------------------------------------------ notifications

    def _emit(self, characteristic: str, data: bytes) -> None:
        self._queue.put_nowait(SensorPacket(self.clock(), characteristic, bytes(data)))

    def _on_heart_rate(self, _characteristic: Any, data: bytearray) -> None:
        self._emit(HEART_RATE_MEASUREMENT_UUID, data)
        try:
            hrm = check_plausible(parse_heart_rate_measurement(bytes(data)))
        except HeartRateParseError:
            self.parse_errors += 1
            return
        caps = self.capabilities
        caps.contact_supported = hrm.contact_supported
        if hrm.rr_raw and caps.rr_present is not True:
            caps.rr_present = True
            self._capabilities_decided()
        elif hrm.heart_rate_bpm > 0 and hrm.contact_detected is not False:
            self._beating_without_rr += 1

    def _decide_rr(self) -> None:
        """RR absent after ``CAPABILITY_WINDOW_S`` of a beating, worn strap means HR-only; without contact, wait on."""
        if self._stopping or self.capabilities.rr_present is not None:
            return
        if self._beating_without_rr >= HR_ONLY_AFTER_PACKETS:
            self.capabilities.rr_present = False
            self._capabilities_decided()
            log.warning("strap %s sends no RR intervals: heart rate only, no HRV or breathing estimates", self.address)
        else:
            asyncio.get_running_loop().call_later(1.0, self._decide_rr)

    def _capabilities_decided(self) -> None:
        self._emit(CAPABILITIES_CHARACTERISTIC, self.capabilities.to_json().encode())
        self.capabilities_decided.set()

    def _on_control_point(self, _characteristic: Any, data: bytearray) -> None:
        self._emit(pmd.PMD_CONTROL_POINT_UUID, data)
        try:
            message = pmd.parse_control_point(bytes(data))
        except pmd.PmdParseError as exc:
            log.warning("strap %s: bad PMD control-point message (%s)", self.address, exc)
            return
        if isinstance(message, pmd.MeasurementStopped):
            stopped = set(message.measurement_types)
            self._wanted_streams = [m for m in self._wanted_streams if m not in stopped]
            self.capabilities.pmd_streaming = tuple(m.name for m in self._wanted_streams)
            log.warning("strap %s stopped PMD streams by itself: %s", self.address, sorted(stopped))
        else:
            self._cp_responses.put_nowait(message)

    def _on_pmd_data(self, _characteristic: Any, data: bytearray) -> None:
        self._emit(pmd.PMD_DATA_UUID, data)
