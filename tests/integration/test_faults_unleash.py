"""Fault matrix, Unleash rows (issue 5), against the REAL unleash-server on PostgreSQL.

The faults are real: a FaultProxy (tests/faults/proxy.py) between relconsole and the
server closes the port, holds answers back, answers 503, breaks or cuts the JSON; the
server process itself is frozen (SIGSTOP) for the "stopped process" row; the token is a
real wrong token the server rejects. Each row checks what the user sees, what the engine
does and what the journal records (tests/faults/flag_rows.py), and the one-shot
`relconsole flag kill` a pipeline runs. docs/faults-parts/flags.md is the table.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from relconsole.model import Phase
from tests.faults.flag_rows import (
    check_cli_kill,
    check_row,
    cli_kill,
    observe_row,
    open_engine,
    write_config,
)
from tests.faults.harness import journal_records, tick, user_sees
from tests.faults.proxy import Fault, FaultProxy, http_response
from tests.integration.test_unleash import make_flag, unique
from tests.unleash_server import UnleashServer

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied(unleash: UnleashServer) -> Iterator[FaultProxy]:
    host, port = unleash.url.removeprefix("http://").split(":")
    proxy = FaultProxy(upstream=(host, int(port)))
    yield proxy
    proxy.close()


def _is_on(unleash: UnleashServer, key: str) -> bool:
    with unleash.admin() as admin:
        env = admin.get(f"/api/admin/projects/default/features/{key}/environments/production")
        return bool(env.json()["enabled"])


def _configs(tmp_path: Path, url: str, token: str, key: str, *,
             kill_flags: bool = False) -> tuple[Path, Path]:
    block = (f"{{type: unleash, url: '{url}', token: '{token}', project: default, "
             "environment: production}")
    return (write_config(tmp_path / "engine.yaml", block, state=tmp_path / "state",
                         kill_flags=kill_flags, flags=(key,)),
            write_config(tmp_path / "cli.yaml", block, state=tmp_path / "cli-state",
                         flags=(key,)))


ROWS = {
    # name: (fault, panel words, kill words, the kill request reaches Unleash)
    "unreachable": (Fault.refuse, "unleash: list flags: cannot connect to {url} "
                    "(connection refused)", "cannot connect to {url} (connection refused)",
                    False),
    "slower-than-timeout": (Fault.hang, "list timed out after 1s",
                            "change {key} timed out after 1s", False),
    "http-503": (lambda: Fault.reply(http_response(503, "no healthy upstream",
                                                   content_type="text/plain")),
                 "unleash: list flags: HTTP 503: no healthy upstream",
                 "HTTP 503: no healthy upstream", False),
    "malformed-json": (lambda: Fault.reply(http_response(200, b'{"features": [{"name": ')),
                       "unleash: list flags: the answer is not JSON (HTTP 200)",
                       "the answer is not JSON (HTTP 200)", False),
    # Unleash answers "off" with an empty body: 40 bytes short cuts into its headers.
    "truncated": (lambda: Fault.cut(40), "unleash: list flags: the answer was cut off",
                  "the server closed the connection without answering", True),
}


@pytest.mark.parametrize("name", list(ROWS))
async def test_unleash_fault_row(name, unleash, proxied, tmp_path):
    make_fault, sees, kill_sees, reaches = ROWS[name]
    key = make_flag(unleash, unique(f"fault-{name}"), rollout=10)
    engine_cfg, cli_cfg = _configs(tmp_path, proxied.url, unleash.token, key)
    words = {"url": proxied.url, "key": key}
    sees, kill_sees = sees.format(**words), kill_sees.format(**words)
    fault = make_fault()
    cli: list[subprocess.Popen] = []

    def inject() -> None:
        proxied.set(fault)
        cli.append(cli_kill(cli_cfg, key=key))

    session = open_engine(engine_cfg, tmp_path / "state")
    try:
        seen = await observe_row(session, inject, lambda: None, key=key)
        await asyncio.to_thread(check_cli_kill, cli[0], tmp_path / "cli-state", sees=kill_sees)
        proxied.set(Fault.passthrough())
        await tick(session.engine)
        problem = session.engine.snapshot().problem("flags")
        seen.problem_after_restore = problem.message if problem else None
        seen.records = journal_records(session.engine)
        check_row(seen, sees=sees, kill_sees=kill_sees, key=key)
        assert _is_on(unleash, key) is not reaches  # what Unleash itself holds
        shown = {f.key: f.enabled for f in session.engine.snapshot().flags}
        assert shown[key] is _is_on(unleash, key)
    finally:
        for proc in cli:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await session.close()


async def test_unleash_auth_refused_a_real_wrong_token(unleash, tmp_path):
    """The server's own 401 for a token it does not know (a revoked token looks alike)."""
    key = make_flag(unleash, unique("fault-auth"), rollout=10)
    engine_cfg, _ = _configs(tmp_path, unleash.url, unleash.token, key)
    wrong = "*:*.revoked-token"
    session = open_engine(engine_cfg, tmp_path / "state")
    cli: list[subprocess.Popen] = []
    cli_state = tmp_path / "wrong-cli-state"
    wrong_cli = write_config(
        tmp_path / "wrong-cli.yaml",
        f"{{type: unleash, url: '{unleash.url}', token: '{wrong}', project: default}}",
        state=cli_state, flags=(key,))
    rejected = "the API token was rejected (HTTP 401"

    def inject() -> None:
        # The token is revoked under the running console: its client now sends a token
        # Unleash does not know.
        session.engine.flags_provider.api.client.headers["Authorization"] = wrong
        cli.append(cli_kill(wrong_cli, key=key))

    try:
        seen = await observe_row(session, inject, lambda: None, key=key)
        await asyncio.to_thread(check_cli_kill, cli[0], cli_state, sees=rejected)
        session.engine.flags_provider.api.client.headers["Authorization"] = unleash.token
        await tick(session.engine)
        problem = session.engine.snapshot().problem("flags")
        seen.problem_after_restore = problem.message if problem else None
        seen.records = journal_records(session.engine)
        check_row(seen, sees=f"unleash: list flags: {rejected}", kill_sees=rejected, key=key)
        assert "check providers.flags.token" in seen.seen_during
        assert wrong not in seen.seen_during + seen.kill_message
        assert _is_on(unleash, key)
    finally:
        await session.close()


