"""The Prometheus rows of the fault matrix (docs/faults-parts/prometheus-haproxy.md).

Each row runs a release on the real sandbox at 20 % canary with the gates passing, then
injects one fault on the wire between relconsole and the real Prometheus (a FaultProxy),
or stops the real Prometheus process, and checks the three things a row promises:

- what the user sees (the panel border line, the gate reasons, the pause reason, the
  events; `user_sees`), in the words an on-call engineer reads;
- what the engine does: the gates go inconclusive, nothing advances (HAProxy's own
  `get weight` after every poll), a manual advance is refused with the reason, and after
  `inconclusive_limit` polls the release pauses; when the fault clears the panel recovers
  and the release stays paused for a human;
- what the journal records: a provider problem record, the pause with its reason, no
  advance while dark, a "recovered" record — and the matrix-wide invariants.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from relconsole.model import Phase, Verdict
from tests.faults.harness import assert_invariants, problem_records, user_sees
from tests.faults.proxy import Fault, FaultProxy, http_response
from tests.integration.faultkit import (
    INCONCLUSIVE_LIMIT,
    Watch,
    gates_passing,
    open_engine,
    paused,
    records_after,
    write_config,
)
from tests.sandbox_stack import Sandbox

pytestmark = pytest.mark.integration
PROVIDER_TIMEOUT = "0.8s"  # prometheus.timeout derived from call_timeout 2s, 1 retry


@dataclass(frozen=True)
class Row:
    fault: Fault
    sees: tuple[str, ...]  # words on the panel border, in the gate reasons and the pause


async def dark_then_recovered(box: Sandbox, tmp_path: Path, *, inject, heal,
                              sees: tuple[str, ...], prometheus_port: int | None) -> None:
    """One row: inject → no data → paused, nothing moved → heal → recovered, still paused."""
    session = open_engine(write_config(box, tmp_path, prometheus_port=prometheus_port),
                          tmp_path)
    engine = session.engine
    watch = Watch(engine, box)
    try:
        await engine.attach()
        watch.haproxy()
        assert engine.phase is Phase.PROGRESSING and engine.snapshot().weight == 20
        if not gates_passing(engine):  # the first poll's window may still be filling
            await watch.until(gates_passing, polls=10)
        mark = engine.journal.records()[-1]["seq"]

        inject()
        await watch.poll()
        # At once: the metrics panel's border says so, and nothing may step forward.
        snap = engine.snapshot()
        note = snap.problem("metrics")
        assert note is not None, user_sees(engine)
        shown = user_sees(engine)
        assert re.search(r"\[metrics\] stale since \d\d:\d\d:\d\d — ", shown), shown
        for word in sees:
            assert word in shown, shown
        refused = await engine.advance("the bake looks fine to me")
        assert not refused.ok and refused.message.startswith(
            "advance refused: metrics: prometheus:")
        assert all(w in refused.message for w in sees), refused.message

        def nothing_moved(w: Watch) -> None:
            assert w.haproxy() == {"stable": 80, "canary": 20}, "the weight moved while dark"

        polls = await watch.until(paused, polls=INCONCLUSIVE_LIMIT + 4, each=nothing_moved)
        assert polls <= INCONCLUSIVE_LIMIT + 1, f"paused only after {polls} polls"
        snap = engine.snapshot()
        for gate in snap.gates:
            assert gate.verdict is Verdict.INCONCLUSIVE, gate
        assert snap.pause_reason.startswith("no data: gate "), snap.pause_reason
        assert f"inconclusive for {INCONCLUSIVE_LIMIT} polls" in snap.pause_reason
        shown = user_sees(engine)
        for word in sees:
            assert word in snap.pause_reason, snap.pause_reason
            assert re.search(rf"gate \w+: inconclusive .*{re.escape(word)}", shown), shown

        # The journal: the outage, the pause and its reason, and no step while dark.
        records = records_after(engine.journal.records(), mark)
        problems = problem_records(records, "metrics")
        assert problems and problems[0]["outcome"] == "problem", records
        assert all(w in problems[0]["reason"] for w in sees), problems[0]
        pause = next(r for r in records if r["intent"] == "pause")
        assert pause["reason"] == snap.pause_reason
        assert {g["verdict"] for g in pause["data"]["gates"]} == {"inconclusive"}
        assert pause["seq"] > problems[0]["seq"]
        assert not [r for r in records if r["intent"] in ("advance", "promote")]

        heal()
        await watch.until(lambda e: e.snapshot().problem("metrics") is None, polls=10)
        await watch.poll()
        assert engine.phase is Phase.PAUSED, "data coming back does not resume the release"
        assert "event provider: metrics recovered" in user_sees(engine)
        records = records_after(engine.journal.records(), mark)
        assert problem_records(records, "metrics")[-1]["outcome"] == "recovered"
        assert watch.haproxy() == {"stable": 80, "canary": 20}
        assert not [r for r in records if r["intent"] in ("advance", "promote")]
        assert_invariants(engine.journal.records(), real_weights=watch.real_weights)
    finally:
        await session.close()


ROWS = {
    # Nothing listens on the port: the connect fails, one quick retry, then no data.
    "unreachable": Row(Fault.refuse(), ("connection refused by http://127.0.0.1:",)),
    # Accepted, never answered: the provider's own timeout ends each query.
    "hang": Row(Fault.hang(), ("no answer from http://127.0.0.1:", f"within {PROVIDER_TIMEOUT}")),
    # Answers, but 3 s late: past the timeout, so the same as no answer.
    "slow": Row(Fault.delay(3.0), ("no answer from", f"within {PROVIDER_TIMEOUT}")),
    # A load balancer or Prometheus itself overloaded: retried once, then no data.
    "http_503": Row(Fault.reply(http_response(503, "no healthy upstream",
                                              content_type="text/plain")),
                    ("unavailable (HTTP 503)",)),
    # Prometheus has no auth of its own beyond --web.config.file; a reverse proxy (or
    # that file) answers 401 like this.
    "auth_401": Row(Fault.reply(http_response(
        401, "Unauthorized", content_type="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="prometheus"'})),
        ("HTTP 401 unauthorized", "check token, or username and password")),
    # 200 OK with half a JSON document (an HTML error page reads the same).
    "malformed": Row(Fault.reply(http_response(
        200, '{"status":"success","data":{"resultType":"vector","result":[{"met')),
        ("the answer is not JSON",)),
}


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
async def test_prometheus_fault_row(warm: Sandbox, tmp_path: Path, row: str) -> None:
    spec = ROWS[row]
    with FaultProxy(upstream=("127.0.0.1", warm.ports.prometheus)) as proxy:
        await dark_then_recovered(
            warm, tmp_path, inject=lambda: proxy.set(spec.fault),
            heal=lambda: proxy.set(Fault.passthrough()), sees=spec.sees,
            prometheus_port=proxy.port)


async def test_prometheus_answer_truncated(warm: Sandbox, tmp_path: Path) -> None:
    """Prometheus's own answer, its last 20 bytes lost and the connection closed."""
    with FaultProxy(upstream=("127.0.0.1", warm.ports.prometheus)) as proxy:
        await dark_then_recovered(
            warm, tmp_path, inject=lambda: proxy.set(Fault.cut(20)),
            heal=lambda: proxy.set(Fault.passthrough()), sees=("answer was cut short",),
            prometheus_port=proxy.port)
        assert proxy.requests, "the answers really went through the proxy"


