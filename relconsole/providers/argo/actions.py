"""The exact requests `kubectl argo rollouts` sends for each action, and how to verify them.

Pure data: nothing here talks HTTP, reads a file or knows the engine. An adapter turns an
`ActionPlan` into calls and feeds the Rollout it reads back into `verify`, which is the
"read back and verify" half of safety rule 2.

Source of truth, argoproj/argo-rollouts at 9f8d111d8f8e3e88b6d7f8bbdf62fd3cd863ef9d:

* `pkg/kubectl-argo-rollouts/cmd/abort/abort.go` (`AbortRollout`, `abortPatch`)
* `pkg/kubectl-argo-rollouts/cmd/retry/retry.go` (`RetryRollout`, `retryRolloutPatch`)
* `pkg/kubectl-argo-rollouts/cmd/pause/pause.go` (inline `{"spec":{"paused":true}}`)
* `pkg/kubectl-argo-rollouts/cmd/promote/promote.go` (`PromoteRollout`, `getPatches`,
  `isInconclusive` and the patch constants)
* `utils/replicaset/canary.go` (`GetCurrentCanaryStep`, `GetCurrentSetWeight`)
* `utils/weightutil/weight.go` (`MaxTrafficWeight`)
* `utils/rollout/rolloututil.go` (`isGenerationObserved`, `IsUnpausing`, `IsFullyPromoted`)
* `rollout/pause.go` (how the controller reacts to cleared pause conditions)

There is no `resume` command in the plugin (`cmd/cmd.go`); Argo CD's "resume" is `promote`.
relconsole does not resume that way: promote on a rollout that is *manually* paused
(spec.paused) in the middle of an analysis step also bumps `currentStepIndex`, skipping the
rest of that step, and on one sitting in a timed pause step it clears the pause condition,
ending the bake early — a resume that silently promotes. `resume_plan` is the exact inverse
of the plugin's `pause` instead: one spec patch `{"spec":{"paused":false}}` on the main
resource, sent only when spec.paused is set; the controller's own pause conditions are left
for `promote` (`a`), which is the operator's explicit call.

Version differences: where Argo behaved differently in the past (Rollouts v0.9 had no status
subresource), this follows the current plugin, which tries `…/status` first and falls back to
the main resource on 404; the fallback is `ActionPlan.on_status_not_found`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"

API_PREFIX = "/apis/argoproj.io/v1alpha1"

Action = Literal["abort", "retry", "pause", "promote", "promote_full", "resume"]
ACTIONS: tuple[Action, ...] = ("abort", "retry", "pause", "promote", "promote_full", "resume")


@dataclass(frozen=True)
class Request:
    """One HTTP request to the Kubernetes API server, as the plugin sends it.

    `path` is complete (it already ends in `/status` for the status subresource);
    `subresource` repeats that as data so a caller need not parse the path. The plugin
    passes empty PatchOptions, so there is never a query string.
    """

    method: str
    path: str
    content_type: str | None
    body: dict[str, Any] | list[Any] | None = field(hash=False)
    subresource: str | None


@dataclass(frozen=True)
class ActionPlan:
    """What the plugin sends for one action on one Rollout, in order.

    `requests` is the sequence when the API server has the status subresource (every
    Rollouts release since v0.10). When `requests[0]` is a `/status` patch and it answers
    404, the plugin drops the rest of `requests` and sends `on_status_not_found` instead;
    any other error ends the action. An empty `requests` means the plugin sends no
    mutation at all (and still prints success); `note` then says why.

    `reads_first` is true for the promote family, whose patches depend on a GET of the
    Rollout made just before: this plan must be built from that fresh read, not a cached
    copy, or the step index it sends may skip a step.
    """

    action: Action
    namespace: str
    name: str
    reads_first: bool
    requests: tuple[Request, ...]
    on_status_not_found: tuple[Request, ...] = ()
    note: str = ""

    def sequence(self, *, status_subresource: bool = True) -> tuple[Request, ...]:
        """The requests actually sent, given whether `…/status` exists on this server."""
        if status_subresource or not self.on_status_not_found:
            return self.requests
        return self.on_status_not_found


@dataclass(frozen=True)
class Verification:
    """Whether an action took effect, with the reason in words for an on-call engineer."""

    action: Action
    verified: bool
    reason: str


# --- paths and requests ----------------------------------------------------------------


def rollout_path(namespace: str, name: str, subresource: str | None = None) -> str:
    path = f"{API_PREFIX}/namespaces/{namespace}/rollouts/{name}"
    return f"{path}/{subresource}" if subresource else path


def get_request(namespace: str, name: str) -> Request:
    """The GET the promote family makes before building its patches."""
    return Request("GET", rollout_path(namespace, name), None, None, None)


def _merge_patch(namespace: str, name: str, body: dict[str, Any], *, status: bool) -> Request:
    sub = "status" if status else None
    return Request("PATCH", rollout_path(namespace, name, sub), MERGE_PATCH, body, sub)


def _identity(rollout: Mapping[str, Any]) -> tuple[str, str]:
    meta = _map(rollout.get("metadata"))
    namespace, name = meta.get("namespace"), meta.get("name")
    # The plugin takes the namespace from kubeconfig/-n; a Rollout read from the API always
    # carries it, so a missing one means the caller passed something else.
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("Rollout has no metadata.namespace")
    if not isinstance(name, str) or not name:
        raise ValueError("Rollout has no metadata.name")
    return namespace, name


# --- reading a Rollout dict defensively -------------------------------------------------


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _spec(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(rollout.get("spec"))


def _status(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(rollout.get("status"))


def _strategy(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_spec(rollout).get("strategy"))


def _canary(rollout: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # Go tests `Strategy.Canary != nil`: an empty `canary: {}` still counts as canary.
    value = _strategy(rollout).get("canary")
    return value if isinstance(value, Mapping) else None


def _is_blue_green(rollout: Mapping[str, Any]) -> bool:
    return isinstance(_strategy(rollout).get("blueGreen"), Mapping)


def _steps(rollout: Mapping[str, Any]) -> Sequence[Any]:
    canary = _canary(rollout)
    steps = canary.get("steps") if canary is not None else None
    return steps if isinstance(steps, list) else []


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    return value if isinstance(value, int) else default


def _spec_paused(rollout: Mapping[str, Any]) -> bool:
    return _spec(rollout).get("paused") is True


def _pause_conditions(rollout: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conds = _status(rollout).get("pauseConditions")
    return [_map(c) for c in conds] if isinstance(conds, list) else []


def _controller_pause(rollout: Mapping[str, Any]) -> bool:
    return _status(rollout).get("controllerPause") is True


def _aborted(rollout: Mapping[str, Any]) -> bool:
    return _status(rollout).get("abort") is True


def _str_status(rollout: Mapping[str, Any], key: str) -> str:
    value = _status(rollout).get(key)
    return value if isinstance(value, str) else ""


def current_step_index(rollout: Mapping[str, Any]) -> int | None:
    """`GetCurrentCanaryStep`'s index: None unless a canary with steps; unset counts as 0.

    It is *not* capped: past the last step it equals len(steps), which promote relies on.
    """
    if _canary(rollout) is None or not _steps(rollout):
        return None
    return _int(_status(rollout).get("currentStepIndex"), 0)


def _next_step_index(rollout: Mapping[str, Any]) -> int | None:
    index = current_step_index(rollout)
    if index is None:
        return None
    # promote.go increments only while below len(steps), so a rollout past its last step
    # gets len(steps) again rather than an index the controller would reject.
    return index + 1 if index < len(_steps(rollout)) else index


def _is_inconclusive(rollout: Mapping[str, Any]) -> bool:
    # promote.go isInconclusive: canary and the current step's analysis run is Inconclusive.
    if _canary(rollout) is None:
        return False
    run = _map(_map(_status(rollout).get("canary")).get("currentStepAnalysisRunStatus"))
    return run.get("status") == "Inconclusive"


def max_traffic_weight(rollout: Mapping[str, Any]) -> int:
    """`weightutil.MaxTrafficWeight`: 100 unless trafficRouting.maxTrafficWeight says otherwise."""
    routing = _map(_map(_canary(rollout)).get("trafficRouting"))
    return _int(routing.get("maxTrafficWeight"), 100) if routing else 100


def set_weight(rollout: Mapping[str, Any]) -> int:
    """`GetCurrentSetWeight`: the weight the steps ask for now (desired, not actual)."""
    if _aborted(rollout):
        return 0
    steps = _steps(rollout)
    index = current_step_index(rollout)
    if index is None or index >= len(steps):
        return max_traffic_weight(rollout)
    for step in reversed(steps[: index + 1]):
        weight = _map(step).get("setWeight")
        if isinstance(weight, int) and not isinstance(weight, bool):
            return weight
    return 0


def routed_canary_weight(rollout: Mapping[str, Any]) -> int | None:
    """`status.canary.weights.canary.weight`, which only a traffic router fills in."""
    weights = _map(_status(rollout).get("canary")).get("weights")
    if not isinstance(weights, Mapping):
        return None
    weight = _map(weights.get("canary")).get("weight")
    return weight if isinstance(weight, int) and not isinstance(weight, bool) else 0


def generation_observed(rollout: Mapping[str, Any]) -> bool:
    """`isGenerationObserved`: has the controller seen the latest spec change?"""
    observed = _status(rollout).get("observedGeneration")
    # v0.9 stored a hash here; anything that is not an integer counts as observed, and so
    # does a number above generation (a v0.9 hash that happens to be all digits).
    try:
        observed_int = int(str(observed))
    except ValueError:
        return True
    return observed_int >= _int(_map(rollout.get("metadata")).get("generation"), 0)


def fully_promoted(rollout: Mapping[str, Any]) -> bool:
    """`IsFullyPromoted`: stable is the current revision (both empty counts, as in Go)."""
    return _str_status(rollout, "stableRS") == _str_status(rollout, "currentPodHash")


# --- plans ------------------------------------------------------------------------------


def abort_plan(rollout: Mapping[str, Any]) -> ActionPlan:
    """abort.go: status patch, then the same body on the main resource if /status is 404.

    No GET first, so the Rollout is used only for its namespace and name.
    """
    ns, name = _identity(rollout)
    return ActionPlan(
        "abort",
        ns,
        name,
        reads_first=False,
        requests=(_merge_patch(ns, name, {"status": {"abort": True}}, status=True),),
        on_status_not_found=(_merge_patch(ns, name, {"status": {"abort": True}}, status=False),),
    )


def retry_plan(rollout: Mapping[str, Any]) -> ActionPlan:
    """retry.go `RetryRollout`: abort.go's pattern with abort false."""
    ns, name = _identity(rollout)
    return ActionPlan(
        "retry",
        ns,
        name,
        reads_first=False,
        requests=(_merge_patch(ns, name, {"status": {"abort": False}}, status=True),),
        on_status_not_found=(_merge_patch(ns, name, {"status": {"abort": False}}, status=False),),
    )


