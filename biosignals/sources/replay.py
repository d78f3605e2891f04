"""Record any source's raw packets to a JSON Lines file, and replay such a file as a source.

File format (UTF-8 JSON Lines, data only, never executed):

    line 1   {"format": "heartsong-sensor-recording", "version": 1, "source": "<name>", "sensor": "<spec>",
              "started_unix_s": <float>, "packets": <int, filled in at the end or null>}
    line 2+  {"t": <s since the recording started>, "c": "<characteristic UUID or heartsong:...>", "d": "<hex bytes>"}

Times are the source's arrival stamps relative to the first packet, so a replay reproduces back-dating exactly.
Loading reads line by line within fixed bounds (``MAX_RECORDING_BYTES``, ``MAX_LINE_BYTES``, times finite, in order
and below ``MAX_RECORDING_S``), so ``/dev/zero`` or a forged time ends at once, and fails with one line naming
the line and the fix. A last line cut off without its newline (``record`` was killed while writing it) is
dropped and counted in the header's ``dropped_last_line``.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from biosignals.sources.base import SensorError, SensorSource
from biosignals.types import SensorPacket

FORMAT_NAME = "heartsong-sensor-recording"
FORMAT_VERSION = 1
MAX_RECORDING_BYTES = 512 * 1024 * 1024  # ~ a day of H10 ECG + ACC; anything larger is not ours
MAX_PACKET_BYTES = 512  # an ATT value never exceeds 512 bytes
MAX_LINE_BYTES = 2 * MAX_PACKET_BYTES + 4096  # a packet line: its hex bytes plus the time and characteristic
MAX_RECORDING_S = 24 * 3600.0  # a day: the longest recording we make or replay (times are checked against it)


def _header(source: SensorSource, sensor: str) -> dict:
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "source": source.name, "sensor": sensor, "started_unix_s": time.time()}


async def record_session(source: SensorSource, minutes: float, open_out: Callable[[], BinaryIO], *,
                         sensor: str = "") -> int:
    """Start ``source``, write every packet for ``minutes`` of wall time (at most ``MAX_RECORDING_S``) to the binary
    file ``open_out()`` returns once the source has started (e.g. ``generators.output.create_file``: a new
    user-only file), stop it; return the packet count. Lines are flushed as they come, so an interrupted recording
    keeps everything up to then."""
    if not 0 < minutes * 60.0 <= MAX_RECORDING_S:  # also refuses NaN
        raise SensorError(f"recording length {minutes} min is out of range: use e.g. --minutes 2 "
                          f"(at most {MAX_RECORDING_S / 60:g})")
    count = 0
    await source.start()
    try:
        with open_out() as out:
            out.write(json.dumps(_header(source, sensor)).encode() + b"\n")
            t_first: float | None = None
            try:
                async with asyncio.timeout(minutes * 60.0):
                    async for packet in source.packets():
                        t_first = packet.t_arrival if t_first is None else t_first
                        line = {"t": round(packet.t_arrival - t_first, 6), "c": packet.characteristic,
                                "d": packet.data.hex()}
                        out.write(json.dumps(line).encode() + b"\n")
                        out.flush()
                        count += 1
            except TimeoutError:
                pass
    finally:
        await source.stop()
    return count


def load_recording(path: str | os.PathLike) -> tuple[dict, list[SensorPacket]]:
    """The header and packets of a recording (packet times relative to the first). ``SensorError`` on anything malformed."""
    path = Path(path)
    fix = "record it again with `heartsong record`"
    try:
        with path.open("rb") as raw:
            return _read_recording(raw, path, fix)
    except OSError as exc:
        raise SensorError(f"recording {path} cannot be read ({exc.strerror or exc}): check the path after replay:") from None


def _read_recording(raw: BinaryIO, path: Path, fix: str) -> tuple[dict, list[SensorPacket]]:
    first = raw.readline(MAX_LINE_BYTES)
    try:
        header = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        raise SensorError(f"recording {path} line 1 is not a JSON header: not a Heartsong recording ({fix})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise SensorError(f"recording {path} is not a Heartsong sensor recording (header format is not {FORMAT_NAME!r})")
    if header.get("version") != FORMAT_VERSION:
        raise SensorError(f"recording {path} has format version {header.get('version')!r}, this Heartsong reads {FORMAT_VERSION}: {fix}")
    packets: list[SensorPacket] = []
    previous_t, size, number = 0.0, len(first), 1
    while line := raw.readline(MAX_LINE_BYTES):
        number += 1
        size += len(line)
        if size > MAX_RECORDING_BYTES:
            raise SensorError(f"recording {path} is over the {MAX_RECORDING_BYTES // 2**20} MiB limit: is it really a "
                              "Heartsong recording?")
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            t, characteristic, data = float(entry["t"]), str(entry["c"]), bytes.fromhex(entry["d"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            if not line.endswith(b"\n") and len(line) < MAX_LINE_BYTES and not raw.read(1):
                header["dropped_last_line"] = 1  # cut off by a killed `record`: everything before it is whole
                break
            raise SensorError(f"recording {path} line {number} is not a packet {{t, c, d}}: the file is damaged ({fix})") from None
        if not previous_t <= t <= MAX_RECORDING_S or len(data) > MAX_PACKET_BYTES:  # also refuses NaN
            raise SensorError(
                f"recording {path} line {number} has time {t} s or {len(data)} bytes out of order or range (times "
                f"rise from 0 to at most {MAX_RECORDING_S:g} s): the file is damaged ({fix})"
            )
        previous_t = t
        packets.append(SensorPacket(t, characteristic, data))
    return header, packets


class ReplaySource(SensorSource):
    """A recording played back as a live source.

    ``speed`` 1 paces packets in real time; 2 twice as fast; 0 as fast as possible. Arrival stamps are
    ``clock()`` at ``start()`` plus the recorded offsets, so RR intervals and arrival times keep their relation
    at any speed. The file is loaded and validated here, so a bad one fails before a session begins.
    """

    name = "replay"

    def __init__(self, path: str | os.PathLike, *, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise SensorError(f"replay speed {speed} must be >= 0 (0 = as fast as possible)")
        self.path = Path(path)
        self.speed = speed
        self.clock = clock
        self.header, self._packets = load_recording(self.path)
        self.name = f"replay of {self.header.get('source', 'a sensor')}"
        self._next = 0
        self._t0 = 0.0
        self._stopped = asyncio.Event()

    def packets_until(self, t: float) -> list[SensorPacket]:
        """Offline sessions: the packets recorded up to ``t`` seconds after the recording's start, each once."""
        start = self._next
        while self._next < len(self._packets) and self._packets[self._next].t_arrival <= t:
            self._next += 1
        return self._packets[start:self._next]

    async def start(self) -> None:
        self._t0 = self.clock()
        self._stopped.clear()

    async def stop(self) -> None:
        self._stopped.set()

    async def packets(self) -> AsyncIterator[SensorPacket]:
        t_real0 = time.monotonic()
        for packet in self._packets:
            if self._stopped.is_set():
                return
            if self.speed > 0:
                delay = t_real0 + packet.t_arrival / self.speed - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._stopped.wait(), delay)
                        return
                    except TimeoutError:
                        pass
            else:
                await asyncio.sleep(0)  # as fast as possible, but let the rest of the session run
            yield SensorPacket(self._t0 + packet.t_arrival, packet.characteristic, packet.data)