async def test_prometheus_process_stopped_and_restarted(warm: Sandbox, tmp_path: Path) -> None:
    """The real Prometheus process stops (SIGTERM) and comes back: no proxy at all."""
    started = time.monotonic()
    try:
        await dark_then_recovered(
            warm, tmp_path, inject=lambda: warm.stop("prometheus"),
            heal=lambda: warm.start("prometheus"),
            sees=(f"connection refused by {warm.prometheus_url}",), prometheus_port=None)
    finally:
        if not warm.running().get("prometheus"):
            warm.start("prometheus")
    print(f"stop → pause → restart → recovered in {time.monotonic() - started:.1f}s")


async def test_the_console_shows_prometheus_unreachable_on_the_metrics_panels(
    warm: Sandbox, tmp_path: Path
) -> None:
    """The on-screen proof for the unreachable row: the real console (Pilot) on the real
    stack, Prometheus's port closed, and the metric panels' borders say so in warning."""
    from relconsole.tui.app import ReleaseApp
    from relconsole.tui.widgets.metrics import ErrorRatePanel, LatencyPanel

    with FaultProxy(upstream=("127.0.0.1", warm.ports.prometheus)) as proxy:
        config = write_config(warm, tmp_path, prometheus_port=proxy.port, auto_advance=False)
        session = open_engine(config, tmp_path)
        app = ReleaseApp(session.engine, theme=None, start_engine=True)
        try:
            async with app.run_test(size=(120, 40)) as pilot:

                async def until(condition, timeout: float = 10.0) -> None:
                    deadline = time.monotonic() + timeout
                    while not condition():
                        assert time.monotonic() < deadline, user_sees(session.engine)
                        await pilot.pause(0.1)

                await until(lambda: app.snapshot.weight == 20 and all(
                    g.verdict is Verdict.PASS for g in app.snapshot.gates))
                panels = [app.query_one(ErrorRatePanel), app.query_one(LatencyPanel)]
                assert not any(p.has_class("-problem") for p in panels)

                proxy.set(Fault.refuse())
                # Wait for what is drawn, not for the engine: under load the redraw
                # can trail the snapshot.
                await until(lambda: app.snapshot.problem("metrics") is not None
                            and all(p.has_class("-problem") for p in panels))
                for panel in panels:
                    assert panel.has_class("-problem")
                    line = str(panel.border_subtitle)
                    assert re.fullmatch(r"stale since \d\d:\d\d:\d\d — prometheus: connection "
                                        rf"refused by http://127\.0\.0\.1:{proxy.port}",
                                        line), line
                screen = app.export_screenshot().replace("&#160;", " ")
                assert "stale since" in screen and "connection refused" in screen
                assert warm.weights() == {"stable": 80, "canary": 20}

                proxy.set(Fault.passthrough())
                await until(lambda: app.snapshot.problem("metrics") is None
                            and not any(p.has_class("-problem") for p in panels))
                assert not any(p.has_class("-problem") for p in panels)
        finally:
            await session.close()
