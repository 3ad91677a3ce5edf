"""What is sent: a `Notice` (one release event) rendered for a Slack incoming webhook or
as the generic JSON webhook body of docs/notify.md, and the headers of each request.

No I/O here: `delivery` sends what this renders. A target's URL, header values and HMAC
secret may be `Secret`s; they are revealed only into the request itself, and a target
is named in messages by `label`, which never holds more of the URL than its host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from relconsole import units
from relconsole.notify import events as ev
from relconsole.secrets import Secret

SCHEMA = "relconsole.notify/v1"
SIGNATURE_HEADER = "X-Relconsole-Signature"
TIMESTAMP_HEADER = "X-Relconsole-Timestamp"
EVENT_HEADER = "X-Relconsole-Event"
DELIVERY_HEADER = "X-Relconsole-Delivery"

# Slack's Block Kit limits (header text, a section's text and fields, a button's label).
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_BUTTON_MAX = 75

TITLES = {
    ev.ANNOUNCED: "Release announced",
    ev.STARTED: "Release started",
    ev.STEP: "Step",
    ev.PAUSED: "Paused",
    ev.ROLLED_BACK: "Rolled back",
    ev.ROLLBACK_FAILED: "ROLLBACK NOT VERIFIED",
    ev.PROMOTED: "Promoted",
    ev.MIGRATION: "Migration",
}


@dataclass(frozen=True)
class GateLine:
    """One gate as a notice reports it: the values and the verdict at the event."""

    gate: str
    verdict: str
    canary: float | None = None
    baseline: float | None = None
    unit: str = ""
    threshold: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "verdict": self.verdict, "canary": self.canary,
                "baseline": self.baseline, "unit": self.unit, "threshold": self.threshold,
                "reason": self.reason}


@dataclass(frozen=True)
class Notice:
    """One event of one release, with everything a message about it says.

    Built on the engine's loop at the moment of the event (the release moves on while a
    message waits), then rendered and sent on a delivery thread.
    """

    event: str
    at: float
    release: str
    service: str
    version: str
    environment: str
    phase: str
    step: int  # as the screen counts: 1 for the first step, 0 before it
    steps: int
    step_label: str
    weight: int
    who: str
    why: str = ""
    message: str = ""
    gates: tuple[GateLine, ...] = ()
    dashboard: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""  # one per notice, the same on every retry (receivers de-duplicate on it)


@dataclass(frozen=True)
class Target:
    """One notify: entry, as the senders use it."""

    index: int
    kind: str  # "slack" | "webhook"
    url: str | Secret
    headers: Mapping[str, str | Secret] = field(default_factory=dict)
    hmac_secret: str | Secret | None = None
    events: frozenset[str] | None = None  # None: every event
    timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Target:
        """A target from one entry of `LoadedConfig.notify` (checked by the loader)."""
        events = settings.get("events")
        return cls(
            index=int(settings.get("index", 0)),
            kind=str(settings["type"]),
            url=settings["url"],
            headers=dict(settings.get("headers") or {}),
            hmac_secret=settings.get("hmac_secret"),
            events=frozenset(events) if events is not None else None,
            timeout=float(settings.get("timeout", 5.0)),
        )

    @property
    def label(self) -> str:
        """'notify[1] webhook (hooks.example.com)': the host only, and none at all when
        the URL came from a secret (a webhook's path is often its credential)."""
        base = f"notify[{self.index}] {self.kind}"
        if isinstance(self.url, Secret):
            return base
        try:
            host = urlsplit(self.url).netloc.rpartition("@")[2]
        except ValueError:
            host = ""
        return f"{base} ({host})" if host else base

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events

    def address(self) -> str:
        return _reveal(self.url)

    def secrets(self) -> list[str]:
        """Every secret text of this target, to scrub from anything said about it."""
        found = [self.address(), urlsplit(self.address()).path]
        found += [_reveal(v) for v in self.headers.values() if isinstance(v, Secret)]
        if self.hmac_secret is not None:
            found.append(_reveal(self.hmac_secret))
        return [s for s in found if len(s) > 3]

    def body(self, notice: Notice) -> bytes:
        payload = slack_payload(notice) if self.kind == "slack" else webhook_payload(notice)
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def request_headers(
        self, notice: Notice, body: bytes, now: float | None = None
    ) -> dict[str, str]:
        """The headers of one attempt: the configured ones, then relconsole's own; the
        signature is made per attempt, so its timestamp is the time it was sent."""
        headers = {name: _reveal(value) for name, value in self.headers.items()}
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers.setdefault("User-Agent", "relconsole-notify/1")
        headers[EVENT_HEADER] = notice.event
        headers[DELIVERY_HEADER] = notice.id
        if self.hmac_secret is not None:
            stamp = str(int(time.time() if now is None else now))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(_reveal(self.hmac_secret), stamp, body)
        return headers


def _reveal(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """'sha256=<hex>': HMAC-SHA256 of `timestamp`, a full stop and the raw body.

    The timestamp is signed with the body, so a captured request cannot be replayed
    later under a fresh timestamp (docs/notify.md says how a receiver checks it).
    """
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def webhook_payload(notice: Notice) -> dict[str, Any]:
    """The generic webhook's JSON body (docs/notify.md is its schema)."""
    return {
        "schema": SCHEMA,
        "id": notice.id,
        "event": notice.event,
        "at": _iso(notice.at),
        "at_unix": notice.at,
        "release": {
            "id": notice.release,
            "service": notice.service,
            "version": notice.version,
            "environment": notice.environment,
            "dashboard": notice.dashboard or None,
        },
        "phase": notice.phase,
        "step": {"number": notice.step, "of": notice.steps, "label": notice.step_label,
                 "weight": notice.weight},
        "who": notice.who,
        "why": notice.why,
        "message": notice.message,
        "gates": [g.as_dict() for g in notice.gates],
        "detail": dict(notice.detail),
    }


def _mrkdwn(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions): what a user wrote is shown as is.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gate_text(g: GateLine) -> str:
    canary = units.value(g.canary, g.unit)
    baseline = units.value(g.baseline, g.unit)
    limit = f" ({g.threshold})" if g.threshold else ""
    return f"{g.gate}: canary {canary} · baseline {baseline} — {g.verdict.upper()}{limit}"


def summary(notice: Notice) -> str:
    """One line: the Slack fallback text (notifications, screen readers)."""
    title = TITLES.get(notice.event, notice.event)
    where = f"{notice.service} {notice.version} ({notice.environment})"
    why = f" — {notice.why}" if notice.why else ""
    return f"{title}: {where}, {notice.step_label} at {notice.weight}%{why}"


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Block Kit message for a Slack incoming webhook, with a `text` fallback."""
    title = TITLES.get(notice.event, notice.event)
    fields = [
        ("Event", title),
        ("Step", notice.step_label),
        ("Weight", f"{notice.weight}%"),
        ("Phase", notice.phase.replace("_", " ")),
        ("Who", notice.who or "—"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": _cut(
            f"{notice.service} {notice.version} · {notice.environment}", SLACK_HEADER_MAX)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{name}*\n{_mrkdwn(value)}", SLACK_FIELD_MAX)}
            for name, value in fields
        ]},
    ]
    if notice.why:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            f"*Why*\n{_mrkdwn(notice.why)}", SLACK_TEXT_MAX)}})
    if notice.gates:
        lines = "\n".join(f"• {_mrkdwn(gate_text(g))}" for g in notice.gates)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            f"*Gates*\n{lines}", SLACK_TEXT_MAX)}})
    plan_text = notice.detail.get("plan")
    if isinstance(plan_text, str) and plan_text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            _mrkdwn(plan_text), SLACK_TEXT_MAX)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(
        _mrkdwn(f"relconsole · {notice.release} · {_iso(notice.at)}"), SLACK_FIELD_MAX)}]})
    if notice.dashboard:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "relconsole-dashboard",
            "text": {"type": "plain_text", "text": _cut("Release dashboard", SLACK_BUTTON_MAX)},
            "url": notice.dashboard,
        }]})
    return {"text": _cut(summary(notice), SLACK_TEXT_MAX), "blocks": blocks}
