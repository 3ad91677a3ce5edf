"""What every row of the fault matrix checks: what the user sees, what the engine did,
what the journal says — and the two invariants that hold across the whole matrix.

`user_sees(engine)` is the text the console puts on screen for the engine's current
snapshot, built with the console's own formatting (`problem_text` is the panel border
line, gate reasons are the gates panel, the pause reason and last error are the status
line) plus the journal panel's recent event lines; it is also what a headless run
prints. Rows assert on it with the words an on-call engineer would read.

Invariants (`assert_invariants`):
1. No step is ever taken on missing data: no advance or promote intent is journalled
   while a metrics or traffic problem is active or the weight is unverified.
2. Nothing is reported done that was not verified: every record whose outcome starts
   with "verified" for a traffic change names a weight the provider really showed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from relconsole.engine.release import ReleaseEngine
from relconsole.engine.state import Snapshot
from relconsole.tui.widgets.panel import problem_text

TRAFFIC_INTENTS = ("advance", "promote", "rollback", "rollback.retry")


def user_sees(engine: ReleaseEngine, snapshot: Snapshot | None = None) -> str:
    snap = snapshot or engine.snapshot()
    lines = [f"phase: {snap.phase.label} at {snap.weight}%"]
    for note in snap.problems:
        lines.append(f"[{note.source}] {problem_text(note)}")
    for gate in snap.gates:
        lines.append(f"gate {gate.name}: {gate.verdict.value} {gate.reason}")
    if snap.pause_reason:
        lines.append(f"paused: {snap.pause_reason}")
    if snap.last_error:
        lines.append(f"error: {snap.last_error}")
    for event in engine.recent_events(30):
        lines.append(f"event {event.kind}: {event.message}")
    return "\n".join(lines)


def journal_records(engine: ReleaseEngine) -> list[dict[str, Any]]:
    return engine.journal.records()


def journal_file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def problem_records(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """The journal's account of a provider going dark ("problem") and back ("recovered")."""
    return [r for r in records if r.get("intent") == "provider"
            and (r.get("data") or {}).get("source") == source]


def assert_invariants(
    records: list[dict[str, Any]],
    *,
    real_weights: set[int] | None = None,
) -> None:
    """The matrix-wide invariants over a journal (see the module docstring).

    `real_weights`: every canary weight the real provider was observed at during the
    test (read from the service itself, not through relconsole), when the test knows it.
    """
    dark: set[str] = set()
    for rec in records:
        intent = rec.get("intent")
        outcome = str(rec.get("outcome") or "")
        if intent == "provider":
            source = (rec.get("data") or {}).get("source")
            if outcome == "problem" and source in ("metrics", "traffic"):
                dark.add(source)
            elif outcome == "recovered":
                dark.discard(source)
            continue
        if intent in ("advance", "promote") and not outcome:
            assert not dark, (
                f"journal seq {rec.get('seq')}: {intent} started while {sorted(dark)} "
                "had no data"
            )
        if intent in TRAFFIC_INTENTS and outcome.startswith("verified"):
            weight = (rec.get("after") or {}).get("weight")
            if real_weights is not None and weight is not None:
                assert weight in real_weights, (
                    f"journal seq {rec.get('seq')}: {intent} verified at {weight}% but the "
                    f"provider was only ever seen at {sorted(real_weights)}"
                )


async def tick(engine: ReleaseEngine, times: int = 1) -> None:
    """Poll `times` times (the engine's clock decides how long a poll interval is)."""
    for _ in range(times):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
