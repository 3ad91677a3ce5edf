"""One row of the fault matrix for a flag provider, run the same way for every provider.

`observe_row` drives a real engine (built from a YAML config, as `relconsole run` does)
through: attach while the provider is healthy → inject the fault → two polls → an
operator's kill of a release flag → the fault cleared → one poll. It returns what was
observed (screen text, flags, traffic, journal) as plain data, so a row that must run in
another process (flagd's permission row, without root's DAC override) can send it back
as JSON. `check_row` asserts the three things every row states — what the user sees,
what the engine does, what the journal records — and the matrix invariants.

`cli_kill` runs the one-shot `relconsole flag kill` a pipeline would run and
`check_cli_kill` holds it to: exit 1, one clear line, no traceback, and a journal with
the intent and a "failed: …" outcome — never "verified".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from relconsole.assembly import Session, open_session
from relconsole.clock import FastClock
from relconsole.config import load_config
from relconsole.engine.release import ReleaseEngine
from tests.faults.harness import (
    assert_invariants,
    journal_file_records,
    journal_records,
    problem_records,
    tick,
    user_sees,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "checkout-new-pricing-release"
PANEL_LINE = re.compile(r"^\[flags\] stale since \d\d:\d\d:\d\d — (?P<message>.+)$", re.M)


def write_config(path: Path, flags_block: str, *, state: Path, call_timeout: str = "1s",
                 kill_flags: bool = False, flags: tuple[str, ...] = (KEY,)) -> Path:
    """A release on simulated traffic whose flags live in the provider under test."""
    path.write_text(f"""
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  steps: [{{weight: 10}}, {{weight: 100}}]
  call_timeout: {call_timeout}
  flags: [{", ".join(flags)}]
  rollback: {{retry_max: 4s, give_up: 30s, kill_flags: {str(kill_flags).lower()}}}
providers:
  traffic: {{type: sim}}
  flags: {flags_block}
