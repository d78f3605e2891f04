"""Virtual chest straps on the lab's Bumble link: a standard HRS strap, an HR-only strap and a Polar-H10-like strap.

Each strap is a Bumble ``Device`` with its own controller, advertising like a real strap and serving real GATT:
Heart Rate (0x180D, encoded by Bumble's own ``HeartRateService``), Battery (0x180F), Device Information
(0x180A), and on the H10 the Polar Measurement Data service with ECG (130 Hz) and ACC (200 Hz, ±8 g). All of
it is driven by one ``VirtualListener`` so RR intervals, the ECG's R peaks and the chest movement in ACC come
from the same simulated beats and breaths. Faults (``biosignals.lab.faults``) act through ``StrapFaults``.
"""
from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bumble import gatt, hci
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService
from bumble.profiles.heart_rate_service import HeartRateService

from biosignals import pmd
from biosignals.physiology import VirtualListener, chest_ecg_uv

if TYPE_CHECKING:
    from biosignals.lab import VirtualLab

STRAP_KINDS = ("hrs", "hr-only", "h10")
ADVERTISING_INTERVAL_MS = 100  # real straps advertise every 100-1000 ms; short keeps reconnects quick here
HR_NOTIFY_PERIOD_S = 1.0  # straps notify heart rate about once a second
ECG_RATE_HZ = 130
ECG_SAMPLES_PER_FRAME = 73  # 10 + 73 x 3 = 229 bytes: an H10 ECG frame at ATT MTU 232
ACC_RATE_HZ = 200
ACC_SAMPLES_PER_FRAME = 36
MIN_PMD_ATT_MTU = 232  # below this an H10 answers a start with INVALID_MTU
SENSOR_CLOCK_DRIFT_PPM = 40.0  # the virtual H10's crystal runs this much fast, so drift correction has work to do
SENSOR_EPOCH_OFFSET_S = 789_000_000.0  # sensor clock at lab time 0, in s since 2000-01-01 (early 2025)
ENERGY_EVERY_N_PACKETS = 10  # every 10th HRM carries energy expended, exercising flag bit 3
BEAT_LOOKAHEAD_S = 1.0  # beats simulated ahead of now, so the ECG can draw a P wave before its R peak

class RawPacket:
    """Bytes sent as-is through Bumble's Heart Rate adapter (which calls ``bytes(value)``): faults use it for junk."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __bytes__(self) -> bytes:
        return self.data


@dataclass
class StrapFaults:
    """Switches the fault injectors flip; the strap's streaming loops read them."""

    contact: bool = True
    stalled: bool = False
    bogus_rr_on_contact_return: bool = True  # some straps report the whole lost stretch as one RR
    injected_hrm: deque[bytes] = field(default_factory=deque)  # sent instead of the next HRM packets
    injected_pmd: deque[bytes] = field(default_factory=deque)


