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
    Route,
    Segment,
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
class RouteTraffic(Protocol):
    """A traffic provider that routes by more than a weight: cohorts (ab), a mirror
    (shadow) or batches of servers updated in place (rolling); see `model.Route`.

    The engine calls `set_route` instead of `set_weight` for a release whose strategy
    needs it, and on rollback with `weight` 0 and an empty `Route()`, which must undo
    everything (cohorts removed, mirror off, done batches back on the old version). It
    returns once the change is applied and read back; `read()` reports the live
    `TrafficState.route`, which the engine compares with what it asked for.
    `action_timeout` (seconds), where present, bounds one call instead of
    release.call_timeout: a batch's deploy and health wait, a switch's drain.
    """

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None: ...


def routes(provider: object) -> bool:
    """Whether a traffic provider routes by more than a weight (`RouteTraffic`)."""
    said = getattr(provider, "routes_supported", None)  # the watch-only facade
    if said is not None:
        return bool(said)
    return isinstance(provider, RouteTraffic)


@runtime_checkable
class StepController(Protocol):
    """A traffic provider whose own controller owns the step plan (Argo Rollouts).

    Its `read()` carries `TrafficState.controller`, and the engine asks it to move instead
    of setting weights (`set_weight` refuses). Each call sends what the controller's own
    CLI sends, then reads the resource back and returns only once the controller has
    acted; it raises `ProviderError` saying what it saw when it could not verify that.
    `actor` ("alice@bastion") and `reason` are written on the resource for the audit.
    """

    async def promote(self, *, full: bool, reason: str, actor: str) -> None:
        """One step on (the plugin's `promote`), or to the end (`promote --full`)."""
        ...

    async def abort(self, *, reason: str, actor: str) -> None:
        """Send all traffic back to stable; verified once set and actual weight are 0."""
        ...

    async def pause(self, *, reason: str, actor: str) -> None: ...

    async def resume(self, *, reason: str, actor: str) -> None: ...


def owns_steps(provider: object) -> bool:
    """Whether a traffic provider's controller owns the step plan (`StepController`)."""
    # A wrapper (the watch-only facade) has the methods either way and says what it wraps.
    said = getattr(provider, "controls_steps", None)
    if said is not None:
        return bool(said)
    return isinstance(provider, StepController)


@runtime_checkable
class FlagProvider(Protocol):
    name: str
    supports_rollout: bool
    """False where the flag system keeps percentages its own way (no rollout dialog)."""

    async def list_flags(self) -> list[Flag]: ...

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None: ...

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class FlagTargeting(Protocol):
    """What a flag provider may add: a flag rolled out to a cohort (`Segment`) before or
    beside its percentage. Optional (`targets_segments`).

    `target` adds the segment, or replaces the one on the same attribute, as a rule that
    serves the flag's "on" variation to it; `untarget` removes the rule on that attribute.
    Everything else about the flag (its percentage, other rules, fields this code does not
    know) is kept. `list_flags` then reads `Flag.segments` back for the engine to verify.
    """

    async def target(self, key: str, segment: Segment, *, reason: str) -> None: ...

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None: ...


def targets_segments(provider: object) -> bool:
    said = getattr(provider, "segments_supported", None)  # the watch-only facade
    if said is not None:
        return bool(said)
    return isinstance(provider, FlagTargeting)


@dataclass
class BuildContext:
    """What a provider factory may use besides its own settings."""

    plan: ReleasePlan
    clock: Clock
    versions: dict[str, str] = field(default_factory=dict)  # role -> version string
    # Providers that share one world (the simulator) find each other here.
    shared: dict[str, Any] = field(default_factory=dict)
    # Who runs this console ("alice@bastion"), for providers that write an audit trail
    # on the system they change (Argo Rollouts: an Event and an annotation).
    actor: str = ""
