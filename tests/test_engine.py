"""The release engine on the simulator and a virtual clock: hours of release in seconds."""

from __future__ import annotations

import dataclasses
import math

import pytest

from relconsole.engine import gates
from relconsole.engine.journal import JournalError
from relconsole.engine.release import WatchOnlyError
from relconsole.model import GateSpec, MetricPair, Mode, Phase, Reading, Verdict
from relconsole.providers.base import ProviderError, ReadOnlyError
from tests.helpers import demo_session, run_until, terminal, world

NOW = 1_767_225_600.0


def pair(canary: float | None, baseline: float | None, at: float = NOW, err: str | None = None):
    return MetricPair(Reading(canary, at, err), Reading(baseline, at))


# ---------------------------------------------------------------- gates


@pytest.mark.parametrize(
    ("canary", "baseline", "err", "why"),
    [
        (None, 0.01, None, "no data"),
        (math.nan, 0.01, None, "NaN"),
        (math.inf, 0.01, None, "infinite"),
        (0.001, 0.01, "prometheus: connection refused", "connection refused"),
    ],
)
def test_gate_without_usable_canary_data_is_inconclusive_never_pass(canary, baseline, err, why):
    spec = GateSpec("error_rate", max=0.5)
    verdict, reason, *_ = gates.judge(spec, pair(canary, baseline, err=err), NOW, 15)
    assert verdict is Verdict.INCONCLUSIVE
    assert why in reason


def test_gate_on_stale_data_is_inconclusive_and_says_since_when():
    spec = GateSpec("error_rate", max=0.5)
    verdict, reason, *_ = gates.judge(spec, pair(0.001, 0.001, at=NOW - 60), NOW, 15)
    assert verdict is Verdict.INCONCLUSIVE
    assert reason.startswith("canary: stale since ")


def test_gate_comparing_with_baseline_needs_the_baseline():
    spec = GateSpec("latency_p99", max_ratio=1.2)
    verdict, reason, *_ = gates.judge(spec, pair(0.1, None), NOW, 15)
    assert verdict is Verdict.INCONCLUSIVE
    assert "baseline" in reason


@pytest.mark.parametrize(
    ("spec", "canary", "baseline", "expected"),
    [
        (GateSpec("m", max=0.01), 0.02, 0.0, Verdict.FAIL),
        (GateSpec("m", max=0.01), 0.01, 0.0, Verdict.PASS),
        (GateSpec("m", min=0.9), 0.8, 0.0, Verdict.FAIL),
        (GateSpec("m", max_increase=0.001), 0.0125, 0.011, Verdict.FAIL),
        (GateSpec("m", max_increase=0.001), 0.0115, 0.011, Verdict.PASS),
        (GateSpec("m", max_ratio=1.2), 0.25, 0.2, Verdict.FAIL),
        (GateSpec("m", max_ratio=1.2), 0.23, 0.2, Verdict.PASS),
        (GateSpec("m", max_ratio=1.2), 0.01, 0.0, Verdict.FAIL),
        (GateSpec("m", max_ratio=1.2), 0.0, 0.0, Verdict.PASS),
    ],
)
def test_gate_thresholds(spec, canary, baseline, expected):
    assert gates.judge(spec, pair(canary, baseline), NOW, 15)[0] is expected


def test_failures_count_consecutively_and_inconclusive_does_not_reset_them():
    status = gates.initial_status(GateSpec("m", max=0.01, failure_limit=3))
    status = gates.update(status, pair(0.5, 0.0), NOW, 15)
    status = gates.update(status, pair(None, 0.0), NOW, 15)
    status = gates.update(status, pair(0.5, 0.0), NOW, 15)
    assert status.consecutive_failures == 2 and not status.tripped
    status = gates.update(status, pair(0.5, 0.0), NOW, 15)
    assert status.tripped
    status = gates.update(status, pair(0.001, 0.0), NOW, 15)
    assert status.consecutive_failures == 0 and status.passed_this_step


# ---------------------------------------------------------------- scenarios


async def test_healthy_release_is_promoted_to_100_percent():
    session = demo_session("healthy")
    await session.engine.attach()
    await run_until(session, terminal)
    assert session.engine.phase is Phase.PROMOTED
    assert world(session).weight == 100
    # Every step was taken once, in order, and never re-applied.
    assert world(session).set_weight_calls == [1, 10, 50, 100]


