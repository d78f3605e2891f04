"""A virtual chest strap: a ``VirtualListener``'s beats sent as genuine Heart Rate Measurement (0x2A37) notifications.

About once a second (``packet_interval_s`` with uniform jitter ``±packet_jitter_s``) the strap notifies the RR
intervals of the beats since its previous notification (oldest first, at most as many as fit in 20 bytes;
the rest wait for the next one, as the Heart Rate Service prescribes), a heart-rate field rounded from
the mean of the last ``hr_average_beats`` RRs, and contact supported + detected. Like a real strap it
stays silent until it has seen two beats (the first RR).

Two ways to run it: offline, ``packets_until(t)`` advances the listener to ``t`` simulated seconds and
returns the notifications due, stamped with simulated time; live, ``start()`` then ``packets()`` sleeps in
real time, measuring ``t`` from ``start()`` with ``time.monotonic()``, and stamps packets with host monotonic time.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from biosignals.heart_rate_measurement import (
    HEART_RATE_MEASUREMENT_UUID,
    encode_heart_rate_measurement,
    max_rr_per_packet,
)
from biosignals.physiology import VirtualListener
from biosignals.sources.base import SensorSource
from biosignals.types import RR_UNITS_PER_SECOND, HeartRateMeasurement, SensorPacket

__all__ = ["HEART_RATE_MEASUREMENT_UUID", "VirtualStrap"]


class VirtualStrap(SensorSource):
    """A simulated Heart Rate Service strap on a simulated listener (``self.listener``, for pacing and ground truth)."""

    name = "virtual strap"

    def __init__(
        self,
        listener: VirtualListener | None = None,
        *,
        seed: int = 0,
        packet_interval_s: float = 1.0,
        packet_jitter_s: float = 0.1,
        hr_average_beats: int = 4,
    ) -> None:
        if not 0.0 <= packet_jitter_s < packet_interval_s:
            raise ValueError(
                f"packet jitter {packet_jitter_s} s must be between 0 and the interval {packet_interval_s} s"
            )
        self.listener = listener if listener is not None else VirtualListener(seed=seed)
        self.packet_interval_s = packet_interval_s
        self.packet_jitter_s = packet_jitter_s
        self.hr_average_beats = hr_average_beats
        self._rng = np.random.default_rng([seed, 0x2A37])  # independent of the listener's stream
        self._next_packet_t = self._draw_interval()
        self._beat_times: list[float] = []  # beats fired but not yet due in a packet
        self._last_beat_t: float | None = None
        self._pending_rr: list[int] = []  # RRs due but not yet sent (a packet was full)
        self._recent_rr: list[int] = []
        self._t0 = 0.0  # host time of simulated t = 0; stays 0 offline
        self._stopped: asyncio.Event | None = None

    def _draw_interval(self) -> float:
        return self.packet_interval_s + float(self._rng.uniform(-self.packet_jitter_s, self.packet_jitter_s))

    def packets_until(self, t: float) -> list[SensorPacket]:
        """Advance the listener to ``t`` s since the start; return the notifications due by then, oldest first."""
        self._beat_times.extend(self.listener.advance(t))
        packets = []
        while self._next_packet_t <= t:
            packet_t = self._next_packet_t
            self._next_packet_t += self._draw_interval()
            while self._beat_times and self._beat_times[0] <= packet_t:
                beat_t = self._beat_times.pop(0)
                if self._last_beat_t is not None:
                    self._pending_rr.append(round((beat_t - self._last_beat_t) * RR_UNITS_PER_SECOND))
                self._last_beat_t = beat_t
            data = self._encode_next()
            if data is not None:
                packets.append(SensorPacket(self._t0 + packet_t, HEART_RATE_MEASUREMENT_UUID, data))
        return packets

    def _encode_next(self) -> bytes | None:
        if not self._pending_rr and not self._recent_rr:
            return None
        self._recent_rr = (self._recent_rr + self._pending_rr)[-self.hr_average_beats:]
        heart_rate = round(60.0 * RR_UNITS_PER_SECOND / (sum(self._recent_rr) / len(self._recent_rr)))
        fit = max_rr_per_packet(heart_rate, has_energy=False)
        sent, self._pending_rr = self._pending_rr[:fit], self._pending_rr[fit:]
        return encode_heart_rate_measurement(HeartRateMeasurement(
            heart_rate_bpm=heart_rate,
            contact_supported=True,
            contact_detected=True,
            energy_expended_kj=None,
            rr_raw=tuple(sent),
        ))

    # -- live -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the simulated clock: simulated t = 0 is now (``time.monotonic()``)."""
        self._t0 = time.monotonic() - self.listener.t
        self._stopped = asyncio.Event()

    async def stop(self) -> None:
        """End ``packets()``. Safe to call twice, or before ``start()``."""
        if self._stopped is not None:
            self._stopped.set()

    async def packets(self) -> AsyncIterator[SensorPacket]:
        """Yield notifications in real time, stamped with host monotonic arrival time, until ``stop()``."""
        if self._stopped is None:
            raise RuntimeError("VirtualStrap.packets() called before start(): await strap.start() first")
        while not self._stopped.is_set():
            delay = self._t0 + self._next_packet_t - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopped.wait(), timeout=delay)
                    return
                except TimeoutError:
                    pass
            for packet in self.packets_until(time.monotonic() - self._t0):
                yield packet
