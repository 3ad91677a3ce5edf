"""Every release a state folder has a journal for, with how it ended (`relconsole releases`).

Read only from the journals and leases on disk: no provider is asked, so the list works
when the systems behind a release are down, which is when someone needs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relconsole.clock import clock_text
from relconsole.engine.journal import verify
from relconsole.engine.journal.store import parse_line, split_lines
from relconsole.engine.lease import current_holder
from relconsole.model import actor_text

# The last phase a journal records, as a person would say how the release went.
OUTCOMES = {
    "promoted": "promoted",
    "rolled_back": "rolled back",
    "rolling_back": "ROLLBACK NOT VERIFIED",
    "rollback_failed": "ROLLBACK NOT VERIFIED",
    "paused": "paused",
    "progressing": "in progress",
    "pending": "not started",
}


@dataclass(frozen=True)
class ReleaseSummary:
    release: str
    journal: str
    records: int
    first: float | None
    last: float | None
    outcome: str
    weight: int | None
    last_action: str
    """The last intent, its outcome and who, e.g. 'rollback → verified (alice@bastion)'."""
    driver: str
    """Who holds the lease now ("" when nobody drives)."""
    chain_ok: bool


def _records(path: Path) -> list[dict[str, Any]]:
    lines, _tail = split_lines(path.read_bytes())
    return [rec for rec in map(parse_line, lines) if rec is not None]


def _who(actor: object) -> str:
    return actor_text(actor) if isinstance(actor, dict) else "?"


def summarise(state: Path, path: Path) -> ReleaseSummary:
    records = _records(path)
    release = path.stem
    phase, weight = None, None
    for record in records:
        after = record.get("after")
        if isinstance(after, dict):
            phase = after.get("phase", phase)
            if isinstance(after.get("weight"), int):
                weight = after["weight"]
    last = records[-1] if records else {}
    action = str(last.get("intent", ""))
    if last.get("outcome"):
        action += f" → {last['outcome']}"
    if last:
        action += f" ({_who(last.get('actor'))})"
    stamps = [r["ts"] for r in records if isinstance(r.get("ts"), int | float)]
    holder = current_holder(state, release)
    return ReleaseSummary(
        release=release,
        journal=str(path),
        records=len(records),
        first=min(stamps) if stamps else None,
        last=max(stamps) if stamps else None,
        outcome=OUTCOMES.get(str(phase), "unknown") if phase else "not started",
        weight=weight,
        last_action=action,
        driver=holder.holder if holder is not None else "",
        chain_ok=verify(path).ok,
    )


def list_releases(state: Path) -> list[ReleaseSummary]:
    """Newest activity first."""
    found = [summarise(state, p) for p in sorted((state / "journal").glob("*.jsonl"))]
    return sorted(found, key=lambda s: s.last or 0.0, reverse=True)


def render(summaries: Sequence[ReleaseSummary], state: Path, as_json: bool) -> str:
    if as_json:
        return "\n".join(json.dumps(asdict(s), ensure_ascii=False) for s in summaries)
    if not summaries:
        return f"no releases in {state} (no journals under {state / 'journal'})"
    now = time.time()  # journal times are wall-clock times
    lines = []
    for s in summaries:
        when = clock_text(s.last) if s.last is not None else "—"
        if s.last is not None and now - s.last > 86_400:
            when = f"{(now - s.last) / 86_400:.0f}d ago"
        weight = f"{s.weight}%" if s.weight is not None else "—"
        driver = f"driven by {s.driver}" if s.driver else "nobody drives"
        chain = "" if s.chain_ok else "  ⚠ journal chain broken (relconsole journal --verify)"
        lines.append(f"{s.release}  {s.outcome.upper()} at {weight}  last {when}: "
                     f"{s.last_action}  · {driver}{chain}")
    return "\n".join(lines)