def pause_plan(rollout: Mapping[str, Any]) -> ActionPlan:
    """pause.go: one spec patch on the main resource; spec never needs the fallback."""
    ns, name = _identity(rollout)
    return ActionPlan(
        "pause",
        ns,
        name,
        reads_first=False,
        requests=(_merge_patch(ns, name, {"spec": {"paused": True}}, status=False),),
    )


def _assemble(
    action: Action,
    rollout: Mapping[str, Any],
    spec_body: dict[str, Any] | None,
    status_body: dict[str, Any] | None,
    unified_body: dict[str, Any],
    nothing_note: str,
) -> ActionPlan:
    # PromoteRollout: status patch first, then spec; on a 404 from /status the unified
    # patch replaces the spec patch. Without a status patch there is nothing to fall back
    # from, so the unified body is never sent.
    ns, name = _identity(rollout)
    requests: list[Request] = []
    fallback: tuple[Request, ...] = ()
    if status_body is not None:
        requests.append(_merge_patch(ns, name, status_body, status=True))
        fallback = (_merge_patch(ns, name, unified_body, status=False),)
    if spec_body is not None:
        requests.append(_merge_patch(ns, name, spec_body, status=False))
    return ActionPlan(
        action,
        ns,
        name,
        reads_first=True,
        requests=tuple(requests),
        on_status_not_found=fallback,
        note="" if requests else nothing_note,
    )