class VirtualBleStrap:
    """One virtual strap. ``kind``: ``hrs`` (HR + RR + contact), ``hr-only`` (no RR), ``h10`` (HRS + PMD ECG/ACC).

    Lifecycle: ``await lab.add(strap)`` powers it on and starts advertising; ``leave_range()`` and
    ``return_to_range()`` model walking out of radio range; ``power_off()`` ends it.
    """

    def __init__(
        self,
        kind: str = "hrs",
        address: str | None = None,
        name: str | None = None,
        listener: VirtualListener | None = None,
        seed: int = 0,
        battery_percent: int = 87,
        rssi_dbm: int = -60,
    ) -> None:
        if kind not in STRAP_KINDS:
            raise ValueError(f"unknown virtual strap kind {kind!r}: use one of {', '.join(STRAP_KINDS)}")
        self.kind = kind
        index = STRAP_KINDS.index(kind) + 1  # the address's last byte is 1 + the kind's index (the UI relies on it)
        self.address = address or f"C0:DE:00:00:{seed % 256:02X}:{index:02X}"
        self.name = name or {"hrs": "Virtual HRS Strap", "hr-only": "Virtual HR-only Strap", "h10": "Polar H10 0A1B2C3D"}[kind]
        self.listener = listener if listener is not None else VirtualListener(seed=seed)
        self.battery_percent = battery_percent
        self.rssi_dbm = rssi_dbm
        self.faults = StrapFaults()
        self.rng = random.Random(seed)
        self.lab: VirtualLab | None = None
        self.device: Device | None = None
        self.connection: Connection | None = None
        self.in_range = False
        self.t_reachable: float | None = None  # lab time the strap last became connectable
        self.pmd_commands: list[bytes] = []  # every control-point write, for tests
        self.streaming: set[pmd.MeasurementType] = set()
        self._beats: deque[float] = deque(maxlen=64)
        self.beats_fired: list[float] = []  # every simulated beat (lab s), the ground truth RR comes from
        self._chest: deque[tuple[float, float]] = deque(maxlen=12_000)  # (lab time, expansion), the last 10 min
        self._reported_until = 0.0
        self._tasks: list[asyncio.Task] = []
        self._hrm_count = 0
        self._contact_lost_at: float | None = None

    # ------------------------------------------------------------------------------------------ GATT

    def _services(self) -> list[gatt.Service]:
        self.hrs = HeartRateService(
            read_heart_rate_measurement=lambda _conn: HeartRateService.HeartRateMeasurement(heart_rate=0),
            body_sensor_location=HeartRateService.BodySensorLocation.CHEST,
        )
        model = {"hrs": "HRS-1", "hr-only": "HR-0", "h10": "H10"}[self.kind]
        services: list[gatt.Service] = [
            self.hrs,
            BatteryService(read_battery_level=lambda _conn: self.battery_percent),
            DeviceInformationService(
                manufacturer_name="Polar Electro Oy" if self.kind == "h10" else "Heartsong Virtual Lab",
                model_number=model,
                serial_number=self.address.replace(":", ""),
                firmware_revision="3.1.1" if self.kind == "h10" else "1.0.0",
            ),
        ]
        if self.kind == "h10":
            self.pmd_control_point = gatt.Characteristic(
                pmd.PMD_CONTROL_POINT_UUID,
                gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.INDICATE,
                gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
                gatt.CharacteristicValue(read=self._read_pmd_features, write=self._write_pmd_control_point),
            )
            self.pmd_data = gatt.Characteristic(
                pmd.PMD_DATA_UUID, gatt.Characteristic.Properties.NOTIFY, gatt.Characteristic.READABLE, b""
            )
            services.append(gatt.Service(pmd.PMD_SERVICE_UUID, [self.pmd_control_point, self.pmd_data]))
        return services

    def _advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, bytes.fromhex("0d18")),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )

    # ------------------------------------------------------------------------------------------ lifecycle

    async def power_on(self, lab: VirtualLab) -> None:
        self.lab = lab
        controller = lab.controller(self.name)
        self.device = Device.with_hci(self.name, hci.Address(self.address), controller, controller)
        self.device.add_services(self._services())
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        await self.device.power_on()
        self._reported_until = lab.now()
        await self.return_to_range()
        self._tasks = [asyncio.create_task(self._run_heart_rate())]
        if self.kind == "h10":
            self._tasks += [
                asyncio.create_task(self._run_pmd(pmd.MeasurementType.ECG, ECG_RATE_HZ, ECG_SAMPLES_PER_FRAME)),
                asyncio.create_task(self._run_pmd(pmd.MeasurementType.ACC, ACC_RATE_HZ, ACC_SAMPLES_PER_FRAME)),
            ]

    async def power_off(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.device is not None:
            await self.leave_range()
            await self.device.power_off()
            self.device = None

    async def leave_range(self) -> None:
        """Out of radio range: the link drops (as a supervision timeout would) and nobody can see the strap."""
        self.in_range = False
        if self.device is None:
            return
        await self.device.stop_advertising()
        if self.connection is not None:
            connection, self.connection = self.connection, None
            await connection.disconnect(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    async def return_to_range(self) -> None:
        """Back in range: advertising again, connectable from now (``t_reachable``)."""
        assert self.device is not None and self.lab is not None
        await self.device.start_advertising(
            advertising_data=self._advertising_data(),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        self.in_range = True
        self.t_reachable = self.lab.now()

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        connection.on(connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnection(connection))
        # A strap stops advertising while connected and resumes when the central goes away.
        asyncio.get_running_loop().create_task(self.device.stop_advertising())

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
        self.streaming.clear()  # an H10 stops its PMD streams when the link goes
        if self.in_range and self.device is not None:
            asyncio.get_running_loop().create_task(self.return_to_range())

    # ------------------------------------------------------------------------------------------ physiology

    def _simulate_to(self, t: float) -> None:
        """Advance the listener to lab time ``t`` in its own steps, keeping beats and the chest expansion curve."""
        step = self.listener.dt
        while self.listener.t + step <= t:
            beats = self.listener.advance(self.listener.t + step)
            self._beats.extend(beats)
            self.beats_fired.extend(beats)
            self._chest.append((self.listener.t, self.listener.chest_expansion))

    def chest_expansion(self, t: float) -> float:
        """The listener's chest expansion (0 = end of exhale, 1 = end of inhale) at lab time ``t``, interpolated."""
        history = self._chest
        if not history:
            return self.listener.chest_expansion
        i = len(history) - 1
        while i > 0 and history[i - 1][0] > t:  # walk back from the newest: samples lag the simulation by ~1 s
            i -= 1
        if i == 0:
            return history[0][1]
        (t0, c0), (t1, c1) = history[i - 1], history[i]
        return c0 + (c1 - c0) * min(1.0, (t - t0) / (t1 - t0))

    def ecg_uv(self, t: float) -> float:
        """Synthetic chest ECG at lab time ``t`` (µV): P-QRS-T around each beat, breathing-modulated, with noise."""
        return chest_ecg_uv(t, self._beats, self.chest_expansion(t)) + self.rng.gauss(0.0, 8.0)

    def acc_mg(self, t: float) -> tuple[int, int, int]:
        """Chest accelerometer at lab time ``t`` (mg): gravity tilted by breathing, a heartbeat bump, sensor noise."""
        tilt = math.radians(4.0 + 3.0 * (self.chest_expansion(t) - 0.5))
        bump = sum(6.0 * math.exp(-0.5 * ((t - b - 0.12) / 0.03) ** 2) for b in self._beats if -0.3 < t - b < 0.5)
        x = -1000.0 * math.cos(tilt) + self.rng.gauss(0.0, 3.0)
        y = 20.0 + self.rng.gauss(0.0, 3.0)
        z = 1000.0 * math.sin(tilt) + bump + self.rng.gauss(0.0, 3.0)
        return round(x), round(y), round(z)

    def sensor_time_ns(self, t: float) -> int:
        """The H10's own clock at lab time ``t``: ns since 2000-01-01, drifting ``SENSOR_CLOCK_DRIFT_PPM`` fast."""
        return round((SENSOR_EPOCH_OFFSET_S + t * (1.0 + SENSOR_CLOCK_DRIFT_PPM * 1e-6)) * pmd.NS_PER_S)

    def lab_time_of_sensor_ns(self, ns: int) -> float:
        return (ns / pmd.NS_PER_S - SENSOR_EPOCH_OFFSET_S) / (1.0 + SENSOR_CLOCK_DRIFT_PPM * 1e-6)

    # ------------------------------------------------------------------------------------------ heart rate

    def next_heart_rate_packet(self, t: float) -> HeartRateService.HeartRateMeasurement | RawPacket | None:
        """The HRM a strap sends at lab time ``t`` for the beats since its previous packet (None before its first RR)."""
        if self.faults.injected_hrm:
            return RawPacket(self.faults.injected_hrm.popleft())
        since = self._reported_until
        self._reported_until = t
        if not self.faults.contact:
            self._contact_lost_at = self._contact_lost_at or t
            return HeartRateService.HeartRateMeasurement(heart_rate=0, sensor_contact_detected=False)
        beats = list(self._beats)
        rr_s = [b - a for a, b in zip(beats, beats[1:]) if since < b <= t]
        if self._contact_lost_at is not None:
            if self.faults.bogus_rr_on_contact_return:
                rr_s = [min(63.99, t - self._contact_lost_at)] + rr_s
            self._contact_lost_at = None
        recent = [b - a for a, b in zip(beats, beats[1:]) if b <= t][-5:]
        if not recent:
            return None  # like a real strap: silent until it has timed one beat-to-beat interval
        heart_rate = round(60.0 / (sum(recent) / len(recent)))
        self._hrm_count += 1
        energy = self._hrm_count // 60 if self._hrm_count % ENERGY_EVERY_N_PACKETS == 0 else None
        return HeartRateService.HeartRateMeasurement(
            heart_rate=heart_rate,
            sensor_contact_detected=True,
            energy_expended=energy,
            rr_intervals=None if self.kind == "hr-only" else [round(r * 1024) / 1024 for r in rr_s],
        )

    async def _run_heart_rate(self) -> None:
        assert self.lab is not None
        t = self.lab.now()
        while True:
            t += HR_NOTIFY_PERIOD_S
            self._simulate_to(t + BEAT_LOOKAHEAD_S)
            await self.lab.sleep_until(t)
            packet = self.next_heart_rate_packet(t)
            if packet is not None and self.connection is not None and not self.faults.stalled:
                await self._notify(self.hrs.heart_rate_measurement_characteristic, packet)

    async def _notify(self, characteristic: gatt.Characteristic, value: object) -> None:
        connection = self.connection
        if connection is None or self.device is None:
            return
        try:
            await self.device.notify_subscriber(connection, characteristic, value)
        except Exception:  # noqa: BLE001 - the link may vanish mid-send, exactly as on a real radio
            pass

    # ------------------------------------------------------------------------------------------ PMD

    def _read_pmd_features(self, _connection: Connection) -> bytes:
        return pmd.encode_features({pmd.MeasurementType.ECG, pmd.MeasurementType.ACC})

    def _write_pmd_control_point(self, connection: Connection, value: bytes) -> None:
        self.pmd_commands.append(bytes(value))
        response = self._answer_pmd(connection, bytes(value))
        # The answer is an indication after the write response, as an H10 sends it.
        asyncio.get_running_loop().create_task(self._indicate(connection, response))

    def _answer_pmd(self, connection: Connection, command: bytes) -> bytes:
        supported = {pmd.MeasurementType.ECG: pmd.ECG_130HZ, pmd.MeasurementType.ACC: pmd.ACC_200HZ_8G}
        if len(command) < 2:
            return pmd.encode_response(command[0] if command else 0, 0, pmd.ResponseStatus.INVALID_LENGTH)
        op, kind = command[0], command[1]
        if op not in (pmd.ControlPointOp.GET_MEASUREMENT_SETTINGS, pmd.ControlPointOp.REQUEST_MEASUREMENT_START, pmd.ControlPointOp.STOP_MEASUREMENT):
            return pmd.encode_response(op, kind, pmd.ResponseStatus.INVALID_OP_CODE)
        if kind not in supported:
            return pmd.encode_response(op, kind, pmd.ResponseStatus.NOT_SUPPORTED)
        measurement = pmd.MeasurementType(kind)
        if op == pmd.ControlPointOp.GET_MEASUREMENT_SETTINGS:
            return pmd.encode_response(op, kind, pmd.ResponseStatus.SUCCESS, pmd.encode_settings(supported[measurement]))
        if op == pmd.ControlPointOp.STOP_MEASUREMENT:
            self.streaming.discard(measurement)
            return pmd.encode_response(op, kind, pmd.ResponseStatus.SUCCESS)
        if connection.att_mtu < MIN_PMD_ATT_MTU:
            return pmd.encode_response(op, kind, pmd.ResponseStatus.INVALID_MTU)
        if measurement in self.streaming:
            return pmd.encode_response(op, kind, pmd.ResponseStatus.ALREADY_IN_STATE)
        try:
            requested = {k: v[0] for k, v in pmd.parse_settings(command[2:]).items()}
        except pmd.PmdParseError:
            return pmd.encode_response(op, kind, pmd.ResponseStatus.INVALID_PARAMETER)
        offered = supported[measurement]
        for setting, status in (
            (pmd.SettingType.SAMPLE_RATE, pmd.ResponseStatus.INVALID_SAMPLE_RATE),
            (pmd.SettingType.RESOLUTION, pmd.ResponseStatus.INVALID_RESOLUTION),
            (pmd.SettingType.RANGE, pmd.ResponseStatus.INVALID_RANGE),
        ):
            if requested.get(setting, offered.get(setting)) != offered.get(setting):
                return pmd.encode_response(op, kind, status)
        self.streaming.add(measurement)
        return pmd.encode_response(op, kind, pmd.ResponseStatus.SUCCESS, pmd.encode_settings({pmd.SettingType.FACTOR: 1.0}))

    async def stop_streams_by_itself(self) -> None:
        """The device-initiated stop (``01 <types>``), as when an H10 is put in its charger."""
        stopped = sorted(self.streaming)
        self.streaming.clear()
        if self.connection is not None and stopped:
            await self._indicate(self.connection, bytes([pmd.ONLINE_MEASUREMENT_STOPPED, *stopped]))

    async def _indicate(self, connection: Connection, value: bytes) -> None:
        if self.device is None:
            return
        try:
            await self.device.indicate_subscriber(connection, self.pmd_control_point, value)
        except Exception:  # noqa: BLE001 - the link may vanish mid-send
            pass

    def pmd_frame(self, measurement: pmd.MeasurementType, sample_times: list[float]) -> bytes:
        """One data frame for samples at these lab times: ECG raw int24 µV, ACC delta-compressed int16 mg."""
        timestamp = self.sensor_time_ns(sample_times[-1])
        if measurement == pmd.MeasurementType.ECG:
            content = b"".join(round(self.ecg_uv(t)).to_bytes(3, "little", signed=True) for t in sample_times)
            return pmd.encode_frame(measurement, timestamp, 0, False, content)
        samples = [self.acc_mg(t) for t in sample_times]
        return pmd.encode_frame(measurement, timestamp, 1, True, pmd.encode_delta_frame(samples, 16))

    async def _run_pmd(self, measurement: pmd.MeasurementType, rate_hz: int, per_frame: int) -> None:
        """Stream frames while the stream is started: sample times tick on the sensor's (drifting) clock."""
        assert self.lab is not None
        while True:
            while measurement not in self.streaming:
                await self.lab.sleep(0.02)
            start_ns = self.sensor_time_ns(self.lab.now())
            k = 0
            while measurement in self.streaming:
                times = [
                    self.lab_time_of_sensor_ns(start_ns + round((k + i) * pmd.NS_PER_S / rate_hz)) for i in range(per_frame)
                ]
                k += per_frame
                self._simulate_to(times[-1] + BEAT_LOOKAHEAD_S)
                await self.lab.sleep_until(times[-1])
                if measurement not in self.streaming or self.faults.stalled:
                    continue
                frame = self.faults.injected_pmd.popleft() if self.faults.injected_pmd else self.pmd_frame(measurement, times)
                await self._notify(self.pmd_data, frame)
