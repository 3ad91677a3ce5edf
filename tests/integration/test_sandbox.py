"""Releases against the real stack: Prometheus scraping a two-version service behind HAProxy
(examples/sandbox, started once per session on free ports).

Each release runs `relconsole run --headless --json` as a real process, with bakes of a
few seconds, a 1 s poll and 5 s PromQL windows, and the test checks HAProxy's and the
journal's own account of what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import SystemClock
from relconsole.engine.journal import journal_path
from relconsole.model import MetricSpec
from relconsole.providers.haproxy import HAProxyTraffic
from relconsole.providers.haproxy import parse_settings as haproxy_settings
from relconsole.providers.prometheus import PrometheusMetrics
from relconsole.providers.prometheus import parse_settings as prometheus_settings
from tests.sandbox_stack import Headless, Sandbox, launcher

pytestmark = pytest.mark.integration
RELEASE_ID = "sandbox-api-1.1.0-sandbox"
QUICK = ((20, "3s"), (50, "3s"), (100, ""))
# Straight to 50 % (the first step needs no gate), where the fault is injected.
FAULT_AT_50 = ((50, "30s"), (100, ""))
# The error gate is judged on counts: at 1 % it would need several hundred canary
# requests a step, minutes at the sandbox's traffic. At 5 % a few dozen show it holds.
QUICK_GATES = (
    "{metric: error_rate, max: 0.05, failure_limit: 2, inconclusive_limit: 5}",
    "{metric: latency_p99, max: 0.1, max_increase: 0.05, failure_limit: 2, "
    "inconclusive_limit: 5}",
)


def write_config(box: Sandbox, tmp_path: Path, steps: tuple[tuple[int, str], ...] = QUICK,
                 **options: Any) -> Path:
    path = tmp_path / "relconsole.yaml"
    path.write_text(launcher.relconsole_config(
        box.ports, socket_path=box.socket_path, steps=steps,
        state_dir=str(tmp_path / "state"), **options))
    return path


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    path = journal_path(tmp_path / "state", RELEASE_ID)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def at_step(weight: int):
    return lambda e: e["event"] in ("step", "promoted") and e.get("weight") == weight


# ----------------------------------------------------------------------------- 1. healthy


def test_a_healthy_release_goes_to_100_percent(box: Sandbox, tmp_path: Path) -> None:
    run = Headless(write_config(box, tmp_path, gates=QUICK_GATES))
    try:
        assert run.finish(60) == 0, run.output()
    finally:
        run.close()
    # HAProxy's own account: the canary takes all the traffic.
    assert box.weights() == {"stable": 0, "canary": 100}
    assert "0 (initial 100)" in box.runtime("get weight app/stable")

    records = journal(tmp_path)
    for weight in (20, 50, 100):
        intents = [r for r in records if r["intent"] == "advance" and not r.get("outcome")
                   and (r.get("after") or {}).get("weight") == weight]
        assert len(intents) == 1, f"one record for the step to {weight}%"
        gates = {g["gate"]: g for g in intents[0]["data"]["gates"]}
        assert set(gates) == {"error_rate", "latency_p99"}
        verified = [r for r in records if r["intent"] == "advance"
                    and r.get("outcome") == "verified" and r["after"]["weight"] == weight]
        assert len(verified) == 1
        if weight > 20:  # past the first step the canary has served traffic: real numbers
            for gate in gates.values():
                assert gate["verdict"] == "pass"
                assert isinstance(gate["canary"], float) and isinstance(gate["baseline"], float)
            assert gates["error_rate"]["canary"] == 0.0
            assert 0 < gates["latency_p99"]["canary"] < 0.1


# ----------------------------------------------------------------------------- 2. errors


def test_injected_errors_roll_back_on_the_error_rate_gate(box: Sandbox, tmp_path: Path) -> None:
    run = Headless(write_config(box, tmp_path, FAULT_AT_50))
    try:
        run.wait_for(at_step(50), timeout=30)
        box.knobs("canary", error_rate=0.05)
        assert run.finish(40) == 3, run.output()
    finally:
        run.close()
    assert box.weights()["canary"] == 0

    rollback = next(r for r in journal(tmp_path) if r["intent"] == "rollback"
                    and not r.get("outcome"))
    # Written in the metric's unit, as the screen writes it (relconsole.units).
    # Judged on counts: the canary's errors in the step against its requests, and the
    # limit the evidence shows broken.
    match = re.search(r"gate error_rate failed 2× \(canary ([0-9.]+) % vs baseline "
                      r"[0-9.]+ %: breaks (≤1 %|Δ≤1 %) \(e-value", rollback["reason"])
    assert match, rollback["reason"]
    measured = float(match.group(1)) / 100
    assert 0.01 < measured <= 0.08
    gate = next(g for g in rollback["data"]["gates"] if g["gate"] == "error_rate")
    assert gate["verdict"] == "fail" and gate["canary"] == pytest.approx(measured, abs=5e-4)
    evidence = gate["evidence"]
    assert evidence["canary_events"] > 0 and evidence["canary_total"] > evidence["canary_events"]
    assert evidence["e_value"] >= 1 / evidence["alpha"]
    assert any(e["event"] == "rolled_back" for e in run.events)
    assert not any(at_step(100)(e) for e in run.events)


# ----------------------------------------------------------------------------- 3. latency


def test_injected_latency_rolls_back_on_the_p99_gate(box: Sandbox, tmp_path: Path) -> None:
    run = Headless(write_config(box, tmp_path, FAULT_AT_50))
    try:
        run.wait_for(at_step(50), timeout=30)
        box.knobs("canary", latency_ms=200)
        assert run.finish(40) == 3, run.output()
    finally:
        run.close()
    assert box.weights()["canary"] == 0
    rollback = next(r for r in journal(tmp_path) if r["intent"] == "rollback"
                    and not r.get("outcome"))
    assert rollback["reason"].startswith("gate latency_p99 failed 2×"), rollback["reason"]
    gate = next(g for g in rollback["data"]["gates"] if g["gate"] == "latency_p99")
    assert gate["canary"] > 0.1  # 200 ms added: the p99 is far past the 100 ms limit


# ----------------------------------------------------------------------------- 4. no data


def test_prometheus_dying_mid_step_pauses_and_leaves_the_weights(
    box: Sandbox, tmp_path: Path
) -> None:
    run = Headless(write_config(box, tmp_path, QUICK, inconclusive_limit=3))
    try:
        run.wait_for(at_step(20), timeout=30)
        box.stop("prometheus")
        assert run.finish(40) == 4, run.output()
    finally:
        run.close()
        box.start("prometheus")
    assert box.weights() == {"stable": 80, "canary": 20}, "exactly as they were"
    assert not any(at_step(50)(e) for e in run.events), "nothing advanced"
    pause = next(e for e in run.events if e["event"] == "pause")
    assert "no data" in pause["message"] and "prometheus: connection refused" in pause["message"]
    paused = next(r for r in journal(tmp_path) if r["intent"] == "pause")
    for gate in paused["data"]["gates"]:
        assert gate["verdict"] == "inconclusive"
        assert "prometheus: connection refused" in gate["reason"]


# ----------------------------------------------------------------------------- 5. socket gone


def test_a_rollback_survives_the_haproxy_socket_disappearing(
    box: Sandbox, tmp_path: Path
) -> None:
    hidden = box.socket_path.with_name("haproxy.sock.hidden")
    run = Headless(write_config(box, tmp_path, FAULT_AT_50))
    try:
        run.wait_for(at_step(50), timeout=30)
        box.knobs("canary", error_rate=0.15)  # about the socket, not detection: plain
        run.wait_for(lambda e: e["event"] == "verdict" and e.get("gate") == "error_rate"
                     and e.get("verdict") == "fail", timeout=20)
        os.rename(box.socket_path, hidden)  # the rollback is one poll away
        try:
            failed = run.wait_for(lambda e: e["event"] == "error"
                                  and "ROLLBACK NOT VERIFIED (attempt 2)" in e["message"],
                                  timeout=20)
            assert "no socket at" in failed["message"] and "retrying in" in failed["message"]
            # Nothing changed while the socket was gone (asked through its hidden path).
            assert box.runtime("get weight app/canary", path=hidden).startswith("50 ")
        finally:
            os.rename(hidden, box.socket_path)
        assert run.finish(30) == 3, run.output()
    finally:
        run.close()
        if hidden.exists():
            os.rename(hidden, box.socket_path)
    assert box.weights()["canary"] == 0
    assert any(e["event"] == "rolled_back" and "(verified)" in e["message"] for e in run.events)
    outcomes = [(r["intent"], r.get("outcome") or "") for r in journal(tmp_path)
                if r["intent"].startswith("rollback")]
    assert any(o.startswith("failed:") and "haproxy: no socket at" in o for _, o in outcomes)
    assert outcomes[-1][1] == "verified"


# ----------------------------------------------------------------------------- adapters


async def test_blue_green_drains_the_old_side_on_the_real_haproxy(box: Sandbox) -> None:
    settings = haproxy_settings(
        {"type": "haproxy", "socket": str(box.socket_path), "backend": "app",
         "stable": "stable", "canary": "canary", "drain_timeout": "2s",
         "preview": f"http://127.0.0.1:{box.ports.preview}/healthz"},
        strategy="blue-green", call_timeout=10.0)
    traffic = HAProxyTraffic(settings)
    await traffic.set_weight(100, reason="switch to green")
    state = box.runtime("show servers state app")
    assert (await traffic.read()).canary_weight == 100
    admin = {row.split()[3]: int(row.split()[6]) for row in state.splitlines()
             if row.startswith(tuple("0123456789")) and len(row.split()) > 6}
    assert admin["stable"] & 0x08 and admin["canary"] == 0, state  # stable drained
    assert "drained in" in traffic.last_drain or "session" in traffic.last_drain
    await traffic.set_weight(0, reason="roll back to blue")
    assert (await traffic.read()).canary_weight == 0
    assert "DRAIN" in box.runtime("show stat").split("app,canary,")[1].split("\n")[0]


async def test_the_prometheus_adapter_against_the_real_server(box: Sandbox) -> None:
    settings = prometheus_settings({"type": "prometheus", "url": box.prometheus_url}, 5.0)
    prom = PrometheusMetrics(settings, {"canary": "1.1.0", "baseline": "1.0.0"}, SystemClock())
    metrics = [
        MetricSpec("several", 'http_requests_total{version="{{version}}"}'),
        MetricSpec("bad", 'sum(rate(http_requests_total{version="{{version}}"}[5s]'),
        MetricSpec("p99", 'histogram_quantile(0.99, sum by (le) (rate('
                   'http_request_duration_seconds_bucket{version="{{version}}"}[5s])))'),
        MetricSpec("missing", 'sum(no_such_metric{version="{{version}}"})'),
    ]
    before = _api_queries(box)
    pairs = await prom.sample(metrics)
    after = _api_queries(box)
    assert after - before == 2 * len(metrics), "one request per metric and version"
    assert "2 series where one was expected" in (pairs["several"].canary.error or "")
    assert (pairs["bad"].canary.error or "").startswith("prometheus: bad query (bad_data:")
    assert "NaN" in (pairs["p99"].canary.error or ""), "canary at weight 0 serves nothing"
    assert pairs["p99"].baseline.usable
    assert "no data" in (pairs["missing"].baseline.error or "")
    history = await prom.history(metrics[2:3], seconds=20, step=1)
    assert len(history["p99"]) == 20
    assert sum(p.baseline.usable for p in history["p99"]) >= 10
    await prom.close()


def _api_queries(box: Sandbox) -> float:
    """Prometheus's own count of instant queries served (from its /metrics page)."""
    _, body = launcher._http(f"{box.prometheus_url}/metrics", timeout=2.0)
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("prometheus_http_requests_total{") and \
                'handler="/api/v1/query"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# ----------------------------------------------------------------------------- 6. the console