def promote_plan(rollout: Mapping[str, Any], *, action: Action = "promote") -> ActionPlan:
    """promote.go `getPatches`, default case, for the Rollout as just read with GET."""
    spec_body = {"spec": {"paused": False}} if _spec_paused(rollout) else None
    unified: dict[str, Any] = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    status_body: dict[str, Any] | None = None
    if _is_inconclusive(rollout) and _pause_conditions(rollout) and _controller_pause(rollout):
        # Without dropping controllerPause and moving on a step, a rollout whose next step
        # is a pause stays stuck in the inconclusive state (promote.go's comment). The
        # unified fallback keeps its default body here: Go only changes it in the
        # mid-step case below.
        index = _next_step_index(rollout)
        if index is not None:
            status_body = {
                "status": {
                    "pauseConditions": None,
                    "controllerPause": False,
                    "currentStepIndex": index,
                }
            }
    elif _pause_conditions(rollout):
        status_body = {"status": {"pauseConditions": None}}
    elif _canary(rollout) is not None:
        # Not paused by the controller: promoting in the middle of an analysis or
        # experiment step means skipping it. Go clears pause conditions *or* bumps the
        # index, never both, so a rollout at a pause step is not moved two steps.
        index = _next_step_index(rollout)
        if index is not None:
            status_body = {"status": {"pauseConditions": None, "currentStepIndex": index}}
            unified = {
                "spec": {"paused": False},
                "status": {"pauseConditions": None, "currentStepIndex": index},
            }
    return _assemble(
        action,
        rollout,
        spec_body,
        status_body,
        unified,
        "nothing to promote: not paused and no canary step to move past",
    )