async def test_bad_canary_rolls_back_within_failure_limit_plus_one_polls():
    session = demo_session("bad-canary")
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: world(session).weight >= 10)
    visible_at = engine.clock.now()
    polls = await run_until(session, terminal)
    limit = next(g for g in engine.plan.gates if g.metric == "error_rate").failure_limit
    assert engine.phase is Phase.ROLLED_BACK
    assert world(session).weight == 0
    assert polls <= limit + 1
    assert engine.clock.now() - visible_at <= (limit + 1) * engine.plan.poll_interval
    rollback = next(r for r in engine.journal.records() if r["intent"] == "rollback")
    assert "error_rate" in rollback["reason"]
    gate = next(g for g in rollback["data"]["gates"] if g["gate"] == "error_rate")
    assert gate["verdict"] == "fail" and gate["canary"] > 0.01
    assert engine.journal.records()[-1]["outcome"] == "verified"


async def test_latency_regression_is_rolled_back_on_the_latency_gate():
    session = demo_session("latency-regression")
    await session.engine.attach()
    await run_until(session, terminal)
    assert session.engine.phase is Phase.ROLLED_BACK
    rollback = next(r for r in session.engine.journal.records() if r["intent"] == "rollback")
    assert "latency_p99" in rollback["reason"]


async def test_noisy_healthy_is_never_rolled_back_across_50_seeds(tmp_path):
    for seed in range(50):
        session = demo_session("noisy-healthy", seed, state=tmp_path / f"s{seed}")
        await session.engine.attach()
        await run_until(session, terminal)
        assert session.engine.phase is Phase.PROMOTED, f"seed {seed}: {session.engine.phase}"
        await session.close()


async def test_no_data_never_advances_while_blind_and_ends_paused():
    session = demo_session("no-data")
    engine = session.engine
    await engine.attach()
    blind_weights = []

    def watch(e):
        if any(g.verdict is Verdict.INCONCLUSIVE for g in e.snapshot().gates) and e.snapshot(
        ).weight >= 10:
            blind_weights.append(world(session).weight)
        return terminal(e)

    await run_until(session, watch)
    assert engine.phase is Phase.PAUSED
    assert "no data" in engine.snapshot().pause_reason
    assert world(session).weight == 10
    assert set(blind_weights) == {10}  # nothing moved while the canary was invisible
    assert 100 not in world(session).set_weight_calls


async def test_flaky_provider_ends_promoted_with_every_failure_retried_and_journalled():
    session = demo_session("flaky-provider")
    engine = session.engine
    await engine.attach()
    await run_until(session, terminal)
    assert engine.phase is Phase.PROMOTED
    assert world(session).failed_traffic_calls > 0
    failed = [r for r in engine.journal.records() if str(r.get("outcome")).startswith("failed")]
    assert failed, "failed provider calls must be journalled"
    # Each failed step change was followed by a verified one for the same step.
    for record in failed:
        wanted = record["before"]["step"]
        assert any(
            r["intent"] == "advance"
            and str(r.get("outcome")).startswith("verified")
            and r["after"]["step"] > wanted
            for r in engine.journal.records()
            if r["seq"] > record["seq"]
        )


# ---------------------------------------------------------------- intents


async def test_manual_advance_is_refused_while_a_gate_has_no_data():
    session = demo_session("no-data", auto_advance=False)
    engine = session.engine
    await engine.attach()
    assert (await engine.advance()).ok  # pending → 1%: no canary data exists yet
    await run_until(session, lambda e: e.snapshot().ready_to_advance)
    assert (await engine.advance()).ok  # → 10%, where the canary goes dark
    for _ in range(2):
        await engine.clock.sleep(5)
        await engine.tick()
    result = await engine.advance()
    assert not result.ok and "inconclusive" in result.message
    assert world(session).weight == 10


async def test_pause_resume_and_promote():
    session = demo_session("healthy", auto_advance=False)
    engine = session.engine
    await engine.attach()
    await engine.advance()
    assert (await engine.pause("investigating")).ok
    assert engine.phase is Phase.PAUSED
    await run_until(session, lambda e: e.clock.now() > NOW + 600, max_ticks=200)
    assert world(session).weight == 1  # paused means nothing moves
    assert (await engine.resume()).ok
    assert engine.phase is Phase.PROGRESSING
    result = await engine.promote("looks good")
    assert result.ok and world(session).weight == 100 and engine.phase is Phase.PROMOTED


async def test_rollback_needs_a_reason():
    session = demo_session("healthy")
    await session.engine.attach()
    await session.engine.advance()
    result = await session.engine.rollback("   ")
    assert not result.ok and "reason" in result.message
    assert world(session).weight == 1


