"""Verified changes of the canary weight: advance, promote, pause, and what a read says.

Safety rule 2 for traffic: journal the intent, call the provider, read the weight back,
journal the verified outcome. A change that cannot be verified is never reported done;
one that landed in part, or keeps failing, pauses the release for a human.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from relconsole.engine import controller, policy
from relconsole.engine.context import EngineContext
from relconsole.engine.journal import JournalError
from relconsole.engine.results import ActionResult, CallFailed
from relconsole.engine.state import EventKind
from relconsole.model import Actor, Mode, Phase, Route, TrafficState
from relconsole.providers.base import RouteTraffic

# Failed step changes in a row before the engine stops trying and pauses.
ADVANCE_FAILURE_LIMIT = 3

# What must be done before the first traffic step (the expand migrations): the refusal
# or failure to return instead of the step, or None when traffic may move.
BeforeFirstStep = Callable[[Actor | None], Awaitable[ActionResult | None]]


def describe(weight: int, route: Route | None, strategy: str) -> str:
    """Where traffic is, in the strategy's words: 'canary at 10%', 'cohort beta-users,
    canary at 0%', '2 batches (50%)'."""
    if route is None:
        return f"{weight}%"
    if strategy == "rolling":
        return f"{route.text() or 'no batch'} updated ({weight}% of traffic)"
    text = route.text()
    return f"{text}, canary at {weight}%" if text else f"canary at {weight}%"


