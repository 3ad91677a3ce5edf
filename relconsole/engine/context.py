"""The parts of one engine that its action modules share, named and typed.

`changes`, `rollback`, `flag_actions` and `follow` each take this instead of the whole
engine: what they may touch is listed here, and the facade in `release` builds it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from relconsole.clock import Clock
from relconsole.engine.drive import Drive
from relconsole.engine.events import EventBus
from relconsole.engine.observe import Observations, ProviderHealth
from relconsole.engine.progress import ReleaseState
from relconsole.engine.record import Recorder
from relconsole.engine.results import ActionResult, call_provider
from relconsole.engine.state import EventKind
from relconsole.engine.steps import StepPlan
from relconsole.model import ENGINE_USER, Actor, ReleasePlan

T = TypeVar("T")


@dataclass
class EngineContext:
    plan: ReleasePlan
    steps: StepPlan
    clock: Clock
    actor: Actor
    state: ReleaseState
    obs: Observations
    health: ProviderHealth
    drive: Drive
    record: Recorder
    bus: EventBus
    publish: Callable[[], None]

    async def call(self, source: str, what: str, coro: Awaitable[T]) -> T:
        return await call_provider(source, what, coro, self.plan.call_timeout)

    async def move(self, what: str, coro: Awaitable[T]) -> T:
        """A traffic change: bounded by the provider's own `action_timeout` where it has
        one (a blue-green drain, a rolling batch's deploys) instead of call_timeout."""
        own = getattr(self.drive.traffic, "action_timeout", None)
        limit = float(own) if isinstance(own, int | float) and own > 0 else self.plan.call_timeout
        return await call_provider("traffic", what, coro, limit)

    def emit(self, kind: EventKind, message: str, actor: str = "", **data: Any) -> None:
        self.bus.emit(kind, message, actor=actor, **data)

    def who(self, actor: Actor | None) -> str:
        """Who an event names: the person who asked, or the engine acting on its rules."""
        return str(actor) if actor is not None else ENGINE_USER

    def refuse(self, message: str) -> ActionResult:
        """An intent not taken: nothing was changed, and the operator is told why."""
        self.state.last_error = message
        self.emit(EventKind.REFUSED, message)
        self.publish()
        return ActionResult(False, message)

    def fail(
        self, intent: str, reason: str, before: dict[str, Any], message: str,
        actor: Actor | None, *, outcome: str | None = None,
    ) -> ActionResult:
        """An action tried and not verified: journalled, shown, and returned as such."""
        self.record.outcome(intent, reason, before, outcome or f"failed: {message}", actor)
        self.state.last_error = message
        self.emit(EventKind.ERROR, message)
        return ActionResult(False, message)
