"""What the engine says stays true: a rollback keeps its cause, a message goes with the
state it was about, old values are known to be old, and every surface writes a value in
the same unit (issue 10, items 9–11). Scenarios on the simulator and a virtual clock.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from relconsole import units
from relconsole.clock import FastClock
from relconsole.engine.events import EventBus
from relconsole.engine.journal import render_markdown
from relconsole.engine.observe import ProviderHealth
from relconsole.engine.state import EventKind
from relconsole.headless import format_value, run_headless
from relconsole.model import GateSpec, MetricSpec, Phase, Verdict
from relconsole.providers.base import ProviderError
from tests.helpers import demo_session, run_until, terminal

ERROR_RATE = re.compile(r"canary (\d+\.\d\d) % > max 1 %")


async def rolled_back(session, extra_polls: int = 3):
    """bad-canary, left to the engine until it has rolled back, then a few polls more."""
    engine = session.engine
    await engine.attach()
    await run_until(session, terminal)
    assert engine.phase is Phase.ROLLED_BACK
    for _ in range(extra_polls):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    return engine


# ---------------------------------------------------------------- 9. a rollback's cause


async def test_the_cause_of_a_rollback_outlives_the_polls_after_it(tmp_path: Path) -> None:
    engine = await rolled_back(demo_session("bad-canary", state=tmp_path))
    snap = engine.snapshot()
    # A poll later the live gate has no canary data any more …
    live = next(g for g in snap.gates if g.name == "error_rate")
    assert live.verdict is Verdict.INCONCLUSIVE
    # … but the cause, with the verdict that tripped it, is still there to be shown.
    cause = snap.rollback_cause
    assert cause is not None
    assert cause.weight == 10 and cause.step_index == 1
    assert [g.name for g in cause.tripped] == ["error_rate"]
    tripped = cause.tripped[0]
    assert tripped.verdict is Verdict.FAIL and tripped.canary is not None
    assert tripped.canary > 0.01
    assert cause.reason == snap.rollback_reason
    # After the rollback no 'fail → inconclusive' line pushes the cause out of the log.
    after = [e for e in engine.recent_events(50) if e.at > cause.at]
    assert not [e for e in after if e.kind is EventKind.VERDICT], after


@pytest.mark.parametrize("arrives_as", ["driver restarting", "watcher"])
async def test_a_console_attaching_later_loads_the_history_from_the_journal(
    tmp_path: Path, arrives_as: str
) -> None:
    first = demo_session("bad-canary", state=tmp_path)
    engine = await rolled_back(first)
    cause = engine.snapshot().rollback_cause
    assert cause is not None
    watch = arrives_as == "watcher"
    if not watch:
        await first.close()  # the driver is gone; a new one takes its place
    later = demo_session("bad-canary", state=tmp_path, watch=watch,
                         clock=FastClock(engine.clock.now() + 600))
    await later.engine.attach()

    past = [e for e in later.engine.recent_events(100) if e.past]
    texts = [e.message for e in past]
    assert any(t.startswith("rollback: gate error_rate failed 2×") for t in texts), texts
    assert any(t.startswith("advance:") for t in texts), texts
    # Not only "attached: ROLLED BACK": the banner's cause and its verdicts come back too.
    snap = later.engine.snapshot()
    assert snap.phase is Phase.ROLLED_BACK
    assert snap.rollback_cause is not None
    assert snap.rollback_cause.reason == cause.reason
    assert snap.rollback_cause.weight == 10
    assert [(g.name, g.verdict, g.canary) for g in snap.rollback_cause.tripped] == [
        (g.name, g.verdict, g.canary) for g in cause.tripped
    ]
    if not watch:
        await later.close()


async def test_a_watcher_hears_the_cause_of_a_rollback_it_watched(tmp_path: Path) -> None:
    driver = demo_session("bad-canary", state=tmp_path)
    watcher = demo_session("bad-canary", state=tmp_path, watch=True, clock=driver.engine.clock)
    await driver.engine.attach()
    await watcher.engine.attach()
    while driver.engine.phase is not Phase.ROLLED_BACK:
        await driver.engine.clock.sleep(5)
        await driver.engine.tick()
        await watcher.engine.tick()
    cause = watcher.engine.snapshot().rollback_cause
    assert cause is not None and [g.name for g in cause.tripped] == ["error_rate"]
    assert watcher.engine.snapshot().rollback_reason.startswith("gate error_rate failed")


async def test_history_replayed_on_attach_is_not_printed_again_by_a_headless_run(
    tmp_path: Path,
) -> None:
    first = demo_session("bad-canary", state=tmp_path)
    await rolled_back(first, extra_polls=0)
    await first.close()
    again = demo_session("bad-canary", state=tmp_path)
    out = io.StringIO()
    code = await run_headless(again.engine, out=out, handle_signals=False)
    assert int(code) == 3
    assert out.getvalue().splitlines()[0].split()[1] == "attach", out.getvalue()


# ---------------------------------------------------------------- 10. old words


async def test_a_refusal_goes_when_the_state_it_was_about_does(tmp_path: Path) -> None:
    session = demo_session("healthy", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    assert (await engine.advance("start")).ok
    for _ in range(3):  # the gates pass at 1 %
        await engine.clock.sleep(5)
        await engine.tick()
    assert (await engine.pause("lunch")).ok
    refused = await engine.advance("go on")
    assert not refused.ok
    assert engine.snapshot().last_error == "advance refused: release is paused"
    assert (await engine.resume()).ok
    assert engine.snapshot().last_error == ""  # resumed: "is paused" is no longer true
    assert (await engine.promote("looks good")).ok
    snap = engine.snapshot()
    assert snap.phase is Phase.PROMOTED and snap.last_error == ""


async def test_a_refusal_stays_while_its_state_does(tmp_path: Path) -> None:
    session = demo_session("healthy", auto_advance=False, state=tmp_path)
    engine = session.engine
    await engine.attach()
    assert (await engine.advance("start")).ok
    refused = await engine.advance("too early")
    assert not refused.ok
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.snapshot().last_error == refused.message


class DeadTraffic:
    """The simulator's traffic until `dead`: then HAProxy cannot be reached."""

    name = "haproxy"

    def __init__(self, inner) -> None:
        self.inner, self.dead = inner, False

    async def read(self):
        if self.dead:
            raise ProviderError("haproxy: connection refused")
        return await self.inner.read()

    async def set_weight(self, weight, *, reason):
        if self.dead:
            raise ProviderError("haproxy: connection refused")
        await self.inner.set_weight(weight, reason=reason)

    async def close(self):
        await self.inner.close()


