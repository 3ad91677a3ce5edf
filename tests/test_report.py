"""`relconsole report`: real releases on the simulator, then the report of what happened.

The Markdown must tell the journal's story (every action, who, why, every verdict change,
in order), the incident review must appear only after a rollback and with the right
times, the JSON must say the same, and the HTML must render in a real browser (Debian's
Chromium) with both charts, their series and the step boundaries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import demo_session, run_until

from relconsole import cli
from relconsole.assembly import DEMO_CONFIG
from relconsole.clock import clock_text
from relconsole.model import Actor, actor_text
from relconsole.report import build_report, fetch_series, render

ALICE = Actor("alice", "bastion-1", "10.0.0.7 50000 22")


@dataclass
class Released:
    records: list[dict[str, Any]]
    poll: float
    markdown: str
    data: dict[str, Any]
    html: str


async def _report(session: Any) -> Released:
    records = session.engine.journal.records()
    plan = session.engine.plan
    series, note = await fetch_series(session.providers.metrics, plan, records)
    report = build_report(records, plan, baseline_version="2.2.1", series=series,
                          series_note=note)
    return Released(records, plan.poll_interval, render(report, "md"),
                    json.loads(render(report, "json")), render(report, "html"))


async def release(scenario: str, state: Path) -> Released:
    """The whole release, driven by the engine on its own rules, then its report."""
    session = demo_session(scenario, state=state)
    try:
        await run_until(session, lambda e: e.phase.terminal)
        return await _report(session)
    finally:
        await session.close()


def table(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the table under `## heading`, as cells."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]]


def section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def actions(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(time, who, intent, reason) of each action, from the records that close one: an
    action is journalled as its intent and then its outcome, both with the same words."""
    out = []
    opened: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec["outcome"] is None:
            opened[rec["intent"]] = rec
            continue
        first = opened.pop(rec["intent"], rec)
        out.append((clock_text(first["ts"]), actor_text(first["actor"]), rec["intent"],
                    rec["reason"]))
    return out


