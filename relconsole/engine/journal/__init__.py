"""The release journal: the durable record of every intent and outcome.

`store` writes and reads it (append-only, fsync'd, hash-chained), `verify` checks the
chain, and `render` turns records into Markdown.
"""

from relconsole.engine.journal.render import render_markdown
from relconsole.engine.journal.store import (
    GENESIS,
    LOCK_WAIT,
    Journal,
    JournalError,
    head_path,
    journal_path,
)
from relconsole.engine.journal.verify import VerifyResult, verify

__all__ = [
    "GENESIS",
    "LOCK_WAIT",
    "Journal",
    "JournalError",
    "VerifyResult",
    "head_path",
    "journal_path",
    "render_markdown",
    "verify",
]