def resume_plan(rollout: Mapping[str, Any]) -> ActionPlan:
    """Undo `pause`: spec.paused back to false, nothing else (see the module docstring)."""
    ns, name = _identity(rollout)
    requests = ((_merge_patch(ns, name, {"spec": {"paused": False}}, status=False),)
                if _spec_paused(rollout) else ())
    return ActionPlan(
        "resume", ns, name, reads_first=True, requests=requests,
        note="" if requests else "nothing to resume: spec.paused is not set",
    )


def promote_full_plan(rollout: Mapping[str, Any]) -> ActionPlan:
    """promote.go `getPatches`, `full` case."""
    spec_body = {"spec": {"paused": False}} if _spec_paused(rollout) else None
    # The plugin asks for promoteFull only when stable is not already the current revision,
    # so an already promoted rollout gets at most the unpause.
    status_body = None if fully_promoted(rollout) else {"status": {"promoteFull": True}}
    unified = {"spec": {"paused": False}, "status": {"promoteFull": True}}
    return _assemble(
        "promote_full",
        rollout,
        spec_body,
        status_body,
        unified,
        "nothing to do: already fully promoted and not paused",
    )


def plan(action: Action, rollout: Mapping[str, Any]) -> ActionPlan:
    if action == "abort":
        return abort_plan(rollout)
    if action == "retry":
        return retry_plan(rollout)
    if action == "pause":
        return pause_plan(rollout)
    if action == "promote":
        return promote_plan(rollout)
    if action == "resume":
        return resume_plan(rollout)
    if action == "promote_full":
        return promote_full_plan(rollout)
    raise ValueError(f"unknown Argo Rollouts action {action!r}")


# --- verification -----------------------------------------------------------------------


def verify(
    action: Action,
    after: Mapping[str, Any],
    before: Mapping[str, Any] | None = None,
    *,
    actual_canary_weight: int | None = None,
) -> Verification:
    """Did `action` take effect, judged from `after`, the Rollout read back afterwards?

    `before` is the Rollout the plan was built from; promote, resume and promote --full
    need it (a promote is seen as the step index moving on, and the next step may well be
    another pause). `actual_canary_weight` is the measured share of traffic on the canary
    for an abort without a traffic router, where status carries no weights.

    "Verified" means the controller has acted, not merely that our patch landed, wherever
    the Rollout shows the difference: a status field we wrote ourselves proves nothing
    about traffic.
    """
    if action == "abort":
        return _verify_abort(after, actual_canary_weight)
    if action == "retry":
        return _verify_retry(after)
    if action == "pause":
        return _verify_pause(after)
    if action not in ("promote", "resume", "promote_full"):
        raise ValueError(f"unknown Argo Rollouts action {action!r}")
    if before is None:
        raise ValueError(f"verifying {action} needs the Rollout as read before the action")
    if action == "promote_full":
        return _verify_promote_full(before, after)
    if action == "resume":
        return _verify_resume(before, after)
    return _verify_promote(action, before, after)


