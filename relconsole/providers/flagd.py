"""Flags in an OpenFeature flagd flag-definition file: the embedded default.

```yaml
providers:
  flags: {type: flagd, path: ./flags.json}   # on_variant: on, off_variant: off
```

A team without a flag vendor keeps a flagd JSON file (https://flagd.dev/schema/v0/flags.json)
next to its service, served by flagd or read by an in-process OpenFeature provider.
relconsole edits that file:

- kill: ``state: DISABLED``. flagd treats a disabled flag as absent, so every SDK serves
  the application's coded default — the off path — to everyone at once, while the
  flag's targeting stays in the file for the restore.
- restore: ``state: ENABLED``.
- rollout: the flag's ``fractional`` targeting with the "on" variant listed first. flagd
  puts a key in bucket ``hash·total >> 32`` and walks the variants in order, so with
  "on" first a key is "on" exactly when its hash falls below ``on/total`` of the range:
  raising the percentage only adds keys (monotonic), whatever the total weight. The
  bucketing expression, if the file has one, is kept, so the same key decides.
- cohort (`target`): the flag's targeting is wrapped in one rule per attribute,
  ``{"if": [{"in": [{"var": ATTR}, [V1, V2]]}, "on", <the targeting as it was>]}``, so a
  context whose ATTR is one of the values gets "on" whatever the percentage, and every
  other context gets exactly what the targeting gave before (the ``fractional`` part
  and its bucketing untouched: the same targetingKey gets the same answer). A user id
  (``userId``) is OpenFeature's ``targetingKey``. Targeting the same attribute again
  replaces its values in place; `untarget` unwraps exactly that rule. Reading back, the
  rules of exactly that shape at the top of the targeting are the flag's cohorts
  (`Flag.segments`), whoever wrote them; nothing deeper is read as one.

Writes keep every field relconsole does not understand (``$evaluators``, other flags,
metadata, key order, indentation), are validated against the flagd schema's structure,
go to a temporary file in the same folder and are renamed over the original (atomic),
and are refused when the file changed on disk since relconsole last read it: an operator
must never overwrite an edit they have not seen. The edited flag gets
``metadata.lastChanged`` so hygiene checks know how long it has been fully on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from relconsole.model import Flag, FlagKind, Segment
from relconsole.providers._http import iso_time
from relconsole.providers.base import BuildContext, ProviderError

# The stdlib's own JSON string-literal reader; typeshed does not declare it.
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
SCHEMA_FILE = Path(__file__).with_name("flagd_schema.json")


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def validate(doc: Any, where: str) -> None:
    """Raise ProviderError naming the first structural problem, by its JSON path."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ProviderError(f"flagd: {where}: not a valid flagd definition at "
                            f"{_shown(path, 80)}: {_shown(first.message, 160)}")
    for key, flag in doc.get("flags", {}).items():
        default = flag.get("defaultVariant")
        if isinstance(default, str) and default not in flag.get("variants", {}):
            raise ProviderError(
                f"flagd: {where}: flag {key!r} has defaultVariant {default!r}, "
                "which is not one of its variants"
            )


