"""Polar Measurement Data (PMD): control-point commands and responses, data frames, delta compression, both directions.

Wire formats (all little-endian), as Polar's BLE SDK defines them:

- Feature read of the control point: ``0F <bitmask...>``; bit ``k`` (counting from byte 1, LSB first) set means
  measurement type ``k`` is offered (``0F 05`` = ECG + ACC on an H10).
- Commands written to the control point: ``<op> <type> [<setting> <count> <value>...]``, e.g. start ECG at
  130 Hz / 14 bit ``02 00 00 01 82 00 01 01 0E 00``.
- Responses indicated back: ``F0 <op> <type> <status> [<more> <parameters...>]``; any other first byte is
  device-initiated, and ``01 <type> [<type>...]`` means the device stopped those streams by itself.
- Data notifications: ``<type & 0x3F> <uint64 ns since 2000-01-01 of the LAST sample> <frame type> <content>``,
  frame type bit 7 = delta compressed. ECG frame type 0: int24 µV; ACC frame types 0/1/2: 3 x int8/16/24 mg.
  Delta frames: a reference sample (``channels`` x ``resolution`` bits), then blocks
  ``<bit width> <count> <count x channels deltas, LSB-first, sign-extended>``, each delta added to the previous
  sample.

Every parser raises only ``PmdParseError`` (one line, naming what is wrong) on bad input.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

FEATURE_READ_MARKER = 0x0F
RESPONSE_MARKER = 0xF0
FRAME_HEADER_BYTES = 10
TYPE_MASK = 0x3F
DELTA_FRAME_BIT = 0x80
NS_PER_S = 1_000_000_000
POLAR_EPOCH_UNIX_S = 946_684_800  # 2000-01-01T00:00:00Z, the zero of PMD frame timestamps


class PmdParseError(ValueError):
    """A PMD message that does not follow the format; ``str()`` is one line naming the problem."""


class MeasurementType(enum.IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SKIN_TEMPERATURE = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14


class ControlPointOp(enum.IntEnum):
    GET_MEASUREMENT_SETTINGS = 0x01
    REQUEST_MEASUREMENT_START = 0x02
    STOP_MEASUREMENT = 0x03
    GET_SDK_MODE_SETTINGS = 0x04
    GET_MEASUREMENT_STATUS = 0x05
    GET_SDK_MODE_STATUS = 0x06
    GET_OFFLINE_RECORDING_TRIGGER_STATUS = 0x07
    SET_OFFLINE_RECORDING_TRIGGER_MODE = 0x08
    SET_OFFLINE_RECORDING_TRIGGER_SETTINGS = 0x09


ONLINE_MEASUREMENT_STOPPED = 0x01  # first byte of the one device-initiated control-point message


class ResponseStatus(enum.IntEnum):
    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


def status_name(status: int) -> str:
    """``ResponseStatus`` name of a status byte, or ``UNKNOWN_STATUS_0xNN``."""
    try:
        return ResponseStatus(status).name
    except ValueError:
        return f"UNKNOWN_STATUS_0x{status:02X}"


class SettingType(enum.IntEnum):
    SAMPLE_RATE = 0  # Hz, uint16
    RESOLUTION = 1  # bits, uint16
    RANGE = 2  # ±g for ACC, uint16
    RANGE_MILLIUNIT = 3  # uint32
    CHANNELS = 4  # uint8
    FACTOR = 5  # float32 multiplier from raw to physical units (responses only)


_SETTING_SIZE = {
    SettingType.SAMPLE_RATE: 2,
    SettingType.RESOLUTION: 2,
    SettingType.RANGE: 2,
    SettingType.RANGE_MILLIUNIT: 4,
    SettingType.CHANNELS: 1,
    SettingType.FACTOR: 4,
}

ECG_130HZ = {SettingType.SAMPLE_RATE: 130, SettingType.RESOLUTION: 14}
ACC_200HZ_8G = {SettingType.SAMPLE_RATE: 200, SettingType.RESOLUTION: 16, SettingType.RANGE: 8}


# ---------------------------------------------------------------------------------------------- control point


def parse_features(data: bytes) -> frozenset[MeasurementType]:
    """Measurement types offered, from a read of the control point (``0F 05`` -> {ECG, ACC})."""
    if len(data) < 2 or data[0] != FEATURE_READ_MARKER:
        raise PmdParseError(f"PMD feature read must start 0F and have a bitmask, got {bytes(data[:4]).hex(' ')!r}")
    mask = int.from_bytes(data[1:], "little")
    return frozenset(t for t in MeasurementType if mask >> t & 1)


def encode_features(types: set[MeasurementType] | frozenset[MeasurementType]) -> bytes:
    """The control-point read value for a device offering ``types`` (inverse of ``parse_features``)."""
    mask = sum(1 << int(t) for t in types)
    return bytes([FEATURE_READ_MARKER]) + mask.to_bytes(2, "little")


def encode_settings(settings: dict[SettingType, int | float]) -> bytes:
    """Settings as ``<type> 01 <value>`` triples (one value each), FACTOR as float32."""
    out = bytearray()
    for kind, value in settings.items():
        kind = SettingType(kind)
        out += bytes([kind, 1])
        out += struct.pack("<f", value) if kind is SettingType.FACTOR else int(value).to_bytes(_SETTING_SIZE[kind], "little")
    return bytes(out)


def parse_settings(data: bytes) -> dict[SettingType, tuple[float, ...]]:
    """Settings TLV (``<type> <count> <count values>``...) -> every offered value per setting type."""
    settings: dict[SettingType, tuple[float, ...]] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise PmdParseError(f"PMD settings end mid-entry at byte {offset} of {len(data)}")
        try:
            kind = SettingType(data[offset])
        except ValueError:
            raise PmdParseError(f"PMD settings have unknown setting type 0x{data[offset]:02X} at byte {offset}") from None
        count, size = data[offset + 1], _SETTING_SIZE[kind]
        offset += 2
        end = offset + count * size
        if end > len(data):
            raise PmdParseError(f"PMD setting {kind.name} declares {count} values but only {len(data) - offset} bytes remain")
        values = data[offset:end]
        if kind is SettingType.FACTOR:
            settings[kind] = tuple(v for (v,) in struct.iter_unpack("<f", values))
        else:
            settings[kind] = tuple(int.from_bytes(values[i : i + size], "little") for i in range(0, len(values), size))
        offset = end
    return settings


def start_command(measurement: MeasurementType, settings: dict[SettingType, int | float]) -> bytes:
    """REQUEST_MEASUREMENT_START for one stream; ``start_command(ECG, ECG_130HZ)`` = ``02 00 00 01 82 00 01 01 0E 00``."""
    return bytes([ControlPointOp.REQUEST_MEASUREMENT_START, measurement]) + encode_settings(settings)


def stop_command(measurement: MeasurementType) -> bytes:
    return bytes([ControlPointOp.STOP_MEASUREMENT, measurement])


def get_settings_command(measurement: MeasurementType) -> bytes:
    return bytes([ControlPointOp.GET_MEASUREMENT_SETTINGS, measurement])


@dataclass(frozen=True, slots=True)
class ControlPointResponse:
    """``F0 <op> <type> <status> [<more> <parameters>]``: the device's answer to one command."""

    op: int
    measurement_type: int
    status: int
    more: bool
    parameters: bytes

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.SUCCESS

    @property
    def status_name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True, slots=True)