state: {{dir: {state}}}
""")
    return path


def open_engine(config: Path, state: Path) -> Session:
    return open_session(load_config(config), clock=FastClock(), state=state)


def _flags(session: Session) -> list[list[Any]]:
    return sorted([f.key, f.enabled, f.rollout] for f in session.engine.snapshot().flags)


@dataclass
class Observed:
    flags_before: list[list[Any]]
    flags_during: list[list[Any]] = field(default_factory=list)
    seen_during: str = ""
    tick_seconds: float = 0.0  # the slowest poll while the fault was on
    kill_ok: bool = True
    kill_message: str = ""
    kill_seconds: float = 0.0
    seen_after_kill: str = ""
    weight_before: int = -1
    weight_after: int = -1
    traffic_after: int = -1
    problem_after_restore: str | None = None
    flags_after_restore: list[list[Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @staticmethod
    def from_json(text: str) -> Observed:
        return Observed(**json.loads(text))


async def problem_once_restored(engine: ReleaseEngine) -> str | None:
    """The flags problem still shown after the vendor was restored, or None once it went.

    The problem goes once the vendor answers again. On a loaded machine (CI on two cores,
    every service of the suite running) a call through the fault proxy to the fake vendor
    can take longer than the 1 s timeout for a while: CI saw three polls in a row. Up to
    ten polls, as an operator would wait; each is bounded by the timeout.
    """
    problem = None
    for _ in range(10):
        await tick(engine)
        problem = engine.snapshot().problem("flags")
        if problem is None:
            return None
    return problem.message if problem else None


async def observe_row(session: Session, inject: Callable[[], None],
                      restore: Callable[[], None], *, key: str = KEY) -> Observed:
    engine = session.engine
    await engine.attach()
    await engine.advance("start the canary")  # traffic at 10%: the fault must not move it
    seen = Observed(flags_before=_flags(session), weight_before=engine.snapshot().weight)
    assert engine.snapshot().problem("flags") is None, user_sees(engine)
    inject()
    for _ in range(2):  # shown at once; journalled when seen on two polls in a row
        started = time.monotonic()
        await tick(engine)
        seen.tick_seconds = max(seen.tick_seconds, time.monotonic() - started)
    seen.seen_during = user_sees(engine)
    seen.flags_during = _flags(session)
    started = time.monotonic()
    result = await engine.set_flag(key, False, reason="error spike on checkout")
    seen.kill_seconds = time.monotonic() - started
    seen.kill_ok, seen.kill_message = result.ok, result.message
    seen.seen_after_kill = user_sees(engine)
    seen.weight_after = engine.snapshot().weight
    seen.traffic_after = (await engine.traffic.read()).canary_weight
    restore()
    seen.problem_after_restore = await problem_once_restored(engine)
    seen.flags_after_restore = _flags(session)
    seen.records = journal_records(engine)
    return seen


def check_row(seen: Observed, *, sees: str, kill_sees: str | None = None,
              panel: bool = True, call_timeout: float = 1.0, key: str = KEY) -> None:
    """User sees / engine does / journal records, for one injected flag-provider fault."""
    kill_sees = kill_sees or sees
    # -- what the user sees: the flags panel border, then the failed kill's own words.
    line = PANEL_LINE.search(seen.seen_during)
    if panel:
        assert line is not None, seen.seen_during
        assert sees in line["message"], line["message"]
    else:
        assert line is None, seen.seen_during  # reads still work: nothing is stale
    assert not seen.kill_ok
    assert seen.kill_message.startswith(f"flag.kill {key} not verified: "), seen.kill_message
    assert kill_sees in seen.kill_message, seen.kill_message
    assert f"error: {seen.kill_message}" in seen.seen_after_kill
    assert f"event error: {seen.kill_message}" in seen.seen_after_kill
    assert "KILLED (off)" not in seen.seen_after_kill

    # -- what the engine does: last known flags kept (marked stale), nothing reported
    # done, the release's traffic untouched, no poll or call held past the timeout.
    assert seen.flags_during == seen.flags_before
    assert [key, True] == next(f[:2] for f in seen.flags_during if f[0] == key)
    assert seen.weight_after == seen.weight_before == seen.traffic_after == 10
    assert seen.tick_seconds < call_timeout + 1.5, seen.tick_seconds
    assert seen.kill_seconds < 2 * call_timeout + 1.5, seen.kill_seconds
    assert seen.problem_after_restore is None, seen.problem_after_restore

    # -- what the journal records.
    records = seen.records
    problems = problem_records(records, "flags")
    if panel:
        assert [r["outcome"] for r in problems] == ["problem", "recovered"], problems
        assert sees in problems[0]["reason"], problems[0]["reason"]
    else:
        assert problems == []
    kills = [r for r in records if r.get("intent") == "flag.kill"]
    assert [r.get("outcome") or "" for r in kills][:1] == [""], kills  # the intent first
    assert len(kills) == 2, kills
    assert kills[0]["reason"] == "error spike on checkout"
    outcome = kills[1]["outcome"]
    assert outcome.startswith("failed: ") and kill_sees in outcome, outcome
    assert not any(str(r.get("outcome") or "").startswith("verified")
                   for r in records if r.get("intent", "").startswith("flag."))
    assert [r["intent"] for r in records if r.get("intent") in
            ("advance", "promote", "rollback")] == ["advance", "advance"]  # the start only
    assert_invariants(records)


# ---------------------------------------------------------------------- one-shot CLI


def cli_kill(config: Path, *, env: dict[str, str] | None = None,
             prefix: tuple[str, ...] = (), key: str = KEY) -> subprocess.Popen:
    """Start `relconsole flag kill KEY` (returns at once; `finish_cli` collects it)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "relconsole", "flag", "kill", key, "--reason",
         "error spike", "-c", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def check_cli_kill(proc: subprocess.Popen, state: Path, *, sees: str,
                   timeout: float = 30) -> str:
    """Exit 1, one line naming the fault, no traceback; journal: intent then failed."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert sees in lines[0], lines[0]
    assert "(verified)" not in out + err
    journals = sorted((state / "journal").glob("*.jsonl"))
    assert len(journals) == 1, journals
    records = journal_file_records(journals[0])
    kills = [r for r in records if r.get("intent") == "flag.kill"]
    assert [bool(r.get("outcome")) for r in kills] == [False, True], kills
    assert kills[1]["outcome"].startswith("failed: ") and sees in kills[1]["outcome"]
    assert_invariants(records)
    return lines[0]