def _shown(text: str, limit: int) -> str:
    """Text from the file as it may appear in a one-line message: control characters
    (a flag named "a<newline>b") escaped, and clipped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dumps(value: Any, indent: int | str) -> str:
    """JSON text for a rewrite: non-ASCII kept as written, unless it cannot be UTF-8.

    A lone surrogate (written "\\ud800" in the file) reads back as a str that has no
    UTF-8 form; such a value is written escaped again, as it was.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    return text


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _indent(text: str) -> int | str:
    """The file's own indentation, so a rewrite changes only the edited flag's lines."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else len(lead)
    return 2


_WS = " \t\r\n"


def _member_span(text: str, start: int, key: str) -> tuple[int, int] | None:
    """Where the value of `key` sits in the JSON object whose `{` is at `start`."""
    decoder = json.JSONDecoder()
    i = start + 1
    while True:
        while i < len(text) and text[i] in _WS:
            i += 1
        if i >= len(text) or text[i] != '"':
            return None
        name, i = scanstring(text, i + 1)
        while text[i] in _WS:
            i += 1
        if text[i] != ":":
            return None
        i += 1
        while text[i] in _WS:
            i += 1
        _, end = decoder.raw_decode(text, i)
        if name == key:
            return i, end
        i = end
        while i < len(text) and text[i] in _WS:
            i += 1
        if i >= len(text) or text[i] != ",":
            return None
        i += 1


def splice_flag(text: str, key: str, flag: dict[str, Any], indent: int | str) -> str | None:
    """`text` with only flags[key]'s value rewritten; None when that cannot be done safely.

    Everything outside the edited flag stays byte for byte as the team wrote it, so a
    review of the change (or a git diff) shows exactly what relconsole did.
    """
    try:
        top = len(text) - len(text.lstrip(_WS + "\ufeff"))
        if text[top] != "{":
            return None
        flags = _member_span(text, top, "flags")
        if flags is None or text[flags[0]] != "{":
            return None
        span = _member_span(text, flags[0], key)
        if span is None:
            return None
    except (ValueError, IndexError):
        return None
    unit = indent if isinstance(indent, str) else " " * indent
    body = _dumps(flag, indent)
    body = body.replace("\n", "\n" + unit * 2)  # a flag sits two levels deep
    return text[: span[0]] + body + text[span[1]:]


def find_fractional(node: Any) -> list[Any] | None:
    """The first `fractional` argument list in a flag's own targeting (depth first)."""
    if isinstance(node, dict):
        args = node.get("fractional")
        if isinstance(args, list):
            return args
        for value in node.values():
            found = find_fractional(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = find_fractional(value)
            if found is not None:
                return found
    return None


def split_fractional(args: list[Any]) -> tuple[list[Any], list[tuple[Any, int]]]:
    """(bucketing prefix, [(variant, weight)]) from a fractional argument list."""
    prefix: list[Any] = []
    rest = args
    if args and not isinstance(args[0], list):
        prefix, rest = [args[0]], args[1:]
    entries: list[tuple[Any, int]] = []
    for item in rest:
        if not isinstance(item, list) or not item or len(item) > 2:
            raise ValueError("a fractional entry must be [variant] or [variant, weight]")
        weight = item[1] if len(item) == 2 else 1
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError("fractional weights must be whole numbers ≥ 0")
        entries.append((item[0], weight))
    return prefix, entries


# OpenFeature's user identity: the evaluation context's targeting key, which flagd puts in
# the data as "targetingKey" (and which `fractional` buckets by).
USER_ID = "userId"
TARGETING_KEY = "targetingKey"


def _var(attribute: str) -> str:
    return TARGETING_KEY if attribute == USER_ID else attribute


def cohort_rule(node: Any, on: str) -> tuple[Segment, Any] | None:
    """(the cohort, the targeting it wraps) where `node` is exactly a rule `target`
    writes: ``{"if": [{"in": [{"var": NAME}, [strings]]}, on, rest]}``; else None."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    args = node.get("if")
    if not isinstance(args, list) or len(args) != 3 or args[1] != on:
        return None
    test = args[0]
    if not isinstance(test, dict) or len(test) != 1:
        return None
    inside = test.get("in")
    if not isinstance(inside, list) or len(inside) != 2:
        return None
    var, values = inside
    if not isinstance(var, dict) or len(var) != 1 or not isinstance(var.get("var"), str):
        return None
    if (not isinstance(values, list) or not values
            or not all(isinstance(v, str) for v in values)):
        return None
    name = var["var"]
    attribute = USER_ID if name == TARGETING_KEY else name
    return Segment(attribute, tuple(values)), args[2]


def cohort_chain(targeting: Any, on: str) -> tuple[list[Segment], Any]:
    """The cohorts at the top of a flag's targeting, outermost first, and what they wrap."""
    segments: list[Segment] = []
    node = targeting
    while (found := cohort_rule(node, on)) is not None:
        segments.append(found[0])
        node = found[1]
    return segments, node


def wrap_cohorts(segments: list[Segment], rest: Any, on: str) -> Any:
    """The targeting for `segments` (outermost first) around `rest`."""
    node = rest
    for segment in reversed(segments):
        node = {"if": [{"in": [{"var": _var(segment.attribute)}, list(segment.values)]},
                       on, node]}
    return node


class NotRegularFile(OSError):
    """The flag file's path names a FIFO, socket or device."""


class FlagdFlags:
    name = "flagd"
    supports_rollout = True
    segments_supported = True

    def __init__(self, settings: dict[str, Any], ctx: BuildContext) -> None:
        unknown = set(settings) - {"type", "path", "on_variant", "off_variant"}
        if unknown:
            raise ProviderError(
                f"flagd: unknown setting(s) {', '.join(sorted(unknown))} "
                "(allowed: path, on_variant, off_variant)"
            )
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ProviderError("flagd: path is required (the flag definition JSON file)")
        self.path = Path(path).expanduser()
        self.on_variant = str(settings.get("on_variant", "on"))
        self.off_variant = str(settings.get("off_variant", "off"))
        self.clock = ctx.clock
        self._seen: str | None = None  # digest of the file as relconsole last read it

    # ------------------------------------------------------------------ reading

    def _read_bytes(self) -> bytes:
        """The file's bytes; never blocks on something that is not a regular file.

        Opening a FIFO nobody writes blocks for ever, and the engine's timeout cannot
        cancel a thread: each poll would strand one more worker, and the process could
        not exit. O_NONBLOCK makes the open return at once; anything but a regular file
        is refused.
        """
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotRegularFile(0, "not a regular file")
            os.set_blocking(fd, True)
            return handle.read()

    def _read(self) -> tuple[bytes, dict[str, Any]]:
        try:
            raw = self._read_bytes()
        except NotRegularFile:
            raise ProviderError(
                f"flagd: {self.path}: not a regular file (a pipe or device would block "
                "reads); point path at the flag definition JSON file"
            ) from None
        except FileNotFoundError:
            raise ProviderError(f"flagd: {self.path}: file not found") from None
        except OSError as exc:
            raise ProviderError(f"flagd: {self.path}: cannot read ({exc.strerror})") from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProviderError(f"flagd: {self.path}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"flagd: {self.path}:{exc.lineno}: invalid JSON ({exc.msg})"
            ) from None
        except ValueError as exc:  # not a JSONDecodeError: a number of over 4300 digits
            raise ProviderError(f"flagd: {self.path}: invalid JSON ({_shown(str(exc), 80)})"
                                ) from None
        except RecursionError:
            # json.loads recurses once per level; a few thousand `[` exhaust the stack.
            raise ProviderError(f"flagd: {self.path}: nested too deeply to read") from None
        validate(doc, str(self.path))
        return raw, doc

    def _variant_names(self, key: str, flag: dict[str, Any]) -> tuple[str | None, str | None]:
        variants = flag.get("variants") or {}
        on = self.on_variant if self.on_variant in variants else None
        off = self.off_variant if self.off_variant in variants else None
        # Boolean flags named otherwise ("enabled"/"disabled"): true is on, false is off.
        if on is None:
            on = next((n for n, v in variants.items() if v is True), None)
        if off is None:
            off = next((n for n, v in variants.items() if v is False), None)
        return on, off

    def _rollout(self, key: str, flag: dict[str, Any]) -> int | None:
        args = find_fractional(flag.get("targeting"))
        if args is None:
            return None
        on, _ = self._variant_names(key, flag)
        try:
            _, entries = split_fractional(args)
        except ValueError:
            return None
        total = sum(w for _, w in entries)
        if on is None or total <= 0:
            return None
        share = sum(w for v, w in entries if v == on)
        return round(100 * share / total)

    def _segments(self, key: str, flag: dict[str, Any]) -> tuple[Segment, ...]:
        on, _ = self._variant_names(key, flag)
        if on is None:
            return ()
        return tuple(cohort_chain(flag.get("targeting"), on)[0])

    def _flag(self, key: str, flag: dict[str, Any]) -> Flag:
        meta = flag.get("metadata") or {}
        return Flag(
            key=key,
            kind=FlagKind.parse(meta.get("type") or meta.get("flagType")),
            enabled=flag.get("state") == "ENABLED",
            rollout=self._rollout(key, flag),
            segments=self._segments(key, flag),
            owner=str(meta.get("owner") or ""),
            description=str(meta.get("description") or ""),
            created=iso_time(meta.get("createdAt") or meta.get("created")),
            last_changed=iso_time(meta.get("lastChanged") or meta.get("updatedAt")),
            expires=iso_time(meta.get("expiry") or meta.get("expires")
                             or meta.get("expiresAt")),
        )

    def read_flags(self) -> list[Flag]:
        raw, doc = self._read()
        self._seen = _digest(raw)
        return [self._flag(k, f) for k, f in doc["flags"].items()]

    async def list_flags(self) -> list[Flag]:
        return await asyncio.to_thread(self.read_flags)

    # ------------------------------------------------------------------ writing

    def _edit(self, key: str, change: Any) -> None:
        raw, doc = self._read()
        digest = _digest(raw)
        if self._seen is not None and digest != self._seen:
            # What the operator saw is not what is on disk: refuse, and show the new
            # state on the next read so a repeated action acts on what they now see.
            self._seen = digest
            raise ProviderError(
                f"flagd: {self.path} changed on disk since relconsole last read it; "
                "nothing was written — check the new state and try again"
            )
        flags = doc["flags"]
        if key not in flags:
            raise ProviderError(f"flagd: no flag named {key!r} in {self.path}")
        try:
            out = self._rewritten(raw, doc, key, change)
        except RecursionError:
            # deepcopy, json.dumps(indent=…) and == recurse once per level: a file nested
            # a few hundred levels deep reads fine but cannot be rewritten safely.
            raise ProviderError(
                f"flagd: {self.path}: nested too deeply for relconsole to rewrite; "
                "nothing was written — change it in the file"
            ) from None
        self._replace(out.encode("utf-8"), digest)

    def _rewritten(self, raw: bytes, doc: dict[str, Any], key: str, change: Any) -> str:
        """The file's new text with `change` applied to flags[key]."""
        edited = copy.deepcopy(doc)
        flag = edited["flags"][key]
        change(flag)
        meta = flag.setdefault("metadata", {})
        meta["lastChanged"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now()))
        validate(edited, f"{self.path} (after editing {key!r})")
        text = raw.decode("utf-8")
        indent = _indent(text)
        out = splice_flag(text, key, flag, indent)
        if out is None or json.loads(out) != edited:
            # Duplicate keys or an exotic layout: fall back to rewriting the whole file.
            out = _dumps(edited, indent)
            if text.endswith("\n"):
                out += "\n"
        return out

    def _replace(self, data: bytes, expected: str) -> None:
        folder = self.path.parent
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                            dir=folder)
        except OSError as exc:  # read-only mount, immutable or vanished folder, no space
            raise ProviderError(
                f"flagd: cannot write {self.path} ({exc.strerror}); nothing was written"
            ) from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(self.path.stat().st_mode))
            # Last look before the rename: an edit that landed while we worked wins.
            if _digest(self._read_bytes()) != expected:
                raise ProviderError(
                    f"flagd: {self.path} changed on disk while relconsole was writing; "
                    "nothing was written — check the new state and try again"
                )
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ProviderError(f"flagd: cannot write {self.path} ({exc.strerror})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        with contextlib.suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._seen = _digest(data)

    def _set_state(self, key: str, enabled: bool) -> None:
        def change(flag: dict[str, Any]) -> None:
            flag["state"] = "ENABLED" if enabled else "DISABLED"

        self._edit(key, change)

    def _set_rollout(self, key: str, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ProviderError(f"flagd: rollout {percent} outside 0..100")
        name = _shown(key, 80)  # the file's own flag name: may hold any character

        def change(flag: dict[str, Any]) -> None:
            on, off = self._variant_names(key, flag)
            if on is None or off is None:
                raise ProviderError(
                    f"flagd: {name} has no on/off variants (variants: "
                    f"{_shown(', '.join(flag.get('variants', {})), 120)}); "
                    "set on_variant/off_variant"
                )
            targeting = flag.get("targeting")
            args = find_fractional(targeting)
            cohorts, rest = cohort_chain(targeting, on)
            if args is None and cohorts and rest is None:
                # Only cohorts (`target` on a flag without targeting): the percentage
                # goes where "everyone else" is decided, inside them.
                split = {"fractional": [[on, percent], [off, 100 - percent]]}
                flag["targeting"] = wrap_cohorts(cohorts, split, on)
                return
            if args is None:
                if targeting:
                    raise ProviderError(
                        f"flagd: {name} has targeting rules without a fractional rollout; "
                        "relconsole will not rewrite them — add a fractional split in the file"
                    )
                flag["targeting"] = {"fractional": [[on, percent], [off, 100 - percent]]}
                return
            try:
                prefix, entries = split_fractional(args)
            except ValueError as exc:
                raise ProviderError(f"flagd: {name}: {exc}") from None
            others = [v for v, w in entries if v not in (on, off) and w > 0]
            if others:
                raise ProviderError(
                    # The variants named in a fractional split may be any JSON at all.
                    f"flagd: {name} splits between more than on/off "
                    f"({_shown(', '.join(map(str, others)), 120)}); change it in the file"
                )
            total = sum(w for _, w in entries) or 100
            if (percent * total) % 100:
                total = 100  # keep the total where it divides exactly; else whole percents
            on_weight = percent * total // 100
            # In place, so a fractional nested inside an `if` stays where it is.
            args[:] = [*prefix, [on, on_weight], [off, total - on_weight]]

        self._edit(key, change)

    def _set_cohort(self, key: str, attribute: str, segment: Segment | None) -> None:
        """Add or replace (`segment`) or remove (None) the cohort rule on `attribute`."""
        name = _shown(key, 80)
        if attribute == TARGETING_KEY:
            raise ProviderError(f"flagd: target user ids as {USER_ID} (it is OpenFeature's "
                                f"{TARGETING_KEY}, which relconsole writes by that name)")

        def change(flag: dict[str, Any]) -> None:
            on, _ = self._variant_names(key, flag)
            if on is None:
                raise ProviderError(
                    f"flagd: {name} has no on variant (variants: "
                    f"{_shown(', '.join(flag.get('variants', {})), 120)}); set on_variant"
                )
            cohorts, rest = cohort_chain(flag.get("targeting"), on)
            if rest == {}:
                rest = None  # an empty targeting means none; wrapped, {} is no variant
            at = next((i for i, s in enumerate(cohorts) if s.attribute == attribute), None)
            if segment is None:
                if at is None:
                    raise ProviderError(
                        f"flagd: {name} has no cohort on {_shown(attribute, 80)}; "
                        "nothing was written")
                del cohorts[at]
            elif at is None:
                cohorts.insert(0, segment)  # first: it wins over any rule it wraps
            else:
                cohorts[at] = segment  # in place: the order of the others stays
            if not cohorts and rest is None:
                flag.pop("targeting", None)  # as it was before the first cohort
            else:
                flag["targeting"] = wrap_cohorts(cohorts, rest, on)

        self._edit(key, change)

    async def target(self, key: str, segment: Segment, *, reason: str) -> None:
        await asyncio.to_thread(self._set_cohort, key, segment.attribute, segment)

    async def untarget(self, key: str, attribute: str, *, reason: str) -> None:
        await asyncio.to_thread(self._set_cohort, key, attribute, None)

    async def set_enabled(self, key: str, enabled: bool, *, reason: str) -> None:
        await asyncio.to_thread(self._set_state, key, enabled)

    async def set_rollout(self, key: str, percent: int, *, reason: str) -> None:
        await asyncio.to_thread(self._set_rollout, key, percent)

    async def close(self) -> None:
        return None


def build_flags(settings: dict[str, Any], ctx: BuildContext) -> FlagdFlags:
    return FlagdFlags(settings, ctx)
