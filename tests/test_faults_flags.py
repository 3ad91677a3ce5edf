"""Fault matrix, flag-provider rows (issue 5): flagd, and the LaunchDarkly, Split and
Flagsmith adapters against FAKE vendor servers (tests/fake_vendors.py).

Every fault is injected for real: for the HTTP vendors on the wire, by a FaultProxy
(tests/faults/proxy.py) between relconsole and the fake (a closed port, an answer that
never comes, a 5xx, broken or cut-off JSON, a revoked token's 401), so the adapters'
own HTTP client meets it; for flagd on the file system (the file or its folder gone, a
FIFO in its place, a file cut mid-write, permissions that root's override cannot pass).
Each row checks what the user sees, what the engine does and what the journal records
(tests/faults/flag_rows.py), and the one-shot `relconsole flag kill` a pipeline runs.
docs/faults-parts/flags.md is the table these tests stand behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relconsole.model import Phase
from relconsole.providers import flagd as flagd_module
from tests.fake_vendors import FakeFlagsmith, FakeLaunchDarkly, FakeServer, FakeSplit
from tests.faults.flag_rows import (
    KEY,
    ROOT,
    Observed,
    check_cli_kill,
    check_row,
    cli_kill,
    observe_row,
    open_engine,
    problem_once_restored,
    write_config,
)
from tests.faults.harness import journal_records, tick, user_sees
from tests.faults.proxy import Fault, FaultProxy, http_response

# ---------------------------------------------------------------------- HTTP vendors


@dataclass(frozen=True)
class Vendor:
    name: str
    make: Callable[[], FakeServer]
    where: str  # the provider block's own keys
    unauthorized: bytes  # the vendor's documented 401 body
    unauthorized_says: str
    is_on: Callable[[FakeServer], bool]
    listing: str = "list flags"  # the adapter's name for its first read


def _ld() -> FakeServer:
    fake = FakeLaunchDarkly()
    fake.add_flag(KEY, rollout=10)
    fake.add_flag("checkout-pricing-killswitch", temporary=False, tags=("kill-switch",))
    return fake


def _split() -> FakeServer:
    fake = FakeSplit()
    fake.add_flag(KEY, on_size=10)
    fake.add_flag("checkout-pricing-killswitch", tags=("killswitch",))
    return fake


def _flagsmith() -> FakeServer:
    fake = FakeFlagsmith()
    fake.add_feature(KEY, tags=(2,))
    fake.add_feature("checkout-pricing-killswitch", tags=(1,))
    return fake


def _flagsmith_on(fake: FakeServer) -> bool:
    assert isinstance(fake, FakeFlagsmith)
    return next(s["enabled"] for s in fake.states if s["feature"] == 1 and s["identity"] is None)


VENDORS = {
    "launchdarkly": Vendor(
        "launchdarkly", _ld, "project: default, environment: production",
        b'{"code": "unauthorized", "message": "Invalid access token"}',
        "the API token was rejected (HTTP 401: Invalid access token); check the token setting",
        lambda f: f.flags[KEY]["environments"]["production"]["on"],  # type: ignore[attr-defined]
    ),
    "split": Vendor(
        "split", _split, "workspace: ws-1, environment: Production",
        b'{"code": 401, "message": "Unauthorized", "details": "", "transactionId": "t1"}',
        "the API token was rejected (HTTP 401: Unauthorized); check the token setting",
        lambda f: not f.defs[KEY]["killed"],  # type: ignore[attr-defined]
    ),
    "flagsmith": Vendor(
        "flagsmith", _flagsmith, "project: 7, environment: ser.envkey123",
        b'{"detail": "Invalid API Key"}',
        "the API token was rejected (HTTP 401: Invalid API Key); check the token setting",
        _flagsmith_on, "list features",
    ),
}


@dataclass(frozen=True)
class HttpFault:
    fault: Callable[[], Fault]
    sees: str  # on the flags panel ({vendor}, {url}, {unauthorized} filled in)
    kill_sees: str  # in the failed kill's message
    reaches_vendor: bool  # whether the kill request itself reaches the service


HTTP_FAULTS = {
    "unreachable": HttpFault(
        Fault.refuse, "{vendor}: {listing}: cannot connect to {url} (connection refused)",
        "cannot connect to {url} (connection refused)", False),
    "slower-than-timeout": HttpFault(
        Fault.hang, "list timed out after 1s", "change {key} timed out after 1s", False),
    "http-503": HttpFault(
        lambda: Fault.reply(http_response(503, "no healthy upstream",
                                          content_type="text/plain")),
        "{vendor}: {listing}: HTTP 503: no healthy upstream", "HTTP 503: no healthy upstream",
        False),
    "http-500": HttpFault(
        lambda: Fault.reply(http_response(500, '{"message": "Internal Server Error"}')),
        "{vendor}: {listing}: HTTP 500: Internal Server Error",
        "HTTP 500: Internal Server Error", False),
    "malformed-json": HttpFault(
        lambda: Fault.reply(http_response(200, b'{"items": [{"key": "checkout-')),
        # The kill's PATCH gets this 200 too — but the vendor never saw it, and the
        # read-back cannot confirm it: not verified.
        "{vendor}: {listing}: the answer is not JSON (HTTP 200)",
        "the answer is not JSON (HTTP 200)", False),
    "truncated": HttpFault(
        lambda: Fault.cut(40), "{vendor}: {listing}: the answer was cut off",
        "the answer was cut off", True),
    "auth-refused": HttpFault(
        lambda: Fault.reply(b""), "{vendor}: {listing}: {unauthorized}", "{unauthorized}",
        False),
}


@pytest.fixture
def vendor_proxy(request) -> Iterator[tuple[Vendor, FakeServer, FaultProxy]]:
    vendor = VENDORS[request.param]
    fake = vendor.make()
    proxy = FaultProxy(upstream=("127.0.0.1", fake.httpd.server_address[1]))
    yield vendor, fake, proxy
    proxy.close()
    fake.close()


def _vendor_configs(tmp_path: Path, vendor: Vendor, fake: FakeServer, proxy: FaultProxy,
                    *, kill_flags: bool = False) -> tuple[Path, Path]:
    block = (f"{{type: {vendor.name}, url: '{proxy.url}', token: env:FLAG_TOKEN, "
             f"{vendor.where}}}")
    block = block.replace("env:FLAG_TOKEN", f"'{fake.token}'")  # type: ignore[attr-defined]
    engine_cfg = write_config(tmp_path / "engine.yaml", block, state=tmp_path / "state",
                              kill_flags=kill_flags)
    cli_cfg = write_config(tmp_path / "cli.yaml", block, state=tmp_path / "cli-state")
    return engine_cfg, cli_cfg


async def _vendor_row(vendor: Vendor, row: HttpFault, fault_name: str,
                      tmp_path: Path) -> None:
    fake = vendor.make()
    proxy = FaultProxy(upstream=("127.0.0.1", fake.httpd.server_address[1]))
    engine_cfg, cli_cfg = _vendor_configs(tmp_path, vendor, fake, proxy)
    fault = row.fault()
    if fault_name == "auth-refused":  # the token was revoked: the vendor's own 401
        fault = Fault.reply(http_response(401, vendor.unauthorized))
    words = {"vendor": vendor.name, "url": proxy.url, "key": KEY, "listing": vendor.listing,
             "unauthorized": vendor.unauthorized_says}
    sees, kill_sees = row.sees.format(**words), row.kill_sees.format(**words)
    cli: list[subprocess.Popen] = []

    def inject() -> None:
        proxy.set(fault)
        cli.append(cli_kill(cli_cfg, env={"FLAG_TOKEN": fake.token}))  # type: ignore[attr-defined]

    session = open_engine(engine_cfg, tmp_path / "state")
    try:
        seen = await observe_row(session, inject, lambda: None)
        # The pipeline's kill ran during the same outage; collect it before it clears.
        await asyncio.to_thread(check_cli_kill, cli[0], tmp_path / "cli-state",
                                sees=kill_sees)
        proxy.set(Fault.passthrough())
        seen.problem_after_restore = await problem_once_restored(session.engine)
        seen.records = journal_records(session.engine)
        check_row(seen, sees=sees, kill_sees=kill_sees)
        # What the vendor really holds: untouched unless the kill reached it, and the
        # engine's list shows exactly that once the fault is gone.
        assert vendor.is_on(fake) is not row.reaches_vendor
        shown = {f.key: f.enabled for f in session.engine.snapshot().flags}
        assert shown[KEY] is vendor.is_on(fake)
    except AssertionError as exc:
        raise AssertionError(f"{vendor.name} / {fault_name}: {exc}") from exc
    finally:
        for proc in cli:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await session.close()
        proxy.close()
        fake.close()


@pytest.mark.parametrize("fault_name", list(HTTP_FAULTS))
async def test_http_flag_vendor_fault_row(fault_name, tmp_path):
    """One fault, injected on the wire in front of each of the three vendors at once."""
    row = HTTP_FAULTS[fault_name]
    folders = {name: tmp_path / name for name in VENDORS}
    for folder in folders.values():
        folder.mkdir()
    results = await asyncio.gather(
        *(_vendor_row(v, row, fault_name, folders[n]) for n, v in VENDORS.items()),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


@pytest.mark.parametrize("vendor_proxy", ["launchdarkly", "split"], indirect=True)
async def test_rollback_with_kill_flags_while_the_vendor_is_down(vendor_proxy, tmp_path,
                                                                  monkeypatch):
    """Rollback with kill_flags: not verified while the vendor is down, retried with
    backoff, verified (flag off at the vendor, traffic at 0%) once it is back."""
    vendor, fake, proxy = vendor_proxy
    monkeypatch.setenv("FLAG_TOKEN", fake.token)  # type: ignore[attr-defined]
    engine_cfg, _ = _vendor_configs(tmp_path, vendor, fake, proxy, kill_flags=True)
    session = open_engine(engine_cfg, tmp_path / "state")
    engine = session.engine
    try:
        await engine.attach()
        await engine.advance("start the canary")
        proxy.set(Fault.refuse())
        result = await engine.rollback("error rate on canary")
        unreachable = f"cannot connect to {proxy.url} (connection refused)"
        # User sees: loud, not done; traffic is back, the flag is not verified off.
        assert not result.ok
        assert result.message.startswith("ROLLBACK NOT VERIFIED (attempt 1): flags not "
                                         f"verified off: flag.kill {KEY} not verified: ")
        assert unreachable in result.message and result.message.endswith("retrying in 1s")
        assert engine.phase is Phase.ROLLBACK_FAILED
        assert "[rollback] stale since" in user_sees(engine)
        assert (await engine.traffic.read()).canary_weight == 0
        assert vendor.is_on(fake)
        # Engine: retried with growing backoff while the vendor stays down.
        messages = []
        for _ in range(3):
            await tick(engine)  # one poll interval (5s) passes: past each backoff
            messages.append(engine.snapshot().last_error)
        assert any("attempt 2" in m and "retrying in 2s" in m for m in messages), messages
        assert any("retrying in 4s" in m for m in messages), messages
        assert engine.phase is Phase.ROLLBACK_FAILED and vendor.is_on(fake)
        proxy.set(Fault.passthrough())
        settled = await engine.settle_rollback()
        assert settled.ok and engine.phase is Phase.ROLLED_BACK
        assert not vendor.is_on(fake)
        assert "rolled back: canary at 0% (verified)" in user_sees(engine)
        # Journal: each attempt failed until the one that verified both halves.
        records = journal_records(engine)
        rb = [(r["intent"], r.get("outcome") or "") for r in records
              if r["intent"] in ("rollback", "rollback.retry")]
        assert rb[0] == ("rollback", "")
        assert ("rollback", "traffic verified at 0%; release flags not yet verified off") in rb
        assert rb[-1][1] == "verified"
        assert all(o == "" or o.startswith(("failed: flags not verified off",
                                              "traffic verified at 0%")) for _, o in rb[:-1])
        kills = [r.get("outcome") or "" for r in records if r["intent"] == "flag.kill"]
        assert kills[-1] == "verified"
        assert all(o == "" or (o.startswith("failed: ") and unreachable in o)
                   for o in kills[:-1])
        assert len([o for o in kills if o.startswith("failed")]) >= 3
    finally:
        await session.close()


# ---------------------------------------------------------------------- flagd

FLAGD_DOC = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        KEY: {"state": "ENABLED", "variants": {"on": True, "off": False},
              "defaultVariant": "on",
              "targeting": {"fractional": [["on", 10], ["off", 90]]},
              "metadata": {"type": "release", "owner": "payments"}},
        "checkout-pricing-killswitch": {"state": "ENABLED",
                                        "variants": {"on": True, "off": False},
                                        "defaultVariant": "on",
                                        "metadata": {"type": "kill-switch"}},
    },
}


@dataclass
class FlagdSetup:
    folder: Path
    file: Path
    engine_cfg: Path
    cli_cfg: Path
    cli_state: Path


@pytest.fixture
def flagd(tmp_path: Path) -> FlagdSetup:
    folder = tmp_path / "flags"
    folder.mkdir()
    file = folder / "flags.json"
    file.write_text(json.dumps(FLAGD_DOC, indent=2) + "\n")
    block = f"{{type: flagd, path: '{file}'}}"
    return FlagdSetup(
        folder, file,
        write_config(tmp_path / "engine.yaml", block, state=tmp_path / "state"),
        write_config(tmp_path / "cli.yaml", block, state=tmp_path / "cli-state"),
        tmp_path / "cli-state",
    )


def _file_on(setup: FlagdSetup) -> bool:
    return json.loads(setup.file.read_text())["flags"][KEY]["state"] == "ENABLED"


async def _flagd_row(setup: FlagdSetup, tmp_path: Path, inject: Callable[[], None],
                     restore: Callable[[], None], *, sees: str,
                     kill_sees: str | None = None) -> Observed:
    cli: list[subprocess.Popen] = []

    def inject_and_cli() -> None:
        inject()
        cli.append(cli_kill(setup.cli_cfg))

    session = open_engine(setup.engine_cfg, tmp_path / "state")
    try:
        seen = await observe_row(session, inject_and_cli, lambda: None)
        check_cli_kill(cli[0], setup.cli_state, sees=kill_sees or sees)
        restore()
        seen.problem_after_restore = await problem_once_restored(session.engine)
        seen.records = journal_records(session.engine)
        check_row(seen, sees=sees, kill_sees=kill_sees)
        assert _file_on(setup)  # nothing was written
    finally:
        for proc in cli:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await session.close()
    return seen


async def test_flagd_unreachable_file_missing(flagd, tmp_path):
    aside = flagd.folder / "moved-away.json"
    await _flagd_row(flagd, tmp_path, lambda: flagd.file.rename(aside),
                     lambda: aside.rename(flagd.file),
                     sees=f"{flagd.file}: file not found")


async def test_flagd_unreachable_folder_gone(flagd, tmp_path):
    aside = tmp_path / "flags-unmounted"
    await _flagd_row(flagd, tmp_path, lambda: flagd.folder.rename(aside),
                     lambda: aside.rename(flagd.folder),
                     sees=f"{flagd.file}: file not found")


def _threads_inside(path: str) -> list[str]:
    """Threads whose stack is, right now, in the file `path` (besides this one)."""
    me = threading.get_ident()
    found = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        stack = traceback.extract_stack(frame)
        if any(entry.filename == path for entry in stack):
            found.append(f"thread {ident}: " + " <- ".join(
                f"{e.name}:{e.lineno}" for e in reversed(stack) if e.filename == path))
    return found


async def test_flagd_slower_than_timeout_a_fifo_nobody_writes(flagd, tmp_path):
    """A FIFO in the file's place: opening it for reading would block for ever, in a
    thread the engine's timeout cannot cancel. It is refused at once instead."""
    aside = flagd.folder / "moved-away.json"

    def inject() -> None:
        flagd.file.rename(aside)
        os.mkfifo(flagd.file)

    def restore() -> None:
        flagd.file.unlink()
        aside.rename(flagd.file)

    started = time.monotonic()
    seen = await _flagd_row(flagd, tmp_path, inject, restore,
                            sees=f"{flagd.file}: not a regular file")
    assert seen.tick_seconds < 0.5 and seen.kill_seconds < 0.5
    assert time.monotonic() - started < 10
    # No reader thread is left blocked on the FIFO. Counting threads flaked: under load
    # the loop's executor keeps a second idle worker, which blocks on nothing. What
    # matters is that no thread is stuck inside the flagd provider's code.
    deadline = time.monotonic() + 2
    while (blocked := _threads_inside(flagd_module.__file__)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not blocked, blocked


async def test_flagd_malformed_invalid_json(flagd, tmp_path):
    good = flagd.file.read_bytes()
    await _flagd_row(flagd, tmp_path,
                     lambda: flagd.file.write_text('{"flags": {"checkout": {"state": ENABLED}}}'),
                     lambda: flagd.file.write_bytes(good),
                     sees=f"{flagd.file}:1: invalid JSON (Expecting value)")


async def test_flagd_truncated_file_cut_mid_write(flagd, tmp_path):
    good = flagd.file.read_bytes()
    cut = good[: len(good) // 2]
    line = cut.count(b"\n") + 1
    await _flagd_row(flagd, tmp_path, lambda: flagd.file.write_bytes(cut),
                     lambda: flagd.file.write_bytes(good),
                     sees=f"{flagd.file}:{line}: invalid JSON (")


# Permission denied, for real even where the tests run as root: the row runs in a child
# process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv), so the file's mode
# bits bind it as they bind any service account. Not root: plain chmod already does.
PERMISSION_CHILD = """
import asyncio, os, sys
from pathlib import Path
from tests.faults.flag_rows import observe_row, open_engine
engine_cfg, state, target, mode = sys.argv[1:5]
target = Path(target)
old = target.stat().st_mode & 0o7777
session = open_engine(Path(engine_cfg), Path(state))
async def main():
    try:
        seen = await observe_row(session, lambda: target.chmod(int(mode, 8)),
                                 lambda: target.chmod(old))
    finally:
        await session.close()
    print(seen.to_json())
asyncio.run(main())
"""


def _unprivileged() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root's file-permission override"
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search")


def _permission_row(flagd: FlagdSetup, tmp_path: Path, target: Path, mode: str,
                    cli_sees: str) -> Observed:
    """The engine row in a child without root's override; the CLI's kill likewise."""
    prefix = _unprivileged()
    old = target.stat().st_mode & 0o7777
    target.chmod(int(mode, 8))
    try:
        check_cli_kill(cli_kill(flagd.cli_cfg, prefix=prefix), flagd.cli_state, sees=cli_sees)
    finally:
        target.chmod(old)
    child = subprocess.run(
        [*prefix, sys.executable, "-c", PERMISSION_CHILD, str(flagd.engine_cfg),
         str(tmp_path / "state"), str(target), mode],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert child.returncode == 0, child.stderr
    return Observed.from_json(child.stdout.strip().splitlines()[-1])


async def test_flagd_permission_denied_reading(flagd, tmp_path):
    """The service account may not read the file (mode 000): stale list, failed kill."""
    sees = f"{flagd.file}: cannot read (Permission denied)"
    seen = _permission_row(flagd, tmp_path, flagd.file, "000", sees)
    check_row(seen, sees=sees)
    assert _file_on(flagd)


async def test_flagd_permission_denied_writing(flagd, tmp_path):
    """The file is readable but its folder is read-only (mode 555): the list stays
    fresh, the kill fails with the reason and writes nothing."""
    sees = f"cannot write {flagd.file} (Permission denied); nothing was written"
    seen = _permission_row(flagd, tmp_path, flagd.folder, "555", sees)
    check_row(seen, sees=sees, panel=False)
    assert _file_on(flagd)
    assert [p.name for p in flagd.folder.iterdir()] == ["flags.json"]  # no temp file left


async def test_flagd_rollback_with_kill_flags_while_the_file_cannot_be_read(tmp_path):
    """Rollback with kill_flags: the file is gone → not verified, retried with backoff;
    verified (flag DISABLED in the file, traffic at 0%) once it is back."""
    folder = tmp_path / "flags"
    folder.mkdir()
    file = folder / "flags.json"
    file.write_text(json.dumps(FLAGD_DOC, indent=2) + "\n")
    cfg = write_config(tmp_path / "engine.yaml", f"{{type: flagd, path: '{file}'}}",
                       state=tmp_path / "state", kill_flags=True)
    session = open_engine(cfg, tmp_path / "state")
    engine = session.engine
    try:
        await engine.attach()
        await engine.advance("start the canary")
        aside = folder / "away.json"
        file.rename(aside)
        result = await engine.rollback("error rate on canary")
        assert not result.ok and "ROLLBACK NOT VERIFIED (attempt 1)" in result.message
        assert f"{file}: file not found" in result.message
        assert (await engine.traffic.read()).canary_weight == 0
        await tick(engine)  # one poll interval: past the 1s backoff
        assert "attempt 2" in engine.snapshot().last_error
        assert "retrying in 2s" in engine.snapshot().last_error
        aside.rename(file)
        settled = await engine.settle_rollback()
        assert settled.ok and engine.phase is Phase.ROLLED_BACK
        assert json.loads(file.read_text())["flags"][KEY]["state"] == "DISABLED"
        kills = [r.get("outcome") or "" for r in journal_records(engine)
                 if r["intent"] == "flag.kill"]
        assert kills[-1] == "verified"
        assert [o for o in kills[:-1] if o] and all(
            o.startswith("failed: ") for o in kills[:-1] if o)
    finally:
        await session.close()
