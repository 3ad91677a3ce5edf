"""The releases of a folder of relconsole configs, for teams without Kubernetes.

Each `*.yaml` (and `*.yml`) in the folder is one release: its id and step count come from
the config, its phase, weight and step from its journal in the state folder (as
`relconsole releases` reads them, through `relconsole.releases`), who drives from its
lease. Read only from files, so the list works when the systems behind the releases are
down; re-read every `interval` seconds, a file only when it changed. Enter attaches as
`relconsole run -c FILE` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relconsole.config import ConfigError, LoadedConfig, load_config
from relconsole.engine.journal import journal_path
from relconsole.engine.journal.store import parse_line, split_lines
from relconsole.engine.lease import current_holder
from relconsole.engine.paths import state_dir
from relconsole.fleet.rows import ConfigTarget, FleetFeed, FleetRow, LastAction
from relconsole.model import actor_text
from relconsole.releases import ReleaseSummary, summarise

INTERVAL = 2.0  # seconds between two looks at the folder
# Records that say a console came or went, not what was done to the release.
NOT_ACTIONS = frozenset({"attach", "detach"})


@dataclass(frozen=True)
class JournalFacts:
    step: int | None  # the journal's step number (1 = first step, 0 = before it)
    last: LastAction | None


def journal_facts(path: Path) -> JournalFacts:
    """The last step and the last action (its completed record, with who and why)."""
    lines, _tail = split_lines(path.read_bytes())
    records = [r for r in map(parse_line, lines) if r is not None]
    step: int | None = None
    for record in records:
        after = record.get("after")
        if isinstance(after, dict) and isinstance(after.get("step"), int):
            step = after["step"]
    last: LastAction | None = None
    for record in reversed(records):
        intent = str(record.get("intent") or "")
        if not intent or intent in NOT_ACTIONS:
            continue
        outcome = record.get("outcome")
        action = f"{intent} → {outcome}" if outcome else intent
        at = record.get("ts")
        last = LastAction(action=action, actor=actor_text(record.get("actor")),
                          reason=str(record.get("reason") or ""),
                          at=float(at) if isinstance(at, int | float) else None)
        break
    return JournalFacts(step, last)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class FolderFleet:
    """The releases configured in `folder`; `state` overrides every config's state folder."""

    kind = "folder"
    columns = ("release", "phase", "step", "weight", "driver", "last", "config")

    def __init__(self, folder: Path, *, state: Path | None = None,
                 interval: float = INTERVAL) -> None:
        self.folder = Path(folder)
        self.state = state
        self.interval = interval
        self._configs: dict[Path, tuple[tuple[int, int] | None, LoadedConfig | str]] = {}
        self._journals: dict[Path, tuple[tuple[int, int] | None, Any]] = {}

    @property
    def title(self) -> str:
        return f"configs in {self.folder}"

    async def run(self, feed: FleetFeed) -> None:
        keys: set[str] = set()
        while True:
            try:
                rows = await asyncio.to_thread(self.scan)
            except OSError as exc:
                feed.status(str(self.folder), f"cannot read the folder: {exc.strerror or exc}",
                            problem=True)
            else:
                found = {r.key for r in rows}
                feed.drop(keys - found)
                feed.put(rows)
                keys = found
                feed.status(str(self.folder), "" if rows else
                            "no relconsole configs (*.yaml) in this folder")
            await asyncio.sleep(self.interval)

    def scan(self) -> list[FleetRow]:
        """Every config of the folder as a row (a config that cannot be read says why)."""
        paths = sorted({*self.folder.glob("*.yaml"), *self.folder.glob("*.yml")})
        if not self.folder.is_dir():
            raise NotADirectoryError(20, "not a folder", str(self.folder))
        for gone in set(self._configs) - set(paths):
            del self._configs[gone]
        return [self._row(path) for path in paths]

    def _config(self, path: Path) -> LoadedConfig | str:
        stamp = _stamp(path)
        cached = self._configs.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        loaded: LoadedConfig | str
        try:
            loaded = load_config(path, resolve_secrets=False)
        except ConfigError as exc:
            loaded = str(exc)
        except OSError as exc:
            loaded = f"{path}: cannot read: {exc.strerror or exc}"
        self._configs[path] = (stamp, loaded)
        return loaded

    def _journal(self, state: Path, path: Path) -> tuple[ReleaseSummary, JournalFacts] | None:
        stamp = _stamp(path)
        if stamp is None:
            return None
        cached = self._journals.get(path)
        if cached is not None and cached[0] == stamp:
            facts: tuple[ReleaseSummary, JournalFacts] = cached[1]
            return facts
        facts = (summarise(state, path), journal_facts(path))
        self._journals[path] = (stamp, facts)
        return facts

    def _row(self, path: Path) -> FleetRow:
        cfg = self._config(path)
        common: dict[str, Any] = {"key": str(path), "config": path.name,
                                  "target": ConfigTarget(path)}
        if isinstance(cfg, str):
            return FleetRow(name=path.stem, phase="config error", message=cfg, **common)
        plan = cfg.plan
        release = plan.release_id
        state = state_dir(self.state or cfg.state_dir)
        holder = current_holder(state, release)
        driver = holder.holder if holder is not None else ""
        count = len(plan.steps)
        read = self._journal(state, journal_path(state, release))
        what = f"{plan.service} {plan.version} → {plan.environment}"
        if read is None:
            return FleetRow(name=release, phase="not started", step=f"0/{count}",
                            progress=0.0, driver=driver, message=f"{what}: no journal yet",
                            detail=(what,), **common)
        summary, facts = read
        step = facts.step if facts.step is not None else 0
        chain = "" if summary.chain_ok else \
            " · ⚠ journal chain broken (relconsole journal --verify)"
        return FleetRow(
            name=release,
            phase=summary.outcome,
            step=f"{step}/{count}",
            progress=step / count if count else None,
            actual_weight=summary.weight,
            driver=driver,
            last=facts.last,
            created=summary.first,
            message=f"{what}{chain}",
            detail=(what,),
            **common,
        )