class MeasurementStopped:
    """``01 <type>...``: the device stopped these streams by itself (charger, battery, another client)."""

    measurement_types: tuple[int, ...]


def parse_control_point(data: bytes) -> ControlPointResponse | MeasurementStopped:
    """One control-point indication: a response to a command, or the device-initiated stop message."""
    if not data:
        raise PmdParseError("PMD control-point message is empty")
    if data[0] == ONLINE_MEASUREMENT_STOPPED:
        return MeasurementStopped(tuple(b & TYPE_MASK for b in data[1:]))
    if data[0] != RESPONSE_MARKER:
        raise PmdParseError(f"PMD control-point message starts 0x{data[0]:02X}, expected F0 (response) or 01 (stopped)")
    if len(data) < 4:
        raise PmdParseError(f"PMD control-point response has {len(data)} bytes, needs at least 4 (F0 op type status)")
    more = len(data) > 4 and data[4] != 0
    return ControlPointResponse(data[1], data[2], data[3], more, bytes(data[5:]))


def encode_response(op: int, measurement: int, status: int, parameters: bytes = b"", more: bool = False) -> bytes:
    """A control-point response as a device sends it (inverse of ``parse_control_point``)."""
    head = bytes([RESPONSE_MARKER, op, measurement, status])
    if status != ResponseStatus.SUCCESS and not parameters:
        return head
    return head + bytes([1 if more else 0]) + parameters


