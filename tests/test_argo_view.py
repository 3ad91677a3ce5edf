"""relconsole.providers.argo.view: a Rollout read as `kubectl argo rollouts` reads it.

The Rollouts here are written for these tests. The last test reads Argo's own test
Rollouts from the shared research folder at run time (they are Apache-2.0 data that is
not copied into this repository) and checks what Argo's tests assert of them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from relconsole.providers.argo.view import (
    MSG_BECOMING_AVAILABLE,
    MSG_CUTOVER_PENDING,
    MSG_MANUALLY_PAUSED,
    MSG_MORE_REPLICAS,
    MSG_OLD_REPLICAS,
    MSG_RESTARTING,
    MSG_SPEC_NOT_OBSERVED,
    MSG_UNPAUSING,
    MSG_WAITING_ANALYSIS,
    MSG_WAITING_STEPS,
    MSG_WAITING_VERIFICATION,
    AnalysisStep,
    ArgoPhase,
    ExperimentStep,
    PauseStep,
    PluginStep,
    RolloutFormatError,
    SetCanaryScaleStep,
    SetHeaderRouteStep,
    SetMirrorRouteStep,
    SetWeightStep,
    StepKind,
    UnknownStep,
    canary_steps,
    pause_duration_seconds,
    rollout_phase,
    view,
)

UID = "0c0ffee0-0000-4000-8000-000000000001"
STABLE = "5b8f7c9d4"
NEW = "6d9a1e2f7"

Json = dict[str, Any]


def canary_rollout(**status: Any) -> Json:
    """A checkout-api canary half-way through: 4 of 10 replicas updated, at step 2 of 5."""
    ro: Json = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout-api", "namespace": "shop", "uid": UID, "generation": 7},
        "spec": {
            "replicas": 10,
            "strategy": {
                "canary": {
                    "canaryService": "checkout-canary",
                    "stableService": "checkout-stable",
                    "steps": [
                        {"setWeight": 10},
                        {"pause": {"duration": "2m"}},
                        {"setWeight": 40},
                        {"pause": {}},
                        {"setWeight": 80},
                    ],
                }
            },
        },
        "status": {
            "observedGeneration": "7",
            "currentPodHash": NEW,
            "stableRS": STABLE,
            "currentStepIndex": 2,
            "replicas": 10,
            "updatedReplicas": 10,
            "readyReplicas": 10,
            "availableReplicas": 10,
        },
    }
    ro["status"].update(status)
    return ro


def with_router(ro: Json, **routing: Any) -> Json:
    ro["spec"]["strategy"]["canary"]["trafficRouting"] = {
        "nginx": {"stableIngress": "checkout"},
        **routing,
    }
    return ro


def blue_green_rollout(**status: Any) -> Json:
    ro: Json = {
        "kind": "Rollout",
        "metadata": {"name": "billing", "namespace": "shop", "uid": UID, "generation": 3},
        "spec": {
            "replicas": 2,
            "strategy": {
                "blueGreen": {
                    "activeService": "billing-active",
                    "previewService": "billing-preview",
                }
            },
        },
        "status": {
            "observedGeneration": "3",
            "currentPodHash": NEW,
            "stableRS": STABLE,
            "replicas": 4,
            "updatedReplicas": 2,
            "readyReplicas": 4,
            "availableReplicas": 4,
            "blueGreen": {"activeSelector": STABLE, "previewSelector": NEW},
        },
    }
    ro["status"].update(status)
    return ro


def replica_set(
    pod_hash: str,
    available: int,
    *,
    ready: int | None = None,
    replicas: int | None = None,
    owner: str = UID,
    revision: str = "1",
) -> Json:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"checkout-api-{pod_hash}",
            "labels": {"rollouts-pod-template-hash": pod_hash},
            "annotations": {"rollout.argoproj.io/revision": revision},
            "ownerReferences": [{"kind": "Rollout", "uid": owner, "controller": True}],
        },
        "status": {
            "replicas": available if replicas is None else replicas,
            "readyReplicas": available if ready is None else ready,
            "availableReplicas": available,
        },
    }


def steps_of(ro: Json) -> list[Any]:
    steps: list[Any] = ro["spec"]["strategy"]["canary"]["steps"]
    return steps


# --------------------------------------------------------------------------------------
# Phase and message: GetRolloutPhase, in its order


def test_spec_not_yet_observed_wins_over_everything() -> None:
    ro = canary_rollout(observedGeneration="6", phase="Healthy", message="")
    ro["spec"]["paused"] = True
    assert rollout_phase(ro) == ("Progressing", MSG_SPEC_NOT_OBSERVED)
    assert view(ro).generation_observed is False


@pytest.mark.parametrize(
    "observed",
    [
        "8",  # above generation: the v0.9 numeric-hash corner case counts as observed
        "7",
        "5c9f8d7b6",  # a v0.9 hash
        "",  # never written
        "+7",  # Go's Atoi takes a sign
    ],
)
def test_generation_counts_as_observed(observed: str) -> None:
    ro = canary_rollout(observedGeneration=observed, phase="Paused", message="CanaryPauseStep")
    assert rollout_phase(ro) == ("Paused", "CanaryPauseStep")


def test_missing_observed_generation_is_observed() -> None:
    ro = canary_rollout(phase="Healthy")
    del ro["status"]["observedGeneration"]
    assert rollout_phase(ro) == ("Healthy", "")


def test_controller_pause_without_conditions_is_unpausing() -> None:
    ro = canary_rollout(
        controllerPause=True, pauseConditions=[], phase="Paused", message="CanaryPauseStep"
    )
    assert rollout_phase(ro) == ("Progressing", MSG_UNPAUSING)


def test_controller_pause_with_conditions_is_not_unpausing() -> None:
    ro = canary_rollout(
        controllerPause=True,
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": "2026-08-20T10:00:00Z"}],
    )
    assert rollout_phase(ro) == ("Paused", "CanaryPauseStep")


def test_controller_phase_is_passed_through_unchanged() -> None:
    # v1.0+ controllers compute it; even a phase unknown to us is shown as written.
    ro = canary_rollout(
        phase="Degraded", message="RolloutAborted: Rollout aborted update to revision 4"
    )
    assert rollout_phase(ro) == ("Degraded", "RolloutAborted: Rollout aborted update to revision 4")
    assert rollout_phase(canary_rollout(phase="ScaledDown", message="x")) == ("ScaledDown", "x")
    phase = view(canary_rollout(phase="Healthy")).phase
    assert phase == "Healthy" and type(phase) is str


def test_invalid_spec_condition_is_degraded() -> None:
    ro = canary_rollout(
        conditions=[
            {
                "type": "InvalidSpec",
                "status": "True",
                "reason": "InvalidSpec",
                "message": 'The Rollout "checkout-api" is invalid: spec.strategy.canary.steps[1]',
            },
        ]
    )
    assert rollout_phase(ro) == (
        "Degraded",
        'InvalidSpec: The Rollout "checkout-api" is invalid: spec.strategy.canary.steps[1]',
    )


def test_aborted_is_degraded_with_rollout_aborted_message() -> None:
    ro = canary_rollout(
        abort=True,
        abortedAt="2026-08-20T10:05:00Z",
        currentStepIndex=0,
        conditions=[
            {
                "type": "Available",
                "status": "True",
                "reason": "AvailableReason",
                "message": "Rollout has minimum availability",
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "RolloutAborted",
                "message": 'Rollout aborted update to revision 4: Metric "errors" assessed Failed',
            },
        ],
    )
    v = view(ro)
    assert (v.phase, v.message) == (
        "Degraded",
        'RolloutAborted: Rollout aborted update to revision 4: Metric "errors" assessed Failed',
    )
    assert v.phase != "Aborted" and "Aborted" not in {p.value for p in ArgoPhase}
    assert v.aborted is True
    assert v.set_weight == 0  # abort forces the desired weight to 0


def test_progress_deadline_is_degraded_and_first_condition_wins() -> None:
    ro = canary_rollout(
        conditions=[
            {
                "type": "Progressing",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "checkout-api-6d9a1e2f7" has timed out progressing.',
            },
            {"type": "InvalidSpec", "reason": "InvalidSpec", "message": "later"},
        ]
    )
    assert rollout_phase(ro) == (
        "Degraded",
        'ProgressDeadlineExceeded: ReplicaSet "checkout-api-6d9a1e2f7" has timed out progressing.',
    )


def test_conditions_are_checked_before_pauses() -> None:
    ro = canary_rollout(
        pauseConditions=[{"reason": "InconclusiveAnalysisRun"}],
        controllerPause=True,
        conditions=[
            {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "late"}
        ],
    )
    ro["spec"]["paused"] = True
    assert rollout_phase(ro) == ("Degraded", "ProgressDeadlineExceeded: late")


def test_other_condition_reasons_do_not_degrade() -> None:
    ro = canary_rollout(
        conditions=[
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "ok",
            },
            {"type": "Paused", "status": "False", "reason": "RolloutResumed", "message": "resumed"},
        ]
    )
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_STEPS)


def test_manual_pause_before_pause_conditions() -> None:
    ro = canary_rollout(pauseConditions=[{"reason": "CanaryPauseStep"}], controllerPause=True)
    ro["spec"]["paused"] = True
    assert rollout_phase(ro) == ("Paused", MSG_MANUALLY_PAUSED)
    assert view(ro).manually_paused is True


@pytest.mark.parametrize(
    "reason",
    ["CanaryPauseStep", "BlueGreenPause", "InconclusiveAnalysisRun", "InconclusiveExperiment"],
)
def test_first_pause_condition_is_the_message(reason: str) -> None:
    ro = canary_rollout(
        pauseConditions=[{"reason": reason}, {"reason": "BlueGreenPause"}], controllerPause=True
    )
    assert rollout_phase(ro) == ("Paused", reason)
    assert view(ro).pause_reasons[0] == reason


def test_restart_pending_and_done() -> None:
    ro = canary_rollout(restartedAt="2026-08-20T09:00:00Z")
    ro["spec"]["restartAt"] = "2026-08-20T10:00:00Z"
    assert rollout_phase(ro) == ("Progressing", MSG_RESTARTING)
    del ro["status"]["restartedAt"]
    assert rollout_phase(ro) == ("Progressing", MSG_RESTARTING)
    # The same instant in another zone is equal (Go compares times, not text).
    ro["status"]["restartedAt"] = "2026-08-20T12:00:00+02:00"
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_STEPS)


def test_more_replicas_need_to_be_updated() -> None:
    assert rollout_phase(canary_rollout(updatedReplicas=4)) == ("Progressing", MSG_MORE_REPLICAS)


def test_desired_replicas_default_to_one() -> None:
    ro = canary_rollout(updatedReplicas=0, availableReplicas=0, replicas=0)
    del ro["spec"]["replicas"]
    assert rollout_phase(ro) == ("Progressing", MSG_MORE_REPLICAS)
    assert view(ro).replicas.desired == 1
    ro["status"].update(updatedReplicas=1, availableReplicas=1, replicas=1)
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_STEPS)


def test_updated_replicas_becoming_available() -> None:
    ro = canary_rollout(availableReplicas=9)
    assert rollout_phase(ro) == ("Progressing", MSG_BECOMING_AVAILABLE)


def test_basic_canary_old_replicas_pending_termination() -> None:
    ro = canary_rollout(replicas=12)
    assert rollout_phase(ro) == ("Progressing", MSG_OLD_REPLICAS)


def test_traffic_routed_canary_skips_old_replicas_check() -> None:
    # scaleDownDelay keeps the old pods on purpose behind a traffic router.
    ro = with_router(canary_rollout(replicas=12))
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_STEPS)


def test_canary_waiting_for_steps_until_stable_is_current() -> None:
    assert rollout_phase(canary_rollout()) == ("Progressing", MSG_WAITING_STEPS)
    assert rollout_phase(canary_rollout(stableRS="")) == ("Progressing", MSG_WAITING_STEPS)


def test_healthy_when_fully_promoted() -> None:
    ro = canary_rollout(stableRS=NEW, currentStepIndex=5)
    v = view(ro)
    assert (v.phase, v.message) == ("Healthy", "")
    assert v.fully_promoted is True


def test_blue_green_cutover_pending() -> None:
    assert rollout_phase(blue_green_rollout()) == ("Progressing", MSG_CUTOVER_PENDING)
    ro = blue_green_rollout()
    ro["status"]["blueGreen"] = {}
    assert rollout_phase(ro) == ("Progressing", MSG_CUTOVER_PENDING)


def test_blue_green_post_promotion() -> None:
    ro = blue_green_rollout(blueGreen={"activeSelector": NEW, "previewSelector": NEW})
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_VERIFICATION)
    ro["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"] = {
        "templates": [{"templateName": "smoke"}]
    }
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_ANALYSIS)
    ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"] = {"name": "r", "status": "Running"}
    assert rollout_phase(ro) == ("Progressing", MSG_WAITING_ANALYSIS)
    for done in ("Successful", "Failed", "Error", "Inconclusive"):
        ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"]["status"] = done
        assert rollout_phase(ro) == ("Progressing", MSG_WAITING_VERIFICATION)


def test_blue_green_healthy() -> None:
    ro = blue_green_rollout(stableRS=NEW, blueGreen={"activeSelector": NEW})
    assert rollout_phase(ro) == ("Healthy", "")


def test_no_strategy_is_healthy_once_replicas_are_up() -> None:
    ro = canary_rollout()
    ro["spec"]["strategy"] = {}
    v = view(ro)
    assert (v.phase, v.strategy, v.set_weight, v.steps) == ("Healthy", None, None, ())


# --------------------------------------------------------------------------------------
# Steps


def test_every_step_kind_and_its_text() -> None:
    ro = with_router(canary_rollout(), managedRoutes=[{"name": "hdr"}, {"name": "mirror"}])
    steps_of(ro)[:] = [
        {"setWeight": 5},
        {"pause": {"duration": 30}},
        {"pause": {}},
        {
            "analysis": {
                "templates": [
                    {"templateName": "success-rate"},
                    {"templateName": "latency", "clusterScope": True},
                ],
                "args": [
                    {"name": "service", "value": "checkout"},
                    {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                    {
                        "name": "region",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['region']"}},
                    },
                ],
                "dryRun": [{"metricName": "latency"}],
            }
        },
        {
            "experiment": {
                "duration": "10m",
                "templates": [
                    {"name": "baseline", "specRef": "stable", "replicas": 1},
                    {"name": "candidate", "specRef": "canary", "weight": 5},
                ],
                "analyses": [{"name": "compare", "templateName": "mann-whitney"}],
            }
        },
        {"setCanaryScale": {"weight": 25}},
        {"setCanaryScale": {"replicas": 3}},
        {"setCanaryScale": {"matchTrafficWeight": True}},
        {
            "setHeaderRoute": {
                "name": "hdr",
                "match": [
                    {"headerName": "X-Canary", "headerValue": {"exact": "always"}},
                    {"headerName": "User-Agent", "headerValue": {"prefix": "Mozilla"}},
                    {"headerName": "X-Team", "headerValue": {"regex": "pay.*"}},
                ],
            }
        },
        {"setHeaderRoute": {"name": "hdr"}},
        {
            "setMirrorRoute": {
                "name": "mirror",
                "percentage": 35,
                "match": [
                    {"method": {"exact": "GET"}, "path": {"prefix": "/api"}},
                ],
            }
        },
        {"setMirrorRoute": {"name": "mirror", "match": [{"headers": {"X-Debug": {"exact": "1"}}}]}},
        {"setMirrorRoute": {"name": "mirror"}},
        {"plugin": {"name": "argoproj-labs/gatewayAPI", "config": {"b": 1, "a": [True]}}},
        {"somethingNew": {"x": 1}},
        {},
    ]
    steps = view(ro).steps
    assert [s.index for s in steps] == list(range(16))
    assert [s.kind for s in steps] == [
        StepKind.SET_WEIGHT,
        StepKind.PAUSE,
        StepKind.PAUSE,
        StepKind.ANALYSIS,
        StepKind.EXPERIMENT,
        StepKind.SET_CANARY_SCALE,
        StepKind.SET_CANARY_SCALE,
        StepKind.SET_CANARY_SCALE,
        StepKind.SET_HEADER_ROUTE,
        StepKind.SET_HEADER_ROUTE,
        StepKind.SET_MIRROR_ROUTE,
        StepKind.SET_MIRROR_ROUTE,
        StepKind.SET_MIRROR_ROUTE,
        StepKind.PLUGIN,
        StepKind.UNKNOWN,
        StepKind.UNKNOWN,
    ]
    assert [s.text for s in steps] == [
        "set weight 5%",
        "pause 30s",
        "pause (until promoted)",
        "analysis: success-rate, latency",
        "experiment: baseline, candidate for 10m (analysis: mann-whitney)",
        "canary scale 25%",
        "canary scale 3 replicas",
        "canary scale follows traffic weight",
        "header route hdr: X-Canary=always, User-Agent=Mozilla*, X-Team~/pay.*/",
        "header route hdr: removed",
        "mirror route mirror: 35% of method=GET path=/api*",
        "mirror route mirror: 100% of X-Debug=1",
        "mirror route mirror: removed",
        "plugin: argoproj-labs/gatewayAPI",
        "unknown step (somethingNew)",
        "empty step",
    ]
    analysis = steps[3]
    assert isinstance(analysis, AnalysisStep)
    assert [(t.name, t.cluster_scope) for t in analysis.templates] == [
        ("success-rate", False),
        ("latency", True),
    ]
    assert [(a.name, a.value, a.value_from) for a in analysis.args] == [
        ("service", "checkout", None),
        ("hash", "", "podTemplateHashValue: Latest"),
        ("region", "", "fieldRef: metadata.labels['region']"),
    ]
    assert analysis.dry_run == ("latency",)
    experiment = steps[4]
    assert isinstance(experiment, ExperimentStep)
    assert [(t.name, t.spec_ref, t.replicas, t.weight) for t in experiment.templates] == [
        ("baseline", "stable", 1, None),
        ("candidate", "canary", None, 5),
    ]
    scale = steps[6]
    assert isinstance(scale, SetCanaryScaleStep) and scale.replicas == 3 and scale.weight is None
    header = steps[8]
    assert isinstance(header, SetHeaderRouteStep) and not header.removes
    assert header.matches[0].header == "X-Canary" and header.matches[0].value is not None
    assert header.matches[0].value.exact == "always"
    mirror = steps[11]
    assert isinstance(mirror, SetMirrorRouteStep)
    assert mirror.percentage is None and mirror.effective_percentage == 100
    plugin = steps[13]
    assert isinstance(plugin, PluginStep) and json.loads(plugin.config_json) == {
        "a": [True],
        "b": 1,
    }
    unknown = steps[14]
    assert isinstance(unknown, UnknownStep) and unknown.keys == ("somethingNew",)
    # Frozen and hashable: safe to keep in engine state and compare between polls.
    assert len(set(steps)) == 16
    with pytest.raises(AttributeError):
        steps[0].index = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("duration", "seconds", "text"),
    [
        (None, None, "pause (until promoted)"),
        (30, 30, "pause 30s"),
        ("30s", 30, "pause 30s"),
        ("10", 10, "pause 10s"),  # a string without a unit is seconds
        ("5m", 300, "pause 5m"),
        ("1h30m", 5400, "pause 1h30m"),
        ("1.5m", 90, "pause 1m30s"),
        ("1500ms", 1, "pause 1s"),  # truncated to whole seconds, as the controller does
        ("soon", -1, "pause (invalid duration 'soon')"),
        ("5 m", -1, "pause (invalid duration '5 m')"),
        ("", -1, "pause (invalid duration '')"),
    ],
)
def test_pause_with_and_without_duration(
    duration: int | str | None, seconds: int | None, text: str
) -> None:
    ro = canary_rollout()
    steps_of(ro)[1] = {"pause": {} if duration is None else {"duration": duration}}
    step = view(ro).steps[1]
    assert isinstance(step, PauseStep)
    assert (step.duration, step.seconds, step.text) == (duration, seconds, text)
    assert step.indefinite is (duration is None)


def test_pause_duration_seconds_follows_go() -> None:
    assert pause_duration_seconds("0") == 0
    assert pause_duration_seconds("-5s") == -5
    assert pause_duration_seconds("+2h") == 7200
    assert pause_duration_seconds(".5h") == 1800
    assert pause_duration_seconds("1d") is None  # Go has no day unit
    assert pause_duration_seconds("99999999999") is None  # no unit and out of int32


def test_null_step_fields_count_as_absent() -> None:
    ro = canary_rollout()
    steps_of(ro)[0] = {"setWeight": None, "pause": {"duration": None}}
    step = view(ro).steps[0]
    assert isinstance(step, PauseStep) and step.indefinite


def test_step_with_two_fields_is_read_as_the_plugin_prints_it() -> None:
    ro = canary_rollout()
    steps_of(ro)[0] = {"pause": {}, "setWeight": 15}
    assert isinstance(view(ro).steps[0], SetWeightStep)


def test_canary_steps_helper() -> None:
    assert [s.text for s in canary_steps(canary_rollout())] == [
        "set weight 10%",
        "pause 2m",
        "set weight 40%",
        "pause (until promoted)",
        "set weight 80%",
    ]
    assert canary_steps(blue_green_rollout()) == ()


def test_current_step_index_and_count() -> None:
    v = view(canary_rollout())
    assert (v.current_step_index, v.step_count, v.step_text) == (2, 5, "2/5")
    assert isinstance(v.current_step, SetWeightStep) and v.current_step.weight == 40


def test_missing_index_is_step_zero_but_no_step_line() -> None:
    ro = canary_rollout()
    del ro["status"]["currentStepIndex"]
    v = view(ro)
    assert v.current_step_index is None and v.step_text is None
    assert v.current_step is not None and v.current_step.index == 0
    assert v.set_weight == 10
    assert v.controller_dict()["step"] is None


def test_no_steps_means_no_index() -> None:
    ro = canary_rollout(currentStepIndex=0)
    steps_of(ro).clear()
    v = view(ro)
    assert (v.current_step_index, v.step_count, v.current_step, v.step_text) == (
        None,
        0,
        None,
        None,
    )


def test_past_the_last_step_has_no_current_step() -> None:
    v = view(canary_rollout(currentStepIndex=5))
    assert v.current_step is None and v.step_text == "5/5"


# --------------------------------------------------------------------------------------
# Set weight and actual weight


def test_set_weight_walks_back_to_the_last_set_weight() -> None:
    assert view(canary_rollout(currentStepIndex=3)).set_weight == 40  # at the pause after 40
    assert view(canary_rollout(currentStepIndex=1)).set_weight == 10
    ro = canary_rollout(currentStepIndex=1)
    steps_of(ro)[0] = {"analysis": {"templates": [{"templateName": "smoke"}]}}
    assert view(ro).set_weight == 0  # no setWeight at or before the current step


def test_fully_promoted_and_no_steps_are_max_weight() -> None:
    v = view(canary_rollout(currentStepIndex=5), [])
    assert (v.set_weight, v.actual_weight) == (100, 100)
    ro = canary_rollout(currentStepIndex=None)
    steps_of(ro).clear()
    v = view(ro, [])
    assert (v.set_weight, v.actual_weight) == (100, 100)


def test_max_traffic_weight() -> None:
    ro = with_router(canary_rollout(currentStepIndex=5), maxTrafficWeight=1000)
    v = view(ro)
    assert (v.set_weight, v.actual_weight, v.max_weight) == (1000, 1000, 1000)
    assert v.steps[0].text == "set weight 10/1000"


def test_actual_weight_with_router_reads_status_weights() -> None:
    ro = with_router(
        canary_rollout(
            canary={
                "weights": {
                    "canary": {
                        "weight": 35,
                        "serviceName": "checkout-canary",
                        "podTemplateHash": NEW,
                    },
                    "stable": {
                        "weight": 65,
                        "serviceName": "checkout-stable",
                        "podTemplateHash": STABLE,
                    },
                }
            }
        )
    )
    v = view(ro)
    assert (v.set_weight, v.actual_weight, v.traffic_routing) == (40, 35, True)


def test_actual_weight_with_router_without_weights_is_set_weight() -> None:
    v = view(with_router(canary_rollout(canary={})))
    assert (v.set_weight, v.actual_weight) == (40, 40)


def test_actual_weight_with_router_and_empty_weights_is_zero() -> None:
    # Weights present but no canary entry: Go reads the zero value, not SetWeight.
    v = view(with_router(canary_rollout(canary={"weights": {}})))
    assert v.actual_weight == 0


def test_actual_weight_without_router_is_the_replica_share() -> None:
    ro = canary_rollout(availableReplicas=3)
    sets = [replica_set(NEW, 1, revision="2"), replica_set(STABLE, 2)]
    v = view(ro, sets)
    assert (v.set_weight, v.actual_weight, v.traffic_routing) == (40, 33, False)  # 1*100/3


def test_actual_weight_without_router_needs_the_replica_sets() -> None:
    assert view(canary_rollout()).actual_weight is None  # not shown them: unknown, not 0
    assert view(canary_rollout(), [replica_set(STABLE, 10)]).actual_weight == 0  # no canary RS


def test_actual_weight_is_zero_without_available_replicas() -> None:
    v = view(canary_rollout(availableReplicas=0), [replica_set(NEW, 0)])
    assert v.actual_weight == 0


def test_replica_sets_of_other_rollouts_do_not_count() -> None:
    sets = [replica_set(NEW, 5, owner="someone-else"), replica_set(STABLE, 5)]
    v = view(canary_rollout(), sets)
    assert v.canary is None and v.actual_weight == 0
    assert v.stable is not None and v.stable.available == 5


def test_blue_green_has_no_weights() -> None:
    v = view(blue_green_rollout())
    assert (v.set_weight, v.actual_weight, v.max_weight, v.step_text) == (None, None, None, None)


# --------------------------------------------------------------------------------------
# Pods per side


def test_pods_ready_per_side() -> None:
    sets = [
        replica_set(STABLE, 6, ready=7, replicas=8, revision="3"),
        replica_set(NEW, 3, ready=4, replicas=4, revision="4"),
        replica_set("0ld0ld0ld", 0, revision="2"),
    ]
    v = view(canary_rollout(), sets)
    assert v.stable is not None and v.canary is not None
    assert (v.stable.replicas, v.stable.ready, v.stable.available) == (8, 7, 6)
    assert (v.canary.replicas, v.canary.ready, v.canary.available) == (4, 4, 3)
    assert v.canary.replica_set == f"checkout-api-{NEW}" and v.canary.all_ready
    assert not v.stable.all_ready


def test_pods_per_side_unknown_without_replica_sets() -> None:
    v = view(canary_rollout())
    assert (v.stable, v.canary) == (None, None)


def test_fully_promoted_has_no_canary_side() -> None:
    v = view(canary_rollout(stableRS=NEW), [replica_set(NEW, 10)])
    assert v.canary is None and v.stable is not None and v.stable.ready == 10


def test_replica_counters() -> None:
    r = view(
        canary_rollout(replicas=11, updatedReplicas=4, readyReplicas=9, availableReplicas=8)
    ).replicas
    assert (r.desired, r.current, r.updated, r.ready, r.available) == (10, 11, 4, 9, 8)


# --------------------------------------------------------------------------------------
# Blue-green


def test_blue_green_two_stages_waiting_for_promote() -> None:
    ro = blue_green_rollout(pauseConditions=[{"reason": "BlueGreenPause"}], controllerPause=True)
    ro["spec"]["strategy"]["blueGreen"].update(
        autoPromotionEnabled=False,
        prePromotionAnalysis={"templates": [{"templateName": "smoke"}]},
        postPromotionAnalysis={"templates": [{"templateName": "soak"}]},
    )
    v = view(ro, [replica_set(STABLE, 2), replica_set(NEW, 2, revision="2")])
    assert (v.strategy, v.phase, v.message) == ("BlueGreen", "Paused", "BlueGreenPause")
    bg = v.blue_green
    assert bg is not None
    assert (bg.active_service, bg.preview_service, bg.auto_promotion_enabled) == (
        "billing-active",
        "billing-preview",
        False,
    )
    assert [(s.name, s.text) for s in bg.stages] == [
        (
            "preview",
            "preview: new version on billing-preview, analysis: smoke, then wait for promote",
        ),
        ("promote", "promote: billing-active switches to the new version, analysis: soak"),
    ]
    assert bg.current_stage == 0
    assert v.stable is not None and v.canary is not None  # old and new side
    assert v.controller_dict() == {
        "phase": "Paused",
        "message": "BlueGreenPause",
        "step": None,
        "steps": None,
        "set_weight": None,
        "actual_weight": None,
    }


def test_blue_green_auto_promotion_defaults_to_true() -> None:
    bg = view(blue_green_rollout()).blue_green
    assert bg is not None and bg.auto_promotion_enabled is True
    assert bg.stages[0].text.endswith("then promote automatically")
    ro = blue_green_rollout()
    ro["spec"]["strategy"]["blueGreen"]["autoPromotionSeconds"] = 90
    bg = view(ro).blue_green
    assert bg is not None and bg.stages[0].text.endswith("then promote after 1m30s")


def test_blue_green_stage_follows_the_cutover() -> None:
    cut = blue_green_rollout(blueGreen={"activeSelector": NEW})
    done = blue_green_rollout(stableRS=NEW, blueGreen={"activeSelector": NEW})
    stages = [view(r).blue_green for r in (blue_green_rollout(), cut, done)]
    assert [s.current_stage if s else None for s in stages] == [0, 1, 2]


# --------------------------------------------------------------------------------------
# controller_dict


def test_controller_dict() -> None:
    ro = with_router(
        canary_rollout(
            currentStepIndex=3,
            pauseConditions=[{"reason": "CanaryPauseStep"}],
            controllerPause=True,
            canary={"weights": {"canary": {"weight": 40}, "stable": {"weight": 60}}},
        )
    )
    d = view(ro).controller_dict()
    assert d == {
        "phase": "Paused",
        "message": "CanaryPauseStep",
        "step": 3,
        "steps": 5,
        "set_weight": 40,
        "actual_weight": 40,
    }
    assert json.loads(json.dumps(d)) == d


# --------------------------------------------------------------------------------------
# Malformed input: defaults where Go has zero values, one clear ValueError otherwise


def test_empty_rollout_uses_the_plugin_defaults() -> None:
    v = view({})
    assert (v.phase, v.message, v.strategy, v.replicas.desired) == (
        "Progressing",
        MSG_MORE_REPLICAS,
        None,
        1,
    )
    assert view({"metadata": None, "spec": None, "status": None}).phase == "Progressing"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda ro: ro.__setitem__("status", []), "status"),
        (lambda ro: ro.__setitem__("kind", "Deployment"), "kind"),
        (lambda ro: ro["status"].__setitem__("currentStepIndex", "2"), "status.currentStepIndex"),
        (lambda ro: ro["status"].__setitem__("currentStepIndex", -1), "status.currentStepIndex"),
        (lambda ro: ro["status"].__setitem__("currentStepIndex", 2.0), "status.currentStepIndex"),
        (lambda ro: ro["status"].__setitem__("abort", "true"), "status.abort"),
        (lambda ro: ro["status"].__setitem__("observedGeneration", 7), "status.observedGeneration"),
        (
            lambda ro: ro["status"].__setitem__("availableReplicas", True),
            "status.availableReplicas",
        ),
        (
            lambda ro: ro["status"].__setitem__("pauseConditions", {"reason": "x"}),
            "status.pauseConditions",
        ),
        (lambda ro: ro["status"].__setitem__("conditions", ["Degraded"]), "status.conditions[0]"),
        (lambda ro: ro["status"].__setitem__("canary", {"weights": []}), "status.canary.weights"),
        (lambda ro: ro["metadata"].__setitem__("generation", "7"), "metadata.generation"),
        (lambda ro: ro["spec"].__setitem__("replicas", 2**40), "spec.replicas"),
        (lambda ro: ro["spec"].__setitem__("restartAt", "yesterday"), "spec.restartAt"),
        (lambda ro: ro["spec"].__setitem__("restartAt", "2026-08-20"), "spec.restartAt"),
        (lambda ro: ro["spec"]["strategy"].__setitem__("canary", "yes"), "spec.strategy.canary"),
        (
            lambda ro: ro["spec"]["strategy"]["canary"].__setitem__("steps", {"setWeight": 1}),
            "spec.strategy.canary.steps",
        ),
        (lambda ro: steps_of(ro).__setitem__(1, "pause"), "spec.strategy.canary.steps[1]"),
        (
            lambda ro: steps_of(ro).__setitem__(0, {"setWeight": "10"}),
            "spec.strategy.canary.steps[0].setWeight",
        ),
        (
            lambda ro: steps_of(ro).__setitem__(1, {"pause": {"duration": 1.5}}),
            "spec.strategy.canary.steps[1].pause.duration",
        ),
        (
            lambda ro: steps_of(ro).__setitem__(1, {"pause": True}),
            "spec.strategy.canary.steps[1].pause",
        ),
        (
            lambda ro: steps_of(ro).__setitem__(
                0, {"analysis": {"templates": [{"templateName": 3}]}}
            ),
            "spec.strategy.canary.steps[0].analysis.templates[0].templateName",
        ),
    ],
)
def test_wrong_types_raise_one_value_error_naming_the_field(mutate: Any, field: str) -> None:
    ro = canary_rollout()
    mutate(ro)
    with pytest.raises(RolloutFormatError) as caught:
        view(ro)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_not_an_object() -> None:
    with pytest.raises(ValueError, match=r"^rollout: expected an object, got array$"):
        view([])  # type: ignore[arg-type]


def test_malformed_replica_sets() -> None:
    with pytest.raises(RolloutFormatError, match=r"^replicaSets\[1\]: expected an object"):
        view(canary_rollout(), [replica_set(NEW, 1), "rs"])  # type: ignore[list-item]
    bad = replica_set(NEW, 1)
    bad["status"]["availableReplicas"] = "1"
    with pytest.raises(RolloutFormatError, match=r"replicaSets\[0\]\.status\.availableReplicas"):
        view(canary_rollout(), [bad])
    with pytest.raises(RolloutFormatError, match=r"^replicaSets:"):
        view(canary_rollout(), {"items": []})  # type: ignore[arg-type]


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _leaf_paths(child, (*path, i))


def test_no_field_of_any_type_raises_anything_but_value_error() -> None:
    """Every field of a rich Rollout, replaced by every JSON type: a view or a ValueError."""
    # Both strategies at once (an InvalidSpec the controller would report) so that every
    # field either rule reads is present to be broken.
    base = with_router(
        canary_rollout(
            pauseConditions=[{"reason": "BlueGreenPause"}],
            conditions=[{"type": "Progressing", "reason": "RolloutPaused", "message": "m"}],
            canary={"weights": {"canary": {"weight": 1}}},
            restartedAt="2026-08-20T10:00:00Z",
            blueGreen={
                "activeSelector": NEW,
                "postPromotionAnalysisRunStatus": {"status": "Running"},
            },
            currentStepIndex=1,
        ),
        maxTrafficWeight=100,
    )
    base["spec"]["restartAt"] = "2026-08-20T10:00:00Z"
    base["spec"]["strategy"]["blueGreen"] = {
        "activeService": "a",
        "autoPromotionEnabled": False,
        "postPromotionAnalysis": {"templates": [{"templateName": "t"}]},
    }
    steps_of(base).extend(
        [
            {
                "analysis": {
                    "templates": [{"templateName": "t"}],
                    "args": [{"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "p"}}}],
                }
            },
            {
                "experiment": {
                    "templates": [{"name": "b", "specRef": "stable", "replicas": 1}],
                    "analyses": [{"templateName": "x"}],
                }
            },
            {"setCanaryScale": {"weight": 1}},
            {
                "setHeaderRoute": {
                    "name": "h",
                    "match": [{"headerName": "h", "headerValue": {"exact": "v"}}],
                }
            },
            {
                "setMirrorRoute": {
                    "name": "m",
                    "percentage": 5,
                    "match": [{"method": {"exact": "GET"}, "headers": {"h": {"regex": "r"}}}],
                }
            },
            {"plugin": {"name": "p", "config": {"k": [1]}}},
        ]
    )
    sets = [replica_set(NEW, 1), replica_set(STABLE, 1)]
    junk: list[Any] = [None, "x", "", 0, -1, 2**70, 1.5, True, [], [{}], {}, {"x": {}}]
    checked = 0
    for target in ("rollout", "replica_set"):
        doc = base if target == "rollout" else sets[0]
        for path in _leaf_paths(doc):
            if not path:
                continue
            for value in junk:
                ro, rs = copy.deepcopy(base), copy.deepcopy(sets)
                node: Any = ro if target == "rollout" else rs[0]
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
                with contextlib.suppress(RolloutFormatError):
                    view(ro, rs).controller_dict()
                checked += 1
    assert checked > 1000


# --------------------------------------------------------------------------------------
# Argo's own test Rollouts, read at run time from the shared research folder


FIXTURES = Path(os.environ.get("RELCONSOLE_ARGO_FIXTURES", "/work/shared/research/argo-fixtures"))
FIXTURE_DIRS = (
    "01-canary-traffic-router-weights",
    "02-canary-aborted",
    "03-bluegreen-paused",
    "04-bonus-canary-replica-weight",
)
# What expected.json records that this module does not compute: images and revisions
# (container images per ReplicaSet), the promote request, and the CLI's exit status.
NOT_COMPUTED_HERE = {"images", "revisions", "promote_expectation"}
STATUS_CMD_NOT_COMPUTED = {"exit", "kind", "asserted_by", "watch_with_timeout_1s_stderr"}


def _status_lines(phase: str, message: str) -> dict[str, str]:
    # cmd/status/status.go: without --watch, Healthy and Degraded print alone; with it,
    # the message follows when there is one; Degraded ends with this error on stderr.
    alone = phase in ("Healthy", "Degraded")
    lines = {
        "no_watch_stdout": (phase if alone else f"{phase} - {message}") + "\n",
        "watch_stdout": (f"{phase} - {message}" if message else phase) + "\n",
        "watch_with_timeout_1s_stdout": (f"{phase} - {message}" if message else phase) + "\n",
    }
    if phase == "Degraded":
        lines["stderr"] = f"Error: The rollout is in a degraded state with message: {message}\n"
    return lines


def test_argo_fixtures_read_as_argo_tests_assert() -> None:
    if not (FIXTURES / "expected.json").is_file():
        pytest.fail(
            f"Argo fixtures not found: {FIXTURES}/expected.json is missing. This test reads "
            "Argo's own test Rollouts from the shared research folder (they are not copied "
            "into the repository); set RELCONSOLE_ARGO_FIXTURES to the folder holding "
            "expected.json and " + ", ".join(FIXTURE_DIRS) + "."
        )
    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    missing = [d for d in FIXTURE_DIRS if not (FIXTURES / d).is_dir()]
    assert not missing, f"Argo fixture folders missing under {FIXTURES}: {missing}"
    assert {f["dir"] for f in expected["fixtures"]} == set(FIXTURE_DIRS)

    checked: list[str] = []
    for fixture in expected["fixtures"]:
        folder = FIXTURES / fixture["dir"]
        objects = {
            p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted(folder.glob("*.yaml"))
        }
        rollout = objects[fixture["primary"]]
        assert rollout["kind"] == "Rollout"
        replica_sets = [o for o in objects.values() if o.get("kind") == "ReplicaSet"]
        v = view(rollout, replica_sets)
        where = f"{fixture['dir']}/{fixture['primary']}"
        name = fixture["rollout"]
        assert f"{v.namespace}/{v.name}" == name, where
        for key, want in fixture["expected"].items():
            label = f"{where} {key} ({want.get('kind', '?')})"
            if key in NOT_COMPUTED_HERE:
                continue
            if key == "status":
                assert v.phase == want["value"], label
            elif key == "message":
                assert v.message == want["value"], label
            elif key == "strategy":
                assert v.strategy == want["value"], label
            elif key == "step":
                assert v.step_text == want["value"], label
            elif key == "setWeight":
                assert str(v.set_weight) == want["value"], label
            elif key == "actualWeight":
                assert str(v.actual_weight) == want["value"], label
            elif key == "replicas":
                r = v.replicas
                got = {
                    "desired": r.desired,
                    "current": r.current,
                    "updated": r.updated,
                    "ready": r.ready,
                    "available": r.available,
                }
                assert got == {k: want[k] for k in got}, label
            elif key == "status_cmd":
                lines = _status_lines(v.phase, v.message)
                for line_key, text in want.items():
                    if line_key not in STATUS_CMD_NOT_COMPUTED:
                        assert lines[line_key] == text, f"{label} {line_key}"
            else:
                pytest.fail(f"{label}: expected.json has a key this test does not know")
            checked.append(f"{where}:{key}")
    # Every asserted value of the step/weight/phase kind was compared, not skipped.
    assert len(checked) >= 25, checked
