"""Sending notices without ever holding up the release: a bounded queue per target.

Each target has its own queue and its own worker thread with its own HTTP client, so a
webhook that hangs or refuses delays neither the engine nor the other targets. `put`
never waits. A failed request is retried, in order, with exponential backoff (on a
connection error, a timeout, a 5xx, or a 429 after its Retry-After); any other answer
is a rejection that no retry mends. Nothing is lost silently: a full queue drops its
oldest message and counts it, a rejected message is counted, and whatever is still
waiting at exit after a short flush is reported by `close`.

A target that keeps failing is a problem (`on_state(label, message)`), and stops being
one (`on_state(label, None)`) when it answers again. Messages never quote the URL, a
header or the secret: the target is named by its label, and any text a server sends
back is scrubbed of the target's secrets.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx

from relconsole.notify.senders import Notice, Target
from relconsole.providers._http import retry_after

StateListener = Callable[[str, "str | None"], None]

QUEUE_LIMIT = 100  # messages waiting per target; a release has a few dozen events
PROBLEM_AFTER = 2  # failed attempts in a row before a target is a problem, not a blip
BACKOFF_MAX = 60.0  # seconds: the longest wait between two attempts
RETRY_AFTER_MAX = 300.0  # a 429's Retry-After is honoured up to this
FLUSH_TIMEOUT = 3.0  # seconds at exit for whatever is still waiting


def backoff(attempt: int, cap: float = BACKOFF_MAX) -> float:
    """Seconds before retry number `attempt` (1, 2, 4 … capped)."""
    return float(min(2.0 ** max(attempt - 1, 0), cap))


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: delivered, worth retrying (after `wait`), or rejected."""

    ok: bool
    retry: bool = False
    reason: str = ""
    wait: float | None = None


@dataclass(frozen=True)
class Stats:
    """What became of a target's messages so far."""

    sent: int
    waiting: int  # queued, plus the one in flight
    dropped: int  # the oldest, pushed out of a full queue
    rejected: int  # answered with an error no retry mends
    failing: str | None  # the current problem, or None