# ---------------------------------------------------------------------------------------------- data frames


@dataclass(frozen=True, slots=True)
class PmdFrame:
    """One data notification split into its header fields and content bytes."""

    measurement_type: int  # 0-63
    timestamp_ns: int  # sensor clock, ns since 2000-01-01, of the last sample in the frame
    frame_type: int  # 0-127
    compressed: bool
    content: bytes


def parse_frame(data: bytes) -> PmdFrame:
    if len(data) < FRAME_HEADER_BYTES:
        raise PmdParseError(f"PMD data frame has {len(data)} bytes, the header alone needs {FRAME_HEADER_BYTES}")
    return PmdFrame(
        measurement_type=data[0] & TYPE_MASK,
        timestamp_ns=int.from_bytes(data[1:9], "little"),
        frame_type=data[9] & 0x7F,
        compressed=bool(data[9] & DELTA_FRAME_BIT),
        content=bytes(data[FRAME_HEADER_BYTES:]),
    )


def encode_frame(measurement: int, timestamp_ns: int, frame_type: int, compressed: bool, content: bytes) -> bytes:
    return (
        bytes([measurement & TYPE_MASK])
        + int(timestamp_ns).to_bytes(8, "little")
        + bytes([(frame_type & 0x7F) | (DELTA_FRAME_BIT if compressed else 0)])
        + content
    )


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_delta_frame(content: bytes, channels: int, resolution_bits: int) -> list[tuple[int, ...]]:
    """Delta-compressed content -> samples (reference sample first), each ``channels`` signed ints.

    Polar's vector ``F1 FF 14 00 F0 03 06 01 7B 0F 08`` (3 channels, 16 bits) -> [(-15, 20, 1008), (-20, 17, 1008)].
    """
    ref_bytes = (resolution_bits + 7) // 8
    if len(content) < channels * ref_bytes:
        raise PmdParseError(f"PMD delta frame has {len(content)} bytes, its reference sample needs {channels * ref_bytes}")
    sample = tuple(
        _signed(int.from_bytes(content[i * ref_bytes : (i + 1) * ref_bytes], "little"), resolution_bits)
        for i in range(channels)
    )
    samples = [sample]
    offset = channels * ref_bytes
    while offset < len(content):
        if offset + 2 > len(content):
            raise PmdParseError(f"PMD delta block header cut off at byte {offset} of {len(content)}")
        width, count = content[offset], content[offset + 1]
        offset += 2
        if width > 32:
            raise PmdParseError(f"PMD delta block bit width {width} is over 32")
        n_bytes = (width * channels * count + 7) // 8
        if offset + n_bytes > len(content):
            raise PmdParseError(f"PMD delta block needs {n_bytes} bytes of deltas, only {len(content) - offset} remain")
        bits = int.from_bytes(content[offset : offset + n_bytes], "little")
        offset += n_bytes
        mask = (1 << width) - 1
        position = 0
        for _ in range(count):
            deltas = []
            for _ in range(channels):
                deltas.append(_signed(bits >> position & mask, width) if width else 0)
                position += width
            sample = tuple(s + d for s, d in zip(sample, deltas))
            samples.append(sample)
    return samples