def verdict_changes(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(time, gate, before, after) each time a record shows a gate's verdict changed."""
    last: dict[str, str] = {}
    out = []
    for rec in records:
        for g in (rec.get("data") or {}).get("gates", []):
            if last.get(g["gate"]) != g["verdict"]:
                out.append((clock_text(rec["ts"]), g["gate"], last.get(g["gate"], "—"),
                            g["verdict"]))
                last[g["gate"]] = g["verdict"]
    return out


def the_rollback(records: Sequence[dict[str, Any]], poll: float) -> dict[str, float]:
    """When the canary took 10 % (the simulated fault starts there), when the gate first
    failed, and when the rollback was verified — from the journal alone."""
    step2 = next(r for r in records if r["outcome"] == "verified"
                 and (r["after"] or {}).get("step") == 2)
    trip = next(r for r in records if r["intent"] == "rollback" and r["outcome"] is None)
    failing = [g for g in trip["data"]["gates"] if g["verdict"] == "fail"]
    first_fail = trip["ts"] - (max(g["consecutive_failures"] for g in failing) - 1) * poll
    verified = next(r for r in records if r["intent"] == "rollback"
                    and r["outcome"] == "verified")
    return {"fault": step2["ts"], "detected": first_fail, "verified": verified["ts"]}


# ---------------------------------------------------------------------- Markdown


async def test_markdown_tells_the_journal_of_a_rolled_back_release(tmp_path: Path) -> None:
    r = await release("bad-canary", tmp_path / "state")

    assert "- Outcome: **ROLLED BACK**" in r.markdown
    rows = table(r.markdown, "Timeline")
    assert [(row[1], row[2], row[3], row[4]) for row in rows] == [
        (t, who.replace("|", "\\|"), intent, reason.replace("|", "\\|"))
        for t, who, intent, reason in actions(r.records)
    ]
    assert [row[3] for row in rows] == ["attach", "advance", "advance", "rollback"]
    trip = next(x for x in r.records if x["intent"] == "rollback" and x["outcome"] is None)
    assert rows[-1][2] == actor_text(trip["actor"]) and rows[-1][2].startswith("engine (for ")
    assert rows[-1][6] == "10%→0%" and rows[-1][7] == "verified"

    changes = table(r.markdown, "Gate verdicts")
    assert [(c[0], c[1], *c[2].split(" → ")) for c in changes] == verdict_changes(r.records)
    assert changes[-1][1:3] == ["error_rate", "pass → fail"]
    # The values behind the failing verdict, in the screen's units.
    fail = next(g for g in trip["data"]["gates"] if g["verdict"] == "fail")
    assert changes[-1][3] == f"{fail['canary'] * 100:.2f} %"

    decisions = section(r.markdown, "Automatic decisions")
    assert f"**{clock_text(trip['ts'])} rollback** (engine, for " in decisions
    assert trip["reason"] in decisions
    assert "None recorded." in section(r.markdown, "Migrations")


async def test_incident_review_after_a_rollback_has_the_times(tmp_path: Path) -> None:
    r = await release("bad-canary", tmp_path / "state")
    when = the_rollback(r.records, r.poll)

    detection = section(r.markdown, "Detection")
    assert f"- Fault: {clock_text(when['fault'])} (first bad value of error_rate" in detection
    assert f"- Detected: {clock_text(when['detected'])} (first failing verdict of error_rate)" \
        in detection
    assert f"- Rollback verified: {clock_text(when['verified'])}" in detection
    fault_s = round(when["detected"] - when["fault"])
    verify_s = round(when["verified"] - when["detected"])
    assert f"- Fault to detection: {fault_s} s" in detection
    assert f"- Detection to rollback verified: {verify_s} s" in detection
    assert fault_s > 0 and verify_s > 0

    review = section(r.markdown, "Incident review")
    for part in ("### What was seen", "### When", "### What was done",
                 "### What to check next"):
        assert part in review
    assert "- error_rate fail: canary" in review
    assert f"- {clock_text(when['verified'])} rollback verified: canary at 0%" in review
    assert "- rollback at 10% by engine (for " in review
    assert "- [ ] compare error_rate of 2.3.0 with 2.2.1" in review


async def test_a_promoted_release_has_no_incident_review(tmp_path: Path) -> None:
    r = await release("healthy", tmp_path / "state")

    assert "- Outcome: **PROMOTED**" in r.markdown
    assert "Incident review" not in r.markdown
    assert "No gate failed: nothing to detect." in section(r.markdown, "Detection")
    rows = table(r.markdown, "Timeline")
    assert [row[6] for row in rows if row[3] == "advance"] == [
        "0%→1%", "1%→10%", "10%→50%", "50%→100%"]
    assert r.data["incident_review"] is None
    assert r.data["outcome"] == "promoted"
    assert r.data["timing"]["detected_at"] is None


async def test_an_operators_rollback_is_theirs_with_the_flags_they_changed(
    tmp_path: Path,
) -> None:
    session = demo_session("healthy", state=tmp_path / "state", auto_advance=False,
                           actor=ALICE)
    try:
        await run_until(session, lambda e: e.why_not("advance") is None)
        engine = session.engine
        assert (await engine.advance("first step", actor=ALICE)).ok
        assert (await engine.set_flag("checkout-new-pricing-release", False,
                                      "pricing looks off", actor=ALICE)).ok
        assert (await engine.rollback("customer complaints", actor=ALICE)).ok
        r = await _report(session)
    finally:
        await session.close()

    flags = table(r.markdown, "Flags changed")
    assert [(f[1], f[2], f[3], f[4], f[5]) for f in flags] == [
        ("checkout-new-pricing-release", "flag.kill", "alice@bastion-1",
         "pricing looks off", "verified")]
    assert "None: every action was taken by a person." in section(
        r.markdown, "Automatic decisions")
    detection = section(r.markdown, "Detection")
    assert "No gate failed: the rollback was asked for at" in detection
    review = section(r.markdown, "Incident review")
    assert "- rolled back by alice@bastion-1: customer complaints" in review
    assert "- rollback at 1% by alice@bastion-1: verified" in review


# ---------------------------------------------------------------------- JSON


async def test_json_has_the_same_content(tmp_path: Path) -> None:
    r = await release("bad-canary", tmp_path / "state")
    data = r.data
    when = the_rollback(r.records, r.poll)

    assert data["schema"] == "relconsole.report/1"
    assert data["outcome"] == "rolled back"
    assert [(clock_text(e["at"]), e["actor"], e["intent"], e["reason"])
            for e in data["timeline"]] == actions(r.records)
    assert [(clock_text(c["at"]), c["gate"], c["before"] or "—", c["after"]["verdict"])
            for c in data["verdict_changes"]] == verdict_changes(r.records)
    t = data["timing"]
    assert (t["fault_at"], t["detected_at"], t["rollback_verified_at"]) == (
        when["fault"], when["detected"], when["verified"])
    assert t["fault_to_detection"] == when["detected"] - when["fault"]
    assert t["detection_to_rollback_verified"] == when["verified"] - when["detected"]
    assert data["migrations"] == []
    assert data["incident_review"]["rolled_back"] is True
    assert data["incident_review"]["check_next"] == [
        line.removeprefix("- [ ] ")
        for line in section(r.markdown, "Incident review").split("### What to check next")[1]
        .strip().splitlines()]
    assert [m["label"] for m in data["marks"]] == ["step 1 · 1%", "step 2 · 10%", "rollback"]
    charts = {c["metric"]: c for c in data["charts"]}
    assert set(charts) == {"error_rate", "latency_p99"}
    # The series show the fault the gate caught: the canary's error rate past its limit
    # after it took 10 %, and the canary absent (no traffic) after the rollback.
    points = charts["error_rate"]["points"]
    bad = [p for p in points if p["canary"] is not None and p["canary"] > 0.01]
    assert bad and min(p["at"] for p in bad) == when["fault"]
    assert all(p["canary"] is None for p in points if p["at"] >= when["verified"])
    assert all(p["baseline"] is not None for p in points)


# ---------------------------------------------------------------------- command line


async def test_report_command_reads_the_journal_and_the_simulated_past(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    r = await release("bad-canary", state)
    capsys.readouterr()
    config = tmp_path / "release.yaml"
    config.write_text(Path(DEMO_CONFIG).read_text())

    code = await asyncio.to_thread(cli.main, ["report", "-c", str(config), "--state-dir",
                                              str(state), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["timeline"] == r.data["timeline"]
    assert data["timing"] == r.data["timing"]
    assert [len(c["points"]) for c in data["charts"]] == [
        len(c["points"]) for c in r.data["charts"]]

    code = await asyncio.to_thread(cli.main, ["report", "-c", str(config), "--state-dir",
                                              str(state)])
    assert code == 0
    assert capsys.readouterr().out == r.markdown


def test_report_without_a_journal_says_so(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "release.yaml"
    config.write_text(Path(DEMO_CONFIG).read_text())
    code = cli.main(["report", "-c", str(config), "--state-dir", str(tmp_path / "empty")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("relconsole: no journal yet for checkout-api-2.3.0-production")
    assert "run the release first" in lines[0]


# ---------------------------------------------------------------------- HTML in Chromium


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI=true (scripts/ensure-test-deps.sh "
                        "installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--window-size=1200,1600", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "area", "base", "source"}


class _Dom(HTMLParser):
    """The elements of the DOM Chromium dumped, each as (tag, attributes, open parents)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self._open: list[tuple[str, str]] = []  # (tag, id or tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes, tuple(name for _, name in self._open)))
        if tag not in VOID:
            self._open.append((tag, attributes.get("id") or tag))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs},
                              tuple(name for _, name in self._open)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                return


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Released, _Dom, Path]:
    """One bad-canary release, its HTML report as Chromium's DOM and its screenshot."""
    folder = tmp_path_factory.mktemp("report")
    r = asyncio.run(release("bad-canary", folder / "state"))
    page = folder / "report.html"
    page.write_text(r.html)
    dumped = _browser("--dump-dom", page.as_uri())
    dom = _Dom()
    dom.feed(dumped.stdout)
    shot = folder / "report.png"
    _browser(f"--screenshot={shot}", page.as_uri())
    return r, dom, shot


def _points(attr: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in attr.split())]


# The browser tests share one worker under `-n`: Chromium starts once per run.
BROWSER = pytest.mark.xdist_group("chromium")


@BROWSER
@pytest.mark.parametrize("metric", ["error_rate", "latency_p99"])
def test_html_chart_has_both_series_and_the_step_boundaries(
    rendered: tuple[Released, _Dom, Path], metric: str,
) -> None:
    _r, dom, _shot = rendered
    chart = f"chart-{metric}"
    svg = [a for tag, a, _ in dom.elements if tag == "svg" and a.get("id") == chart]
    assert svg and svg[0]["data-metric"] == metric
    # HTMLParser lowercases attribute names: viewBox reads as viewbox.
    _, _, width, height = (float(v) for v in svg[0]["viewbox"].split())
    inside = [(a, parents) for tag, a, parents in dom.elements if chart in parents]
    lines = {role: [_points(a["points"]) for a, _ in inside
                    if a.get("class") == f"series {role}"] for role in ("canary", "baseline")}
    for role, runs in lines.items():
        assert runs and sum(len(run) for run in runs) >= 10, role
        assert all(0 <= x <= width and 0 <= y <= height for run in runs for x, y in run)
    # The canary's line ends where the rollback took its traffic away: left of the marker.
    markers = [a for a, _ in inside if a.get("class", "").startswith("step-marker")]
    assert [m["data-label"] for m in markers] == ["step 1 · 1%", "step 2 · 10%", "rollback"]
    rollback_x = float(markers[-1]["x1"])
    assert max(x for run in lines["canary"] for x, _ in run) < rollback_x
    assert min(x for run in lines["baseline"] for x, _ in run) < float(markers[0]["x1"])


@BROWSER
def test_html_says_what_the_markdown_says(rendered: tuple[Released, _Dom, Path]) -> None:
    r, dom, _shot = rendered
    entries = [a for tag, a, _ in dom.elements if tag == "tr" and a.get("class") == "entry"]
    assert len(entries) == len(table(r.markdown, "Timeline"))
    changes = [a for tag, a, _ in dom.elements
               if tag == "tr" and a.get("class") == "verdict-change"]
    assert len(changes) == len(table(r.markdown, "Gate verdicts"))
    assert any(tag == "section" and a.get("id") == "incident-review"
               for tag, a, _ in dom.elements)
    # One file: nothing for the browser to fetch and nothing to run.
    assert not [a for tag, a, _ in dom.elements if tag in ("script", "link", "img")]


@BROWSER
def test_html_screenshot_is_a_full_page(rendered: tuple[Released, _Dom, Path]) -> None:
    _r, _dom, shot = rendered
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1200, 1600)


# ---------------------------------------------------------------------- Prometheus


async def test_prometheus_range_of_the_release_window_feeds_the_charts(
    tmp_path: Path,
) -> None:
    from tests.test_prometheus import ERROR_RATE, P99, FakePrometheus, Server
    from tests.test_prometheus import provider as prometheus

    session = demo_session("bad-canary", state=tmp_path / "state")
    try:
        await run_until(session, lambda e: e.phase.terminal)
        records = session.engine.journal.records()
        # The simulator's metrics have no queries; Prometheus is asked these.
        plan = dataclasses.replace(session.engine.plan, metrics=(ERROR_RATE, P99))
    finally:
        await session.close()

    def answer(path: str, q: dict[str, str]) -> Any:
        if path != "/api/v1/query_range":
            return 404, {"status": "error", "error": f"not here: {path}"}
        start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
        bad = "2.3.0" in q["query"] and "5.." in q["query"]
        values = [[start + i * step, "0.05" if bad else "0.002"]
                  for i in range(int((end - start) / step) + 1)]
        return 200, {"status": "success", "data": {"resultType": "matrix",
                                                   "result": [{"metric": {}, "values": values}]}}

    fake = FakePrometheus(answer=answer)
    server = Server(("127.0.0.1", 0), fake.handler())
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        prom = prometheus(fake.url)
        series, note = await fetch_series(prom, plan, records)
        await prom.close()
    finally:
        server.shutdown()
        server.server_close()

    assert note == ""
    asked = [r["query"] for r in fake.requests if r["path"] == "/api/v1/query_range"]
    start, end = records[0]["ts"], records[-1]["ts"] + 2 * plan.poll_interval
    assert {(float(q["start"]), float(q["end"])) for q in asked} == {(start, end)}
    report = build_report(records, plan, series=series)
    chart = next(c for c in report.charts if c.metric == "error_rate")
    assert {p.canary for p in chart.points} == {0.05}
    assert {p.baseline for p in chart.points} == {0.002}
    assert chart.points[0].at == start and chart.points[-1].at == end


async def test_a_dead_prometheus_costs_the_charts_not_the_report(tmp_path: Path) -> None:
    import socket

    from tests.test_prometheus import ERROR_RATE, P99
    from tests.test_prometheus import provider as prometheus

    session = demo_session("bad-canary", state=tmp_path / "state")
    try:
        await run_until(session, lambda e: e.phase.terminal)
        records = session.engine.journal.records()
        plan = dataclasses.replace(session.engine.plan, metrics=(ERROR_RATE, P99))
    finally:
        await session.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prom = prometheus(f"http://127.0.0.1:{port}")
    series, note = await fetch_series(prom, plan, records)
    await prom.close()
    report = build_report(records, plan, series=series, series_note=note)
    markdown = render(report, "md")
    assert f"connection refused by http://127.0.0.1:{port}" in note
    assert "- Note: metrics: no usable value in the release's window" in markdown
    assert "No charts: no metric series for this window." in render(report, "html")
    # The journal's story stands without the series: the fault is the step's start.
    assert "(start of step 2 (10%): no series shows it earlier)" in section(markdown,
                                                                            "Detection")
