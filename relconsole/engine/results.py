"""What an intent returns, and how one provider call is bounded and made safe to show."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class WatchOnlyError(RuntimeError):
    """An intent reached a watch-only engine (safety rule 3)."""


@dataclass(frozen=True)
class ActionResult:
    """The verified outcome of one intent, or why it was refused or failed."""

    ok: bool
    message: str


class CallFailed(Exception):
    """A provider call failed or timed out; the message is safe to show."""


async def call_provider(source: str, what: str, coro: Awaitable[T], timeout: float) -> T:
    """Run one provider call with a timeout; every failure becomes `CallFailed`.

    A provider bug must not take the console down, so any exception is turned into a
    message naming the source; cancellation still propagates.
    """
    try:
        return await asyncio.wait_for(coro, timeout=timeout)
    except TimeoutError:
        raise CallFailed(f"{source}: {what} timed out after {timeout:g}s") from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        text = str(exc) or type(exc).__name__
        if not text.startswith(f"{source}"):
            text = f"{source}: {text}"
        raise CallFailed(text) from None