async def test_the_console_shows_prometheus_and_rolls_back_through_haproxy(
    box: Sandbox, tmp_path: Path
) -> None:
    """Pilot against the real stack: live values on screen, then `r` with a reason."""
    from textual.widgets import Input

    from relconsole.assembly import open_session
    from relconsole.config import load_config
    from relconsole.model import Phase
    from relconsole.tui import format as fmt
    from relconsole.tui.app import ReleaseApp
    from relconsole.tui.dialogs import ReasonDialog
    from relconsole.tui.widgets.field import Field

    path = tmp_path / "relconsole.yaml"  # the runtime API over TCP this time (address:)
    path.write_text(launcher.relconsole_config(
        box.ports, steps=((20, "60s"), (100, "")), auto_advance=True,
        state_dir=str(tmp_path / "state")))
    session = open_session(load_config(path), clock=SystemClock())
    app = ReleaseApp(session.engine, theme=None, start_engine=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:

            async def until(condition, timeout: float = 20.0) -> None:
                deadline = asyncio.get_running_loop().time() + timeout
                while not condition():
                    assert asyncio.get_running_loop().time() < deadline, app.snapshot
                    await pilot.pause(0.2)

            def live() -> bool:
                snap = app.snapshot
                return (snap.weight == 20 and snap.latest.get("latency_p99", (None, None))[0]
                        is not None and snap.latest.get("error_rate", (None, None))[0]
                        is not None)

            await until(live)
            await pilot.pause(0.3)
            snap = app.snapshot
            _, baseline_p99 = snap.latest["latency_p99"]
            assert baseline_p99 is not None and 0 < baseline_p99 < 0.1
            on_screen = app.query_one("#p99-baseline", Field).text
            assert on_screen == fmt.metric(baseline_p99, "seconds"), on_screen
            assert app.query_one("#canary-value", Field).text == fmt.metric(
                snap.latest["error_rate"][0], "ratio")
            # The sparklines were filled from Prometheus's history on attach: full from the
            # first frame, where a few polls alone would give a few points.
            assert len(snap.series["latency_p99"].baseline) == 60
            assert box.weights() == {"stable": 80, "canary": 20}

            await pilot.press("r")
            await pilot.pause()
            assert isinstance(app.screen, ReasonDialog)
            app.screen.query_one(Input).value = "p99 looks off; paging payments"
            await pilot.press("enter")
            await until(lambda: app.snapshot.phase is Phase.ROLLED_BACK, timeout=15)
            # The intent's worker, not the engine's poll loop (which runs until quit); an
            # empty list would mean "all of them" to Textual.
            intents = [w for w in app.workers if w.group == "intent"]
            if intents:
                await app.workers.wait_for_complete(intents)
            await pilot.pause()
            assert box.weights()["canary"] == 0
            assert "rolled back: canary at 0% (verified)" in app.notices
    finally:
        await session.close()
    rollback = next(r for r in journal(tmp_path) if r["intent"] == "rollback")
    assert rollback["reason"] == "p99 looks off; paging payments"