class FailingTraffic:
    """Wraps the sim traffic provider; its next `failures` writes raise."""

    def __init__(self, inner, failures: int) -> None:
        self.inner, self.failures, self.name = inner, failures, "flaky"

    async def read(self):
        return await self.inner.read()

    async def set_weight(self, weight, *, reason):
        if self.failures > 0:
            self.failures -= 1
            raise ProviderError("haproxy: connection refused")
        await self.inner.set_weight(weight, reason=reason)

    async def close(self):
        return None


async def test_failed_rollback_is_retried_with_backoff_and_never_reported_done_early():
    session = demo_session("healthy", auto_advance=False)
    engine = session.engine
    await engine.attach()
    await engine.advance()
    engine.traffic = FailingTraffic(engine.traffic, failures=3)
    result = await engine.rollback("bad deploy")
    assert not result.ok and "NOT VERIFIED" in result.message
    assert engine.phase is Phase.ROLLBACK_FAILED
    assert world(session).weight == 1
    first_retry = engine.snapshot().rollback_next_at
    outcome = await engine.settle_rollback()
    assert outcome.ok and engine.phase is Phase.ROLLED_BACK and world(session).weight == 0
    assert first_retry is not None
    records = [r for r in engine.journal.records() if r["intent"].startswith("rollback")]
    # One operator intent, then one journalled outcome per attempt, ending verified.
    assert next(r["intent"] for r in records if r["outcome"] is None) == "rollback"
    outcomes = [r["outcome"] for r in records if r["outcome"] is not None]
    assert [o.startswith("failed") for o in outcomes] == [True, True, True, False]
    assert outcomes[-1] == "verified"


async def test_watch_mode_refuses_every_intent_below_the_ui():
    driver = demo_session("healthy")
    await driver.engine.attach()
    watcher = demo_session("healthy", watch=True)
    engine = watcher.engine
    assert engine.mode is Mode.WATCH
    await engine.attach()
    for call in (
        engine.advance(),
        engine.pause("x"),
        engine.resume(),
        engine.promote("x"),
        engine.rollback("x"),
        engine.set_flag("checkout-pricing-killswitch", False, "x"),
    ):
        with pytest.raises(WatchOnlyError):
            await call
    with pytest.raises(ReadOnlyError):
        await engine.traffic.set_weight(100, reason="sneaky")
    with pytest.raises(JournalError):
        engine.journal.append("advance")


async def test_second_console_watches_and_names_the_driver(tmp_path):
    first = demo_session("healthy", state=tmp_path)
    second = demo_session("healthy", state=tmp_path)
    assert first.engine.mode is Mode.DRIVE
    assert second.engine.mode is Mode.WATCH
    assert "root" in second.engine.snapshot().driver or "@" in second.engine.snapshot().driver
    assert "drives this release" in second.watch_reason


async def test_watcher_follows_the_drivers_journal(tmp_path):
    from relconsole.assembly import open_session

    driver = demo_session("healthy", state=tmp_path, auto_advance=False)
    await driver.engine.attach()
    cfg_plan = driver.engine.plan
    from relconsole.assembly import demo_config

    cfg = dataclasses.replace(demo_config("healthy"), plan=cfg_plan)
    watcher = open_session(cfg, clock=driver.engine.clock, state=tmp_path,
                           providers=driver.providers)
    assert watcher.engine.mode is Mode.WATCH
    await watcher.engine.attach()
    await driver.engine.advance()
    await driver.engine.pause("holding for the traffic peak")
    await watcher.engine.tick()
    snap = watcher.engine.snapshot()
    assert snap.phase is Phase.PAUSED and snap.weight == 1
    assert "traffic peak" in snap.pause_reason
    assert any("traffic peak" in e.message for e in watcher.engine.recent_events())


async def test_restart_reads_the_real_state_and_never_reapplies_a_step(tmp_path):
    first = demo_session("healthy", state=tmp_path)
    await first.engine.attach()
    await run_until(first, lambda e: world(first).weight == 10)
    calls_before = list(world(first).set_weight_calls)
    await first.close()  # the console exits (or dies) mid-step
    # A new console on the same world and journal.
    from relconsole.assembly import demo_config, open_session

    cfg = demo_config("healthy")
    again = open_session(cfg, clock=first.engine.clock, state=tmp_path,
                         providers=first.providers)
    await again.engine.attach()
    snap = again.engine.snapshot()
    assert snap.phase is Phase.PROGRESSING and snap.step_index == 1 and snap.weight == 10
    assert world(first).set_weight_calls == calls_before