async def test_a_weight_from_a_dead_traffic_provider_is_old_not_live(tmp_path: Path) -> None:
    session = demo_session("healthy", auto_advance=False, state=tmp_path)
    engine = session.engine
    traffic = DeadTraffic(engine.traffic)
    engine.traffic = traffic
    await engine.attach()
    assert (await engine.advance("start")).ok
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.snapshot().old("traffic") is None  # live
    read_at = engine.snapshot().traffic_at
    traffic.dead = True
    for _ in range(3):
        await engine.clock.sleep(5)
        await engine.tick()
    snap = engine.snapshot()
    assert snap.weight == 1  # the last value read, still shown …
    assert snap.old("traffic") == read_at  # … as a value read 15 s ago
    assert snap.now - read_at == pytest.approx(15)
    traffic.dead = False
    await engine.clock.sleep(5)
    await engine.tick()
    assert engine.snapshot().old("traffic") is None


def test_a_provider_back_but_answering_nothing_is_a_new_state_not_still_stale() -> None:
    """Prometheus down at 00:00, back at 01:30 but answering NaN: the border must not
    say 'stale since 00:00:00 — NaN (…)' (the time of a problem that is over)."""
    clock = FastClock()
    health = ProviderHealth(clock, EventBus(clock))
    health.note("metrics", "metrics: prometheus: connection refused")
    went_away = clock.now()
    clock.advance(60)
    health.note("metrics", "metrics: prometheus: connection refused")
    assert health.problems["metrics"].since == went_away  # the same outage goes on
    clock.advance(30)
    health.note("metrics", "metrics: NaN (no requests in the window, or 0/0)")
    assert health.problems["metrics"].since == clock.now()
    health.note("metrics", None)
    assert "metrics" not in health.problems
    # A rollback's note changes with every attempt; when it first failed is what counts.
    health.note("rollback", "ROLLBACK NOT VERIFIED (attempt 1): …")
    first = clock.now()
    clock.advance(2)
    health.note("rollback", "ROLLBACK NOT VERIFIED (attempt 2): …")
    assert health.problems["rollback"].since == first


# ---------------------------------------------------------------- 11. one formatter


async def test_a_gate_reason_is_written_in_its_metric_unit_on_every_surface(
    tmp_path: Path,
) -> None:
    engine = await rolled_back(demo_session("bad-canary", state=tmp_path))
    records = engine.journal.records()
    rollback = next(r for r in records if r["intent"] == "rollback" and not r.get("outcome"))
    gate = next(g for g in rollback["data"]["gates"] if g["gate"] == "error_rate")
    shown = units.value(gate["canary"], "ratio")  # what the Gates panel shows
    match = ERROR_RATE.search(rollback["reason"])
    assert match, rollback["reason"]
    assert f"{match.group(1)} %" == shown  # the journal's words …
    assert gate["threshold"] == "≤1 % Δ≤0.5 %" and gate["unit"] == "ratio"
    md = render_markdown(records, "x")
    assert f"error_rate fail: canary {shown}, baseline " in md  # … the Markdown …
    assert f"canary {shown} > max 1 %" in md
    assert format_value("error_rate", gate["canary"], "ratio") == shown  # … the headless
    assert format_value("latency_p99", 0.226, "seconds") == "226 ms"


@pytest.mark.parametrize(
    ("spec", "unit", "canary", "baseline", "reason"),
    [
        (GateSpec("error_rate", max=0.01), "ratio", 0.04389, 0.001, "canary 4.39 % > max 1 %"),
        (GateSpec("error_rate", max_increase=0.005), "ratio", 0.0569, 0.0017,
         "+5.52 % over baseline > 0.5 %"),
        (GateSpec("latency_p99", max=0.2), "seconds", 0.226, 0.15, "canary 226 ms > max 200 ms"),
        (GateSpec("latency_p99", max_ratio=1.3), "seconds", 0.226, 0.15,
         "×1.51 of baseline > ×1.3"),
        (GateSpec("rps", min=100), "req/s", 42.0, 50.0, "canary 42 req/s < min 100 req/s"),
    ],
)
def test_gate_reasons_carry_units(spec, unit, canary, baseline, reason) -> None:
    from relconsole.engine import gates
    from relconsole.model import MetricPair, Reading

    now = 1_767_225_600.0
    pair = MetricPair(Reading(canary, now), Reading(baseline, now))
    verdict, text, *_ = gates.judge(spec, pair, now, 15, unit)
    assert verdict is Verdict.FAIL and text == reason


def test_a_metric_without_a_declared_unit_is_written_the_same_everywhere() -> None:
    metrics = (MetricSpec("error_rate"), MetricSpec("latency_p99"), MetricSpec("queue"))
    assert [units.unit_of(metrics, m.name) for m in metrics] == ["ratio", "seconds", ""]
    assert format_value("error_rate", 0.0022, "") == units.value(0.0022, "ratio") == "0.22 %"
