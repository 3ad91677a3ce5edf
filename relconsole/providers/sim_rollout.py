"""A simulated Argo Rollout and its controller (scenario `argo`), for the demo and tests.

It is not Argo: it walks a fixed canary plan the simple way Argo's controller does
(setWeight waits for the canary's pods, a timed pause for its time, a pause without
duration and an inconclusive analysis for a promote; an abort sends all traffic back)
and reports it as `kubectl argo rollouts get` would, with the plugin's own phase and
message words (from `providers.argo.view`), so the console shows the same screens as
on a cluster. Its moves are the `StepController` protocol's, verified the same way: a
call returns once the simulated controller shows the change.

The rollout's state lives in the simulated world's file, so a one-shot command
(`relconsole advance -c …`) and a watcher in another process see one rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relconsole.model import (
    AnalysisVerdict,
    ControllerState,
    ControllerStep,
    Role,
    ServerHealth,
    TrafficState,
)
from relconsole.providers.argo.view import (
    MSG_MANUALLY_PAUSED,
    MSG_MORE_REPLICAS,
    MSG_WAITING_STEPS,
    REASON_ABORTED,
)
from relconsole.providers.base import ProviderError

SYSTEM = "Argo Rollouts"
RESOURCE = "rollout payments/checkout-api"
REPLICAS = 10
# Seconds the canary's pods take to become available after a setWeight; until then the
# actual weight lags the set weight, as it does without a traffic router.
PODS_READY_AFTER = 6.0
# Seconds the simulated AnalysisRun of the analysis step runs before it succeeds.
ANALYSIS_RUNS_FOR = 40.0


@dataclass(frozen=True)
class _Step:
    kind: str  # "setWeight", "pause", "analysis"
    weight: int = 0
    seconds: float | None = None  # a pause's duration; None waits for a promote

    @property
    def text(self) -> str:
        if self.kind == "setWeight":
            return f"set weight {self.weight}%"
        if self.kind == "pause":
            if self.seconds is None:
                return "pause (until promoted)"
            return f"pause {int(self.seconds // 60)}m" if self.seconds >= 60 and not (
                self.seconds % 60) else f"pause {int(self.seconds)}s"
        return "analysis: checkout-error-rate"


PLAN: tuple[_Step, ...] = (
    _Step("setWeight", 10),
    _Step("pause"),
    _Step("setWeight", 30),
    _Step("pause", seconds=60.0),
    _Step("analysis"),
    _Step("setWeight", 60),
    _Step("pause", seconds=60.0),
)


def _plan_weights() -> list[int]:
    out, weight = [], 0
    for step in PLAN:
        if step.kind == "setWeight":
            weight = step.weight
        out.append(weight)
    return out


class SimRollout:
    """Traffic provider and `StepController` over the simulated world's rollout."""

    name = "sim"

    def __init__(self, world: Any) -> None:
        self.world = world
        self.action_timeout = 5.0

    # -- the rollout's state, kept in the world (and its file)

    @property
    def _s(self) -> dict[str, Any]:
        state = self.world.extra.get("rollout")
        if not isinstance(state, dict):
            now = self.world.clock.now()
            # The rollout's update has just begun: its first step asks for 10 %.
            state = {"step": 0, "entered": now, "set": PLAN[0].weight, "actual": 0,
                     "ready_at": now + PODS_READY_AFTER, "paused": False, "aborted": False,
                     "last_action": ""}
            self.world.extra["rollout"] = state
        return state

    def _save(self) -> None:
        self.world.apply_weight(int(self._s["actual"]))  # metrics follow the actual weight

    def _enter(self, index: int, now: float) -> None:
        s = self._s
        # Nothing the controller did after a resume can have begun before it.
        now = max(now, float(s.get("resumed_at", now)))
        s["step"], s["entered"] = index, now
        if index >= len(PLAN):
            s["set"], s["ready_at"] = 100, now + PODS_READY_AFTER
        elif PLAN[index].kind == "setWeight":
            s["set"], s["ready_at"] = PLAN[index].weight, now + PODS_READY_AFTER

    def _advance_clock(self) -> None:
        """What the controller did since the last look, in order."""
        s = self._s
        now = self.world.clock.now()
        for _ in range(len(PLAN) + 2):
            if s["actual"] != s["set"] and now >= s["ready_at"]:
                s["actual"] = s["set"]
            if s["aborted"] or s["paused"] or s["step"] >= len(PLAN):
                break
            step = PLAN[s["step"]]
            if step.kind == "setWeight":
                if s["actual"] != s["set"]:
                    break
                self._enter(s["step"] + 1, max(s["ready_at"], s["entered"]))
            elif step.kind == "pause":
                if step.seconds is None or now - s["entered"] < step.seconds:
                    break
                self._enter(s["step"] + 1, s["entered"] + step.seconds)
            else:
                if now - s["entered"] < ANALYSIS_RUNS_FOR:
                    break
                self._enter(s["step"] + 1, s["entered"] + ANALYSIS_RUNS_FOR)
        self._save()

    def _view(self) -> ControllerState:
        s = self._s
        index = s["step"]
        done = index >= len(PLAN)
        current = None if done else PLAN[index]
        waiting = (not s["aborted"] and current is not None and current.kind == "pause"
                   and current.seconds is None)
        in_pause = current is not None and current.kind == "pause"
        if s["aborted"]:
            phase = "Degraded"
            message = f"{REASON_ABORTED}: Rollout aborted update to revision 2"
        elif s["paused"]:
            phase, message = "Paused", MSG_MANUALLY_PAUSED
        elif in_pause:
            phase, message = "Paused", "CanaryPauseStep"
        elif s["actual"] != s["set"]:
            phase, message = "Progressing", MSG_MORE_REPLICAS
        elif not done:
            phase, message = "Progressing", MSG_WAITING_STEPS
        else:
            phase, message = "Healthy", ""
        weights = _plan_weights()
        plan = tuple(
            ControllerStep(step.text, weights[i], pause=step.seconds,
                           waits=step.kind == "pause" and step.seconds is None)
            for i, step in enumerate(PLAN)
        )
        analysis: tuple[AnalysisVerdict, ...] = ()
        if index >= 4 and not s["aborted"]:
            verdict = "Running" if index == 4 else "Successful"
            analysis = (AnalysisVerdict(
                "checkout-api-7f9c-4", verdict, "",
                (("error-rate", verdict), ("latency-p99", verdict))),)
        return ControllerState(
            system=SYSTEM, resource=RESOURCE, phase=phase, message=message,
            step=index, steps=len(PLAN), set_weight=int(s["set"]),
            actual_weight=int(s["actual"]), plan=plan, waiting=waiting,
            manually_paused=bool(s["paused"]), aborted=bool(s["aborted"]),
            fully_promoted=done and s["actual"] == 100 and not s["aborted"],
            analysis=analysis, last_action=str(s.get("last_action", "")),
        )

    def _servers(self) -> tuple[ServerHealth, ...]:
        s = self._s
        canary_pods = round(REPLICAS * int(s["set"]) / 100)
        ready = round(REPLICAS * int(s["actual"]) / 100)
        out = [ServerHealth(f"canary-{i + 1}", Role.CANARY, up=i < ready,
                            detail="Running" if i < ready else "ContainerCreating")
               for i in range(canary_pods)]
        out += [ServerHealth(f"stable-{i + 1}", Role.BASELINE, up=True, detail="Running")
                for i in range(REPLICAS - canary_pods)]
        return tuple(out)

    # -- TrafficProvider

    async def read(self) -> TrafficState:
        self.world.refresh()
        self.world.traffic_call("read")
        self._advance_clock()
        return TrafficState(int(self._s["actual"]), self._servers(), self._view())

    async def set_weight(self, weight: int, *, reason: str) -> None:
        raise ProviderError("sim: the Rollout owns its weights; promote or abort it instead")

    async def close(self) -> None:
        return None

    # -- StepController

    def _note(self, action: str, actor: str, reason: str) -> None:
        self._s["last_action"] = f"{action} by {actor}: {reason}" if reason else (
            f"{action} by {actor}")

    async def promote(self, *, full: bool, reason: str, actor: str) -> None:
        self.world.refresh()
        self.world.traffic_call("promote --full" if full else "promote")
        self._advance_clock()
        s = self._s
        now = self.world.clock.now()
        if s["aborted"]:
            raise ProviderError("sim: the rollout is aborted; there is nothing to promote")
        if full:
            s["paused"] = False
            self._enter(len(PLAN), now)
        elif s["step"] < len(PLAN):
            # The plugin's promote: past a pause, or skipping the step it stands in.
            s["paused"] = False
            self._enter(s["step"] + 1, now)
        else:
            raise ProviderError("sim: nothing to promote: the rollout is fully promoted")
        self._note("promote --full" if full else "promote", actor, reason)
        self._advance_clock()

    async def abort(self, *, reason: str, actor: str) -> None:
        self.world.refresh()
        self.world.traffic_call("abort")
        s = self._s
        # As Argo's controller does: all traffic to stable, the step index back to 0.
        s["aborted"], s["set"], s["actual"], s["step"] = True, 0, 0, 0
        self._note("abort", actor, reason)
        self._save()

    async def pause(self, *, reason: str, actor: str) -> None:
        self.world.refresh()
        self.world.traffic_call("pause")
        self._advance_clock()
        self._s["paused"] = True
        self._note("pause", actor, reason)
        self._save()

    async def resume(self, *, reason: str, actor: str) -> None:
        self.world.refresh()
        self.world.traffic_call("resume")
        s = self._s
        # Only the pause is undone: a timed pause's clock ran on meanwhile, as Argo's
        # pause condition keeps its start time.
        s["paused"] = False
        s["resumed_at"] = self.world.clock.now()
        self._note("resume", actor, reason)
        self._advance_clock()
