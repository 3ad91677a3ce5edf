"""Reading one provider block's free-form settings into typed values, with clear errors.

The config loader only checks that a provider block has a `type:`; everything else is the
adapter's business. These helpers turn a bad value into a `ProviderError` that names the
adapter and the key (the loader adds file and line), and never quote a secret.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from relconsole.durations import parse_duration
from relconsole.providers.base import ProviderError
from relconsole.secrets import Secret
from relconsole.suggest import did_you_mean


class Settings:
    """One provider block, read key by key; `finish()` rejects keys nobody asked for."""

    def __init__(self, adapter: str, raw: dict[str, Any], allowed: Iterable[str]) -> None:
        self.adapter = adapter
        self.raw = raw
        self.allowed = ("type", *allowed)
        unknown = sorted(set(raw) - set(self.allowed))
        if unknown:
            first = unknown[0]
            hint = did_you_mean(first, self.allowed, inline=True)
            known = ", ".join(k for k in self.allowed if k != "type")
            raise self.error(f"unknown setting '{first}'{hint}; known settings: {known}")

    def error(self, message: str) -> ProviderError:
        return ProviderError(f"{self.adapter}: {message}")

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.error(f"'{key}' is required")
            return default
        if isinstance(value, Secret):
            raise self.error(f"'{key}' is not a secret; write it as plain text")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"'{key}' must be text, not {_kind(value)}")
        text = str(value).strip()
        if not text:
            raise self.error(f"'{key}' must not be empty")
        return text

    def secret(self, key: str) -> Secret | None:
        """A value that must come from env:/keyring:, never plain text in the file."""
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, Secret):
            return value
        if isinstance(value, str) and value.startswith(("env:", "keyring:")):
            # Only possible when the config was loaded without resolving secrets.
            raise self.error(f"'{key}' ({value}) was not resolved")
        raise self.error(
            f"'{key}' must be a secret reference (env:VAR or keyring:SERVICE/NAME), "
            "not plain text in the file"
        )

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, not {_kind(value)}")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be a whole number, not {_kind(value)}")
        if not low <= value <= high:
            raise self.error(f"'{key}' must be between {low} and {high}, not {value}")
        return value

    def duration(self, key: str, default: float | None) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, Secret):
            raise self.error(f"'{key}' must be a duration such as 2s")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.error(f"'{key}': {exc}") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise self.error(f"'{key}' must be a positive duration such as 2s")
        return seconds


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Secret):
        return "a secret"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return "a number"
    return f"'{str(value)[:40]}'"


def kind_of(value: Any) -> str:
    """How a bad value is described in a message (secrets as 'a secret', text clipped)."""
    return _kind(value)
