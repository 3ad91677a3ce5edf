"""A journal as a Markdown table, for `relconsole journal --format md` and postmortems."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any


def _local(rec: dict[str, Any]) -> datetime | None:
    ts = rec.get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return datetime.fromtimestamp(ts).astimezone()
    return None


def _offset(dt: datetime) -> str:
    off = dt.utcoffset()
    if off is None:
        return "local time"
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    return "—" if v is None else str(v)


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in d.items())


def _change(before: Any, after: Any) -> str:
    b = before if isinstance(before, dict) else {}
    a = after if isinstance(after, dict) else {}
    if b and a:
        parts = []
        for k in dict.fromkeys([*b, *a]):
            if k not in a:
                parts.append(f"{k} {_value(b[k])}→")
            elif k not in b:
                parts.append(f"{k} →{_value(a[k])}")
            elif b[k] != a[k]:
                parts.append(f"{k} {_value(b[k])}→{_value(a[k])}")
        return ", ".join(parts) or "no change"
    if b:
        return f"at {_kv(b)}"
    if a:
        return f"→ {_kv(a)}"
    return ""


def _gate(name: str, g: dict[str, Any]) -> str:
    text = f"{name} {g.get('verdict', '')}".strip()
    values = [f"{k} {_value(g[k])}" for k in ("canary", "baseline") if k in g]
    if values:
        text += ": " + ", ".join(values)
    if g.get("threshold"):
        text += f" ({g['threshold']})"
    return text


def _details(data: Any) -> str:
    """The gate values behind an automatic action, or the data as short key=value pairs."""
    if not isinstance(data, dict):
        return "" if data is None else _value(data)
    parts: list[str] = []
    for k, v in data.items():
        if isinstance(v, list) and v and all(isinstance(g, dict) and "gate" in g for g in v):
            parts.extend(_gate(str(g["gate"]), g) for g in v)
        elif isinstance(v, dict) and ("verdict" in v or "canary" in v):
            parts.append(_gate(str(k), v))
        else:
            parts.append(f"{k}={_value(v)}")
    return "; ".join(parts)


def _who(actor: Any) -> str:
    if not isinstance(actor, dict):
        return _value(actor)
    who = f"{actor.get('user', '?')}@{actor.get('host', '?')}"
    return f"{who} (ssh from {actor['ssh_client']})" if actor.get("ssh_client") else who


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(records: list[dict[str, Any]], title: str) -> str:
    """The history as Markdown for a postmortem or a ticket: one table row per record."""
    out = [f"# {_cell(title)}", ""]
    if not records:
        return "\n".join([*out, "No records yet.", ""])
    stamps = [dt for dt in map(_local, records) if dt is not None]
    if stamps:
        span = f"{stamps[0]:%Y-%m-%d %H:%M:%S} to {stamps[-1]:%Y-%m-%d %H:%M:%S}"
        out.append(f"{len(records)} records, {span} ({_offset(stamps[0])}).")
    else:
        out.append(f"{len(records)} records.")
    day: str | None = None
    for rec in records:
        dt = _local(rec)
        this_day = f"{dt:%Y-%m-%d} ({_offset(dt)})" if dt else "unknown date"
        if this_day != day:
            day = this_day
            out += [
                "",
                f"## {day}",
                "",
                "| # | time | who | action | reason | change | outcome | details |",
                "|---|---|---|---|---|---|---|---|",
            ]
        cells = [
            _value(rec.get("seq")),
            f"{dt:%H:%M:%S}" if dt else "??:??:??",
            _who(rec.get("actor")),
            _value(rec.get("intent")),
            str(rec.get("reason") or ""),
            _change(rec.get("before"), rec.get("after")),
            str(rec.get("outcome") or "—"),
            _details(rec.get("data")),
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"
