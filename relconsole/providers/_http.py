"""What every HTTP flag adapter shares: settings, TLS, timeouts, 429 handling, errors.

- TLS verification is on unless a block says `insecure: true`; `ca_file` names a private
  CA bundle.
- Every request has a timeout (`timeout:`, default 5 s), well inside the engine's own.
- 429 Too Many Requests is retried after `Retry-After`, but only while the wait stays
  small (`max_retry_wait`, default 5 s) and at most `max_retries` times: an on-call
  engineer must hear "rate limited" quickly rather than stare at a frozen console.
- A failed call becomes one `ProviderError` line an operator can act on, naming the
  status and the vendor's own message. The token never appears in it: a URL may not
  carry user:password@, headers are never echoed, every message is scrubbed of the token
  (a vendor or proxy may echo it back), and no httpx exception (whose text can quote a
  header verbatim) rides along as __context__.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from relconsole.providers.base import ProviderError


def secret_text(value: Any) -> str | None:
    """The value of a token setting: a resolved `Secret` or plain text (tests, local use)."""
    if value is None:
        return None
    reveal = getattr(value, "reveal", None)
    if callable(reveal):
        return str(reveal())
    if isinstance(value, str):
        return value
    return None


@dataclass(frozen=True)
class HttpSettings:
    url: str
    token: str = ""
    timeout: float = 5.0
    verify: bool | str = True  # True, False (insecure: true) or a CA bundle path
    max_retries: int = 2
    max_retry_wait: float = 5.0


def _number(name: str, settings: dict[str, Any], provider: str, default: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ProviderError(f"{provider}: {name} must be a non-negative number of seconds")
    if not math.isfinite(float(value)):
        raise ProviderError(f"{provider}: {name} must be finite")
    return float(value)


def parse_settings(
    provider: str,
    settings: dict[str, Any],
    *,
    default_url: str | None,
    allowed: set[str],
    token_required: bool = True,
) -> HttpSettings:
    """Common keys (url, token, ca_file, insecure, timeout, …) plus a check for typos."""
    common = {"type", "url", "token", "ca_file", "insecure", "timeout", "max_retries",
              "max_retry_wait"}
    unknown = set(settings) - common - allowed
    if unknown:
        known = ", ".join(sorted((common | allowed) - {"type"}))
        raise ProviderError(
            f"{provider}: unknown setting(s) {', '.join(sorted(unknown))} (allowed: {known})"
        )
    url = settings.get("url", default_url)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ProviderError(f"{provider}: url must be an http:// or https:// address")
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise ProviderError(f"{provider}: url is not a valid address") from None
    if has_credentials:
        # Never quote the url here: the credentials are the part that must not show.
        raise ProviderError(
            f"{provider}: url must not carry user:password@; put the API token in "
            "token: (env:VAR or keyring:SERVICE/NAME)"
        )
    # A secret read from a file often ends in a newline; nothing around a token is part
    # of it. What is left must fit in an HTTP header, or httpx's complaint would quote it.
    token = (secret_text(settings.get("token")) or "").strip()
    if token and not all(33 <= ord(c) <= 126 for c in token):
        raise ProviderError(
            f"{provider}: the token holds characters an HTTP header cannot carry (spaces, "
            "control or non-ASCII characters); check the secret's value"
        )
    if token_required and not token:
        raise ProviderError(
            f"{provider}: token is required (write token: env:VAR or keyring:SERVICE/NAME)"
        )
    insecure = settings.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ProviderError(f"{provider}: insecure must be true or false")
    verify: bool | str = not insecure
    ca_file = settings.get("ca_file")
    if ca_file is not None:
        if insecure:
            raise ProviderError(f"{provider}: give either ca_file or insecure: true, not both")
        if not isinstance(ca_file, str) or not Path(ca_file).expanduser().is_file():
            raise ProviderError(f"{provider}: ca_file {ca_file!r} is not a readable file")
        verify = str(Path(ca_file).expanduser())
    retries = settings.get("max_retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ProviderError(f"{provider}: max_retries must be a whole number ≥ 0")
    return HttpSettings(
        url=url.rstrip("/"),
        token=token or "",
        timeout=_number("timeout", settings, provider, 5.0) or 5.0,
        verify=verify,
        max_retries=retries,
        max_retry_wait=_number("max_retry_wait", settings, provider, 5.0),
    )


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def vendor_message(response: httpx.Response, hide: str = "") -> str:
    """The human part of a vendor's error body, whatever its shape, clipped to one line.

    `hide` (the API token) is replaced by *** before clipping, so that no part of it
    survives a cut through the middle.
    """
    text = ""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not text, or nested beyond the stack
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "details", "error", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
            if isinstance(value, list) and value:
                first = value[0]
                # {"detail": [{"message": 1}]}: a message need not be text.
                text = str(first.get("message") or "") if isinstance(first, dict) else str(first)
                if text:
                    break
        if not text:
            for value in body.values():  # Django REST framework: {"enabled": ["…"]}
                if isinstance(value, list) and value and isinstance(value[0], str):
                    text = value[0]
                    break
    elif isinstance(body, list) and body and isinstance(body[0], str):
        text = body[0]
    if not text:
        text = _body_text(response)
        text = text if len(text) < 200 else ""
    if hide:
        text = text.replace(hide, "***")
    text = " ".join(text.split())
    return text[:200]


def _body_text(response: httpx.Response) -> str:
    """The body as text, or "" when the charset the server names cannot decode it.

    httpx decodes with the Content-Type charset; a body that does not match it (UTF-16
    without a BOM, say) raises UnicodeError, which must not hide the HTTP status.
    """
    try:
        return response.text
    except UnicodeError:
        return ""


class HttpApi:
    """An httpx client bound to one vendor, with retries on 429 and readable errors.

    `describe` maps (status, vendor message, what) to a sentence for statuses the vendor
    gives a special meaning (approvals, conflicts); everything else gets a generic line.
    """

    def __init__(
        self,
        provider: str,
        settings: HttpSettings,
        headers: dict[str, str],
        *,
        describe: Callable[[int, str, str], str | None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self._describe = describe
        self._sleep = sleep
        verify: bool | ssl.SSLContext = settings.verify is not False
        if isinstance(settings.verify, str):
            # httpx deprecates verify=<path>; the context is what it builds from it anyway.
            try:
                verify = ssl.create_default_context(cafile=settings.verify)
            except (ssl.SSLError, OSError, ValueError):
                raise ProviderError(
                    f"{provider}: ca_file {settings.verify} holds no PEM certificate"
                ) from None
        self.client = httpx.AsyncClient(
            base_url=settings.url,
            headers=headers,
            timeout=settings.timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self, method: str, path: str, what: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        # `what` may quote names from the vendor's own answers; an error stays one line.
        what = _clip(what, 120)
        attempt = 0
        while True:
            failure: str | None = None
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                failure = f"{what}: no answer within {self.settings.timeout:g}s"
            except httpx.ConnectError as exc:
                reason = _connect_reason(exc)
                failure = f"{what}: cannot connect to {self.settings.url} ({reason})"
            except httpx.RemoteProtocolError as exc:
                failure = f"{what}: {_cut_off(exc)}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                # InvalidURL is not an HTTPError; a link from the vendor's answer (paging)
                # can raise it. Its text may quote a request header: scrubbed below.
                failure = f"{what}: {type(exc).__name__}: {_clip(self.scrub(str(exc)))}"
            if failure is not None:
                # Raised outside the `except`: the httpx exception must not ride along
                # as __context__ (h11 quotes a bad header value, token and all).
                raise ProviderError(self.scrub(f"{self.provider}: {failure}"))
            if response.status_code in ok:
                return response
            if response.status_code == 429:
                wait = retry_after(response)
                if (
                    attempt < self.settings.max_retries
                    and wait is not None
                    and wait <= self.settings.max_retry_wait
                ):
                    attempt += 1
                    await self._sleep(wait)
                    continue
                after = f"; the vendor asks to retry after {wait:g}s" if wait is not None else ""
                raise ProviderError(
                    f"{self.provider}: {what}: rate limited (HTTP 429){after}"
                )
            # A vendor (or a proxy in front of it) may echo the token in its error body.
            raise ProviderError(self.scrub(self._error(response, what)))

    def scrub(self, text: str) -> str:
        """`text` with the API token replaced by ***, wherever it appears."""
        token = self.settings.token
        return text.replace(token, "***") if token else text

    def _error(self, response: httpx.Response, what: str) -> str:
        status = response.status_code
        message = vendor_message(response, self.settings.token)
        if self._describe is not None:
            special = self._describe(status, message, what)
            if special:
                return f"{self.provider}: {special}"
        said = f": {message}" if message else ""
        if status in (401, 403):
            verb = "rejected" if status == 401 else "not allowed to do this"
            return (
                f"{self.provider}: {what}: the API token was {verb} (HTTP {status}{said}); "
                "check the token setting"
            )
        if status == 404:
            return f"{self.provider}: {what}: not found (HTTP 404{said})"
        return f"{self.provider}: {what}: HTTP {status}{said}"

    async def json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, what, **kwargs)
        try:
            return response.json()
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, too many digits
            raise ProviderError(
                f"{self.provider}: {_clip(what, 120)}: the answer is not JSON "
                f"(HTTP {response.status_code})"
            ) from None
        except RecursionError:
            # json.loads recurses once per level: `[[[[…` a few thousand deep exhausts
            # the stack. Such an answer is garbage, not a reason to crash the console.
            raise ProviderError(
                f"{self.provider}: {_clip(what, 120)}: the answer is nested too deeply "
                f"to read (HTTP {response.status_code})"
            ) from None

    async def close(self) -> None:
        await self.client.aclose()


_SHORT_BODY = re.compile(r"received (\d+) bytes, expected (\d+)")


def _cut_off(exc: Exception) -> str:
    """A connection that closed mid-answer, in an operator's words."""
    text = str(exc)
    got = _SHORT_BODY.search(text)
    if got:
        return (f"the answer was cut off (the connection closed after {got[1]} of "
                f"{got[2]} bytes)")
    if "without sending a response" in text or "disconnected" in text.lower():
        return "the server closed the connection without answering"
    if "complete message body" in text:
        return "the answer was cut off (the connection closed before its end)"
    return f"the server broke the HTTP protocol ({_clip(text, 120)})"


