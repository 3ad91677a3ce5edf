"""When the traffic provider's controller owns the plan (Argo Rollouts): its moves, and
how each read brings the engine in line with what the controller did.

The controller is the truth here. The engine asks it to move (promote, abort, pause,
resume) instead of setting weights, and follows it: a step the controller took by itself
(a timed pause ran out, an analysis passed) is announced and journalled as the
controller's; a pause, resume or abort made outside relconsole (kubectl, Argo CD, an
AnalysisRun that failed) is adopted and said, never fought.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from relconsole.engine.context import EngineContext
from relconsole.engine.results import call_provider
from relconsole.engine.state import EventKind, RollbackCause
from relconsole.model import Actor, ControllerState, Phase, TrafficState
from relconsole.providers.base import StepController, TrafficProvider, owns_steps

# An action waits for the controller to act (the provider verifies it by reading back);
# this is the least time it gets, whatever release.call_timeout says.
MIN_ACTION_TIMEOUT = 30.0


def controlled(traffic: TrafficProvider) -> bool:
    return owns_steps(traffic)


def _action_timeout(ctx: EngineContext, traffic: object) -> float:
    own = getattr(traffic, "action_timeout", None)
    if isinstance(own, int | float) and own > 0:
        return float(own)
    return max(ctx.plan.call_timeout, MIN_ACTION_TIMEOUT)


def acting_as(ctx: EngineContext, actor: Actor | None) -> str:
    """Who the controller's audit names: the person who asked, or the engine for them."""
    return str(actor if actor is not None else Actor.engine_for(ctx.actor))


async def send(
    ctx: EngineContext, intent: str, *, reason: str, actor: Actor | None
) -> TrafficState:
    """One controller move for `intent`, then a read; raises CallFailed when either fails.

    The provider returns only once the controller has acted (its own read-back); the
    read after it is the engine's, so the screen shows what the controller did.
    """
    traffic = ctx.drive.traffic
    who = acting_as(ctx, actor)
    mover: StepController = traffic  # type: ignore[assignment]
    call: Awaitable[None]
    match intent:
        case "advance":
            call, what = mover.promote(full=False, reason=reason, actor=who), "promote"
        case "promote":
            call, what = mover.promote(full=True, reason=reason, actor=who), "promote --full"
        case "rollback" | "rollback.retry":
            call, what = mover.abort(reason=reason, actor=who), "abort"
        case "pause":
            call, what = mover.pause(reason=reason, actor=who), "pause"
        case "resume":
            call, what = mover.resume(reason=reason, actor=who), "resume"
        case _:
            raise ValueError(f"no controller move for {intent!r}")
    await call_provider("traffic", what, call, _action_timeout(ctx, traffic))
    read = await ctx.call("traffic", "read back", traffic.read())
    ctx.obs.traffic = read
    ctx.state.weight = read.canary_weight
    ctx.state.expected_weight = read.canary_weight
    return read


def where(c: ControllerState | None) -> str:
    """'Argo Rollouts: Paused — CanaryPauseStep', for messages and the journal."""
    if c is None:
        return "the controller"
    return f"{c.system}: {c.phase}" + (f" — {c.message}" if c.message else "")


class ControllerFollower:
    """Reconciles the engine with each read of a controller-owned release.

    Edge-triggered on the controller's own pause flag: a pause relconsole asked for but
    could not send leaves the release paused here, and only a change seen on the
    controller (someone paused or resumed it there) moves the engine's phase.
    """

    def __init__(self, ctx: EngineContext, changes: Any) -> None:
        self.ctx = ctx
        self.changes = changes
        self._paused_seen: bool | None = None

    def follow(self, read: TrafficState) -> None:
        ctx, state = self.ctx, self.ctx.state
        c = read.controller
        state.weight = read.canary_weight
        state.expected_weight = read.canary_weight
        if c is None or state.rolling_back or state.phase is Phase.ROLLED_BACK:
            self._paused_seen = c.manually_paused if c is not None else None
            return
        watching = not ctx.drive.driving
        if c.aborted:
            self._aborted_outside(c, record=not watching)
            return
        index = ctx.steps.index_for_weight(read.canary_weight)
        if index != state.step_index:
            before = state.journal_view()
            self.changes.enter_step(index)
            self.hold_promotion(c)
            if c.manually_paused:
                state.phase = Phase.PAUSED
                state.pause_reason = state.pause_reason or f"paused in {c.system}"
            if not watching:
                ctx.record.outcome("advance", f"by {c.system}", before,
                                   f"verified: {where(c)}", None)
            self.changes.announce_step(c.system, f"by {c.system}")
        if c.fully_promoted and state.phase in (Phase.PROGRESSING, Phase.PENDING):
            before = state.journal_view()
            state.phase = Phase.PROMOTED
            if not watching:
                ctx.record.outcome("promote", f"by {c.system}", before,
                                   f"verified: {where(c)}", None)
            ctx.emit(EventKind.PROMOTED,
                     f"PROMOTED: canary at {state.weight}% ({where(c)})", actor=c.system)
        seen, self._paused_seen = self._paused_seen, c.manually_paused
        if seen is None or seen == c.manually_paused or watching:
            return
        if c.manually_paused and state.phase in (Phase.PROGRESSING, Phase.PENDING):
            self.changes.set_paused(f"paused in {c.system} (outside relconsole)")
        elif not c.manually_paused and state.phase is Phase.PAUSED:
            before = state.journal_view()
            state.phase = Phase.PROGRESSING
            state.pause_reason = ""
            ctx.record.outcome("resume", f"resumed in {c.system} (outside relconsole)",
                               before, "verified", None)
            ctx.emit(EventKind.RESUME, f"resumed in {c.system} (outside relconsole)",
                     actor=c.system)

    def hold_promotion(self, c: ControllerState | None) -> None:
        """At the plan's end the release is promoted only once the controller says so
        (all pods of the new version available), not when the last step begins."""
        state = self.ctx.state
        if c is not None and state.phase is Phase.PROMOTED and not c.fully_promoted:
            state.phase = Phase.PROGRESSING

    def _aborted_outside(self, c: ControllerState, *, record: bool) -> None:
        """The controller shows an abort relconsole did not send: the release is over."""
        ctx, state = self.ctx, self.ctx.state
        reason = f"aborted in {c.system}: {c.message or c.phase}"
        before = state.journal_view()
        state.rollback.cause = RollbackCause(
            reason=reason, at=ctx.clock.now(), actor=c.system, weight=before["weight"],
            step_index=state.step_index, gates=tuple(ctx.obs.gates),
        )
        state.phase = Phase.ROLLED_BACK
        state.step_index = -1
        state.rollback.reason = reason
        state.pause_reason = ""
        if record:
            ctx.record.soft("rollback", reason=reason, before=before,
                            after=state.journal_view(),
                            outcome="verified (aborted outside relconsole)")
        ctx.emit(EventKind.ROLLED_BACK,
                 f"rolled back: {reason} — canary at {state.weight}%", actor=c.system)
