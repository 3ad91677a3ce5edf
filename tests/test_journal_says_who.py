"""The journal tells a postmortem who decided what (issue 10, item 12).

The engine's automatic actions are the engine's, on behalf of the lease holder, never
the person at the console; steps are numbered as the screen numbers them; every action
is one whole row in Markdown; a refused one-shot command leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from relconsole.engine.journal import render_markdown
from relconsole.model import Actor, Phase
from tests.helpers import demo_session, run_until, terminal

ALICE = Actor("alice", "bastion-1", ssh_client="10.0.0.7")


def _records(session) -> list[dict]:
    return session.engine.journal.records()


async def test_an_automatic_rollback_is_the_engines_for_the_lease_holder(tmp_path: Path) -> None:
    session = demo_session("bad-canary", state=tmp_path, actor=ALICE)
    await session.engine.attach()
    await run_until(session, terminal)
    assert session.engine.phase is Phase.ROLLED_BACK
    records = _records(session)

    by_intent: dict[str, list[dict]] = {}
    for rec in records:
        by_intent.setdefault(rec["intent"], []).append(rec)
    # The console's arrival is the person's: they started it.
    assert by_intent["attach"][0]["actor"]["user"] == "alice"
    # Every step forward and the rollback were decided by the engine's rules.
    for rec in by_intent["advance"] + by_intent["rollback"]:
        assert rec["actor"]["user"] == "engine", rec
        assert rec["actor"]["on_behalf_of"] == "alice@bastion-1", rec

    md = render_markdown(records, "checkout-api")
    rollback_rows = [row for row in md.splitlines() if "| rollback |" in row]
    assert rollback_rows and all("engine (for alice@bastion-1)" in r for r in rollback_rows)
    assert "alice@bastion-1 (ssh from 10.0.0.7) | attach" in md
    # Nothing the engine decided is put on alice.
    assert not [r for r in md.splitlines()
                if "alice@bastion-1 (ssh" in r and ("| advance |" in r or "| rollback |" in r)]


async def test_an_operators_actions_stay_theirs(tmp_path: Path) -> None:
    session = demo_session("healthy", state=tmp_path, actor=ALICE, auto_advance=False)
    engine = session.engine
    await engine.attach()
    assert (await engine.pause("checking a graph")).ok
    assert (await engine.resume("graph fine")).ok
    assert (await engine.rollback("customer report")).ok
    mine = [r for r in _records(session) if r["intent"] in ("pause", "resume", "rollback")]
    assert mine and all(r["actor"]["user"] == "alice" for r in mine), mine
    assert all("on_behalf_of" not in r["actor"] for r in mine)


async def test_steps_in_the_journal_are_the_steps_on_screen(tmp_path: Path) -> None:
    session = demo_session("bad-canary", state=tmp_path, actor=ALICE)
    await session.engine.attach()
    await run_until(session, terminal)
    records = _records(session)
    first = next(r for r in records if r["intent"] == "advance")
    # Before the first step the screen says 'step 0/4', after it 'step 1/4'.
    assert first["before"]["step"] == 0
    done = next(r for r in records if r["intent"] == "advance" and r.get("outcome"))
    assert done["after"]["step"] == 1

    md = render_markdown(records, "checkout-api")
    assert "step -1" not in md
    assert "step 0→1, weight 0→1" in md
    # The rollback was from step 2 at 10 %: the screen said 'step 2/4 · canary 10%'.
    assert re.search(r"\| rollback \|.*step 2→0, weight 10→0 \| verified", md), md
    # A console that attaches later reads the same step back.
    again = demo_session("bad-canary", state=tmp_path, watch=True)
    await again.engine.attach()
    cause = again.engine.snapshot().rollback_cause
    assert cause is not None and cause.step_index + 1 == 2 and cause.weight == 10


async def test_every_action_is_one_whole_row(tmp_path: Path) -> None:
    session = demo_session("bad-canary", state=tmp_path, actor=ALICE)
    await session.engine.attach()
    await run_until(session, terminal)
    md = render_markdown(_records(session), "checkout-api")
    rows = [r for r in md.splitlines() if r.startswith("| ") and not r.startswith("| #")]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # No 'phase pending→' without where it went, no outcome left as '—'.
        assert not re.search(r"\w→(,|$)", cells[5]), row
        assert cells[6] not in ("", "—"), row
    advance = next(r for r in rows if "| advance |" in r)
    assert "phase pending→progressing, step 0→1, weight 0→1 | verified" in advance


def test_an_intent_whose_outcome_never_came_says_so() -> None:
    records = [
        {"seq": 1, "ts": 1.0e9, "actor": {"user": "bob", "host": "h"}, "intent": "advance",
         "reason": "bake done", "before": {"step": 1, "weight": 1}, "after": {"weight": 10},
         "outcome": None, "data": None},
    ]
    md = render_markdown(records, "x")
    assert "no outcome recorded" in md


def _cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args, "-c", str(state / "cfg.yaml"),
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_a_refused_one_shot_command_leaves_no_record(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "release: {service: web, version: 1.2.0, environment: staging,\n"
        "          steps: [{weight: 10, bake: 10m}, {weight: 100}]}\n"
        "providers: {traffic: {type: sim}, metrics: {type: sim, scenario: healthy}}\n"
        "metrics: {error_rate: {query: 'x{v=\"{{version}}\"}', unit: ratio}}\n"
        "gates: [{metric: error_rate, max: 0.01}]\n"
    )
    journal = tmp_path / "journal" / "web-1.2.0-staging.jsonl"
    first = _cli("pause", "--reason", "look first", state=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = journal.read_text().splitlines()
    # A paused release cannot be paused again: refused, and the journal is as it was.
    refused = _cli("pause", "--reason", "again", state=tmp_path)
    assert refused.returncode != 0
    assert "pause refused: release is paused" in refused.stderr
    assert journal.read_text().splitlines() == lines
    assert not [line for line in lines if '"intent":"attach"' in line.replace(" ", "")]