def _verify_resume(before: Mapping[str, Any], after: Mapping[str, Any]) -> Verification:
    who = _name(after)
    if not _spec_paused(before):
        return Verification("resume", True, f"{who}: nothing to resume, it was not paused")
    if _spec_paused(after):
        return Verification("resume", False, f"{who}: spec.paused is still true — the resume "
                                             "did not land, or someone paused it again")
    if not generation_observed(after):
        return Verification("resume", False, f"{who}: resumed in spec, but {_not_observed(after)}")
    return Verification("resume", True, f"{who} resumed: spec.paused is cleared and Argo has "
                                        "seen it")


def _name(rollout: Mapping[str, Any]) -> str:
    name = _map(rollout.get("metadata")).get("name")
    return f"rollout {name}" if isinstance(name, str) and name else "the rollout"


def _not_observed(rollout: Mapping[str, Any]) -> str:
    observed = _status(rollout).get("observedGeneration")
    generation = _map(rollout.get("metadata")).get("generation")
    return (
        f"Argo has not yet seen the change (observedGeneration {observed}, generation {generation})"
    )


def _promote_full_hint(rollout: Mapping[str, Any]) -> str:
    if _status(rollout).get("promoteFull") is True:
        # argo-rollouts issue #4461: the controller keeps heading for 100% once a full
        # promotion was requested, so an abort may never take effect.
        return (
            "; a full promotion was requested earlier (status.promoteFull) and Argo may "
            "ignore the abort (argo-rollouts #4461) — consider rolling back the image"
        )
    return ""


def _verify_abort(after: Mapping[str, Any], actual_canary_weight: int | None) -> Verification:
    who = _name(after)
    if not _aborted(after):
        return Verification(
            "abort",
            False,
            f"{who}: status.abort is not true — the abort did not land, or something "
            "(a retry, a new revision) cleared it",
        )
    hint = _promote_full_hint(after)
    if _is_blue_green(after):
        stable = _str_status(after, "stableRS")
        active = _str(_map(_status(after).get("blueGreen")).get("activeSelector"))
        if stable and active == stable:
            return Verification(
                "abort", True, f"{who} aborted: the active service selects stable ({stable})"
            )
        return Verification(
            "abort",
            False,
            f"{who}: abort recorded, but the active service still selects "
            f"{active or 'nothing'}, not stable ({stable or 'unknown'}){hint}",
        )
    wanted = set_weight(after)
    actual = actual_canary_weight
    if actual is None:
        actual = routed_canary_weight(after)
    if actual is None:
        return Verification(
            "abort",
            False,
            f"{who}: abort recorded, but the canary's traffic cannot be confirmed: there "
            "is no traffic router (no status.canary.weights) and no measured weight",
        )
    if wanted != 0 or actual != 0:
        return Verification(
            "abort",
            False,
            f"{who}: abort recorded, but the canary still gets {actual}% of traffic "
            f"(set weight {wanted}%); Argo has not shifted it back to stable yet{hint}",
        )
    return Verification("abort", True, f"{who} aborted: the canary gets 0% of traffic")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _verify_retry(after: Mapping[str, Any]) -> Verification:
    who = _name(after)
    if _aborted(after):
        return Verification("retry", False, f"{who}: status.abort is still true — still aborted")
    message = _str_status(after, "message")
    # The controller rewrites phase/message on its next sync; until then it still reports
    # the abort, so the retry has landed but nothing moves yet.
    if message.startswith("RolloutAborted"):
        return Verification(
            "retry",
            False,
            f"{who}: abort cleared, but Argo still reports {message!r}; it has not resumed yet",
        )
    return Verification("retry", True, f"{who} retried: the abort is cleared and Argo resumed")


