"""Secrets: `env:VAR` and `keyring:SERVICE/NAME` references, and the values they name.

A resolved value lives in a `Secret` whose str, repr and format are all "***", so it
cannot reach a screen, a log, the journal or an error message by accident (safety
rule 6). Providers only need `Secret`, so this module imports neither pydantic nor
YAML nor the config loader; the loader uses `resolve` and `check_ref_syntax` on every
value under `providers:`.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from relconsole.suggest import clip, closest

__all__ = [
    "Secret",
    "SecretError",
    "check_ref_syntax",
    "env_suggestion",
    "is_secret_ref",
    "resolve",
    "unknown_scheme",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Schemes people bring from other tools; "vault:..." must not pass as a plain setting.
_OTHER_SECRET_SCHEMES = frozenset(
    {"vault", "secret", "secrets", "op", "pass", "keychain", "sops", "awssm", "gcpsm"}
)
# "scheme:" not followed by "//" (a URL) or only digits (host:port).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+._-]*):(?!//)(?!\d+\Z)")


class Secret:
    """A resolved secret. Shows as "***" everywhere; `.reveal()` gives the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "env:VAR" or "keyring:SERVICE/NAME" — never the value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value and self.source == other.source
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.source)

    # A copy would be a second place the value lives; the object is immutable anyway.
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


class SecretError(ValueError):
    """A reference that cannot be resolved; `problem` and `hint` never hold the value."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(f"{problem}. {hint}." if hint else f"{problem}.")
        self.problem = problem
        self.hint = hint


def is_secret_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("env:", "keyring:"))


def unknown_scheme(value: str) -> str | None:
    """The scheme of a string that looks like a secret reference but is not env:/keyring:."""
    match = _SCHEME.match(value)
    if not match:
        return None
    scheme = match.group(1)
    if scheme in ("env", "keyring"):
        return None
    low = scheme.lower()
    if low in ("env", "keyring") or low in _OTHER_SECRET_SCHEMES:
        return scheme
    # Stricter than usual: "envoy:8080" is an address, not a misspelt "env:".
    if closest(low, ["env", "keyring"], cutoff=0.8):
        return scheme
    return None


def env_suggestion(*parts: object) -> str:
    """The environment variable to suggest instead of a keyring entry: RELCONSOLE_A_B."""
    words = [re.sub(r"[^A-Za-z0-9]+", "_", str(p)).strip("_").upper() for p in parts]
    words = [w for w in words if w and w != "RELCONSOLE"]
    return "_".join(["RELCONSOLE", *words])


def _keyring_get(service: str, name: str, timeout: float) -> str | None:
    """keyring.get_password in a daemon thread: a locked Secret Service can hang forever."""
    import keyring
    import keyring.errors

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = keyring.get_password(service, name)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="relconsole-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise SecretError(f"the keyring did not answer within {timeout:g}s (is it locked?)")
    error = box.get("error")
    if isinstance(error, keyring.errors.NoKeyringError):
        raise SecretError("no keyring backend is available on this machine")
    if isinstance(error, keyring.errors.KeyringError):
        raise SecretError(f"the keyring failed ({type(error).__name__}: {clip(str(error))})")
    if error is not None:
        raise SecretError(f"reading the keyring failed ({type(error).__name__})")
    return box.get("value")


def _from_env(ref: str, var: str) -> Secret:
    if not _ENV_NAME.match(var):
        raise SecretError(
            f"'{clip(var)}' is not an environment variable name",
            "Write env:VAR with letters, digits and underscores, e.g. env:RELCONSOLE_TOKEN",
        )
    value = os.environ.get(var)
    if value is None:
        raise SecretError(
            f"environment variable {var} is not set",
            f"Export {var} before starting relconsole (or write keyring:SERVICE/NAME)",
        )
    if value == "":
        raise SecretError(
            f"environment variable {var} is set but empty", f"Put the secret in {var}"
        )
    return Secret(value, ref)


def _from_keyring(ref: str, entry: str, timeout: float, env_hint: str | None) -> Secret:
    service, _, name = entry.rpartition("/")
    if not service or not name:
        raise SecretError(
            f"'{clip(ref)}' does not name a keyring entry",
            "Write keyring:SERVICE/NAME, e.g. keyring:relconsole/prometheus",
        )
    env = env_hint or env_suggestion(service, name)
    # A bastion without a keyring is common; the way out is always an env: reference.
    fallback = f"Put the secret in an environment variable and write env:{env} instead"
    try:
        value = _keyring_get(service, name, timeout)
    except SecretError as problem:
        raise SecretError(problem.problem, fallback) from None
    if value is None:
        raise SecretError(
            f"the keyring has no password for service '{service}', name '{name}'",
            f"Store it with `keyring set {service} {name}`, or write env:{env} instead",
        )
    return Secret(value, ref)


def resolve(ref: str, *, timeout: float = 3.0, env_hint: str | None = None) -> Secret:
    """The Secret that "env:VAR" or "keyring:SERVICE/NAME" names; SecretError if it fails.

    `env_hint` is the variable to suggest when the keyring fails (by default one made
    from the keyring entry's name); `timeout` bounds the wait for the keyring.
    """
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        return _from_env(ref, rest)
    if scheme == "keyring":
        return _from_keyring(ref, rest, timeout, env_hint)
    raise SecretError(
        f"unknown secret scheme '{clip(scheme)}:'",
        "Secrets are written env:VAR or keyring:SERVICE/NAME",
    )


def check_ref_syntax(ref: str) -> None:
    """Raise SecretError if `ref` is malformed, without reading the environment or keyring."""
    scheme, _, rest = ref.partition(":")
    if scheme == "env" and not _ENV_NAME.match(rest):
        raise SecretError(
            f"'{clip(rest)}' is not an environment variable name",
            "Write env:VAR with letters, digits and underscores",
        )
    if scheme == "keyring":
        service, _, name = rest.rpartition("/")
        if not service or not name:
            raise SecretError(
                f"'{clip(ref)}' does not name a keyring entry",
                "Write keyring:SERVICE/NAME, e.g. keyring:relconsole/prometheus",
            )
