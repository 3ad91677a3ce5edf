"""Deployment windows, freezes and a step's `at:` — outside them a release does not start
or advance by itself, says when it may, and an override is journalled."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from helpers import demo_session

from relconsole.config import ConfigError, load_config
from relconsole.model import Phase
from relconsole.schedule import Freeze, Schedule, Window, parse_days

ROOT = Path(__file__).resolve().parent.parent
EVERY_DAY = frozenset(range(7))


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_window_is_open_inside_its_hours_and_says_when_it_opens_next() -> None:
    weekdays = Schedule(windows=(Window(parse_days("mon-fri"), time(9), time(16)),))
    assert weekdays.is_open(at("2026-12-01T10:00"))  # a Tuesday
    closed = weekdays.closed(at("2026-12-04T16:30"))  # Friday after hours
    assert closed == ("outside the deployment windows (Mon–Fri 09:00–16:00 UTC); the next "
                      "opens Mon 2026-12-07 09:00 UTC")
    assert weekdays.next_open(at("2026-12-04T16:30")) == at("2026-12-07T09:00")


def test_a_freeze_closes_every_window_and_gives_its_reason() -> None:
    frozen = Schedule(windows=(Window(EVERY_DAY, time(9), None),),
                      freezes=(Freeze(date(2026, 12, 19), date(2027, 1, 4), "year-end"),))
    closed = frozen.closed(at("2026-12-24T10:00"))
    assert closed == ("frozen until 2027-01-04 (year-end); the next opens Tue 2027-01-05 "
                      "09:00 UTC")


def test_the_time_zone_is_the_releases() -> None:
    berlin = Schedule(windows=(Window(EVERY_DAY, time(9), time(17)),), timezone="Europe/Berlin")
    assert not berlin.is_open(at("2026-12-01T07:30"))  # 08:30 in Berlin
    assert berlin.is_open(at("2026-12-01T08:00"))  # 09:00 in Berlin
    assert not berlin.is_open(at("2026-12-01T16:30"))  # 17:30 in Berlin


def test_days_read_as_written() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days(["sat", "sun"]) == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})


CONFIG = """\
release:
  service: api
  version: 1.0.0
  environment: production
  timezone: {zone}
  windows:
    - {{days: mon-fri, from: {start}, to: '16:00'}}
  freeze:
    - {{from: 2026-12-19, to: 2027-01-04, reason: year-end}}
  steps:
    - {{weight: 10, bake: 1m}}
    - {{weight: 100, at: '14:00'}}
providers:
  traffic: {{type: sim}}
