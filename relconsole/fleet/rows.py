"""What the fleet table shows: one frozen `FleetRow` per release, and pure functions over rows.

A source (Argo Rollouts in `argo`, a folder of configs in `folder`) puts rows into a
`FleetFeed`; the screen drains the feed at most a few times a second and updates only the
rows that changed. Every cell's text comes from `cell_texts`, so what the filter matches
and what the sort orders is exactly what the table shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from relconsole import units
from relconsole.model import actor_text

# Written on a Rollout by every relconsole action, read back here: who did what last.
LAST_ACTION_ANNOTATION = "relconsole.dev/last-action"
MISSING = "—"

COLUMN_KEYS = ("context", "namespace", "name", "release", "phase", "step", "weight", "age",
               "driver", "last", "config")


# --- attach targets -------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutTarget:
    """An Argo Rollout to attach the console to; `context` None is the current context."""

    rollout: str
    namespace: str
    context: str | None
    kubeconfig: str | None


@dataclass(frozen=True)
class ConfigTarget:
    """A relconsole config file, attached as `relconsole run -c FILE` does."""

    path: Path


Target = RolloutTarget | ConfigTarget


# --- the last action ------------------------------------------------------------------


@dataclass(frozen=True)
class LastAction:
    action: str
    actor: str
    reason: str = ""
    at: float | None = None  # epoch seconds

    def text(self, now: float) -> str:
        """'abort · alice@bastion · 3m ago' (without the time when it is not known)."""
        parts = [self.action or "?", self.actor or "?"]
        if self.at is not None:
            parts.append(f"{age_text(now - self.at)} ago")
        return " · ".join(parts)


def parse_time(value: object) -> float | None:
    """Epoch seconds from an RFC 3339 string (Kubernetes' timestamps) or a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without its zone could be hours off: better unknown
    return moment.timestamp()


def parse_last_action(raw: object) -> LastAction | None:
    """The `relconsole.dev/last-action` annotation: JSON {action, actor, reason, at}.

    None when absent or unreadable; an annotation someone edited by hand must not cost
    the row its other columns.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("action"):
        return None
    actor = data.get("actor")
    who = actor_text(actor) if isinstance(actor, Mapping) else str(actor or "?")
    reason = data.get("reason")
    return LastAction(action=str(data["action"]), actor=who,
                      reason=str(reason) if reason else "", at=parse_time(data.get("at")))


# --- rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    """One release as the table shows it. Equal rows draw the same: a watch event that
    changes nothing shown (a new resourceVersion, a status heartbeat) costs no redraw."""

    key: str  # unique in the table: "context/namespace/name" or the config's path
    name: str
    phase: str
    target: Target | None = None  # what Enter attaches to; None: nothing to attach
    context: str = ""
    namespace: str = ""
    message: str = ""  # the controller's message, or why the row cannot be read
    step: str = ""  # the plugin's "3/8"; "" where it leaves the column blank
    progress: float | None = None  # steps done / steps, for sorting
    set_weight: int | None = None
    actual_weight: int | None = None
    created: float | None = None  # epoch seconds
    last: LastAction | None = None
    driver: str = ""  # who holds the lease (folder releases)
    config: str = ""  # the config file's name (folder releases)
    detail: tuple[str, ...] = field(default=())  # more words for the line under the table


def age_text(seconds: float | None) -> str:
    """Coarse, as the console shows ages ('<1m', '12m', '5h', '45d'; `units.age`): it
    changes rarely, so the table rarely redraws for it."""
    return units.age(seconds)


def weight_text(row: FleetRow) -> str:
    """'set/actual' ('20/20') for a Rollout, where an unknown side is '—'; '10%' where only
    the verified weight is known (a folder release); '—' when neither is."""
    if row.set_weight is None:
        return MISSING if row.actual_weight is None else f"{row.actual_weight}%"
    def side(value: int | None) -> str:
        return MISSING if value is None else str(value)
    return f"{side(row.set_weight)}/{side(row.actual_weight)}"


def cell_texts(row: FleetRow, now: float) -> dict[str, str]:
    """Every column's text for this row (the screen shows those that fit)."""
    return {
        "context": row.context or MISSING,
        "namespace": row.namespace or MISSING,
        "name": row.name,
        "release": row.name,  # a folder release's name is its release id
        "phase": row.phase,
        "step": row.step or MISSING,
        "weight": weight_text(row),
        "age": age_text(now - row.created) if row.created is not None else MISSING,
        "driver": row.driver or "nobody",
        "last": row.last.text(now) if row.last is not None else MISSING,
        "config": row.config or MISSING,
    }


# --- filter ---------------------------------------------------------------------------


def matches(row: FleetRow, query: str, now: float, columns: Sequence[str] = COLUMN_KEYS,
            ) -> bool:
    """Whether every word of `query` (case-insensitive) is in the row's text: the cells of
    `columns`, the controller's message and the last action's reason (both shown under
    the table for the selected row)."""
    words = query.lower().split()
    if not words:
        return True
    texts = cell_texts(row, now)
    extra = [row.message, *row.detail, row.last.reason if row.last else ""]
    haystack = "\n".join([*(texts[c] for c in columns), *extra]).lower()
    return all(word in haystack for word in words)


def filtered(rows: Iterable[FleetRow], query: str, now: float,
             columns: Sequence[str] = COLUMN_KEYS) -> list[FleetRow]:
    return [row for row in rows if matches(row, query, now, columns)]


# --- sort -----------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")

# Most urgent first: what needs a human sorts to the top when sorting by phase.
PHASE_RANK = {
    "degraded": 0, "rollback not verified": 0, "config error": 0, "unreadable": 0,
    "paused": 1,
    "progressing": 2, "in progress": 2,
    "rolled back": 3,
    "healthy": 4, "promoted": 4,
    "not started": 5,
}

# How a phase is coloured: bad needs a human now, warn is waiting for one, busy moves.
PHASE_TONE = {
    "degraded": "bad", "rollback not verified": "bad", "config error": "bad",
    "unreadable": "bad",
    "paused": "warn", "rolled back": "warn",
    "progressing": "busy", "in progress": "busy",
    "healthy": "ok", "promoted": "ok",
}


def phase_tone(phase: str) -> str:
    """'bad', 'warn', 'busy', 'ok' or 'muted'."""
    return PHASE_TONE.get(phase.lower(), "muted")


def _text(value: str) -> tuple[str | int, ...]:
    """Natural order: 'web-2' before 'web-10'. re.split alternates text and digits, so
    two keys compare text with text and number with number."""
    return tuple(int(part) if i % 2 else part
                 for i, part in enumerate(_DIGITS.split(value.lower())))


def _sort_value(row: FleetRow, column: str) -> Any:
    """The value a column sorts by; None sorts last whichever way the sort goes."""
    if column in ("context", "namespace", "name", "driver", "config"):
        return _text(getattr(row, column) or ("nobody" if column == "driver" else ""))
    if column == "release":
        return _text(row.name)
    if column == "phase":
        return (PHASE_RANK.get(row.phase.lower(), 6), row.phase.lower())
    if column == "step":
        return row.progress
    if column == "weight":
        return row.actual_weight if row.actual_weight is not None else row.set_weight
    if column == "age":
        # Ascending age: the youngest first.
        return None if row.created is None else -row.created
    if column == "last":
        # Ascending "ago": the most recent action first.
        return None if row.last is None or row.last.at is None else -row.last.at
    raise ValueError(f"unknown column {column!r}")


def _identity(row: FleetRow) -> tuple[str, str, str, str]:
    return (row.context.lower(), row.namespace.lower(), row.name.lower(), row.key)


def sort_rows(rows: Iterable[FleetRow], column: str, reverse: bool = False,
              ) -> list[FleetRow]:
    """Rows ordered by `column` (reversed if asked), ties by context, namespace, name;
    rows without a value for the column come last either way."""
    ordered = sorted(rows, key=_identity)
    known = [r for r in ordered if _sort_value(r, column) is not None]
    unknown = [r for r in ordered if _sort_value(r, column) is None]
    known.sort(key=lambda r: _sort_value(r, column), reverse=reverse)
    return known + unknown


# --- the feed -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceStatus:
    text: str
    problem: bool = False


@dataclass(frozen=True)
class Drained:
    """What changed since the last drain: keys whose row is new, changed or gone."""

    keys: frozenset[str]
    statuses: bool  # whether any status line changed


class FleetFeed:
    """The rows and status lines of every source, and what changed since the last drain.

    Sources call `put`, `drop` and `status` as events arrive; only real changes mark a
    row dirty, and `on_change` is called once per batch of changes until the next
    `drain`, so a burst of watch events becomes one redraw.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.rows: dict[str, FleetRow] = {}
        self.statuses: dict[str, SourceStatus] = {}
        self.on_change = on_change
        self.events = 0  # every put/drop, changed or not (for the benchmark)
        self._dirty: set[str] = set()
        self._status_dirty = False
        self._notified = False

    def put(self, rows: Iterable[FleetRow]) -> None:
        for row in rows:
            self.events += 1
            if self.rows.get(row.key) != row:
                self.rows[row.key] = row
                self._dirty.add(row.key)
        self._changed()

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.events += 1
            if self.rows.pop(key, None) is not None:
                self._dirty.add(key)
        self._changed()

    def status(self, source: str, text: str, *, problem: bool = False) -> None:
        """The status line of one source (a context, a folder); "" clears it."""
        new = SourceStatus(text, problem) if text else None
        if self.statuses.get(source) != new:
            if new is None:
                self.statuses.pop(source, None)
            else:
                self.statuses[source] = new
            self._status_dirty = True
            self._changed()

    def _changed(self) -> None:
        if (self._dirty or self._status_dirty) and not self._notified:
            self._notified = True
            if self.on_change is not None:
                self.on_change()

    def drain(self) -> Drained:
        out = Drained(frozenset(self._dirty), self._status_dirty)
        self._dirty.clear()
        self._status_dirty = False
        self._notified = False
        return out

    def problems(self) -> dict[str, str]:
        return {k: s.text for k, s in self.statuses.items() if s.problem}


class FleetSource(Protocol):
    """Where rows come from: `run` puts them into the feed until it is cancelled."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this source fills, in display order."""
        ...

    @property
    def title(self) -> str:
        ...

    async def run(self, feed: FleetFeed) -> None:
        ...


@contextlib.asynccontextmanager
async def following(source: FleetSource, feed: FleetFeed) -> AsyncIterator[asyncio.Task[None]]:
    """Run `source` into `feed` in the background for the body of the `async with`."""
    task = asyncio.ensure_future(source.run(feed))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
