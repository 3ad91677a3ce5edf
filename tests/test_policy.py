"""The engine's per-poll decision as a function of values: no providers, no clock.

These are the safety rules that decide whether a release moves (docs/design.md, rule 1):
no step on missing data, a tripped gate rolls back (or pauses), dark providers pause.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relconsole.engine import policy
from relconsole.engine.progress import ReleaseState, RollbackState
from relconsole.engine.state import ProblemNote
from relconsole.engine.steps import FixedSteps
from relconsole.model import GateSpec, GateStatus, Phase, Step, Verdict
from tests.fuzz_settings import FUZZ_SMALL

STEPS = FixedSteps((Step(1, 30), Step(10, 60), Step(50, 60), Step(100)))


def gate(verdict: Verdict = Verdict.PASS, *, failures: int = 0, inconclusive: int = 0,
         passed: bool = True, name: str = "error_rate") -> GateStatus:
    spec = GateSpec(metric=name, max=0.01, failure_limit=2, inconclusive_limit=3)
    return GateStatus(spec, verdict, "why", 0.001, 0.001, failures, inconclusive, passed)


def decide(state: ReleaseState, gates: list[GateStatus], problems=None, dark=None, *,
           now: float = 100.0, auto_advance: bool = True,
           auto_rollback: bool = True) -> policy.Decision:
    return policy.decide(state, gates, problems or {}, dark or {"metrics": 0, "traffic": 0},
                         STEPS, now=now, auto_advance=auto_advance,
                         auto_rollback=auto_rollback)


def baked(step_index: int = 1, **kw) -> ReleaseState:
    return ReleaseState(phase=Phase.PROGRESSING, step_index=step_index, weight=10,
                        expected_weight=10, bake_elapsed=61, **kw)


def test_a_baked_step_with_passing_gates_advances() -> None:
    assert decide(baked(), [gate()]) == policy.Advance("bake complete, gates passing")


def test_not_before_the_bake_is_over() -> None:
    state = baked()
    state.bake_elapsed = 59
    assert decide(state, [gate()]) == policy.Hold()


def test_not_when_advancing_is_left_to_a_human() -> None:
    assert decide(baked(), [gate()], auto_advance=False) == policy.Hold()


def test_a_gate_that_has_not_passed_in_this_step_holds_the_step() -> None:
    assert decide(baked(), [gate(passed=False)]) == policy.Hold()


def test_a_tripped_gate_rolls_back_with_its_reason() -> None:
    decision = decide(baked(), [gate(Verdict.FAIL, failures=2)])
    assert decision == policy.StartRollback("gate error_rate failed 2× (why)")


def test_a_tripped_gate_pauses_when_rollback_is_manual() -> None:
    decision = decide(baked(), [gate(Verdict.FAIL, failures=2)], auto_rollback=False)
    assert decision == policy.Pause("gate error_rate failed 2× (why) — roll back or resume")


def test_a_gate_without_data_for_its_limit_pauses() -> None:
    decision = decide(baked(), [gate(Verdict.INCONCLUSIVE, inconclusive=3)])
    assert decision == policy.Pause("no data: gate error_rate inconclusive for 3 polls (why)")


def test_dark_traffic_for_the_limit_pauses_and_says_why() -> None:
    note = ProblemNote("traffic", "haproxy: connection refused", 0.0)
    decision = decide(baked(), [gate()], {"traffic": note}, {"traffic": 3, "metrics": 0})
    assert decision == policy.Pause(
        "no traffic read for 3 polls, the canary weight is unknown "
        "(haproxy: connection refused)"
    )


def test_dead_metrics_pause_only_before_the_first_step() -> None:
    note = ProblemNote("metrics", "prometheus: 503", 0.0)
    pending = ReleaseState(phase=Phase.PENDING, expected_weight=0)
    dark = {"traffic": 0, "metrics": 3}
    assert isinstance(decide(pending, [gate()], {"metrics": note}, dark), policy.Pause)
    assert decide(baked(), [gate()], {"metrics": note}, dark) == policy.Hold()


def test_a_rollback_is_retried_when_due_and_not_before() -> None:
    state = ReleaseState(phase=Phase.ROLLBACK_FAILED, rollback=RollbackState(next_at=50.0))
    assert decide(state, [gate()], now=49.9) == policy.Hold()
    assert decide(state, [gate()], now=50.0) == policy.RetryRollback()


def test_finished_releases_do_nothing() -> None:
    for phase in (Phase.PROMOTED, Phase.ROLLED_BACK):
        state = ReleaseState(phase=phase, expected_weight=100)
        assert decide(state, [gate(Verdict.FAIL, failures=5)]) == policy.Hold()


def test_gate_refusal_names_the_gate_and_its_state() -> None:
    assert policy.gate_refusal("promote", gate(Verdict.FAIL, failures=2)) == (
        "promote refused: gate error_rate is failing (why)"
    )
    assert policy.gate_refusal("advance", gate(Verdict.INCONCLUSIVE)) == (
        "advance refused: gate error_rate is inconclusive (why)"
    )


verdicts = st.sampled_from(list(Verdict))
gates_st = st.lists(
    st.builds(gate, verdicts, failures=st.integers(0, 3), inconclusive=st.integers(0, 4),
              passed=st.booleans()),
    max_size=3,
)
problem_sources = st.sets(st.sampled_from(["metrics", "traffic", "flags", "journal"]))
states = st.builds(
    ReleaseState,
    phase=st.sampled_from(list(Phase)),
    step_index=st.integers(-1, 3),
    weight=st.sampled_from([0, 1, 10, 50, 100]),
    expected_weight=st.one_of(st.none(), st.sampled_from([0, 1, 10, 50, 100])),
    bake_elapsed=st.floats(0, 120),
)


@FUZZ_SMALL
@given(states, gates_st, problem_sources, st.integers(0, 10), st.booleans(), st.booleans())
def test_never_a_step_on_missing_or_bad_data(
    state: ReleaseState, gates: list[GateStatus], sources: set[str], dark: int,
    auto_advance: bool, auto_rollback: bool,
) -> None:
    """Safety rule 1 over arbitrary states: an Advance needs the weight verified, no dark
    metrics or traffic, and every gate passing in this step."""
    problems = {s: ProblemNote(s, f"{s}: down", 0.0) for s in sources}
    decision = decide(state, gates, problems, {"metrics": dark, "traffic": dark},
                      auto_advance=auto_advance, auto_rollback=auto_rollback)
    if isinstance(decision, policy.Advance):
        assert auto_advance
        assert state.expected_weight is not None
        assert not {"metrics", "traffic"} & sources
        assert state.phase in (Phase.PENDING, Phase.PROGRESSING)
        if state.phase is Phase.PROGRESSING:
            assert all(g.verdict is Verdict.PASS and g.passed_this_step for g in gates)
    if isinstance(decision, policy.StartRollback):
        assert auto_rollback and any(g.tripped for g in gates)
    if isinstance(decision, policy.RetryRollback):
        assert state.rolling_back
    if state.phase.terminal:
        assert decision == policy.Hold()


# -- manual advances while a count gate still needs data (issue 11) -----------------------


def short_of_data(*, inconclusive: int = 0) -> GateStatus:
    """A gate judged on counts that shows no breach, and not enough health yet."""
    from relconsole.model import GateEvidence

    spec = GateSpec(metric="error_rate", max=0.01, failure_limit=2, inconclusive_limit=3)
    evidence = GateEvidence(canary_events=0, canary_total=40, baseline_events=90,
                            baseline_total=9000, alpha=0.01, e_value=0.2, pass_e_value=3.0,
                            needs=300)
    return GateStatus(spec, Verdict.INCONCLUSIVE,
                      "needs ~300 more canary requests: canary 0.0 %", None, None, 0,
                      inconclusive, False, judged="counts", evidence=evidence)


def test_needing_more_data_is_not_no_data_but_still_holds_the_engine() -> None:
    assert short_of_data().needs_more_data
    assert not short_of_data(inconclusive=1).needs_more_data  # no canary request: no data
    assert not gate(Verdict.INCONCLUSIVE, inconclusive=1).needs_more_data  # values
    assert decide(baked(), [short_of_data()]) == policy.Hold()


def refusal(gates, *, step_index=1, skip_bake=False, reason="", bake_elapsed=61.0):
    state = baked(step_index)
    state.bake_elapsed = bake_elapsed
    return policy.advance_refusal(state, gates, STEPS, None, skip_bake=skip_bake,
                                  reason=reason)


def test_an_advance_on_less_evidence_must_be_asked_for_with_a_reason() -> None:
    said = refusal([short_of_data()])
    assert said is not None and said.startswith(
        "advance refused: gate error_rate needs more data (needs ~300 more canary")
    assert "--skip-bake --reason TEXT" in said
    assert "needs a reason" in (refusal([short_of_data()], skip_bake=True) or "")
    assert refusal([short_of_data()], skip_bake=True, reason="window closes") is None


def test_inside_a_bake_the_bake_is_the_reason_given_first() -> None:
    said = refusal([short_of_data()], bake_elapsed=10)
    assert said is not None and "the canary has baked 10s of 1m00s" in said


def test_no_data_and_failures_are_never_overridden_by_skip_bake() -> None:
    no_data = refusal([short_of_data(inconclusive=1)], skip_bake=True, reason="x")
    assert no_data is not None and "is inconclusive" in no_data
    failing = refusal([gate(Verdict.FAIL, failures=1)], skip_bake=True, reason="x")
    assert failing is not None and "is fail" in failing


def test_a_promotion_needs_the_canary_shown_healthy_whatever_the_reason() -> None:
    said = refusal([short_of_data()], step_index=2, skip_bake=True, reason="ship it")
    assert said is not None and said.startswith("advance to 100% refused: gate error_rate")
    state = baked(2)
    assert policy.promote_refusal(state, [short_of_data()], None) is not None
