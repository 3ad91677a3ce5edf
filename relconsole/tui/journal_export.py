"""The journal out of the console: as a Markdown file, or as text for the clipboard.

Mouse selection copies nothing from the journal panel and ctrl+c does not copy, so an
on-call engineer who must paste the history into an incident channel needs these. The
text is `relconsole journal --format md`'s, so a saved file and the command agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from relconsole.engine.journal import render_markdown
from relconsole.engine.release import ReleaseEngine
from relconsole.placeholders import dashboards

COUNTER_LIMIT = 1000  # files of one second: far more than anyone saves


def journal_markdown(engine: ReleaseEngine) -> tuple[str, int]:
    """The release's whole journal as Markdown, and how many records it has."""
    plan = engine.plan
    records = engine.journal.records()
    title = f"{plan.service} {plan.version} → {plan.environment}"
    return render_markdown(records, title, links=dashboards(plan)), len(records)


def save_new(text: str, stem: str, folders: Sequence[Path]) -> tuple[Path | None, list[str]]:
    """Write `text` to a new file in the first folder that takes it; never overwrite.

    Returns the file (None when no folder could take it) and what went wrong where.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    problems: list[str] = []
    for folder in folders:
        for count in range(1, COUNTER_LIMIT + 1):
            suffix = "" if count == 1 else f"-{count}"
            path = folder / f"{stem}-{stamp}{suffix}.md"
            try:
                # "x": an existing file (a save in the same second) is never replaced.
                with path.open("x", encoding="utf-8") as out:
                    out.write(text)
            except FileExistsError:
                continue
            except OSError as exc:
                problems.append(f"{folder}: {exc.strerror or exc}")
                break
            return path, problems
    return None, problems