class Outbox:
    """One target's queue and the thread that empties it."""

    def __init__(
        self,
        target: Target,
        on_state: StateListener | None = None,
        *,
        limit: int = QUEUE_LIMIT,
        transport: httpx.BaseTransport | None = None,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.target = target
        self.on_state = on_state
        self.limit = limit
        self.backoff_max = backoff_max
        self._queue: deque[tuple[Notice, int]] = deque()  # (notice, attempts so far)
        self._inflight = False
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = 0.0
        self._sent = self._dropped = self._rejected = 0
        self._failures = 0  # failed attempts in a row
        self._failing: str | None = None
        self._reason = ""
        self._client = httpx.Client(timeout=target.timeout, transport=transport,
                                    follow_redirects=False)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"relconsole-notify-{target.index}")
        self._thread.start()

    # ------------------------------------------------------------------ the engine's side

    def put(self, notice: Notice) -> None:
        """Queue one notice; never waits (the engine's loop calls this)."""
        report = None
        with self._cond:
            if self._closing:
                return
            if len(self._queue) >= self.limit:
                self._queue.popleft()
                self._dropped += 1
                report = self._problem_text(self._reason or "too slow to keep up")
                self._failing = report
            self._queue.append((notice, 0))
            self._cond.notify()
        if report is not None:
            self._tell(report)

    def stats(self) -> Stats:
        with self._cond:
            return Stats(self._sent, len(self._queue) + int(self._inflight), self._dropped,
                         self._rejected, self._failing)

    def begin_close(self, deadline: float) -> None:
        """Stop taking notices; flush what is waiting until `deadline` (monotonic)."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()

    def close(self, timeout: float = FLUSH_TIMEOUT) -> str | None:
        """Flush for at most `timeout` seconds; say what was not delivered, if anything."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closing:  # begun already (Notifier.close): keep the earlier deadline
                deadline = min(deadline, self._deadline)
        self.begin_close(deadline)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            self._client.close()
        stats = self.stats()
        lost = []
        if stats.waiting:
            lost.append(f"{stats.waiting} not delivered at exit")
        if stats.dropped:
            lost.append(f"{stats.dropped} dropped (queue full)")
        if stats.rejected:
            lost.append(f"{stats.rejected} rejected")
        if not lost:
            return None
        total = stats.sent + stats.waiting + stats.dropped + stats.rejected
        return f"{self.target.label}: of {total} messages, {', '.join(lost)}"

    # ------------------------------------------------------------------ the worker

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or (self._closing and time.monotonic() >= self._deadline):
                    return
                notice, attempts = self._queue.popleft()
                self._inflight = True
            outcome = self._attempt(notice)
            wait = self._settle(notice, attempts + 1, outcome)
            if wait:
                with self._cond:
                    end = time.monotonic() + wait
                    if self._closing:
                        end = min(end, self._deadline)
                    # A close cuts a wait short to its own deadline, never longer.
                    while time.monotonic() < end:
                        self._cond.wait(end - time.monotonic())
                        if self._closing:
                            end = min(end, self._deadline)

    def _settle(self, notice: Notice, attempts: int, outcome: Outcome) -> float:
        """Count the attempt, report the target's state; the seconds to wait, if any."""
        report: str | None = None
        tell = False
        wait = 0.0
        with self._cond:
            self._inflight = False
            if outcome.ok:
                self._sent += 1
                self._failures = 0
                self._reason = ""
                if self._failing is not None:
                    self._failing, tell = None, True
            elif outcome.retry:
                self._failures += 1
                self._reason = outcome.reason
                self._queue.appendleft((notice, attempts))  # order is kept: it goes first
                wait = outcome.wait if outcome.wait is not None else backoff(
                    attempts, self.backoff_max)
                if self._failures >= PROBLEM_AFTER:
                    report = self._problem_text(outcome.reason)
            else:
                self._rejected += 1
                self._reason = outcome.reason
                report = self._problem_text(outcome.reason)
            if report is not None and report != self._failing:
                self._failing, tell = report, True
            message = self._failing
        if tell:
            self._tell(message)
        return wait

    def _problem_text(self, reason: str) -> str:
        # Called with the lock held.
        waiting = len(self._queue) + int(self._inflight)
        counts = [f"{waiting} waiting"]
        if self._dropped:
            counts.append(f"{self._dropped} dropped (queue full)")
        if self._rejected:
            counts.append(f"{self._rejected} rejected")
        return f"{self.target.label}: {reason} ({', '.join(counts)})"

    def _tell(self, message: str | None) -> None:
        if self.on_state is not None:
            with contextlib.suppress(Exception):  # a listener's bug must not stop delivery
                self.on_state(self.target.label, message)

    def _attempt(self, notice: Notice) -> Outcome:
        target = self.target
        try:
            body = target.body(notice)
            headers = target.request_headers(notice, body)
            response = self._client.post(target.address(), content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(False, retry=True, reason=f"no answer within {target.timeout:g}s")
        except httpx.ConnectError as exc:
            return Outcome(False, retry=True, reason=_connect_reason(exc))
        except httpx.TransportError as exc:
            return Outcome(False, retry=True,
                           reason=f"the connection failed ({type(exc).__name__})")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
            return Outcome(False, reason="the URL cannot be used (check url:)")
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(True)
        said = self._scrub(_short_body(response))
        reason = f"HTTP {status}" + (f" ({said})" if said else "")
        if status == 429:
            wait = retry_after(response)
            return Outcome(False, retry=True, reason=reason + ", rate limited",
                           wait=min(wait, RETRY_AFTER_MAX) if wait is not None else None)
        if status >= 500:
            return Outcome(False, retry=True, reason=reason)
        if 300 <= status < 400:
            reason += ": a redirect (point url at the final address)"
        return Outcome(False, reason=reason)

    def _scrub(self, text: str) -> str:
        for secret in self.target.secrets():
            text = text.replace(secret, "***")
        return text


def _short_body(response: httpx.Response) -> str:
    try:
        text = " ".join(response.text.split())
    except UnicodeError:
        return ""
    return text if len(text) <= 120 else text[:119] + "…"


def _connect_reason(exc: Exception) -> str:
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "resolve" in text:
        return "host name not found"
    if "certificate" in text or "ssl" in text:
        return "TLS certificate not trusted"
    return "cannot connect"


class Notifier:
    """Every target's outbox; `send` gives a notice to each target that wants it."""

    def __init__(
        self,
        targets: Sequence[Target],
        on_state: StateListener | None = None,
        *,
        limit: int = QUEUE_LIMIT,
        transport: httpx.BaseTransport | None = None,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.outboxes = [Outbox(t, on_state, limit=limit, transport=transport,
                                backoff_max=backoff_max) for t in targets]

    def send(self, notice: Notice) -> None:
        if not notice.id:
            notice = replace(notice, id=str(uuid.uuid4()))
        for box in self.outboxes:
            if box.target.wants(notice.event):
                box.put(notice)

    def stats(self) -> dict[str, Stats]:
        return {box.target.label: box.stats() for box in self.outboxes}

    def close(self, timeout: float = FLUSH_TIMEOUT) -> list[str]:
        """Flush every target at once, within `timeout` in all; what was not delivered."""
        deadline = time.monotonic() + timeout
        for box in self.outboxes:  # every flush starts now, not after the one before it
            box.begin_close(deadline)
        lost = [box.close(max(0.0, deadline - time.monotonic())) for box in self.outboxes]
        return [text for text in lost if text is not None]
