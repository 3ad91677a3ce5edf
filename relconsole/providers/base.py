"""The small Protocols every provider adapter implements.

A provider reports trouble by raising `ProviderError` with a message that is safe to
show (no secrets); the engine turns it into a value on screen. Metrics providers go
one step further and return a `Reading` with an error, because one bad metric must
not hide the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from relconsole.clock import Clock
from relconsole.model import (
    CounterPair,
    Flag,
    MetricPair,
    MetricSpec,
    ReleasePlan,
    TrafficState,
)


class ProviderError(Exception):
    """A provider call failed; the message is shown to the operator as is."""


class ReadOnlyError(ProviderError):
    """A mutating call reached a watch-only facade (safety rule 3)."""


@runtime_checkable
class MetricsProvider(Protocol):
    name: str

    async def sample(self, metrics: Sequence[MetricSpec]) -> dict[str, MetricPair]:
        """Current canary and baseline value of every metric; never raises for bad data."""
        ...

    async def history(
        self, metrics: Sequence[MetricSpec], seconds: float, step: float
    ) -> dict[str, list[MetricPair]]:
        """Recent values, oldest first, so sparklines are full from the first frame."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class CounterReader(Protocol):
    """What a metrics provider may add: the raw counters of metrics judged on counts.

    Optional: a provider without it has every metric judged on values (`reads_counters`).
    """

    async def sample_counters(
        self, metrics: Sequence[MetricSpec], *, ago: float = 0.0
    ) -> dict[str, CounterPair]:
        """Each count metric's (`MetricSpec.counts`) cumulative counters, per version.

        `ago` > 0 asks for them as they stood that many seconds ago (a console that
        attaches mid-step takes the step's start as its starting point, so a one-shot
        command judges the step's evidence, not one reading). Never raises for bad data:
        a version that could not be read has a `CounterSet` with `error`; an events
        selector with no series yet is an empty mapping.
        """
        ...


def reads_counters(provider: object) -> bool:
    """Whether a metrics provider can read raw counters (`CounterReader`).

    A wrapper that always has the method (the watch-only facade) says with
    `counters_supported` whether what it wraps has it.
    """
    return callable(getattr(provider, "sample_counters", None)) and bool(
        getattr(provider, "counters_supported", True))


@runtime_checkable
class TrafficProvider(Protocol):
    name: str

    async def read(self) -> TrafficState:
        """The weight the system really applies now, and server health where known."""
        ...

    async def set_weight(self, weight: int, *, reason: str) -> None:
        """Ask for a canary weight; the engine reads it back to verify."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class FlagProvider(Protocol):
    name: str
    supports_rollout: bool
    """False where the flag system keeps percentages its own way (no rollout dialog)."""

    async def list_flags(self) -> list[Flag]: ...

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None: ...

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class BuildContext:
    """What a provider factory may use besides its own settings."""

    plan: ReleasePlan
    clock: Clock
    versions: dict[str, str] = field(default_factory=dict)  # role -> version string
    # Providers that share one world (the simulator) find each other here.
    shared: dict[str, Any] = field(default_factory=dict)