def _connect_reason(exc: Exception) -> str:
    text = str(exc).lower()
    # The async client says only "All connection attempts failed"; the reason is the
    # OSError it was raised from.
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError) or "timed out" in str(cause).lower():
            return "connection timed out"
        cause = cause.__cause__ or cause.__context__
    if "refused" in text:
        return "connection refused"
    if "certificate" in text or "ssl" in text:
        return "TLS certificate not trusted; set ca_file, or insecure: true for a test server"
    if "name or service" in text or "nodename" in text or "resolve" in text:
        return "host name not found"
    return _clip(str(exc)) or type(exc).__name__


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What the calendar can show (datetime, time.gmtime): years 1..9999, in epoch seconds.
EARLIEST, LATEST = -62135596800.0, 253402300799.0


def iso_time(value: Any) -> float | None:
    """Seconds since the epoch from an ISO 8601 string or epoch milliseconds; None if neither.

    None too for a time no calendar can show (NaN, Infinity, 10**400 ms): audit and the
    front ends format these as dates, and "unknown" is the truth about such a value.
    """
    if value is None or isinstance(value, bool):
        return None
    seconds: float | None = None
    if isinstance(value, (int, float)):
        # Vendors that use numbers use milliseconds (LaunchDarkly, Split).
        try:
            seconds = float(value) / 1000.0
        except OverflowError:  # an int too large for a float
            return None
    elif isinstance(value, str) and value.strip():
        from datetime import UTC, datetime

        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    if seconds is None or not math.isfinite(seconds) or not EARLIEST <= seconds <= LATEST:
        return None
    return seconds


# Answers are JSON from outside: any part may have any shape. These read a part of the
# wrong shape as absent, so one odd field never crashes a listing (or hides other flags).


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else []."""
    return value if isinstance(value, list) else []


def whole_number(value: Any) -> int | None:
    """An integer from a JSON number or numeric string (10, 10.0, "10"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # False for NaN and ±Infinity
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def percentage(value: float | None) -> int | None:
    """A whole percent 0..100, or None: a share outside that range is not a rollout."""
    if value is None or not math.isfinite(value):
        return None
    rounded = round(value)
    return rounded if 0 <= rounded <= 100 else None


def path_segment(text: str) -> str:
    """One URL path segment: a flag key with '/' or '?' must not change the path."""
    return quote(text, safe="")