def _verify_pause(after: Mapping[str, Any]) -> Verification:
    who = _name(after)
    if not _spec_paused(after):
        return Verification(
            "pause",
            False,
            f"{who}: spec.paused is not true — the pause did not land, or someone resumed it",
        )
    if not generation_observed(after):
        return Verification("pause", False, f"{who}: paused in spec, but {_not_observed(after)}")
    return Verification("pause", True, f"{who} paused: spec.paused is set and Argo has seen it")


def _pause_reasons(conds: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(_str(c.get("reason")) or "unknown" for c in conds)


def _unpause_problem(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Why `after` is not yet unpaused by the promote, or None."""
    if _aborted(after):
        return "it is aborted (status.abort); promote does not resume an aborted rollout — retry it"
    if _spec_paused(after):
        return "spec.paused is still true — the unpause did not land, or someone paused it again"
    if _spec_paused(before) and not generation_observed(after):
        return _not_observed(after)
    if _controller_pause(after) and not _pause_conditions(after):
        # rolloututil.IsUnpausing: our status patch landed but the controller has not
        # reacted; the plugin shows "waiting for rollout to unpause".
        return "Argo has not reacted yet (waiting for rollout to unpause)"
    return None


def _verify_promote(
    action: Action, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Verification:
    who = _name(after)
    if not promote_plan(before).requests:
        return Verification(action, True, f"{who}: nothing to promote, it was not paused")
    problem = _unpause_problem(before, after)
    if problem is not None:
        return Verification(action, False, f"{who}: {problem}")
    steps = len(_steps(before))
    was = current_step_index(before)
    if was is not None and was < steps:
        now = current_step_index(after)
        if now is not None and now > was:
            return Verification(action, True, f"{who} promoted: step {was}/{steps} → {now}/{steps}")
        if fully_promoted(after) and _str_status(after, "currentPodHash") == _str_status(
            before, "currentPodHash"
        ):
            return Verification(action, True, f"{who} promoted: all steps done, stable is current")
        return Verification(
            action, False, f"{who}: Argo is still at step {was}/{steps}; it has not moved on yet"
        )
    # Blue-green, a canary without steps, or a canary past its last step: the promote is
    # seen as the pause conditions it cleared staying gone. One with the same reason but a
    # new start time is a fresh pause, not ours.
    old = {(_str(c.get("reason")), _str(c.get("startTime"))) for c in _pause_conditions(before)}
    left = [
        c
        for c in _pause_conditions(after)
        if (_str(c.get("reason")), _str(c.get("startTime"))) in old
    ]
    if left:
        return Verification(action, False, f"{who}: still paused ({_pause_reasons(left)})")
    if _is_blue_green(before):
        return Verification(
            action,
            True,
            f"{who} promoted: the blue-green pause is cleared; Argo switches the active "
            "service once pre-promotion analysis, if any, passes",
        )
    return Verification(action, True, f"{who} promoted: no longer paused")


def _verify_promote_full(before: Mapping[str, Any], after: Mapping[str, Any]) -> Verification:
    who = _name(after)
    if not promote_full_plan(before).requests:
        return Verification("promote_full", True, f"{who}: already fully promoted")
    if _aborted(after):
        return Verification(
            "promote_full", False, f"{who}: it is aborted (status.abort); retry it first"
        )
    if _spec_paused(after):
        return Verification(
            "promote_full",
            False,
            f"{who}: spec.paused is still true — the unpause did not land, or someone paused it",
        )
    if _spec_paused(before) and not generation_observed(after):
        return Verification("promote_full", False, f"{who}: {_not_observed(after)}")
    current = _str_status(after, "currentPodHash")
    stable = _str_status(after, "stableRS")
    # Same revision as when we acted: a new image promoted by someone else is not ours.
    if fully_promoted(after) and current == _str_status(before, "currentPodHash"):
        return Verification("promote_full", True, f"{who} fully promoted: stable is {stable}")
    if _status(after).get("promoteFull") is True:
        return Verification(
            "promote_full",
            False,
            f"{who}: full promotion requested, but stable is still {stable or 'unset'}, not "
            f"{current or 'unset'}; Argo is still scaling up and shifting traffic",
        )
    return Verification(
        "promote_full",
        False,
        f"{who}: not fully promoted and status.promoteFull is not set — the request did not "
        "land, or the revision changed",
    )
