"""Rollback: kill the release's flags, send the canary's traffic back, verify, retry.

A rollback is never reported done until the traffic provider reads 0 % and every release
flag reads off; until then it is retried with backoff (1, 2, 4 … rollback_retry_max
seconds) and shown loudly as ROLLBACK FAILED (safety rule 2).
"""

from __future__ import annotations

from relconsole.engine import controller
from relconsole.engine.context import EngineContext
from relconsole.engine.flag_actions import FlagActions, FlagChange
from relconsole.engine.journal import JournalError
from relconsole.engine.results import ActionResult, CallFailed
from relconsole.engine.state import EventKind, RollbackCause
from relconsole.model import Actor, Phase, Route
from relconsole.providers.base import RouteTraffic

ROLLED_BACK = "rolled back: canary at 0% (verified)"


def backoff(attempts: int, retry_max: float) -> float:
    """Seconds before the next attempt: 1, 2, 4 … capped at retry_max."""
    return min(2.0 ** (attempts - 1), retry_max)


class Rollback:
    def __init__(self, ctx: EngineContext, flags: FlagActions) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.flags = flags

    def flags_to_kill(self) -> list[str]:
        plan = self.ctx.plan
        if not plan.kill_flags_on_rollback or self.ctx.drive.flags is None:
            return []
        return list(dict.fromkeys(plan.release_flags))

    def resume_pending(self, reason: str, now: float) -> None:
        """A rollback found unfinished on restart: attempt it on the first poll."""
        self.state.phase = Phase.ROLLING_BACK
        self.state.rollback.reason = reason
        self.state.rollback.next_at = now
        self.state.rollback.flags_pending = self.flags_to_kill()

    async def start(
        self, reason: str, *, automatic: bool = False, actor: Actor | None = None
    ) -> ActionResult:
        ctx = self.ctx
        before = self.state.journal_view()
        data = ctx.obs.gate_data()
        try:
            ctx.record.write(
                "rollback", reason=reason, before=before, after={"weight": 0}, data=data,
                actor=None if automatic else actor,
            )
        except JournalError as exc:
            return ctx.refuse(f"rollback refused: journal cannot be written ({exc})")
        rollback = self.state.rollback
        who = "engine" if automatic else ctx.who(actor)
        # The verdicts as they stand now: a poll later the canary has no traffic and
        # every gate reads "no data", which must not wash away why this happened.
        rollback.cause = RollbackCause(
            reason=reason, at=ctx.clock.now(), actor=who, weight=before["weight"],
            step_index=self.state.step_index, gates=tuple(ctx.obs.gates),
        )
        self.state.phase = Phase.ROLLING_BACK
        rollback.reason = reason
        rollback.error = ""
        rollback.attempts = 0
        rollback.flags_pending = self.flags_to_kill()
        ctx.emit(EventKind.ROLLBACK, f"rolling back: {reason}", actor=who, **data)
        ctx.publish()
        return await self.attempt(first_intent_written=True, actor=None if automatic else actor)

    async def attempt(
        self, *, first_intent_written: bool = False, actor: Actor | None = None
    ) -> ActionResult:
        """One try at 0 %. A try someone asked for (the first, or `r` pressed again) is
        theirs (`actor`); the retries that come due are the engine's own (no actor), on
        behalf of whoever holds the lease."""
        ctx = self.ctx
        state = self.state
        rollback = state.rollback
        rollback.attempts += 1
        intent = "rollback" if first_intent_written else "rollback.retry"
        before = state.journal_view()
        if not first_intent_written:
            ctx.record.soft(intent, reason=rollback.reason, before=before, after={"weight": 0},
                            actor=actor)
        # Flags first: a kill switch acts on the next evaluation everywhere, while
        # traffic drains. Each kill is journalled and verified on its own; one that fails
        # is retried with the traffic on the next attempt and keeps the rollback unverified.
        flag_failure = await self._kill_flags()
        failure: str | None = None
        traffic = ctx.drive.traffic
        try:
            if controller.controlled(traffic):
                # The controller's own abort (Argo Rollouts), verified by its provider
                # once set and actual weight are 0; the read below checks it again.
                read = await controller.send(ctx, intent, reason=rollback.reason, actor=actor)
            elif ctx.plan.routed:
                # Everything the strategy turned on comes off: cohorts out of the maps,
                # the mirror off, done batches back on the old version.
                mover: RouteTraffic = traffic  # type: ignore[assignment]
                await ctx.move("set route back to stable",
                               mover.set_route(0, Route(), reason=rollback.reason))
                read = await ctx.call("traffic", "read back", traffic.read())
            else:
                await ctx.move("set weight 0%", traffic.set_weight(0, reason=rollback.reason))
                read = await ctx.call("traffic", "read back", traffic.read())
            ctx.obs.traffic = read
            state.weight = read.canary_weight
            state.route = read.route
            c = read.controller
            if read.canary_weight != 0:
                failure = f"provider reports canary at {read.canary_weight}%"
            elif read.route:
                failure = f"provider still routes {read.route.text()} to the new version"
            elif c is not None and c.set_weight not in (None, 0):
                failure = f"{c.system} still sets the canary at {c.set_weight}%"
        except CallFailed as exc:
            failure = str(exc)
        if failure is None and flag_failure is not None:
            # Traffic is back, flags are not: say so, so the journal shows which half held.
            ctx.record.outcome(intent, rollback.reason, before,
                               "traffic verified at 0%; release flags not yet verified off",
                               actor)
        if flag_failure is not None:
            failure = f"{failure}; {flag_failure}" if failure else flag_failure
        if failure is None:
            state.phase = Phase.ROLLED_BACK
            state.expected_weight = 0
            state.expected_route = Route()
            state.step_index = -1
            state.step_label = ""
            rollback.next_at = None
            rollback.error = ""
            ctx.health.note("rollback", None)
            ctx.record.outcome(intent, rollback.reason, before, "verified", actor)
            ctx.emit(EventKind.ROLLED_BACK,
                     f"rolled back: canary at 0% (verified) — {rollback.reason}")
            state.last_error = ""
            return ActionResult(True, ROLLED_BACK)
        wait = backoff(rollback.attempts, ctx.plan.rollback_retry_max)
        state.phase = Phase.ROLLBACK_FAILED
        rollback.next_at = ctx.clock.now() + wait
        rollback.error = failure
        state.expected_weight = None
        message = (
            f"ROLLBACK NOT VERIFIED (attempt {rollback.attempts}): {failure}; "
            f"retrying in {wait:g}s"
        )
        ctx.health.note("rollback", message)
        return ctx.fail(intent, rollback.reason, before, message, actor,
                        outcome=f"failed: {failure}")

    async def _kill_flags(self) -> str | None:
        """Kill every release flag still pending; None when all are verified off."""
        pending = self.state.rollback.flags_pending
        failed: list[str] = []
        for key in list(pending):
            change = FlagChange.enable(key, False, f"rollback: {self.state.rollback.reason}")
            result = await self.flags.change(change, None)
            if result.ok:
                pending.remove(key)
            else:
                failed.append(result.message)
        if not failed:
            return None
        return "flags not verified off: " + "; ".join(failed)
