"""Database migrations (`release.migrations`): expand before any traffic moves, contract
after promotion and `contract_after`, and a `down` only when an operator asks for it.

The migrations are real little programs (Python scripts in tmp_path) that write what
they did to a file; the release runs on the simulator and the FastClock.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from relconsole import cli
from relconsole.assembly import open_session
from relconsole.clock import FastClock
from relconsole.config import ConfigError, load_config
from relconsole.engine.migrations import DOWN, UP, promoted_at
from relconsole.engine.state import Event, EventKind
from relconsole.model import Migration, Phase
from tests.helpers import demo_session, run_until, terminal, world

PY = sys.executable
TOOL = """\
import sys
log, label, code = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(log, "a") as f:
    f.write(label + "\\n")
if code:
    print("connecting to the database", file=sys.stderr)
    print(f"ERROR: {label} refused: column email already exists", file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    path = tmp_path / "tool.py"
    path.write_text(TOOL)
    return path


def cmd(tool: Path, log: Path, label: str, code: int = 0) -> tuple[str, ...]:
    return (PY, str(tool), str(log), label, str(code))


def migration(tool: Path, log: Path, name: str, phase: str = "expand", *, up_code: int = 0,
              check_code: int = 0, down_log: Path | None = None) -> Migration:
    return Migration(name=name, phase=phase,
                     up=cmd(tool, log, f"up {name}", up_code),
                     down=cmd(tool, down_log or log, f"down {name}"),
                     check=cmd(tool, log, f"check {name}", check_code))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def records(session: Any) -> list[dict[str, Any]]:
    return session.engine.journal.records()


def outcomes(session: Any, intent: str) -> list[dict[str, Any]]:
    return [r for r in records(session) if r["intent"] == intent and r["outcome"]]


async def test_expand_runs_before_the_first_step_and_is_verified_by_check(
        tmp_path: Path, tool: Path) -> None:
    log = tmp_path / "db.log"
    session = demo_session("healthy", state=tmp_path / "state",
                           migrations=(migration(tool, log, "add-email"),))
    await session.engine.attach()
    await run_until(session, lambda e: e.phase is Phase.PROMOTED)
    assert lines(log) == ["up add-email", "check add-email"]
    recs = records(session)
    intents = [r["intent"] for r in recs]
    up_done = next(i for i, r in enumerate(recs) if r["intent"] == UP and r["outcome"])
    assert recs[up_done]["outcome"] == "verified"
    assert recs[up_done]["before"]["weight"] == 0 and recs[up_done]["after"]["weight"] == 0
    assert intents.index(UP) < up_done < intents.index("advance")
    await session.close()


async def test_a_failing_up_stops_the_release_before_any_traffic_moves(
        tmp_path: Path, tool: Path) -> None:
    log = tmp_path / "db.log"
    session = demo_session("healthy", state=tmp_path / "state",
                           migrations=(migration(tool, log, "add-email", up_code=3),))
    await session.engine.attach()
    await run_until(session, terminal)
    engine = session.engine
    assert engine.phase is Phase.PAUSED
    reason = engine.snapshot().pause_reason
    assert "ERROR: up add-email refused: column email already exists" in reason
    assert "no traffic moved" in reason
    assert engine.snapshot().weight == 0 and world(session).weight == 0
    assert lines(log) == ["up add-email"]  # its check never ran
    assert [r["outcome"] for r in outcomes(session, UP)] == [
        "failed: up exited 3: ERROR: up add-email refused: column email already exists"]
    assert not [r for r in records(session) if r["intent"] == "advance"]
    await session.close()


async def test_a_failing_check_is_not_verified_and_stops_the_release_too(
        tmp_path: Path, tool: Path) -> None:
    log = tmp_path / "db.log"
    session = demo_session("healthy", state=tmp_path / "state", auto_advance=False,
                           migrations=(migration(tool, log, "add-email", check_code=1),))
    await session.engine.attach()
    result = await session.engine.advance("go")
    assert not result.ok and "check exited 1" in result.message
    assert session.engine.phase is Phase.PAUSED and world(session).weight == 0
    assert outcomes(session, UP)[-1]["outcome"].startswith("failed: check exited 1")
    await session.close()


async def test_a_verified_migration_is_not_run_again_after_a_restart(
        tmp_path: Path, tool: Path) -> None:
    log = tmp_path / "db.log"
    state = tmp_path / "state"
    clock = FastClock()
    first = migration(tool, log, "add-email")
    broken = migration(tool, log, "add-index", up_code=2)
    session = demo_session("healthy", state=state, clock=clock, auto_advance=False,
                           migrations=(first, broken))
    await session.engine.attach()
    assert not (await session.engine.advance("go")).ok
    await session.close()
    assert lines(log) == ["up add-email", "check add-email", "up add-index"]

    fixed = dataclasses.replace(broken, up=cmd(tool, log, "up add-index"))
    again = demo_session("healthy", state=state, clock=clock, auto_advance=False,
                         migrations=(first, fixed))
    await again.engine.attach()
    assert again.engine.phase is Phase.PAUSED  # the restart keeps the pause
    assert (await again.engine.resume("index fixed by hand")).ok
    assert (await again.engine.advance("go")).ok
    assert lines(log)[3:] == ["up add-index", "check add-index"]
    assert again.engine.snapshot().weight == 1
    await again.close()


async def test_contract_waits_for_promotion_and_contract_after(
        tmp_path: Path, tool: Path) -> None:
    log = tmp_path / "db.log"
    session = demo_session(
        "healthy", state=tmp_path / "state", contract_after=1800.0,
        migrations=(migration(tool, log, "add-email"),
                    migration(tool, log, "drop-old-email", "contract")))
    engine = session.engine
    await engine.attach()
    await run_until(session, lambda e: e.phase is Phase.PROMOTED)
    promoted = promoted_at(records(session))
    assert promoted is not None
    assert "up drop-old-email" not in lines(log)  # promoted, but not yet for long
    await run_until(session, lambda e: "up drop-old-email" in lines(log))
    assert engine.clock.now() - promoted >= 1800.0
    contract = [r for r in outcomes(session, UP) if r["data"]["phase"] == "contract"]
    assert [r["outcome"] for r in contract] == ["verified"]
    assert contract[0]["ts"] - promoted >= 1800.0
    assert lines(log)[-2:] == ["up drop-old-email", "check drop-old-email"]
    # The old code may not run on the contracted schema: no rollback after it.
    refused = await engine.rollback("too late")
    assert not refused.ok and "contract migration drop-old-email has run" in refused.message
    assert engine.phase is Phase.PROMOTED
    await session.close()


async def test_a_rollback_offers_down_and_does_not_run_it(tmp_path: Path, tool: Path) -> None:
    log, down_log = tmp_path / "db.log", tmp_path / "down.log"
    session = demo_session("bad-canary", state=tmp_path / "state",
                           migrations=(migration(tool, log, "add-email", down_log=down_log),))
    engine = session.engine
    seen: list[Event] = []
    engine.subscribe(on_event=seen.append)
    await engine.attach()
    await run_until(session, terminal)
    assert engine.phase is Phase.ROLLED_BACK
    assert not down_log.exists()
    offered = engine.offered_downs()
    assert [(d.name, d.command) for d in offered] == [
        ("add-email", cmd(tool, down_log, "down add-email"))]
    said = [e.message for e in seen if e.kind is EventKind.MIGRATION_DOWN]
    assert len(said) == 1 and "offered, not run" in said[0]
    assert "relconsole migrate down add-email --reason TEXT" in said[0]
    assert not [r for r in records(session) if r["intent"] == DOWN]

    done = await engine.run_down("add-email", "the new column breaks the old reports")
    assert done.ok, done.message
    assert lines(down_log) == ["down add-email"]
    down = outcomes(session, DOWN)
    assert [(r["reason"], r["outcome"]) for r in down] == [
        ("the new column breaks the old reports", "verified")]
    assert engine.offered_downs() == []  # taken down: nothing left to offer
    again = await engine.run_down("add-email", "twice")
    assert not again.ok and lines(down_log) == ["down add-email"]
    await session.close()


async def test_down_is_refused_while_the_release_is_not_rolled_back(
        tmp_path: Path, tool: Path) -> None:
    log, down_log = tmp_path / "db.log", tmp_path / "down.log"
    session = demo_session("healthy", state=tmp_path / "state", auto_advance=False,
                           migrations=(migration(tool, log, "add-email", down_log=down_log),))
    await session.engine.attach()
    assert (await session.engine.advance("go")).ok
    refused = await session.engine.run_down("add-email", "oops")
    assert not refused.ok and "not rolled back" in refused.message
    assert not down_log.exists()
    await session.close()


CONFIG = """\
release:
  service: checkout-api
  version: 2.3.0
  environment: staging
  steps: [{{weight: 1, bake: 30s}}, {{weight: 10, bake: 2m}}, {{weight: 100}}]
  auto_advance: true
  poll_interval: 5s
  migrations:
    - name: add-email
      phase: expand
      up: [{py}, {tool}, {log}, up add-email, "0"]
      down: [{py}, {tool}, {down}, down add-email, "0"]
      check: [{py}, {tool}, {log}, check add-email, "0"]
providers:
  metrics: {{type: sim, scenario: bad-canary, seed: 7}}
  traffic: {{type: sim}}
metrics:
  error_rate: {{unit: ratio}}
gates:
  - {{metric: error_rate, max: 0.01, max_increase: 0.005, failure_limit: 2}}
"""


def test_migrate_down_runs_it_with_a_reason_and_journals_it(
        tmp_path: Path, tool: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    log, down_log, state = tmp_path / "db.log", tmp_path / "down.log", tmp_path / "state"
    path = tmp_path / "release.yaml"
    path.write_text(CONFIG.format(py=PY, tool=tool, log=log, down=down_log))
    cfg = load_config(path)

    async def roll_back() -> None:
        session = open_session(cfg, clock=FastClock(), state=state)
        await session.engine.attach()
        await run_until(session, terminal)
        assert session.engine.phase is Phase.ROLLED_BACK
        await session.close()

    asyncio.run(roll_back())
    assert not down_log.exists()
    base = ["-c", str(path), "--state-dir", str(state)]
    with pytest.raises(SystemExit) as usage:  # --reason is required
        cli.main(["migrate", "down", "add-email", *base])
    assert usage.value.code == 2
    assert cli.main(["migrate", "down", "nope", "--reason", "x", *base]) == 1
    assert "no migration 'nope'" in capsys.readouterr().err
    assert not down_log.exists()
    assert cli.main(["migrate", "down", "add-email", "--reason", "reports break", *base]) == 0
    assert "add-email down: verified" in capsys.readouterr().out
    assert lines(down_log) == ["down add-email"]
    journal = cli.main(["journal", "--format", "json", *base])
    assert journal == 0
    assert '"migration.down"' in capsys.readouterr().out


BAD = """\
release:
  service: a
  version: "1"
  environment: staging
  steps: [{weight: 10}, {weight: 100}]
  migrations:
    - {name: drop-old, phase: contract, up: [true], down: [true], check: [true]}
    - {name: add-new, phase: expand, up: [true], down: [true], check: [true]}
providers:
  traffic: {type: sim}
"""


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    (BAD, 8, "release.migrations[1].phase",
     "expand migration add-new is listed after contract migration drop-old"),
    (BAD.replace("up: [true], down: [true], check: [true]}\nproviders",
                 "up: 'alembic upgrade head', down: [true], check: [true]}\nproviders"),
     8, "release.migrations[1].up", "not one string (no shell is used)"),
    (BAD.replace("phase: expand", "phase: sideways"), 8, "release.migrations[1].phase",
     "Use one of: expand, contract"),
    (BAD.replace("name: add-new", "name: drop-old").replace("phase: contract",
                                                              "phase: expand"),
     8, "release.migrations[1].name", "listed twice"),
    (BAD.replace("providers:", "  contract_after: 0s\nproviders:"), 9,
     "release.contract_after", "greater than 0"),
])
def test_bad_migrations_are_refused_with_their_line(
        tmp_path: Path, text: str, line: int, key: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.line, error.key) == (line, key)
    assert words in f"{error.problem} {error.hint}"