async def test_restart_completes_an_interrupted_rollback(tmp_path):
    first = demo_session("healthy", state=tmp_path, auto_advance=False)
    await first.engine.attach()
    await first.engine.advance()
    # The crash: the intent is journalled, the provider never got the call.
    first.engine.journal.append("rollback", reason="canary 5xx", before={"weight": 1},
                                after={"weight": 0})
    await first.close()
    from relconsole.assembly import demo_config, open_session

    again = open_session(demo_config("healthy", auto_advance=False), clock=first.engine.clock,
                         state=tmp_path, providers=first.providers)
    await again.engine.attach()
    assert again.engine.phase in (Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED)
    await again.engine.tick()
    assert again.engine.phase is Phase.ROLLED_BACK
    assert world(first).weight == 0
    last = again.engine.journal.records()[-1]
    assert last["intent"].startswith("rollback") and last["outcome"] == "verified"


async def test_actions_are_refused_when_the_journal_cannot_be_written():
    session = demo_session("healthy", auto_advance=False)
    engine = session.engine
    await engine.attach()

    def broken(*args, **kwargs):
        raise JournalError("disk full")

    engine.journal.append = broken  # type: ignore[method-assign]
    result = await engine.advance()
    assert not result.ok and "journal" in result.message
    assert world(session).weight == 0  # never acts without a record
    result = await engine.rollback("bad")
    assert not result.ok and world(session).weight == 0


async def test_flag_kill_is_verified_and_journalled():
    session = demo_session("healthy")
    engine = session.engine
    await engine.attach()
    result = await engine.set_flag("checkout-pricing-killswitch", False, "pricing bug")
    assert result.ok
    assert not world(session).flags["checkout-pricing-killswitch"].enabled
    record = engine.journal.records()[-1]
    assert record["intent"] == "flag.kill" and record["outcome"] == "verified"
    assert record["reason"] == "pricing bug"
    snap = engine.snapshot()
    flag = next(f for f in snap.flags if f.key == "checkout-pricing-killswitch")
    assert flag.in_release and not flag.enabled



