"""A journal as a Markdown table, for `relconsole journal --format md` and postmortems."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from relconsole.model import actor_text
from relconsole.units import percent, value


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


def _measured(v: Any, unit: Any) -> str:
    if isinstance(unit, str) and isinstance(v, int | float) and not isinstance(v, bool):
        return value(float(v), unit)
    return _value(v)


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
    """'error_rate fail: canary 4.39 %, baseline 0.17 % (≤1 % Δ≤0.5 %)' — the values in
    the metric's unit, as the screen shows them. A record written before the journal
    kept the unit has its threshold in plain numbers too, so its values stay plain."""
    text = f"{name} {g.get('verdict', '')}".strip()
    unit = g.get("unit")
    values = [f"{k} {_measured(g[k], unit)}" for k in ("canary", "baseline") if k in g]
    if values:
        text += ": " + ", ".join(values)
    if g.get("threshold"):
        text += f" ({g['threshold']})"
    evidence = g.get("evidence")
    if isinstance(evidence, dict):
        text += "; " + _evidence(evidence)
    return text


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _evidence(e: dict[str, Any]) -> str:
    """A count gate's statistic, enough to check the decision by hand: 'on counts:
    canary 12/4100, baseline 230/81000, canary 0.29 % (0.13–0.60 %), e-value 312 vs
    1/alpha 100 (alpha 0.01)'."""
    def pair(events: str, total: str) -> str:
        ev, tot = _num(e.get(events)), _num(e.get(total))
        return f"{ev:g}/{tot:g}" if ev is not None and tot is not None else "—"

    parts = [f"on counts: canary {pair('canary_events', 'canary_total')}, "
             f"baseline {pair('baseline_events', 'baseline_total')}"]
    est, low, high = (_num(e.get(k)) for k in ("estimate", "low", "high"))
    if est is not None:
        interval = (f" ({percent(low)}–{percent(high)})"
                    if low is not None and high is not None else "")
        parts.append(f"canary {percent(est)}{interval}")
    alpha, e_value = _num(e.get("alpha")), _num(e.get("e_value"))
    if e_value is not None and alpha:
        parts.append(f"e-value {e_value:.3g} vs 1/alpha {1 / alpha:g} (alpha {alpha:g})")
    pass_e = _num(e.get("pass_e_value"))
    if pass_e is not None:
        parts.append(f"pass e-value {pass_e:.3g}")
    return ", ".join(parts)


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
    return actor_text(actor, ssh=True) if isinstance(actor, dict) else _value(actor)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each action as one row: its intent record with the record of its outcome.

    An action is journalled twice (intent first, verified outcome after, safety rule 2);
    as two rows the first read 'phase pending→, outcome —' and the second lacked the
    weight, and a reader had to pair them. An intent whose outcome never came (the
    console died in between) stays a row of its own and says so.
    """
    paired: set[int] = set()
    rows: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for i, rec in enumerate(records):
        if i in paired:
            continue
        if rec.get("outcome") is not None:
            rows.append((rec, None))
            continue
        match: int | None = None
        for j in range(i + 1, len(records)):
            later = records[j]
            if later.get("intent") != rec.get("intent"):
                continue
            if later.get("outcome") is None:
                break  # a new attempt of the same action: this one never got an outcome
            match = j
            break
        if match is None:
            rows.append((rec, {}))
        else:
            paired.add(match)
            rows.append((rec, records[match]))
    return rows


def _row_cells(rec: dict[str, Any], end: dict[str, Any] | None) -> list[str]:
    dt = _local(rec)
    seq = _value(rec.get("seq"))
    change = _change(rec.get("before"), rec.get("after"))
    outcome = str(rec.get("outcome") or "—")
    details = _details(rec.get("data"))
    if end is not None:
        if end:
            seq = f"{seq}–{_value(end.get('seq'))}"
            change = _change(rec.get("before"), end.get("after"))
            outcome = str(end.get("outcome"))
            more = _details(end.get("data"))
            details = "; ".join(d for d in (details, more) if d)
            end_dt = _local(end)
            if dt is not None and end_dt is not None and f"{end_dt:%H:%M:%S}" != f"{dt:%H:%M:%S}":
                outcome += f" (at {end_dt:%H:%M:%S})"
        else:
            outcome = "no outcome recorded (the console stopped before verifying)"
    return [
        seq,
        f"{dt:%H:%M:%S}" if dt else "??:??:??",
        _who(rec.get("actor")),
        _value(rec.get("intent")),
        str(rec.get("reason") or ""),
        change,
        outcome,
        details,
    ]


def render_markdown(
    records: list[dict[str, Any]], title: str, links: Sequence[tuple[str, str]] = ()
) -> str:
    """The history as Markdown for a postmortem or a ticket: one table row per action.

    `links` are (what, address) of the release's dashboards, listed under the title so
    the reader of a ticket can open the graphs the console showed.
    """
    out = [f"# {_cell(title)}", ""]
    if links:
        out += [f"- {_cell(what)} dashboard: <{address}>" for what, address in links] + [""]
    if not records:
        return "\n".join([*out, "No records yet.", ""])
    stamps = [dt for dt in map(_local, records) if dt is not None]
    if stamps:
        span = f"{stamps[0]:%Y-%m-%d %H:%M:%S} to {stamps[-1]:%Y-%m-%d %H:%M:%S}"
        out.append(f"{len(records)} records, {span} ({_offset(stamps[0])}).")
    else:
        out.append(f"{len(records)} records.")
    out.append("Step numbers are the ones the console shows (0 = before the first step).")
    day: str | None = None
    for rec, end in _rows(records):
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
        out.append("| " + " | ".join(_cell(c) for c in _row_cells(rec, end)) + " |")
    return "\n".join(out) + "\n"
