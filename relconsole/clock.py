"""Injected clocks: the engine, the simulator and the tests never read time directly.

`SystemClock` is wall time (optionally sped up for the demo); `FastClock` jumps forward
on every sleep so tests and benchmarks run hours of release in milliseconds. `clock_text`
is how every front end and message writes one of their timestamps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


def clock_text(at: float) -> str:
    """An engine timestamp as local wall-clock time, HH:MM:SS.

    The one spelling shared by the screen, the headless log and the engine's own
    messages ("stale since 12:03:10"), so an operator can match them up by eye.
    """
    return time.strftime("%H:%M:%S", time.localtime(at))


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, as this clock sees it."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall time; with speed > 1 virtual time runs that many times faster."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.time()
        self._m0 = time.monotonic()

    def now(self) -> float:
        return self._t0 + (time.monotonic() - self._m0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class FastClock:
    """Virtual time that only moves when someone sleeps or calls `advance`.

    Suitable where one task at a time sleeps (the engine loop); a sleep yields to the
    event loop once so other tasks still make progress.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