class WeightChanges:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.follower = controller.ControllerFollower(ctx, self)
        self.before_first_step: BeforeFirstStep | None = None
        # A rolling batch that failed (a server not healthy on the new version) is
        # evidence against the version, not a flaky call: the facade rolls back.
        self.on_failed_batch: Callable[[str], Awaitable[None]] | None = None

    @property
    def controlled(self) -> bool:
        """Whether the traffic provider's controller owns the plan (Argo Rollouts)."""
        return controller.controlled(self.ctx.drive.traffic)

    # ------------------------------------------------------------------ steps

    def enter_step(self, index: int) -> None:
        step = self.ctx.steps.step(index)
        self.state.step_index = index
        self.state.bake_elapsed = 0.0
        self.ctx.obs.new_step()
        if step is None:
            # A read below the first step's weight: the release has not started.
            self.state.phase = Phase.PENDING
        else:
            # Done only at the plan's end: blue-green's switch is at 100 % and still bakes.
            last = self.ctx.steps.next_index(index) is None
            self.state.phase = (Phase.PROMOTED if step.weight >= 100 and last
                                else Phase.PROGRESSING)
        self.state.step_label = step.label if step is not None else ""
        self.state.pause_reason = ""

    def announce_step(self, actor: str, how: str, **data: Any) -> None:
        promoted = self.state.phase is Phase.PROMOTED
        plan = self.ctx.plan
        where = (describe(self.state.weight, self.state.route, plan.strategy) if plan.routed
                 else f"canary at {self.state.weight}%")
        self.ctx.emit(
            EventKind.PROMOTED if promoted else EventKind.STEP,
            f"{self.ctx.steps.label(self.state.step_index)}: {where} ({how})"
            + (" — PROMOTED" if promoted else ""),
            actor=actor,
            step=self.state.step_index + 1,
            weight=self.state.weight,
            **data,
        )

    def set_paused(self, reason: str, actor: Actor | None = None) -> None:
        before = self.state.journal_view()
        self.state.phase = Phase.PAUSED
        self.state.pause_reason = reason
        self.ctx.emit(EventKind.PAUSE, f"paused: {reason}", actor=str(actor or "engine"))
        self.ctx.record.soft(
            "pause",
            reason=reason,
            before=before,
            after=self.state.journal_view(),
            outcome="verified",
            data=self.ctx.obs.gate_data(),
            actor=actor,
        )

    # ------------------------------------------------------------------ intents

    async def advance(
        self, reason: str, *, automatic: bool = False, actor: Actor | None = None,
        skip_bake: bool = False,
    ) -> ActionResult:
        """One step forward, with the engine lock held by the caller.

        Inside a bake it is refused unless `skip_bake` (with a reason) says to cut the
        bake short; such a step is journalled as an early advance.
        """
        state = self.state
        refusal = self.advance_refusal(skip_bake=skip_bake, reason=reason)
        if refusal is not None:
            return self.ctx.refuse(refusal)
        nxt = self.ctx.steps.next_index(state.step_index)
        step = self.ctx.steps.step(nxt) if nxt is not None else None
        assert nxt is not None and step is not None  # advance_refusal checked both
        reason = reason or "manual advance"
        data: dict[str, Any] = dict(self.ctx.obs.gate_data()) if automatic else {}
        left = policy.bake_left(state, self.ctx.steps)
        # Before the first step no gate has judged the canary: nothing is cut short (a
        # canary answering health checks at 0 % can have counts, but not a step's worth).
        short = ([g for g in self.ctx.obs.gates if g.needs_more_data]
                 if state.phase is not Phase.PENDING else [])
        early = ""
        if left > 0 or short:
            current = self.ctx.steps.step(state.step_index)
            bake = current.bake if current is not None else 0.0
            data["early_advance"] = {"bake": bake, "baked": state.bake_elapsed, "left": left}
            said = [f"{left:.0f}s of the {bake:.0f}s bake skipped"] if left > 0 else []
            if short:
                # What the gates had not yet shown, for a reviewer of the early step.
                data["early_advance"]["needs_more_data"] = {g.name: g.reason for g in short}
                said.append("gates still needing data: " + ", ".join(g.name for g in short))
            early = "early advance: " + "; ".join(said)
        who = None if automatic else actor
        failed = await self.first_step_ready(who)
        if failed is not None:
            return failed
        # The outcome says where the release stood before the action, not halfway
        # through it, so its record reads whole: 'step 1→2, weight 1→10'.
        before = state.journal_view()
        result = await self.apply_weight(
            step.weight, intent="advance", reason=reason, actor=who, data=data,
            route=step.route,
        )
        if not result.ok:
            return result
        # A controller may walk on past the step it was asked for (a setWeight after a
        # pause): the release is where its read says.
        if self.controlled:
            read = self.ctx.obs.traffic
            self.enter_step(self.ctx.steps.index_for_weight(
                state.weight, read.route if read is not None else None))
            self.follower.hold_promotion(read.controller if read is not None else None)
        else:
            self.enter_step(nxt)
        outcome = f"verified — {early}" if early else "verified"
        self.ctx.record.outcome("advance", reason, before, outcome, who)
        self.announce_step(
            str(who or ("engine" if automatic else self.ctx.actor)),
            f"verified, {early}" if early else "verified",
            **({"gates": self.ctx.obs.gate_data()["gates"]} if automatic else {}),
        )
        state.last_error = ""
        return ActionResult(True, f"{result.message} — {early}") if early else result

    async def first_step_ready(self, actor: Actor | None) -> ActionResult | None:
        """Before traffic first moves: what must be done first (the expand migrations).
        A failure pauses the release with its reason; no traffic has moved."""
        if self.state.phase is not Phase.PENDING or self.before_first_step is None:
            return None
        failed = await self.before_first_step(actor)
        if failed is not None:
            self.set_paused(f"{failed.message} — no traffic moved; fix it, then resume",
                            actor)
        return failed

    def promote_refusal(self) -> str | None:
        blind = policy.blind_reason(self.ctx.health.problems, self.state.expected_weight)
        window = self.window_closed() if self.state.phase is Phase.PENDING else None
        if window is not None:
            return (f"promote refused: the release may not start now: {window}; starting "
                    "anyway must be asked for, with a reason (--override-window --reason TEXT)")
        return policy.promote_refusal(self.state, self.ctx.obs.gates, blind)

    def window_closed(self) -> str | None:
        """Why the release may not start or move on by itself now (its deployment
        windows and freezes), unless this console was told to override them."""
        if self.state.window_override:
            return None
        return self.ctx.plan.schedule.closed(self.ctx.clock.now())

    def step_hold(self) -> str | None:
        """Why the next step may not begin yet (its `at:` is still to come)."""
        nxt = self.ctx.steps.next_index(self.state.step_index)
        step = self.ctx.steps.step(nxt) if nxt is not None else None
        if step is None or not step.at:
            return None
        return self.ctx.plan.schedule.step_hold(step.at, self.ctx.clock.now())

    def hold(self) -> str | None:
        """What keeps the release from moving on by itself now; None when nothing."""
        if self.state.phase not in (Phase.PENDING, Phase.PROGRESSING):
            return None
        return self.window_closed() or self.step_hold()

    def advance_refusal(self, *, skip_bake: bool, reason: str) -> str | None:
        blind = policy.blind_reason(self.ctx.health.problems, self.state.expected_weight)
        return policy.advance_refusal(self.state, self.ctx.obs.gates, self.ctx.steps, blind,
                                      skip_bake=skip_bake, reason=reason,
                                      window=self.window_closed(),
                                      step_hold=self.step_hold())

    async def promote(self, reason: str, actor: Actor | None) -> ActionResult:
        """Straight to 100 %, with the engine lock held by the caller."""
        state = self.state
        refusal = self.promote_refusal()
        if refusal is not None:
            return self.ctx.refuse(refusal)
        reason = reason or "promoted by operator"
        failed = await self.first_step_ready(actor)
        if failed is not None:
            return failed
        before = state.journal_view()
        last = self.ctx.steps.step(self.ctx.steps.last_index)
        result = await self.apply_weight(100, intent="promote", reason=reason, actor=actor,
                                         data=self.ctx.obs.gate_data(),
                                         route=last.route if last is not None else None)
        if result.ok and self.controlled:
            read = self.ctx.obs.traffic or TrafficState(state.weight)
            self.enter_step(self.ctx.steps.last_index)
            self.follower.hold_promotion(read.controller)
            self.ctx.record.outcome("promote", reason, before, result.message, actor)
            self.announce_step(self.ctx.who(actor), "promote --full, verified")
            return result
        if result.ok:
            self.enter_step(self.ctx.steps.last_index)
            self.ctx.record.outcome("promote", reason, before, "verified", actor)
            self.ctx.emit(EventKind.PROMOTED, "PROMOTED: canary at 100% (verified)",
                          actor=self.ctx.who(actor))
        return result

    def pause_refusal(self) -> str | None:
        if self.state.phase not in (Phase.PROGRESSING, Phase.PENDING):
            return f"pause refused: release is {self.state.phase.label.lower()}"
        return None

    def resume_refusal(self) -> str | None:
        if self.state.phase is not Phase.PAUSED:
            return f"resume refused: release is {self.state.phase.label.lower()}"
        return None

    async def pause(self, reason: str, actor: Actor | None) -> ActionResult:
        state = self.state
        refusal = self.pause_refusal()
        if refusal is not None:
            return self.ctx.refuse(refusal)
        try:
            self.ctx.record.write("pause", reason=reason or "paused by operator",
                                  before=state.journal_view(), after={"phase": "paused"},
                                  actor=actor)
        except JournalError as exc:
            return self.ctx.refuse(f"pause refused: journal cannot be written ({exc})")
        if self.controlled:
            failed = await self._controller_move("pause", reason or "paused by operator", actor)
            if failed is not None:
                return failed
        self.set_paused(reason or "paused by operator", actor or self.ctx.actor)
        return ActionResult(True, "paused")

    async def resume(self, reason: str, actor: Actor | None) -> ActionResult:
        state = self.state
        refusal = self.resume_refusal()
        if refusal is not None:
            return self.ctx.refuse(refusal)
        before = state.journal_view()
        try:
            self.ctx.record.write("resume", reason=reason or "resumed by operator",
                                  before=before, after={"phase": "progressing"}, actor=actor)
        except JournalError as exc:
            return self.ctx.refuse(f"resume refused: journal cannot be written ({exc})")
        if self.controlled:
            failed = await self._controller_move("resume", reason or "resumed by operator",
                                                 actor)
            if failed is not None:
                return failed
        state.phase = Phase.PENDING if state.step_index < 0 else Phase.PROGRESSING
        state.pause_reason = ""
        # Give missing data a fresh allowance; failures keep counting.
        self.ctx.obs.forgive_inconclusive()
        self.ctx.health.forgive_dark_polls()
        self.ctx.record.outcome("resume", reason, before, "verified", actor)
        self.ctx.emit(EventKind.RESUME, f"resumed{': ' + reason if reason else ''}",
                      actor=self.ctx.who(actor))
        return ActionResult(True, "resumed")

    async def auto_pause(self, reason: str) -> None:
        """The engine's own pause (a gate failing, data missing). A controller that owns
        the plan is paused too, or it would walk on through its timed steps while the
        screen says paused; if that cannot be sent, the release is paused here and says
        so."""
        if self.controlled:
            try:
                await controller.send(self.ctx, "pause", reason=reason, actor=None)
            except CallFailed as exc:
                c = self.ctx.steps.controller
                reason += f" — {c.system if c else 'the controller'} NOT paused: {exc}"
        self.set_paused(reason)

    async def _controller_move(
        self, intent: str, reason: str, actor: Actor | None
    ) -> ActionResult | None:
        """Pause or resume on the controller; the failure to return, or None when done."""
        before = self.state.journal_view()
        try:
            await controller.send(self.ctx, intent, reason=reason, actor=actor)
        except CallFailed as exc:
            return self.ctx.fail(intent, reason, before, f"{intent} not verified: {exc}", actor)
        return None

    # ------------------------------------------------------------------ the protocol

    async def apply_weight(
        self, weight: int, *, intent: str, reason: str, actor: Actor | None,
        data: dict[str, Any], route: Route | None = None,
    ) -> ActionResult:
        """Journal → call → read back → journal (safety rule 2).

        A strategy that routes by more than a weight (ab, rolling, shadow) moves with
        `set_route` and is verified on its route too; rolling on its route alone (its
        weight is the share of servers already updated, which health moves about).
        """
        state = self.state
        before = state.journal_view()
        routed = self.ctx.plan.routed
        route = route if route is not None else Route()
        wanted: dict[str, Any] = {"weight": weight}
        if routed:
            wanted["route"] = route.text() or "none"
        try:
            self.ctx.record.write(
                intent, reason=reason, before=before, after=wanted, data=data,
                actor=actor,
            )
        except JournalError as exc:
            return self.ctx.refuse(f"{intent} refused: journal cannot be written ({exc})")
        if self.controlled:
            return await self._apply_controller(weight, intent=intent, reason=reason,
                                                actor=actor)
        traffic = self.ctx.drive.traffic
        asked = describe(weight, route if routed else None, self.ctx.plan.strategy)
        try:
            if routed:
                mover: RouteTraffic = traffic  # type: ignore[assignment]
                await self.ctx.move(f"set {asked}", mover.set_route(weight, route,
                                                                     reason=reason))
            else:
                await self.ctx.move(f"set weight {weight}%",
                                    traffic.set_weight(weight, reason=reason))
            read = await self.ctx.call("traffic", "read back", traffic.read())
        except CallFailed as exc:
            # The change may or may not have landed. One more read tells a change that
            # landed in part (one of two servers) from one that did not land at all.
            seen = await self.read_quietly()
            seen_read = self.ctx.obs.traffic if seen is not None else None
            landed = seen_read is not None and self._at(seen_read, weight, route)
            mismatch = seen_read is not None and not landed and not self._at(
                seen_read, before["weight"], state.expected_route)
            state.expected_weight = seen if seen is not None and not landed else None
            if seen_read is not None and not landed:
                state.expected_route = seen_read.route
            message = f"{intent} to {asked} not verified: {exc}"
            if mismatch and seen_read is not None:
                message += f"; provider reports {self._shown(seen_read)}"
            result = self.ctx.fail(intent, reason, before, message, actor)
            if (self.ctx.plan.strategy == "rolling" and not landed and route.batches
                    and self.on_failed_batch is not None):
                await self.on_failed_batch(message)
                return result
            # A read showing what was asked means only the answer was lost: the next
            # poll verifies the change.
            if not landed:
                self.after_failed_change(message, mismatch=mismatch)
            return result
        self.ctx.obs.traffic = read
        state.weight = read.canary_weight
        state.route = read.route
        if not self._at(read, weight, route):
            # What the provider shows is known, just not what was asked: adopting it keeps
            # a later read from passing it off as a verified step.
            state.expected_weight = read.canary_weight
            state.expected_route = read.route
            message = (f"{intent} to {asked} not verified: provider reports "
                       f"{self._shown(read)}")
            result = self.ctx.fail(intent, reason, before, message, actor)
            self.after_failed_change(message, mismatch=True)
            return result
        state.expected_weight = read.canary_weight
        state.expected_route = read.route
        state.advance_failures = 0
        if not routed:
            return ActionResult(True, f"{intent}: canary at {weight}% (verified)")
        return ActionResult(True, f"{intent}: {self._shown(read)} (verified)")

    def _at(self, read: TrafficState, weight: int, route: Route) -> bool:
        """Whether a read is where a change asked the release to be."""
        if not self.ctx.plan.routed:
            return read.canary_weight == weight
        if self.ctx.plan.strategy == "rolling":
            return read.route.same(route)
        return read.canary_weight == weight and read.route.same(route)

    def _shown(self, read: TrafficState) -> str:
        return describe(read.canary_weight, read.route if self.ctx.plan.routed else None,
                        self.ctx.plan.strategy)

    async def _apply_controller(
        self, weight: int, *, intent: str, reason: str, actor: Actor | None
    ) -> ActionResult:
        """Advance or promote through the controller: it moves the weight, and the
        provider returns once the controller has acted (its read-back verifies)."""
        state = self.state
        before = state.journal_view()
        try:
            read = await controller.send(self.ctx, intent, reason=reason, actor=actor)
        except CallFailed as exc:
            # Whatever the controller did is what its next read says; nothing is assumed.
            await self.read_quietly()
            message = f"{intent} not verified: {exc}"
            result = self.ctx.fail(intent, reason, before, message, actor)
            self.after_failed_change(message, mismatch=False)
            return result
        state.advance_failures = 0
        c = read.controller
        shown = controller.where(c)
        if c is not None and c.set_weight is not None and c.set_weight != read.canary_weight:
            shown += f"; set {c.set_weight}%, actual {read.canary_weight}%"
        return ActionResult(True, f"{intent}: verified — {shown}")

    async def read_quietly(self) -> int | None:
        """The live weight, or None when the provider cannot say."""
        try:
            read = await self.ctx.call("traffic", "read back", self.ctx.drive.traffic.read())
        except CallFailed:
            return None
        self.ctx.obs.traffic = read
        self.state.weight = read.canary_weight
        self.state.route = read.route
        return read.canary_weight

    def after_failed_change(self, message: str, *, mismatch: bool) -> None:
        """Pause after a step change that was not verified, when it will not mend itself.

        A read-back that disagrees (`mismatch`: one of two servers changed, a provider
        that ignores the call) does not mend itself, and neither does a call that keeps
        failing: a human looks before anything else moves.
        """
        state = self.state
        if mismatch:
            state.advance_failures = 0
        else:
            state.advance_failures += 1
            if state.advance_failures < ADVANCE_FAILURE_LIMIT:
                return
            state.advance_failures = 0
        if state.phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED):
            self.set_paused(f"{message} — check the traffic provider, then resume")

    def observe_weight(self, weight: int) -> None:
        """Reconcile what the provider reports with what this engine set."""
        state = self.state
        steps = self.ctx.steps
        read = self.ctx.obs.traffic
        if read is not None and read.controller is not None:
            self.follower.follow(read)
            return
        state.weight = weight
        route = read.route if read is not None else Route()
        state.route = route
        if self.ctx.drive.mode is Mode.WATCH:
            state.expected_weight = weight
            state.expected_route = route
            self._follow_step(steps.index_for_weight(weight, route))
            return
        if state.expected_weight is None:
            # An earlier change could not be verified; this read is the verification.
            state.expected_weight = weight
            state.expected_route = route
            index = steps.index_for_weight(weight, route)
            if index != state.step_index and state.phase in (
                Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED
            ):
                state.advance_failures = 0
                before = state.journal_view()
                self.enter_step(index)
                self.ctx.record.outcome(
                    "advance", "earlier unverified change", before,
                    f"verified on a later read: canary at {weight}%", None,
                )
                self.announce_step("engine", "verified on a later read")
            return
        if self.ctx.plan.strategy == "rolling":
            # A rolling release's weight is the share of updated servers in rotation,
            # which a health check moves; what relconsole changed is the batches.
            state.expected_weight = weight
            moved = not route.same(state.expected_route)
        else:
            moved = weight != state.expected_weight or not route.same(state.expected_route)
        if moved and not state.rolling_back:
            # Someone changed the weight behind our back: stop acting on a plan that no
            # longer matches reality and let a human decide.
            was = describe(state.expected_weight or 0, state.expected_route
                           if self.ctx.plan.routed else None, self.ctx.plan.strategy)
            state.expected_weight = weight
            state.expected_route = route
            self._follow_step(steps.index_for_weight(weight, route))
            if state.phase in (Phase.PROGRESSING, Phase.PENDING):
                now = describe(weight, route if self.ctx.plan.routed else None,
                               self.ctx.plan.strategy)
                self.set_paused(f"traffic changed outside relconsole: {was} → {now}")

    def _follow_step(self, index: int) -> None:
        step = self.ctx.steps.step(index)
        self.state.step_index = index
        self.state.step_label = step.label if step is not None else ""
