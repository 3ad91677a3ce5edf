"""Flag hygiene: which flags have outlived their purpose, lost their owner or their name.

Pure functions over `Flag` values and a `FlagAuditPolicy`: no I/O, no clock of its own
(the caller says what "now" is), so `relconsole flags --audit`, the console's audit
marker and the tests all judge a flag the same way.

What is reported, one `Finding` each:

- ``lifetime``  older than its kind's expected lifetime (release and experiment 40 days,
  operational 7, kill switches and permissions never — Unleash's defaults);
- ``full-on``   on for everyone (100 % or no rollout) for longer than
  ``stale_full_on_days``: the code path is settled, remove the flag;
- ``unowned``   no owner, or ``undocumented``: no description;
- ``expired``   past an explicit expiry date set on the flag;
- ``naming``    the key breaks the team's naming convention;
- ``stale``     the flag vendor itself marks the flag stale (Unleash).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relconsole.model import DAY, Flag, FlagAuditPolicy

CHECKS = ("lifetime", "full-on", "expired", "unowned", "undocumented", "naming", "stale")

# One-letter markers for a narrow flags panel, most serious first.
MARKERS = {
    "expired": "E",
    "lifetime": "L",
    "full-on": "F",
    "stale": "S",
    "unowned": "O",
    "undocumented": "D",
    "naming": "N",
}

# What each marker means, in a few words: the console's help and flags panel explain
# the letters with these.
MEANINGS = {
    "expired": "past the expiry date set on it",
    "lifetime": "older than its type's lifetime",
    "full-on": "on for everyone too long",
    "stale": "marked stale by the provider",
    "unowned": "no owner",
    "undocumented": "no description",
    "naming": "name breaks the convention",
}


def legend() -> str:
    """'E past the expiry date set on it · L older than … · N name breaks the convention'."""
    return " · ".join(f"{MARKERS[check]} {MEANINGS[check]}" for check in MARKERS)


@dataclass(frozen=True)
class Finding:
    key: str
    check: str  # one of CHECKS
    message: str  # one line an operator can act on

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "check": self.check, "message": self.message}


def _days(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:.0f} days" if days >= 1.5 else f"{days:.1f} days"


def _date(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def audit_flag(flag: Flag, policy: FlagAuditPolicy, now: float) -> list[Finding]:
    """Every finding for one flag, in the order of CHECKS."""
    found: list[Finding] = []

    def add(check: str, message: str) -> None:
        found.append(Finding(flag.key, check, message))

    lifetime = policy.lifetime(flag.kind)
    age = flag.age(now)
    if lifetime is not None and age is not None and age > lifetime * DAY:
        add("lifetime", f"{flag.kind.value} flag is {_days(age)} old; "
                        f"expected lifetime is {lifetime:g} days — remove it or change its type")
    # A flag that has been on for everyone this long is dead code behind an `if`. When the
    # provider does not say when it last changed, we cannot know how long it has been so:
    # say nothing rather than fail a pipeline on a guess. Kinds that never expire (kill
    # switches, permissions) are on for everyone as their normal resting state.
    if flag.fully_on and flag.last_changed is not None and (lifetime is not None):
        on_for = now - flag.last_changed
        if on_for > policy.stale_full_on_days * DAY:
            what = "at 100%" if flag.rollout is not None else "on for everyone"
            add("full-on", f"{what} for {_days(on_for)} (limit {policy.stale_full_on_days:g}) "
                           "— remove the flag and keep the code path")
    if flag.expires is not None and now > flag.expires:
        add("expired", f"expired on {_date(flag.expires)}")
    if not flag.owner.strip():
        add("unowned", "has no owner")
    if not flag.description.strip():
        add("undocumented", "has no description")
    if policy.naming and not re.search(policy.naming, flag.key):
        add("naming", f"name does not match {policy.naming}")
    if flag.stale:
        add("stale", "marked stale by the flag provider")
    return found


def audit(flags: Iterable[Flag], policy: FlagAuditPolicy, now: float) -> list[Finding]:
    """Every finding for every flag, flags in the order given."""
    out: list[Finding] = []
    for flag in flags:
        out.extend(audit_flag(flag, policy, now))
    return out


def findings_by_key(findings: Sequence[Finding]) -> dict[str, tuple[Finding, ...]]:
    """Per-flag findings, for a marker next to each flag in the console."""
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        grouped.setdefault(f.key, []).append(f)
    return {k: tuple(v) for k, v in grouped.items()}


def marker(findings: Sequence[Finding]) -> str:
    """A short marker such as 'EL' for a flag's findings ('' when clean)."""
    letters = {MARKERS[f.check] for f in findings}
    return "".join(m for m in MARKERS.values() if m in letters)


def render_table(findings: Sequence[Finding]) -> str:
    """A plain-text table: key, check, what to do."""
    if not findings:
        return "no findings: every flag is owned, documented, well named and within its lifetime"
    width = max(len(f.key) for f in findings)
    width = min(max(width, 4), 48)
    lines = [f"{'flag':<{width}}  {'check':<12}  finding"]
    for f in findings:
        lines.append(f"{f.key:<{width}}  {f.check:<12}  {f.message}")
    keys = len({f.key for f in findings})
    lines.append(f"{len(findings)} finding(s) on {keys} flag(s)")
    return "\n".join(lines)
