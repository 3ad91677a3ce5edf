"""The `notify:` list: where release events are sent, checked and with secrets resolved.

A Slack incoming-webhook URL is itself a credential (whoever has it may post), and a
webhook's headers and HMAC secret usually are too, so nothing here ever quotes a value
of a notify entry: problems name the key and say what is wrong with it. Values written
`env:VAR` / `keyring:SERVICE/NAME` are resolved into `Secret`s, as under `providers:`.

`providers.notify` was once accepted and ignored; it is refused with a pointer here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from relconsole.config.errors import ConfigError, KeyPath
from relconsole.config.schema import NotifyModel, RootModel, valid_fields
from relconsole.notify.events import EVENTS
from relconsole.secrets import (
    Secret,
    SecretError,
    check_ref_syntax,
    env_suggestion,
    is_secret_ref,
    resolve,
    unknown_scheme,
)
from relconsole.suggest import clip, did_you_mean

Fail = Callable[[KeyPath, str, str], ConfigError]

NOTIFY_TYPES = ("slack", "webhook")
# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# Headers relconsole writes itself; a configured one would be silently overwritten.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "x-relconsole-signature",
     "x-relconsole-timestamp", "x-relconsole-event", "x-relconsole-delivery"}
)


def refuse_providers_notify(data: dict[str, Any], fail: Fail) -> list[ConfigError]:
    """`providers.notify` is not read any more: one problem saying where it went.

    The block is taken out of `data`, so the schema does not report it a second time as
    an unknown key without the pointer.
    """
    providers = data.get("providers")
    if not isinstance(providers, dict) or "notify" not in providers:
        return []
    del providers["notify"]
    return [fail(
        ("providers", "notify"),
        "notifications are not a provider: providers.notify is not read",
        "Move it to a top-level list, e.g. notify: [{type: slack, url: "
        "'env:RELCONSOLE_SLACK_WEBHOOK'}] (see config.example.yaml)",
    )]


def notify_settings(
    model: RootModel | None,
    data: dict[str, Any],
    *,
    resolve_them: bool,
    timeout: float,
    fail: Fail,
    report: Callable[[ConfigError], None],
) -> list[dict[str, Any]]:
    """Each notify entry as the senders read it, its secrets resolved when asked.

    From an invalid file, whichever entries' fields are valid, so their problems are
    found in the same pass. Each problem goes to `report` (which may raise).
    """
    if model is not None:
        entries = [entry.model_dump() for entry in model.notify]
    else:
        raw = data.get("notify")
        entries = [valid_fields(NotifyModel, item) for item in raw] if isinstance(raw, list) else []
    return [_entry(i, entry, resolve_them, timeout, fail, report)
            for i, entry in enumerate(entries)]


def _entry(
    index: int, entry: dict[str, Any], resolve_them: bool, timeout: float, fail: Fail,
    report: Callable[[ConfigError], None],
) -> dict[str, Any]:
    at: KeyPath = ("notify", index)
    kind = entry.get("type")
    if isinstance(kind, str) and kind not in NOTIFY_TYPES:
        report(fail((*at, "type"), f"unknown notify type '{clip(kind)}'",
                    f"{did_you_mean(kind, NOTIFY_TYPES)} Use one of: "
                    f"{', '.join(NOTIFY_TYPES)}".strip()))
    events = entry.get("events")
    if events is not None:
        if not events:
            report(fail((*at, "events"), "lists no event, so nothing would be sent",
                        "Leave events out to send every event, or name some: "
                        f"{', '.join(EVENTS)}"))
        for i, name in enumerate(events):
            if name not in EVENTS:
                report(fail((*at, "events", i), f"unknown event '{clip(name)}'",
                            f"{did_you_mean(name, EVENTS)} Events: {', '.join(EVENTS)}".strip()))
    if kind == "slack" and entry.get("hmac_secret") is not None:
        report(fail((*at, "hmac_secret"), "Slack incoming webhooks do not check a signature",
                    "Leave hmac_secret out for type: slack; it signs type: webhook requests"))

    def secret(value: Any, key: KeyPath) -> Any:
        if not isinstance(value, str):
            return value
        if not is_secret_ref(value):
            scheme = unknown_scheme(value)
            if scheme is not None:
                report(fail(key, f"unknown secret scheme '{clip(scheme)}:'",
                            "Secrets are written env:VAR or keyring:SERVICE/NAME (lower case)"))
            return value
        try:
            if not resolve_them:
                check_ref_syntax(value)
                return value
            return resolve(value, timeout=timeout,
                           env_hint=env_suggestion("notify", kind or "", *key[2:]))
        except SecretError as exc:
            problem, hint = exc.problem, exc.hint
        # Reported outside the `except`, so no exception chain rides along with it.
        report(fail(key, problem, hint))
        return value

    url = secret(entry.get("url"), (*at, "url"))
    _check_url(url, (*at, "url"), fail, report)
    headers: dict[str, Any] = {}
    for name, value in (entry.get("headers") or {}).items():
        key = (*at, "headers", name)
        if not _HEADER_NAME.match(name):
            report(fail(key, "is not a valid HTTP header name",
                        "Use letters, digits and dashes, e.g. X-Api-Key"))
        elif name.lower() in RESERVED_HEADERS:
            report(fail(key, f"{name} is written by relconsole itself",
                        "Leave it out; see docs/notify.md for the headers every request has"))
        resolved = secret(value, key)
        text = resolved.reveal() if isinstance(resolved, Secret) else resolved
        if isinstance(text, str) and ("\r" in text or "\n" in text):
            report(fail(key, "holds a line break, which no HTTP header may",
                        "Put the value on one line"))
        headers[name] = resolved
    return {
        "index": index,
        "type": kind,
        "url": url,
        "headers": headers,
        "hmac_secret": secret(entry.get("hmac_secret"), (*at, "hmac_secret")),
        "events": tuple(events) if events is not None else None,
        "timeout": entry.get("timeout", 5.0),
    }


def _check_url(url: Any, key: KeyPath, fail: Fail, report: Callable[[ConfigError], None]) -> None:
    """An http(s) link, said without quoting it (a webhook URL is a credential)."""
    if isinstance(url, str) and is_secret_ref(url):
        return  # not resolved (check without secrets): its syntax was checked
    text = url.reveal() if isinstance(url, Secret) else url
    if not isinstance(text, str):
        return
    try:
        parts = urlsplit(text.strip())
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if ok and not any(c.isspace() for c in text.strip()):
        return
    where = f" (the value of {url.source})" if isinstance(url, Secret) else ""
    report(fail(key, f"must be an http:// or https:// link{where}",
                "Write the webhook's full address, e.g. url: 'env:RELCONSOLE_SLACK_WEBHOOK' "
                "holding https://hooks.slack.com/services/…"))