@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs, really mounted: writes on it fail with ENOSPC once it is full."""
    import os
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs as root and must be able to mount a tmpfs: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(mount) -> None:
    with open(mount / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 512)
        except OSError:
            pass


async def test_a_full_disk_refuses_every_action_but_watching_goes_on(tiny_disk):
    session = demo_session("healthy", state=tiny_disk / "state", auto_advance=True)
    engine = session.engine
    fill(tiny_disk)
    await engine.attach()  # watching starts even though nothing can be recorded
    problem = engine.snapshot().problem("journal")
    assert problem is not None and "disk full" in problem.message
    for action in (engine.advance(), engine.promote("x"), engine.pause("x"),
                   engine.rollback("x"),
                   engine.set_flag("checkout-pricing-killswitch", False, "x")):
        result = await action
        assert not result.ok and "journal" in result.message
    for _ in range(20):  # auto_advance is on: it must not act without a record either
        await engine.clock.sleep(5)
        await engine.tick()
    assert world(session).weight == 0
    assert world(session).set_weight_calls == []
    assert engine.snapshot().latest["error_rate"][1] is not None  # still watching
    (tiny_disk / "filler").unlink()  # space again: the next action is recorded and taken
    assert (await engine.advance()).ok and world(session).weight == 1
    assert engine.snapshot().problem("journal") is None


# ---------------------------------------------------------------- blind spots


def _fail_traffic(session, what: str = "connection refused") -> None:
    def broken(call: str) -> None:
        raise ProviderError(f"sim traffic: {call} failed: {what}")

    world(session).traffic_call = broken


def _mend_traffic(session) -> None:
    w = world(session)
    w.traffic_call = type(w).traffic_call.__get__(w)


async def test_no_step_is_taken_while_the_weight_cannot_be_read():
    session = demo_session("healthy")
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: e.snapshot().weight == 1)
    await run_until(session, lambda e: e.snapshot().bake_remaining <= 10)
    _fail_traffic(session)
    await engine.clock.sleep(5)
    await engine.tick()
    refused = await engine.advance(reason="operator")
    assert not refused.ok and "connection refused" in refused.message
    # Far past the bake: gates are green, only the weight is unknown.
    for _ in range(40):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    assert world(session).weight == 1
    assert world(session).set_weight_calls == [1]
    snap = engine.snapshot()
    assert "connection refused" in snap.problem("traffic").message
    # Held, and after inconclusive_limit polls also paused, so a human decides.
    assert engine.phase is Phase.PAUSED
    assert snap.pause_reason.startswith("no traffic read for 6 polls, the canary weight is "
                                        "unknown (traffic: sim traffic: read failed")
    records = engine.journal.records()
    dark = [r for r in records if r["intent"] == "provider"]
    assert [r["outcome"] for r in dark] == ["problem"]
    assert dark[0]["data"] == {"source": "traffic"}
    assert not [r for r in records if r["intent"] == "advance" and r["seq"] > dark[0]["seq"]]

    _mend_traffic(session)
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.phase is Phase.PAUSED and world(session).weight == 1
    assert (await engine.resume(reason="haproxy is back")).ok
    await run_until(session, lambda e: e.snapshot().weight == 10)
    outcomes = [r["outcome"] for r in engine.journal.records() if r["intent"] == "provider"]
    assert outcomes == ["problem", "recovered"]


async def test_a_single_failed_poll_shows_but_is_not_journalled_as_an_outage():
    session = demo_session("healthy", auto_advance=False)
    engine = session.engine
    await engine.attach()
    _fail_traffic(session)
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.snapshot().problem("traffic") is not None  # on screen at once
    _mend_traffic(session)
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.snapshot().problem("traffic") is None
    assert not [r for r in engine.journal.records() if r["intent"] == "provider"]


async def test_a_half_applied_step_is_not_verified_and_pauses_the_release():
    session = demo_session("healthy")
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: e.snapshot().weight == 10)
    w = world(session)
    apply = w.apply_weight

    def half(weight: int) -> None:  # one of two servers took the new weight
        apply((w.weight + weight) // 2)

    w.apply_weight = half
    await run_until(session, lambda e: e.phase is Phase.PAUSED)
    snap = engine.snapshot()
    assert w.weight == 30
    assert snap.weight == 30
    assert "advance to 50% not verified: provider reports 30%" in snap.pause_reason
    assert "check the traffic provider" in snap.pause_reason
    records = engine.journal.records()
    last_advance = [r for r in records if r["intent"] == "advance"][-1]
    assert last_advance["outcome"].startswith("failed: advance to 50% not verified")
    assert not any(r["intent"] == "advance" and str(r["outcome"]).startswith("verified")
                   and r["after"]["weight"] == 50 for r in records)
    assert records[-1]["intent"] == "pause"
    # Paused means paused: nothing more is tried until a human resumes.
    calls = list(w.set_weight_calls)
    for _ in range(20):
        await engine.clock.sleep(5)
        await engine.tick()
    assert w.set_weight_calls == calls


async def test_a_step_change_that_keeps_failing_pauses_after_three_tries():
    session = demo_session("healthy")
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: e.snapshot().weight == 1)
    w = world(session)
    original = w.traffic_call

    def set_fails(call: str) -> None:
        if call.startswith("set weight"):
            raise ProviderError(f"sim traffic: {call} failed: 403 forbidden")
        original(call)

    w.traffic_call = set_fails
    await run_until(session, lambda e: e.phase is Phase.PAUSED)
    failed = [r for r in engine.journal.records()
              if r["intent"] == "advance" and str(r["outcome"]).startswith("failed")]
    assert len(failed) == 3
    assert "403 forbidden" in engine.snapshot().pause_reason
    assert w.weight == 1


async def test_before_the_first_step_dark_metrics_pause_the_release_instead_of_waiting():
    session = demo_session("healthy")
    engine = session.engine
    metrics = session.providers.metrics

    async def unreachable(specs):
        raise ProviderError("prometheus: connection refused by http://prom:9090")

    real_sample = metrics.sample
    metrics.sample = unreachable
    await engine.attach()
    await run_until(session, lambda e: e.phase is Phase.PAUSED, max_ticks=20)
    snap = engine.snapshot()
    assert snap.pause_reason == (
        "no metrics for 6 polls, the gates cannot be judged "
        "(metrics: prometheus: connection refused by http://prom:9090)")
    assert world(session).set_weight_calls == []  # the first step was never taken
    # Resumed while still dark: a fresh allowance of polls, then paused again.
    assert (await engine.resume(reason="looking")).ok
    assert engine.phase is Phase.PENDING
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.phase is Phase.PENDING
    metrics.sample = real_sample
    await run_until(session, lambda e: e.snapshot().weight == 1)
