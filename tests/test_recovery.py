"""Restart recovery from journal records and the weight read at start (safety rule 5)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relconsole.engine import recovery
from relconsole.model import Phase
from tests.fuzz_settings import FUZZ_SMALL


def rec(intent: str, outcome: str | None = None, *, reason: str = "", ts: float = 0.0,
        **after: Any) -> dict[str, Any]:
    return {"intent": intent, "outcome": outcome, "reason": reason, "ts": ts, "after": after}


def test_an_unfinished_rollback_is_completed_with_its_reason() -> None:
    records = [rec("advance", "verified", weight=10), rec("rollback", reason="p99 spike")]
    found = recovery.recover(records, weight=10, weight_known=True, step_index=1, now=5)
    assert found.phase is Phase.ROLLING_BACK and found.rollback_reason == "p99 spike"


def test_an_unfinished_rollback_already_at_zero_is_only_recorded() -> None:
    records = [rec("rollback", reason="errors"), rec("rollback.retry", "failed: timeout")]
    found = recovery.recover(records, weight=0, weight_known=True, step_index=-1, now=5)
    assert found.phase is Phase.ROLLED_BACK and found.rollback_found_done
    assert found.rollback_reason == "errors"


def test_a_verified_rollback_or_a_later_step_settles_it() -> None:
    assert recovery.pending_rollback([rec("rollback", reason="x"),
                                      rec("rollback.retry", "verified")]) is None
    assert recovery.pending_rollback([rec("rollback", reason="x"),
                                      rec("advance", "verified")]) is None
    assert recovery.pending_rollback([rec("rollback", "refused: journal")]) is None


def test_a_paused_release_stays_paused_with_its_reason() -> None:
    records = [rec("pause", "verified", phase="paused", pause_reason="by alice")]
    found = recovery.recover(records, weight=10, weight_known=True, step_index=1, now=5)
    assert found == recovery.Recovered(Phase.PAUSED, pause_reason="by alice")


def test_bake_time_already_spent_is_kept() -> None:
    records = [rec("advance", "verified", ts=100.0, weight=10, phase="progressing")]
    found = recovery.recover(records, weight=10, weight_known=True, step_index=1, now=130.0)
    assert found.phase is Phase.PROGRESSING and found.bake_elapsed == 30.0


def test_a_weight_changed_since_the_last_step_bakes_from_zero() -> None:
    records = [rec("advance", "verified", ts=100.0, weight=10)]
    assert recovery.bake_from_journal(records, 50, 130.0) == 0.0


def test_an_unreadable_provider_pauses_and_the_journal_gives_the_weight() -> None:
    records = [rec("advance", "verified", weight=10)]
    found = recovery.recover(records, weight=10, weight_known=False, step_index=1, now=5)
    assert found.phase is Phase.PAUSED and "unknown" in found.pause_reason
    assert recovery.weight_from_journal(records[-1]) == 10
    assert recovery.weight_from_journal(None) == 0


def test_fresh_promoted_and_rolled_back_releases() -> None:
    assert recovery.recover([], weight=0, weight_known=True, step_index=-1,
                            now=0).phase is Phase.PENDING
    assert recovery.recover([], weight=100, weight_known=True, step_index=3,
                            now=0).phase is Phase.PROMOTED
    done = [rec("rollback", "verified", phase="rolled_back", weight=0)]
    assert recovery.recover(done, weight=0, weight_known=True, step_index=-1,
                            now=0).phase is Phase.ROLLED_BACK


intents = st.sampled_from(["attach", "advance", "promote", "pause", "resume", "rollback",
                           "rollback.retry", "flag.kill", "provider"])
outcomes = st.sampled_from([None, "verified", "failed: timeout", "refused: journal",
                            "verified (found already done on restart)"])
records_st = st.lists(st.builds(rec, intents, outcomes, reason=st.text(max_size=5)),
                      max_size=8)


@FUZZ_SMALL
@given(records_st, st.sampled_from([0, 1, 10, 100]), st.booleans())
def test_a_rollback_intent_without_a_verified_end_is_never_forgotten(
    records: list[dict[str, Any]], weight: int, known: bool
) -> None:
    """Whatever came after it, a rollback intent that no verified rollback, advance or
    promote followed is completed (or found done) on restart — never dropped."""
    last_open = None
    for i, r in enumerate(records):
        outcome = r["outcome"] or ""
        if r["intent"] == "rollback" and not outcome.startswith(("verified", "refused")):
            last_open = i
        elif outcome.startswith("verified") and r["intent"] in (
            "rollback", "rollback.retry", "advance", "promote"
        ):
            last_open = None
    found = recovery.recover(records, weight=weight, weight_known=known, step_index=0, now=1)
    if last_open is not None:
        assert found.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
        assert found.phase is Phase.ROLLING_BACK or (known and weight == 0)