"""


def test_the_config_reads_windows_freezes_and_at(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(zone="Europe/Berlin", start="09:00"))
    cfg = load_config(path, resolve_secrets=False)
    schedule = cfg.plan.schedule
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.windows == (Window(frozenset(range(5)), time(9), time(16)),)
    assert schedule.freezes == (Freeze(date(2026, 12, 19), date(2027, 1, 4), "year-end"),)
    assert cfg.plan.steps[1].at == "14:00"


@pytest.mark.parametrize(("zone", "start", "says", "line"), [
    ("Mars/Olympus", "'09:00'", "'Mars/Olympus' is not a time zone name", 5),
    ("UTC", "'9am'", "'9am' is not a clock time", 7),
    ("UTC", "'17:00'", "the window ends (16:00) before it begins (17:00)", 7),
])
def test_a_bad_schedule_is_one_message_with_its_line(
    tmp_path: Path, zone: str, start: str, says: str, line: int,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(zone=zone, start=start))
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve_secrets=False)
    assert says in str(caught.value)
    assert caught.value.line == line


def _session(tmp_path: Path, schedule: Schedule, *, start: str, auto: bool = True,
             **plan: object):
    from relconsole.clock import FastClock

    session = demo_session("healthy", auto_advance=auto, state=tmp_path,
                           clock=FastClock(start=at(start)), schedule=schedule, **plan)
    return session


async def test_a_headless_run_outside_its_window_waits_then_proceeds(tmp_path: Path) -> None:
    window = Schedule(windows=(Window(EVERY_DAY, time(9), time(16)),))
    session = _session(tmp_path, window, start="2026-12-01T08:50")
    engine = session.engine
    await engine.attach()
    for _ in range(60):  # five minutes of polls, all before 09:00
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    snap = engine.snapshot()
    assert snap.phase is Phase.PENDING and snap.weight == 0
    assert snap.hold == ("outside the deployment windows (Mon–Sun 09:00–16:00 UTC); the "
                         "next opens Tue 2026-12-01 09:00 UTC")
    assert any(e.message.startswith("holding: outside the deployment windows")
               for e in engine.recent_events(50))
    while engine.clock.now() < at("2026-12-01T09:01"):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    assert engine.snapshot().weight > 0  # it started once the window opened
    assert engine.snapshot().hold == ""


async def test_a_manual_start_outside_the_window_is_refused_unless_overridden(
    tmp_path: Path,
) -> None:
    window = Schedule(windows=(Window(EVERY_DAY, time(9), time(16)),))
    session = _session(tmp_path, window, start="2026-12-01T20:00", auto=False)
    engine = session.engine
    await engine.attach()
    refusal = engine.why_not("advance")
    assert refusal is not None and "may not start now" in refusal
    assert "--override-window --reason" in refusal
    assert not (await engine.advance("go")).ok
    assert engine.override_window("hotfix for INC-4711").ok
    assert (await engine.advance("go")).ok
    overridden = [r for r in engine.journal.records() if r["intent"] == "window.override"]
    assert overridden and overridden[0]["reason"] == "hotfix for INC-4711"


async def test_a_step_with_at_holds_until_its_time(tmp_path: Path) -> None:
    from relconsole.model import Step

    steps = (Step(10, bake=60.0), Step(50, bake=60.0, at="10:00"), Step(100))
    session = _session(tmp_path, Schedule(), start="2026-12-01T09:50", steps=steps)
    engine = session.engine
    await engine.attach()
    while engine.clock.now() < at("2026-12-01T09:55"):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    snap = engine.snapshot()
    assert snap.weight == 10  # baked, gates green, but the next step waits for 10:00
    assert snap.hold.startswith("the next step holds until 10:00 UTC")
    refusal = engine.why_not("advance")
    assert refusal is not None and "--skip-bake --reason" in refusal
    while engine.clock.now() < at("2026-12-01T10:01"):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    assert engine.snapshot().weight >= 50


def test_override_window_needs_a_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "advance", "-c", str(ROOT / "config.example.yaml"),
         "--override-window"],
        capture_output=True, text=True, timeout=60,
        env={"RELCONSOLE_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
             "HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "--override-window needs --reason TEXT" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plan_says_whether_the_window_is_open(tmp_path: Path) -> None:
    from relconsole.plan.model import window_line

    cfg = load_config(ROOT / "config.example.yaml", resolve_secrets=False)
    closed_plan = dataclasses.replace(cfg.plan, schedule=Schedule(
        windows=(Window(frozenset({0}), time(9), time(10)),)))
    ok, text = window_line(closed_plan, at("2026-12-01T12:00"))
    assert not ok and text.startswith("outside the deployment windows (Mon 09:00–10:00")
    assert window_line(cfg.plan, at("2026-12-01T12:00")) == (
        True, "no deployment window configured")


async def test_the_console_says_what_holds_the_release(tmp_path: Path) -> None:
    from relconsole.tui.app import ReleaseApp
    from relconsole.tui.widgets.controller import FitField

    window = Schedule(windows=(Window(frozenset(range(5)), time(9), time(16)),))
    session = _session(tmp_path, window, start="2026-12-05T10:00")  # a Saturday
    await session.engine.attach()
    app = ReleaseApp(session.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = app.query_one("#next", FitField).text
    # The panel's row is narrow beside the big digits: the cause and the time survive.
    assert shown == "holds: window — opens Mon 2026-12-07 09:00 UTC"


def test_start_time_reads_a_clock_a_moment_or_a_delay() -> None:
    from relconsole.schedule import countdown, start_time

    now = at("2026-12-01T23:00")
    assert start_time("02:00", now) == at("2026-12-02T02:00")  # the next 02:00: tomorrow
    assert start_time("23:30", now) == at("2026-12-01T23:30")
    assert start_time("2026-12-03T08:15", now) == at("2026-12-03T08:15")
    assert start_time("+10m", now) == now + 600
    assert start_time("09:00", now, "Europe/Berlin") == at("2026-12-02T08:00")
    assert [countdown(s) for s in (9, 245, 3723)] == ["9s", "4m05s", "1h02m03s"]


def test_run_at_waits_then_starts(tmp_path: Path) -> None:
    import json
    import os
    import time as wall

    config = tmp_path / "c.yaml"
    config.write_text("release: {service: api, version: 1.0.0, environment: staging, "
                      "steps: [{weight: 100}]}\nproviders: {traffic: {type: sim}}\n")
    asked = wall.time()
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "run", "-c", str(config), "--headless",
         "--at", "+2s"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stderr
    assert "relconsole: api 1.0.0 → staging starts at " in done.stderr
    assert "(Ctrl-C cancels; nothing is started until then)" in done.stderr
    journal = next((tmp_path / "state").rglob("*.jsonl"))
    first = json.loads(journal.read_text().splitlines()[0])
    assert first["ts"] >= asked + 2 - 0.05  # nothing was recorded before its time


def test_run_at_something_unreadable_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "run", "-c", str(ROOT / "config.example.yaml"),
         "--headless", "--at", "teatime"],
        capture_output=True, text=True, timeout=60,
        env={"RELCONSOLE_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
             "HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "--at: 'teatime' is not a time" in done.stderr and "Traceback" not in done.stderr
