"""Read-only facades for watch-only consoles (safety rule 3).

A watch-only engine never holds the real provider objects' mutating methods: it holds
these wrappers, whose every mutating call raises. Hiding keys in the UI is cosmetic;
this is the enforcement.
"""

from __future__ import annotations

from collections.abc import Sequence

from relconsole.model import (
    CounterPair,
    Flag,
    MetricPair,
    MetricSpec,
    Route,
    Segment,
    TrafficState,
)
from relconsole.providers.base import (
    FlagProvider,
    MetricsProvider,
    ReadOnlyError,
    TrafficProvider,
    owns_steps,
    reads_counters,
    routes,
    targets_segments,
)


def _refuse(what: str) -> ReadOnlyError:
    return ReadOnlyError(f"watch-only: {what} is not allowed from a watching console")


class ReadOnlyMetrics:
    def __init__(self, inner: MetricsProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.counters_supported = reads_counters(inner)

    async def sample(self, metrics: Sequence[MetricSpec]) -> dict[str, MetricPair]:
        return await self._inner.sample(metrics)

    async def sample_counters(
        self, metrics: Sequence[MetricSpec], *, ago: float = 0.0
    ) -> dict[str, CounterPair]:
        if not self.counters_supported:
            return {}
        return await self._inner.sample_counters(metrics, ago=ago)  # type: ignore[attr-defined]

    async def history(
        self, metrics: Sequence[MetricSpec], seconds: float, step: float
    ) -> dict[str, list[MetricPair]]:
        return await self._inner.history(metrics, seconds, step)

    async def close(self) -> None:
        await self._inner.close()


class ReadOnlyTraffic:
    def __init__(self, inner: TrafficProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.controls_steps = owns_steps(inner)
        self.routes_supported = routes(inner)

    async def read(self) -> TrafficState:
        return await self._inner.read()

    async def set_weight(self, weight: int, *, reason: str) -> None:
        raise _refuse("changing traffic weight")

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        raise _refuse("changing traffic routes")

    # A controller's moves (Argo Rollouts' promote, abort, …) are refused alike.
    async def promote(self, *, full: bool, reason: str, actor: str) -> None:
        raise _refuse("promoting")

    async def abort(self, *, reason: str, actor: str) -> None:
        raise _refuse("aborting")

    async def pause(self, *, reason: str, actor: str) -> None:
        raise _refuse("pausing")

    async def resume(self, *, reason: str, actor: str) -> None:
        raise _refuse("resuming")

    async def close(self) -> None:
        await self._inner.close()


class ReadOnlyFlags:
    def __init__(self, inner: FlagProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.supports_rollout = inner.supports_rollout
        self.segments_supported = targets_segments(inner)

    async def list_flags(self) -> list[Flag]:
        return await self._inner.list_flags()

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        raise _refuse("changing a flag")

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        raise _refuse("changing a flag's rollout")

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        raise _refuse("changing a flag's cohorts")

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None:
        raise _refuse("changing a flag's cohorts")

    async def close(self) -> None:
        await self._inner.close()
