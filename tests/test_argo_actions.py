"""What `kubectl argo rollouts` sends per action (relconsole.providers.argo.actions), and how
the Rollout read back afterwards verifies it. The expected bodies are those of the Go
constants in argo-rollouts' pkg/kubectl-argo-rollouts/cmd/{abort,retry,pause,promote}; the
Rollouts below are written for these tests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from relconsole.providers.argo.actions import (
    JSON_PATCH,
    MERGE_PATCH,
    ActionPlan,
    Request,
    Verification,
    abort_plan,
    current_step_index,
    generation_observed,
    get_request,
    pause_plan,
    plan,
    promote_full_plan,
    promote_plan,
    resume_plan,
    retry_plan,
    rollout_path,
    set_weight,
    verify,
)

RO = "/apis/argoproj.io/v1alpha1/namespaces/payments/rollouts/checkout"
RO_STATUS = RO + "/status"

STEPS: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"pause": {}},
    {"analysis": {"templates": [{"templateName": "error-rate"}]}},
    {"setWeight": 50},
    {"pause": {"duration": "5m"}},
]


def canary(
    *,
    index: int | None = 1,
    steps: list[dict[str, Any]] | None = None,
    paused: bool = False,
    pause_reasons: tuple[str, ...] = (),
    controller_pause: bool = False,
    analysis: str | None = None,
    routed: bool = True,
    **status: Any,
) -> dict[str, Any]:
    """A canary Rollout of checkout in payments, mid-update from 6d4f8 to 7c9b2."""
    strategy: dict[str, Any] = {"steps": STEPS if steps is None else steps}
    if routed:
        strategy["trafficRouting"] = {"nginx": {"stableIngress": "checkout"}}
    st: dict[str, Any] = {
        "currentPodHash": "7c9b2",
        "stableRS": "6d4f8",
        "observedGeneration": "4",
        "controllerPause": controller_pause,
    }
    if index is not None:
        st["currentStepIndex"] = index
    if pause_reasons:
        st["pauseConditions"] = [
            {"reason": r, "startTime": "2026-08-20T10:00:00Z"} for r in pause_reasons
        ]
    if analysis is not None:
        st["canary"] = {"currentStepAnalysisRunStatus": {"name": "ar-1", "status": analysis}}
    st.update(status)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "payments", "generation": 4},
        "spec": {"replicas": 4, "paused": paused, "strategy": {"canary": strategy}},
        "status": st,
    }


def blue_green(*, paused: bool = False, pause: bool = False, **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "currentPodHash": "7c9b2",
        "stableRS": "6d4f8",
        "observedGeneration": "4",
        "blueGreen": {"activeSelector": "6d4f8", "previewSelector": "7c9b2"},
    }
    if pause:
        st["pauseConditions"] = [{"reason": "BlueGreenPause", "startTime": "2026-08-20T10:00:00Z"}]
        st["controllerPause"] = True
    st.update(status)
    return {
        "metadata": {"name": "checkout", "namespace": "payments", "generation": 4},
        "spec": {
            "paused": paused,
            "strategy": {"blueGreen": {"activeService": "co", "autoPromotionEnabled": False}},
        },
        "status": st,
    }


def status_patch(body: dict[str, Any]) -> Request:
    return Request("PATCH", RO_STATUS, "application/merge-patch+json", body, "status")


def main_patch(body: dict[str, Any]) -> Request:
    return Request("PATCH", RO, "application/merge-patch+json", body, None)


UNPAUSE = main_patch({"spec": {"paused": False}})
UNIFIED = main_patch({"spec": {"paused": False}, "status": {"pauseConditions": None}})


def unified_with_step(n: int) -> Request:
    return main_patch(
        {"spec": {"paused": False}, "status": {"pauseConditions": None, "currentStepIndex": n}}
    )


def assert_plan(
    got: ActionPlan,
    requests: list[Request],
    fallback: list[Request],
    *,
    reads_first: bool = True,
) -> None:
    assert list(got.requests) == requests
    assert list(got.on_status_not_found) == fallback
    assert got.reads_first is reads_first
    assert (got.namespace, got.name) == ("payments", "checkout")


# --- basics -----------------------------------------------------------------------------


def test_paths_and_get() -> None:
    assert rollout_path("payments", "checkout") == RO
    assert rollout_path("payments", "checkout", "status") == RO_STATUS
    assert get_request("payments", "checkout") == Request("GET", RO, None, None, None)
    assert MERGE_PATCH == "application/merge-patch+json"
    assert JSON_PATCH == "application/json-patch+json"


@pytest.mark.parametrize(
    "metadata, message",
    [({"name": "checkout"}, "metadata.namespace"), ({"namespace": "payments"}, "metadata.name")],
)
def test_a_rollout_without_identity_is_refused(metadata: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        abort_plan({"metadata": metadata})


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        plan("rollback", canary())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown"):
        verify("rollback", canary(), canary())  # type: ignore[arg-type]


# --- abort, retry, pause ----------------------------------------------------------------


def test_abort_patches_status_then_main_resource_on_404() -> None:
    got = abort_plan(canary())
    assert_plan(
        got,
        [status_patch({"status": {"abort": True}})],
        [main_patch({"status": {"abort": True}})],
        reads_first=False,
    )
    assert got.sequence() == (status_patch({"status": {"abort": True}}),)
    assert got.sequence(status_subresource=False) == (main_patch({"status": {"abort": True}}),)
    assert plan("abort", canary()) == got


def test_abort_sends_the_same_for_blue_green() -> None:
    assert abort_plan(blue_green()).requests == abort_plan(canary()).requests


def test_retry_patches_abort_false_with_the_same_fallback() -> None:
    assert_plan(
        retry_plan(canary(abort=True)),
        [status_patch({"status": {"abort": False}})],
        [main_patch({"status": {"abort": False}})],
        reads_first=False,
    )


def test_pause_patches_spec_only_and_has_no_fallback() -> None:
    got = pause_plan(canary())
    assert_plan(got, [main_patch({"spec": {"paused": True}})], [], reads_first=False)
    # No status request, so a server without /status changes nothing.
    assert got.sequence(status_subresource=False) == got.requests


# --- promote ----------------------------------------------------------------------------


def test_promote_at_an_indefinite_pause_step_clears_pause_conditions() -> None:
    ro = canary(index=1, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    assert_plan(promote_plan(ro), [status_patch({"status": {"pauseConditions": None}})], [UNIFIED])


def test_promote_in_a_timed_pause_step_sends_the_same_and_ends_the_bake() -> None:
    ro = canary(index=4, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    assert_plan(promote_plan(ro), [status_patch({"status": {"pauseConditions": None}})], [UNIFIED])


def test_promote_mid_analysis_step_moves_to_the_next_step() -> None:
    ro = canary(index=2, analysis="Running")
    assert_plan(
        promote_plan(ro),
        [status_patch({"status": {"pauseConditions": None, "currentStepIndex": 3}})],
        [unified_with_step(3)],
    )


def test_promote_with_no_step_index_counts_from_step_zero() -> None:
    ro = canary(index=None)
    assert current_step_index(ro) == 0
    assert_plan(
        promote_plan(ro),
        [status_patch({"status": {"pauseConditions": None, "currentStepIndex": 1}})],
        [unified_with_step(1)],
    )


def test_promote_inconclusive_analysis_drops_controller_pause_and_moves_on() -> None:
    ro = canary(
        index=2,
        pause_reasons=("InconclusiveAnalysisRun",),
        controller_pause=True,
        analysis="Inconclusive",
    )
    body = {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3}}
    # The fallback keeps the default unified body: Go changes it only in the mid-step case.
    assert_plan(promote_plan(ro), [status_patch(body)], [UNIFIED])


def test_promote_inconclusive_at_the_last_step_does_not_go_past_the_end() -> None:
    steps = [{"setWeight": 20}, {"analysis": {"templates": []}}]
    ro = canary(
        steps=steps,
        index=1,
        pause_reasons=("InconclusiveAnalysisRun",),
        controller_pause=True,
        analysis="Inconclusive",
    )
    body = {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 2}}
    assert promote_plan(ro).requests == (status_patch(body),)
    ro["status"]["currentStepIndex"] = 2  # already past the end: stays at len(steps)
    body["status"]["currentStepIndex"] = 2
    assert promote_plan(ro).requests == (status_patch(body),)


def test_promote_inconclusive_without_controller_pause_just_clears_conditions() -> None:
    ro = canary(index=2, pause_reasons=("InconclusiveAnalysisRun",), analysis="Inconclusive")
    assert_plan(promote_plan(ro), [status_patch({"status": {"pauseConditions": None}})], [UNIFIED])


def test_promote_when_spec_paused_sends_status_then_spec() -> None:
    ro = canary(index=1, paused=True, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    assert_plan(
        promote_plan(ro),
        [status_patch({"status": {"pauseConditions": None}}), UNPAUSE],
        [UNIFIED],
    )
    # On a 404 from /status the unified patch replaces the spec patch; it is not added.
    assert promote_plan(ro).sequence(status_subresource=False) == (UNIFIED,)


def test_promote_when_spec_paused_mid_step_also_skips_the_step() -> None:
    ro = canary(index=2, paused=True)
    assert_plan(
        promote_plan(ro),
        [status_patch({"status": {"pauseConditions": None, "currentStepIndex": 3}}), UNPAUSE],
        [unified_with_step(3)],
    )


def test_promote_an_already_promoted_canary_still_writes_the_last_index() -> None:
    ro = canary(index=5, stableRS="7c9b2")
    assert_plan(
        promote_plan(ro),
        [status_patch({"status": {"pauseConditions": None, "currentStepIndex": 5}})],
        [unified_with_step(5)],
    )


def test_promote_a_canary_without_steps_sends_nothing_or_only_the_unpause() -> None:
    got = promote_plan(canary(steps=[], index=None))
    assert_plan(got, [], [])
    assert got.note == "nothing to promote: not paused and no canary step to move past"
    assert got.sequence(status_subresource=False) == ()
    assert_plan(promote_plan(canary(steps=[], index=None, paused=True)), [UNPAUSE], [])


def test_promote_blue_green() -> None:
    assert_plan(
        promote_plan(blue_green(pause=True)),
        [status_patch({"status": {"pauseConditions": None}})],
        [UNIFIED],
    )
    assert_plan(promote_plan(blue_green()), [], [])
    assert_plan(promote_plan(blue_green(paused=True)), [UNPAUSE], [])
    assert_plan(
        promote_plan(blue_green(paused=True, pause=True)),
        [status_patch({"status": {"pauseConditions": None}}), UNPAUSE],
        [UNIFIED],
    )


def test_resume_undoes_a_pause_and_never_promotes() -> None:
    # The plugin has no resume, and its promote on a paused rollout skips the rest of the
    # step: relconsole's resume is the inverse of `pause` only.
    ro = canary(index=2, paused=True, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    got = resume_plan(ro)
    assert got.action == "resume" and got.reads_first
    assert_plan(got, [UNPAUSE], [])
    assert plan("resume", ro) == got
    not_paused = resume_plan(canary(index=1, pause_reasons=("CanaryPauseStep",),
                                    controller_pause=True))
    assert not_paused.requests == ()
    assert not_paused.note == "nothing to resume: spec.paused is not set"


# --- promote --full ---------------------------------------------------------------------

FULL = status_patch({"status": {"promoteFull": True}})
UNIFIED_FULL = main_patch({"spec": {"paused": False}, "status": {"promoteFull": True}})


def test_promote_full() -> None:
    assert_plan(promote_full_plan(canary(index=2)), [FULL], [UNIFIED_FULL])
    assert_plan(promote_full_plan(canary(index=2, paused=True)), [FULL, UNPAUSE], [UNIFIED_FULL])
    assert_plan(promote_full_plan(blue_green(pause=True)), [FULL], [UNIFIED_FULL])
    assert plan("promote_full", canary()) == promote_full_plan(canary())


def test_promote_full_of_a_promoted_rollout_only_unpauses() -> None:
    done = canary(index=5, stableRS="7c9b2")
    got = promote_full_plan(done)
    assert_plan(got, [], [])
    assert got.note == "nothing to do: already fully promoted and not paused"
    assert_plan(promote_full_plan(canary(index=5, stableRS="7c9b2", paused=True)), [UNPAUSE], [])


# --- set weight -------------------------------------------------------------------------


def test_set_weight_follows_get_current_set_weight() -> None:
    assert set_weight(canary(index=0)) == 10
    assert set_weight(canary(index=2)) == 10
    assert set_weight(canary(index=4)) == 50
    assert set_weight(canary(index=5)) == 100
    assert set_weight(canary(index=2, abort=True)) == 0
    assert set_weight(canary(steps=[{"pause": {}}], index=0)) == 0
    capped = canary(index=5)
    capped["spec"]["strategy"]["canary"]["trafficRouting"]["maxTrafficWeight"] = 1000
    assert set_weight(capped) == 1000


def test_generation_observed() -> None:
    ro = canary()
    assert generation_observed(ro)
    ro["status"]["observedGeneration"] = "3"
    assert not generation_observed(ro)
    ro["status"]["observedGeneration"] = "7f9d6c5b"  # a v0.9 hash
    assert generation_observed(ro)
    ro["status"]["observedGeneration"] = "12"  # an all-digit v0.9 hash above generation
    assert generation_observed(ro)


# --- verify: abort, retry, pause --------------------------------------------------------


def weights(canary_weight: int) -> dict[str, Any]:
    return {
        "weights": {
            "canary": {"weight": canary_weight, "podTemplateHash": "7c9b2"},
            "stable": {"weight": 100 - canary_weight, "podTemplateHash": "6d4f8"},
        }
    }


def test_verify_abort() -> None:
    done = canary(index=2, abort=True, canary=weights(0))
    assert verify("abort", done) == Verification(
        "abort", True, "rollout checkout aborted: the canary gets 0% of traffic"
    )
    moving = canary(index=2, abort=True, canary=weights(10))
    got = verify("abort", moving)
    assert not got.verified
    assert got.reason == (
        "rollout checkout: abort recorded, but the canary still gets 10% of traffic "
        "(set weight 0%); Argo has not shifted it back to stable yet"
    )
    got = verify("abort", canary(index=2, canary=weights(10)))
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: status.abort is not true — the abort did not land, or something "
        "(a retry, a new revision) cleared it",
    )


def test_verify_abort_without_a_traffic_router_needs_a_measured_weight() -> None:
    ro = canary(index=2, routed=False, abort=True)
    got = verify("abort", ro)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: abort recorded, but the canary's traffic cannot be confirmed: there "
        "is no traffic router (no status.canary.weights) and no measured weight",
    )
    assert verify("abort", ro, actual_canary_weight=0).verified
    assert not verify("abort", ro, actual_canary_weight=25).verified


def test_verify_abort_warns_when_a_full_promotion_was_requested() -> None:
    got = verify("abort", canary(index=2, abort=True, promoteFull=True, canary=weights(40)))
    assert not got.verified
    assert got.reason.endswith(
        "; a full promotion was requested earlier (status.promoteFull) and Argo may "
        "ignore the abort (argo-rollouts #4461) — consider rolling back the image"
    )


def test_verify_abort_blue_green() -> None:
    got = verify("abort", blue_green(abort=True))
    assert (got.verified, got.reason) == (
        True,
        "rollout checkout aborted: the active service selects stable (6d4f8)",
    )
    switched = blue_green(abort=True, blueGreen={"activeSelector": "7c9b2"})
    got = verify("abort", switched)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: abort recorded, but the active service still selects 7c9b2, "
        "not stable (6d4f8)",
    )


def test_verify_retry() -> None:
    got = verify("retry", canary(abort=True))
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: status.abort is still true — still aborted",
    )
    stale = canary(
        abort=False,
        phase="Degraded",
        message="RolloutAborted: Rollout aborted update to revision 3",
    )
    got = verify("retry", stale)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: abort cleared, but Argo still reports 'RolloutAborted: Rollout "
        "aborted update to revision 3'; it has not resumed yet",
    )
    got = verify("retry", canary(phase="Progressing", message="more replicas need to be updated"))
    assert (got.verified, got.reason) == (
        True,
        "rollout checkout retried: the abort is cleared and Argo resumed",
    )


def test_verify_pause() -> None:
    got = verify("pause", canary(paused=True))
    assert (got.verified, got.reason) == (
        True,
        "rollout checkout paused: spec.paused is set and Argo has seen it",
    )
    got = verify("pause", canary(paused=False))
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: spec.paused is not true — the pause did not land, or someone resumed it",
    )
    unseen = canary(paused=True, observedGeneration="3")
    got = verify("pause", unseen)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: paused in spec, but Argo has not yet seen the change "
        "(observedGeneration 3, generation 4)",
    )


# --- verify: promote, resume, promote --full ----------------------------------------------


def test_verify_promote_sees_the_step_move_even_into_the_next_pause() -> None:
    before = canary(index=1, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    after = canary(index=2, analysis="Running")
    got = verify("promote", after, before)
    assert (got.verified, got.reason) == (True, "rollout checkout promoted: step 1/5 → 2/5")
    # A timed pause that Argo entered after our promote is a new pause, not a failure.
    before = canary(index=3)
    after = canary(index=4, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    assert verify("promote", after, before).verified


def test_verify_promote_not_yet() -> None:
    before = canary(index=1, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    reacting = canary(index=1, controller_pause=True)
    got = verify("promote", reacting, before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: Argo has not reacted yet (waiting for rollout to unpause)",
    )
    got = verify("promote", before, before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: Argo is still at step 1/5; it has not moved on yet",
    )


def test_verify_resume_of_a_manually_paused_rollout() -> None:
    before = canary(index=2, paused=True)
    got = verify("resume", canary(index=2, paused=True), before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: spec.paused is still true — the resume did not land, or someone "
        "paused it again",
    )
    unseen = canary(index=2, observedGeneration="4")
    unseen["metadata"]["generation"] = 5
    got = verify("resume", unseen, before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: resumed in spec, but Argo has not yet seen the change "
        "(observedGeneration 4, generation 5)",
    )
    got = verify("resume", canary(index=2), before)
    assert (got.action, got.verified) == ("resume", True)
    # Resuming leaves the step where it is: the index did not move, and that is right.
    assert got.reason == "rollout checkout resumed: spec.paused is cleared and Argo has seen it"


def test_verify_promote_of_an_aborted_rollout_fails() -> None:
    before = canary(index=1, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    got = verify("promote", canary(index=1, abort=True), before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: it is aborted (status.abort); promote does not resume an aborted "
        "rollout — retry it",
    )


def test_verify_promote_to_the_end() -> None:
    before = canary(index=4, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    after = canary(index=5, stableRS="7c9b2")
    assert verify("promote", after, before).reason == "rollout checkout promoted: step 4/5 → 5/5"


def test_verify_promote_blue_green() -> None:
    before = blue_green(pause=True)
    after = blue_green()
    got = verify("promote", after, before)
    assert (got.verified, got.reason) == (
        True,
        "rollout checkout promoted: the blue-green pause is cleared; Argo switches the active "
        "service once pre-promotion analysis, if any, passes",
    )
    got = verify("promote", before, before)
    assert (got.verified, got.reason) == (False, "rollout checkout: still paused (BlueGreenPause)")
    fresh = copy.deepcopy(before)
    fresh["status"]["pauseConditions"][0]["startTime"] = "2026-08-20T11:00:00Z"
    assert verify("promote", fresh, before).verified


def test_verify_promote_when_nothing_was_to_promote() -> None:
    got = verify("promote", blue_green(), blue_green())
    assert (got.verified, got.reason) == (
        True,
        "rollout checkout: nothing to promote, it was not paused",
    )


def test_verify_promote_needs_before() -> None:
    with pytest.raises(ValueError, match="needs the Rollout as read before"):
        verify("promote", canary())
    with pytest.raises(ValueError, match="needs the Rollout as read before"):
        verify("promote_full", canary())


def test_verify_promote_full() -> None:
    before = canary(index=1, pause_reasons=("CanaryPauseStep",), controller_pause=True)
    done = canary(index=5, stableRS="7c9b2")
    got = verify("promote_full", done, before)
    assert (got.verified, got.reason) == (True, "rollout checkout fully promoted: stable is 7c9b2")
    going = canary(index=1, promoteFull=True)
    got = verify("promote_full", going, before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: full promotion requested, but stable is still 6d4f8, not 7c9b2; "
        "Argo is still scaling up and shifting traffic",
    )
    got = verify("promote_full", before, before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: not fully promoted and status.promoteFull is not set — the request "
        "did not land, or the revision changed",
    )
    newer = canary(index=5, currentPodHash="9a1e3", stableRS="9a1e3")
    assert not verify("promote_full", newer, before).verified


def test_verify_promote_full_paused_and_aborted() -> None:
    before = canary(index=2, paused=True)
    got = verify("promote_full", canary(index=2, paused=True, promoteFull=True), before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: spec.paused is still true — the unpause did not land, or someone "
        "paused it",
    )
    got = verify("promote_full", canary(index=2, abort=True, promoteFull=True), before)
    assert (got.verified, got.reason) == (
        False,
        "rollout checkout: it is aborted (status.abort); retry it first",
    )
    done = canary(index=5, stableRS="7c9b2")
    got = verify("promote_full", done, done)
    assert (got.verified, got.reason) == (True, "rollout checkout: already fully promoted")