def encode_delta_frame(samples: list[tuple[int, ...]], resolution_bits: int, block_size: int = 255) -> bytes:
    """Samples -> delta-compressed content (inverse of ``decode_delta_frame``), minimal bit width per block."""
    ref_bytes = (resolution_bits + 7) // 8
    out = bytearray()
    for value in samples[0]:
        out += (value & ((1 << (8 * ref_bytes)) - 1)).to_bytes(ref_bytes, "little")
    deltas = [tuple(b - a for a, b in zip(p, q)) for p, q in zip(samples, samples[1:])]
    for start in range(0, len(deltas), block_size):
        block = deltas[start : start + block_size]
        width = max(1, max(max(d.bit_length() + 1 for d in row) for row in block))
        bits, position = 0, 0
        for row in block:
            for d in row:
                bits |= (d & ((1 << width) - 1)) << position
                position += width
        out += bytes([width, len(block)]) + bits.to_bytes((position + 7) // 8, "little")
    return bytes(out)


def _raw_samples(content: bytes, channels: int, sample_bytes: int) -> list[tuple[int, ...]]:
    step = channels * sample_bytes
    if len(content) % step:
        raise PmdParseError(f"PMD frame content of {len(content)} bytes is not a whole number of {step}-byte samples")
    return [
        tuple(
            int.from_bytes(content[i + c * sample_bytes : i + (c + 1) * sample_bytes], "little", signed=True)
            for c in range(channels)
        )
        for i in range(0, len(content), step)
    ]


def decode_content(frame: PmdFrame, factor: float = 1.0) -> list[tuple[int, ...]]:
    """Frame content -> samples in physical units: ECG (µV,), ACC (x, y, z) mg. ``factor`` from the start response."""
    if frame.measurement_type == MeasurementType.ECG:
        if frame.compressed:
            samples = decode_delta_frame(frame.content, 1, 24)
        elif frame.frame_type == 0:
            samples = _raw_samples(frame.content, 1, 3)
        else:
            raise PmdParseError(f"PMD ECG frame type {frame.frame_type} is not supported (only 0: int24 µV)")
    elif frame.measurement_type == MeasurementType.ACC:
        if frame.compressed:
            if frame.frame_type not in (0, 1):
                raise PmdParseError(f"PMD compressed ACC frame type {frame.frame_type} is not supported (only 0 and 1)")
            samples = decode_delta_frame(frame.content, 3, 16)
            # Compressed type 0 carries g, not mg (Polar SDK).
            scale = factor * 1000.0 if frame.frame_type == 0 else factor
            if scale != 1.0:
                samples = [tuple(int(v * scale) for v in s) for s in samples]
        elif frame.frame_type in (0, 1, 2):
            samples = _raw_samples(frame.content, 3, frame.frame_type + 1)
        else:
            raise PmdParseError(f"PMD ACC frame type {frame.frame_type} is not supported (only 0, 1, 2)")
    else:
        raise PmdParseError(f"PMD measurement type {frame.measurement_type} is not decoded (only ECG and ACC)")
    if not samples:
        raise PmdParseError("PMD data frame carries no samples")
    return samples


@dataclass(frozen=True, slots=True)
class PmdSamples:
    """Decoded samples of one frame, each with its sensor time (s since 2000-01-01)."""

    measurement_type: MeasurementType
    sensor_times_s: tuple[float, ...]
    samples: tuple[tuple[int, ...], ...]


class PmdStreamDecoder:
    """Decodes a sequence of data frames, giving each sample a sensor time.

    The frame timestamp is the time of its last sample. Sample times are spread evenly between the previous
    frame's last sample and this frame's, so sensor-clock drift against the nominal rate is followed; only the
    first frame of a stream (or after a gap or a clock step) falls back to the nominal sample rate.
    """

    def __init__(self, sample_rates_hz: dict[MeasurementType, float], max_frame_gap_s: float = 2.0) -> None:
        self.sample_rates_hz = dict(sample_rates_hz)
        self.factors: dict[int, float] = {}
        self.max_frame_gap_s = max_frame_gap_s
        self._last_ns: dict[int, int] = {}

    def reset(self, measurement: int | None = None) -> None:
        """Forget previous frame times (after a restart of the stream or a reconnect)."""
        if measurement is None:
            self._last_ns.clear()
        else:
            self._last_ns.pop(measurement, None)

    def decode(self, data: bytes) -> PmdSamples:
        frame = parse_frame(data)
        samples = decode_content(frame, self.factors.get(frame.measurement_type, 1.0))
        kind = MeasurementType(frame.measurement_type)
        n = len(samples)
        t_last = frame.timestamp_ns
        previous = self._last_ns.get(kind)
        if previous is not None and 0 < t_last - previous <= self.max_frame_gap_s * NS_PER_S:
            step = (t_last - previous) / n
            times = tuple((previous + step * (i + 1)) / NS_PER_S for i in range(n))
        else:
            rate = self.sample_rates_hz.get(kind)
            if not rate:
                raise PmdParseError(f"PMD {kind.name} frame arrived with no sample rate known; start the stream first")
            times = tuple((t_last - (n - 1 - i) * NS_PER_S / rate) / NS_PER_S for i in range(n))
        self._last_ns[kind] = t_last
        return PmdSamples(kind, times, tuple(samples))
