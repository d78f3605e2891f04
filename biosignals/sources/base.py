"""The one interface every sensor source implements: a real strap (bleak), a virtual strap, a replayed recording."""
from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from biosignals.types import SensorPacket


class SensorSource(abc.ABC):
    """A stream of raw notifications (``SensorPacket``) with host arrival times.

    Sources never parse or interpret: parsing, back-dating and estimation happen downstream, so the
    same code path handles a real strap, a virtual one and a recording.
    """

    name: str = "sensor"

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and subscribe. Raises ``SensorError`` with a one-line, actionable message on failure."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Unsubscribe and disconnect. Safe to call twice."""

    @abc.abstractmethod
    def packets(self) -> AsyncIterator[SensorPacket]:
        """Yield packets as they arrive, until ``stop()``."""


class SensorError(Exception):
    """A sensor problem the user can act on; ``str()`` is one line naming the problem and the fix."""
