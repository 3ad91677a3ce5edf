"""Who drives this release, and through which providers (safety rules 3 and 4).

A watch-only engine holds read-only facades, so a mutating call raises below the UI. A
driver that loses its lease is demoted here, in place: from then on it only watches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from relconsole.engine.events import EventBus
from relconsole.engine.journal import Journal
from relconsole.engine.results import WatchOnlyError
from relconsole.engine.state import EventKind
from relconsole.model import Mode
from relconsole.providers.base import FlagProvider, MetricsProvider, TrafficProvider
from relconsole.providers.readonly import ReadOnlyFlags, ReadOnlyMetrics, ReadOnlyTraffic

DriverProbe = Callable[[], tuple[str, float | None]]
Heartbeat = Callable[[], str | None]


class Drive:
    def __init__(
        self,
        mode: Mode,
        *,
        traffic: TrafficProvider,
        metrics: MetricsProvider | None,
        flags: FlagProvider | None,
        journal: Journal,
        bus: EventBus,
        driver: str,
        driver_since: float | None,
        driver_probe: DriverProbe | None,
        heartbeat: Heartbeat | None,
    ) -> None:
        self.mode = mode
        self.journal = journal
        self.bus = bus
        self.driver = driver
        self.driver_since = driver_since
        self._driver_probe = driver_probe
        # Keeps the driver's lease alive while it polls; returns why, once it is lost.
        self._heartbeat = heartbeat
        # The real providers behind the facades, for a watcher that takes the lease.
        self._real = (traffic, metrics, flags)
        self.lost = asyncio.Event()  # set on demotion, cleared when the lease is taken
        if mode is Mode.WATCH:
            traffic = ReadOnlyTraffic(traffic)
            metrics = ReadOnlyMetrics(metrics) if metrics is not None else None
            flags = ReadOnlyFlags(flags) if flags is not None else None
        self.traffic = traffic
        self.metrics = metrics
        self.flags = flags

    @property
    def driving(self) -> bool:
        return self.mode is Mode.DRIVE

    def require(self, what: str) -> None:
        if self.mode is Mode.WATCH:
            raise WatchOnlyError(f"watch-only: {self.driver} drives this release; cannot {what}")

    def renew(self) -> None:
        """Renew the lease; demote this console when someone else took it."""
        if self._heartbeat is not None and self.mode is Mode.DRIVE:
            lost = self._heartbeat()
            if lost:
                self.demote(lost)

    def refresh_driver(self) -> None:
        if self._driver_probe is not None:
            self.driver, self.driver_since = self._driver_probe()

    def take(self, heartbeat: Heartbeat, since: float | None) -> None:
        """This console took the free lease: from now on it drives (the reverse of
        `demote`), through the very provider objects it was built with."""
        self.mode = Mode.DRIVE
        self.traffic, self.metrics, self.flags = self._real
        self._heartbeat = heartbeat
        self.lost.clear()
        self.journal.read_only = False
        self.driver, self.driver_since = "you", since

    def demote(self, why: str) -> None:
        """Someone took the lease over: from now on this console only watches."""
        self.mode = Mode.WATCH
        self._real = (self.traffic, self.metrics, self.flags)
        self.traffic = ReadOnlyTraffic(self.traffic)
        if self.metrics is not None:
            self.metrics = ReadOnlyMetrics(self.metrics)
        if self.flags is not None:
            self.flags = ReadOnlyFlags(self.flags)
        self.journal.read_only = True
        self.journal.poll_new()  # the new driver's records are news from here on
        self.refresh_driver()
        self.lost.set()
        self.bus.emit(EventKind.LEASE, f"lease lost: {why} — this console is now watch-only")