def test_good_migrations_reach_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(BAD.replace("phase: contract", "phase: X").replace(
        "phase: expand", "phase: contract").replace("phase: X", "phase: expand").replace(
        "providers:", "  contract_after: 2h\nproviders:"))
    plan = load_config(path).plan
    assert [(m.name, m.phase, m.up) for m in plan.migrations] == [
        ("drop-old", "expand", ("true",)), ("add-new", "contract", ("true",))]
    assert plan.contract_after == 7200.0
    assert plan.migrations[0].timeout == 300.0


async def test_plan_and_report_say_what_runs_when_and_what_ran(
        tmp_path: Path, tool: Path) -> None:
    from relconsole.assembly import demo_config
    from relconsole.plan.facts import LiveFacts
    from relconsole.plan.model import build_plan
    from relconsole.report.model import build_report
    from relconsole.report.render_md import render_markdown

    log, down_log = tmp_path / "db.log", tmp_path / "down.log"
    migrations = (migration(tool, log, "add-email", down_log=down_log),
                  migration(tool, log, "drop-old-email", "contract"))
    cfg = demo_config("bad-canary")
    cfg = dataclasses.replace(cfg, plan=dataclasses.replace(cfg.plan, migrations=migrations))
    plan = build_plan(cfg, LiveFacts(), 0.0)
    checklist = "\n".join(plan.checklist)
    assert "Migration add-email (expand)" in checklist
    assert "before the first traffic step" in checklist
    assert "Migration drop-old-email (contract)" in checklist and "1h after promotion" in checklist
    rollback = "\n".join(plan.rollback)
    assert "relconsole migrate down add-email --reason TEXT" in rollback
    assert "drop-old-email" not in rollback  # a contract's down is never offered

    session = demo_session("bad-canary", state=tmp_path / "state", migrations=migrations)
    await session.engine.attach()
    await run_until(session, terminal)
    report = build_report(records(session), session.engine.plan)
    assert [(m["direction"], m["name"], m["outcome"]) for m in report.migrations] == [
        ("up", "add-email", "verified")]
    assert report.incident_review is not None
    assert any("migration add-email ran and stays" in line
               for line in report.incident_review.check_next)
    assert "up add-email (expand)" in render_markdown(report)
    await session.close()


@pytest.mark.parametrize(("contract_code", "exit_code"), [(0, 0), (1, 1)])
async def test_a_headless_run_waits_for_its_contract_migration(
        tmp_path: Path, tool: Path, contract_code: int, exit_code: int) -> None:
    import io

    from relconsole.headless import run_headless

    log = tmp_path / "db.log"
    contract = dataclasses.replace(
        migration(tool, log, "drop-old-email", "contract", up_code=contract_code))
    session = demo_session("healthy", state=tmp_path / "state", contract_after=120.0,
                           migrations=(migration(tool, log, "add-email"), contract))
    out = io.StringIO()
    code = await run_headless(session.engine, out=out, handle_signals=False)
    # A pipeline that ended at promotion would leave the contract to nobody.
    assert "contract migrations run after 120s at 100% — waiting" in out.getvalue()
    assert "up drop-old-email" in lines(log)
    assert code == exit_code
    if exit_code:
        assert "contract migration failed: drop-old-email" in out.getvalue()
