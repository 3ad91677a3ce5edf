"""Wording shared by every problem message: did-you-mean, and values named briefly.

Config errors, provider settings and secret references all tell a user what they wrote
and what they probably meant. Keeping the phrasing in one place keeps it the same
everywhere. Nothing here imports the rest of relconsole, so any layer may use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# difflib's own default: close enough to catch a typo, far enough not to guess wildly.
CUTOFF = 0.6


def closest(word: str, known: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The one known name `word` is most likely a typo of, or None."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(
    word: str, known: Iterable[str], *, inline: bool = False, cutoff: float = CUTOFF
) -> str:
    """The sentence "Did you mean 'x'?", or "" when no known name is close.

    With inline=True it is " (did you mean 'x'?)" instead: the sentence starts a hint,
    the inline form goes straight after the word it corrects, inside a longer message.
    """
    close = closest(word, known, cutoff=cutoff)
    if close is None:
        return ""
    return f" (did you mean '{close}'?)" if inline else f"Did you mean '{close}'?"


def one_line(text: object) -> str:
    """Collapse all whitespace, so a message stays on one line whatever it quotes."""
    return " ".join(str(text).split())


def clip(text: str, limit: int = 60) -> str:
    """One line of at most `limit` characters, so a long value cannot swamp a message."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: Any) -> str:
    """How a value a user wrote is named in a message: 'text', 3, a mapping, nothing."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{clip(value)}'"
    if isinstance(value, (int, float)):
        return f"{value!r}"
    return f"a {type(value).__name__}"
