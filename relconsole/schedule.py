"""When a release may start and move on its own: deployment windows, freezes, a step's `at:`.

Pure values and functions of a clock time (Unix seconds) in the release's named time zone
(`release.timezone`, default UTC): no I/O, nothing from the engine or a front end. The
engine asks `closed(now)` before it starts a release or advances automatically, and
`step_hold(at, now)` before it enters a step that carries `at:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead the next opening is looked for; a schedule with none in a year is closed.
SEARCH_DAYS = 400
_CLOCK = re.compile(r"([01]\d|2[0-4]):([0-5]\d)\Z")


class ScheduleError(ValueError):
    """A window, freeze or `at:` that cannot be read; the message says what to write."""


def parse_clock(text: str) -> time | None:
    """'09:00' → 09:00; '24:00' (a window's end) → None, meaning midnight at the day's end."""
    m = _CLOCK.match(text.strip())
    if m is None:
        raise ScheduleError(f"{text!r} is not a clock time; write HH:MM, e.g. 09:00")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours == 24:
        if minutes:
            raise ScheduleError(f"{text!r} is past midnight; the day ends at 24:00")
        return None
    return time(hours, minutes)


def parse_days(raw: str | list[str]) -> frozenset[int]:
    """'mon-fri', 'sat,sun' or ['mon', 'wed'] → weekday numbers (0 = Monday)."""
    parts = raw if isinstance(raw, list) else [p for p in re.split(r"[,\s]+", raw) if p]
    days: set[int] = set()
    for part in parts:
        first, _, last = str(part).strip().lower().partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ScheduleError(f"{part!r} is not a day; write mon, tue, … sun, or a range "
                                "like mon-fri")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not days:
        raise ScheduleError("a window needs at least one day, e.g. days: mon-fri")
    return frozenset(days)


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    start: time
    end: time | None  # None: until midnight

    def describe(self) -> str:
        names = [DAY_NAMES[d] for d in sorted(self.days)]
        days = (f"{names[0]}–{names[-1]}" if len(names) > 2 and
                [DAY_NAMES.index(n) for n in names] == list(range(DAY_NAMES.index(names[0]),
                                                                 DAY_NAMES.index(names[-1]) + 1))
                else ",".join(names))
        end = self.end.strftime("%H:%M") if self.end is not None else "24:00"
        return f"{days.title()} {self.start:%H:%M}–{end}"

    def span(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        begin = datetime.combine(day, self.start, tz)
        end = (datetime.combine(day, self.end, tz) if self.end is not None
               else datetime.combine(day + timedelta(days=1), time(0), tz))
        return begin, end


@dataclass(frozen=True)
class Freeze:
    first: date
    last: date  # inclusive
    reason: str

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class Schedule:
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    timezone: str = "UTC"

    @property
    def configured(self) -> bool:
        return bool(self.windows or self.freezes)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """'Mon–Fri 09:00–16:00 Europe/Berlin; frozen 2026-12-19–2027-01-04 (year-end)'."""
        parts = []
        if self.windows:
            parts.append(", ".join(w.describe() for w in self.windows) + f" {self.timezone}")
        for f in self.freezes:
            parts.append(f"frozen {f.first}–{f.last} ({f.reason})")
        return "; ".join(parts) or "no deployment window configured"

    def _frozen(self, day: date) -> Freeze | None:
        return next((f for f in self.freezes if f.covers(day)), None)

    def _open_span(self, moment: datetime) -> tuple[datetime, datetime] | None:
        if self._frozen(moment.date()) is not None:
            return None
        if not self.windows:
            return moment, moment + timedelta(days=1)
        for w in self.windows:
            for offset in (0, -1):  # a window of yesterday may run past midnight
                day = moment.date() + timedelta(days=offset)
                if day.weekday() not in w.days:
                    continue
                begin, end = w.span(day, self.zone)
                if begin <= moment < end:
                    return begin, end
        return None

    def is_open(self, now: float) -> bool:
        if not self.configured:
            return True
        return self._open_span(datetime.fromtimestamp(now, self.zone)) is not None

    def next_open(self, now: float) -> float | None:
        """When it next opens (now, if it is open); None when not within a year."""
        moment = datetime.fromtimestamp(now, self.zone)
        if self.is_open(now):
            return now
        for offset in range(SEARCH_DAYS):
            day = moment.date() + timedelta(days=offset)
            if self._frozen(day) is not None:
                continue
            if not self.windows:
                begin = datetime.combine(day, time(0), self.zone)
                if begin > moment:
                    return begin.timestamp()
                continue
            starts = sorted(w.span(day, self.zone)[0] for w in self.windows
                            if day.weekday() in w.days)
            for begin in starts:
                if begin > moment:
                    return begin.timestamp()
        return None

    def closed(self, now: float) -> str | None:
        """Why a release may not start or advance by itself now, with when it may; None
        when it may."""
        if self.is_open(now):
            return None
        moment = datetime.fromtimestamp(now, self.zone)
        frozen = self._frozen(moment.date())
        why = (f"frozen until {frozen.last} ({frozen.reason})" if frozen is not None
               else f"outside the deployment windows ({self.describe()})")
        opens = self.next_open(now)
        if opens is None:
            return f"{why}; no window opens within a year"
        at = datetime.fromtimestamp(opens, self.zone)
        return f"{why}; the next opens {at:%a %Y-%m-%d %H:%M} {self.timezone}"

    def step_hold(self, at: str, now: float) -> str | None:
        """Why a step with `at:` ('14:00' today in the release's zone, or
        '2026-12-02T14:00') may not begin yet; None once that time has come."""
        moment = datetime.fromtimestamp(now, self.zone)
        until = parse_at(at, moment)
        if moment >= until:
            return None
        left = until - moment
        minutes = int(left.total_seconds() // 60)
        wait = f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes + 1}m"
        return f"the next step holds until {until:%H:%M} {self.timezone} (in {wait})"


def parse_at(text: str, moment: datetime) -> datetime:
    """A step's `at:` as a time in `moment`'s zone: 'HH:MM' is that time on `moment`'s
    day; a date and time ('2026-12-02T14:00' or '2026-12-02 14:00') is that moment."""
    text = text.strip()
    if _CLOCK.match(text):
        clock = parse_clock(text)
        day = moment.date() + (timedelta(days=1) if clock is None else timedelta())
        return datetime.combine(day, clock or time(0), moment.tzinfo)
    try:
        found = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ScheduleError(f"{text!r} is not a time; write HH:MM or 2026-12-02T14:00") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=moment.tzinfo)


def check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        raise ScheduleError(f"{name!r} is not a time zone name; write e.g. Europe/Berlin, "
                            "America/New_York or UTC") from None


def start_time(text: str, now: float, timezone: str = "UTC") -> float:
    """When `relconsole run --at TEXT` starts: 'HH:MM' is its next occurrence in the
    release's zone (23:00 asking for 02:00 means tomorrow), a date and time is that
    moment, '+10m' / '+90s' / '+2h' is that long from now."""
    text = text.strip()
    relative = re.fullmatch(r"\+(\d+)([smh])", text)
    if relative:
        return now + int(relative.group(1)) * {"s": 1, "m": 60, "h": 3600}[relative.group(2)]
    zone = ZoneInfo(timezone)
    moment = datetime.fromtimestamp(now, zone)
    found = parse_at(text, moment)
    if _CLOCK.match(text) and found <= moment:
        found = parse_at(text, moment + timedelta(days=1))
    return found.timestamp()


def countdown(seconds: float) -> str:
    """'1h02m03s', '4m05s', '9s': the wait left, for the countdown line."""
    total = max(0, int(seconds + 0.999))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