async def test_unleash_server_process_stopped(unleash, tmp_path):
    """The unleash-server process is frozen (SIGSTOP): the kernel still accepts the
    connection, nothing answers — a hung server, not a closed port."""
    proc = unleash.unleash_proc
    assert proc is not None and proc.poll() is None
    key = make_flag(unleash, unique("fault-stopped"), rollout=10)
    engine_cfg, cli_cfg = _configs(tmp_path, unleash.url, unleash.token, key)
    cli: list[subprocess.Popen] = []

    def inject() -> None:
        os.kill(proc.pid, signal.SIGSTOP)
        cli.append(cli_kill(cli_cfg, key=key))

    session = open_engine(engine_cfg, tmp_path / "state")
    try:
        seen = await observe_row(session, inject, lambda: None, key=key)
        await asyncio.to_thread(check_cli_kill, cli[0], tmp_path / "cli-state",
                                sees=f"change {key} timed out after 1s")
        os.kill(proc.pid, signal.SIGCONT)
        await tick(session.engine)
        problem = session.engine.snapshot().problem("flags")
        seen.problem_after_restore = problem.message if problem else None
        seen.records = journal_records(session.engine)
        check_row(seen, sees="list timed out after 1s",
                  kill_sees=f"change {key} timed out after 1s", key=key)
        # The kill may have reached the frozen server's socket buffer; whatever it did
        # once thawed, the engine shows what Unleash holds, never an unverified "done".
        await tick(session.engine)
        shown = {f.key: f.enabled for f in session.engine.snapshot().flags}
        assert shown[key] is _is_on(unleash, key)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        for p in cli:
            if p.poll() is None:
                p.kill()
                p.wait()
        await session.close()


async def test_unleash_rollback_with_kill_flags_while_unleash_is_down(unleash, proxied,
                                                                       tmp_path):
    key = make_flag(unleash, unique("fault-rollback"), rollout=10)
    engine_cfg, _ = _configs(tmp_path, proxied.url, unleash.token, key, kill_flags=True)
    session = open_engine(engine_cfg, tmp_path / "state")
    engine = session.engine
    try:
        await engine.attach()
        await engine.advance("start the canary")
        proxied.set(Fault.refuse())
        result = await engine.rollback("error rate on canary")
        assert not result.ok and result.message.startswith(
            f"ROLLBACK NOT VERIFIED (attempt 1): flags not verified off: flag.kill {key}")
        assert "(connection refused)" in result.message
        assert engine.phase is Phase.ROLLBACK_FAILED
        assert (await engine.traffic.read()).canary_weight == 0
        assert "[rollback] stale since" in user_sees(engine)
        await tick(engine)
        assert "attempt 2" in engine.snapshot().last_error
        assert "retrying in 2s" in engine.snapshot().last_error
        assert _is_on(unleash, key)
        proxied.set(Fault.passthrough())
        settled = await engine.settle_rollback()
        assert settled.ok and engine.phase is Phase.ROLLED_BACK
        assert not _is_on(unleash, key)
        records = journal_records(engine)
        kills = [r.get("outcome") or "" for r in records if r["intent"] == "flag.kill"]
        assert kills[-1] == "verified"
        assert all(o == "" or o.startswith("failed: ") for o in kills[:-1])
        rb = [r.get("outcome") or "" for r in records
              if r["intent"] in ("rollback", "rollback.retry")]
        assert rb[-1] == "verified"
        assert "traffic verified at 0%; release flags not yet verified off" in rb
    finally:
        await session.close()
