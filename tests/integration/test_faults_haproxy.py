"""The HAProxy rows of the fault matrix (docs/faults-parts/prometheus-haproxy.md).

Each row runs a release on the real sandbox at 20 % canary with the gates passing (the
metrics come straight from the real Prometheus) and puts one fault between relconsole and
HAProxy's runtime API: a FaultProxy on a Unix socket or a TCP port that relays to the
real HAProxy, or HAProxy's own `level operator` socket. The row checks what the user sees
(`user_sees`), what the engine does — checked against HAProxy's own `get weight` after
every poll — and what the journal records, plus the matrix-wide invariants.

HTTP 5xx has no row here: the runtime API is not HTTP (one command line per connection,
answered in plain text), so there is no status code to fail with.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relconsole.engine.release import ADVANCE_FAILURE_LIMIT
from relconsole.model import Phase
from tests.faults.harness import assert_invariants, problem_records, user_sees
from tests.faults.proxy import Fault, FaultProxy
from tests.integration.faultkit import (
    INCONCLUSIVE_LIMIT,
    Watch,
    gates_passing,
    open_engine,
    paused,
    records_after,
    write_config,
)
from tests.sandbox_stack import Sandbox

pytestmark = pytest.mark.integration
API_TIMEOUT = "0.5s"  # haproxy.timeout derived from call_timeout 2s (a quarter)
AT_20 = {"stable": 80, "canary": 20}


async def attached(watch: Watch) -> int:
    """Attach at 20 % with passing gates; the journal's last seq before the fault."""
    engine = watch.engine
    await engine.attach()
    watch.haproxy()
    assert engine.phase is Phase.PROGRESSING and engine.snapshot().weight == 20, \
        user_sees(engine)
    if not gates_passing(engine):
        await watch.until(gates_passing, polls=10)
    return engine.journal.records()[-1]["seq"]


def nothing_moved(w: Watch) -> None:
    assert w.haproxy() == AT_20, "the weight moved while relconsole could not see it"


async def dark_then_recovered(box: Sandbox, tmp_path: Path, proxy: FaultProxy, fault: Fault,
                              sees: tuple[str, ...], **where: object) -> None:
    """A read-side outage: the panel goes stale, nothing steps (the bake ends meanwhile),
    a manual advance is refused; after the fault clears the step goes ahead, verified."""
    session = open_engine(write_config(box, tmp_path, **where), tmp_path)  # type: ignore[arg-type]
    engine = session.engine
    watch = Watch(engine, box)
    try:
        mark = await attached(watch)
        proxy.set(fault)
        await watch.poll()
        shown = user_sees(engine)
        assert re.search(r"\[traffic\] stale since \d\d:\d\d:\d\d — ", shown), shown
        for word in sees:
            assert word in shown, shown
        refused = await engine.advance("operator: the bake is long enough")
        assert not refused.ok, refused
        assert refused.message.startswith("advance refused: traffic: haproxy:"), refused.message
        assert all(w in refused.message for w in sees), refused.message
        # Five polls (2.5 s, past the 2 s bake) with passing gates: no step without
        # knowing the weight; after inconclusive_limit polls without a read the release
        # pauses too, so a human decides when it goes on.
        for _ in range(5):
            await watch.poll()
            nothing_moved(watch)
        assert gates_passing(engine) and engine.phase is Phase.PAUSED
        reason = engine.snapshot().pause_reason
        assert reason.startswith(f"no traffic read for {INCONCLUSIVE_LIMIT} polls, the canary "
                                 "weight is unknown (traffic: haproxy:"), reason
        records = records_after(engine.journal.records(), mark)
        problems = problem_records(records, "traffic")
        assert [p["outcome"] for p in problems] == ["problem"], records
        assert all(w in problems[0]["reason"] for w in sees), problems[0]
        assert not [r for r in records if r["intent"] in ("advance", "promote")]
        assert [r["reason"] for r in records if r["intent"] == "pause"] == [reason]

        proxy.set(Fault.passthrough())
        await watch.until(lambda e: e.snapshot().problem("traffic") is None, polls=6)
        await watch.poll()
        nothing_moved(watch)  # still paused: back, but nothing moves until resumed
        assert (await engine.resume("haproxy answers again")).ok
        await watch.until(lambda e: e.snapshot().weight == 50, polls=6)
        assert box.weights() == {"stable": 50, "canary": 50}
        assert "event provider: traffic recovered" in user_sees(engine)
        records = records_after(engine.journal.records(), mark)
        recovered = problem_records(records, "traffic")[-1]
        assert recovered["outcome"] == "recovered"
        steps = [r for r in records if r["intent"] == "advance"]
        assert steps and all(r["seq"] > recovered["seq"] for r in steps)
        assert steps[-1]["outcome"] == "verified" and steps[-1]["after"]["weight"] == 50
        assert_invariants(engine.journal.records(), real_weights=watch.real_weights)
    finally:
        await session.close()


# ----------------------------------------------------------------------------- unreachable


async def test_haproxy_tcp_runtime_api_refused(warm: Sandbox, tmp_path: Path) -> None:
    """The runtime API over TCP (address:), and nothing listens on the port any more."""
    with FaultProxy(upstream=("127.0.0.1", warm.ports.admin)) as proxy:
        await dark_then_recovered(warm, tmp_path, proxy, Fault.refuse(),
                                  (f"haproxy: connection refused at {proxy.address}",),
                                  admin_port=proxy.port)


async def test_haproxy_socket_gone(warm: Sandbox, tmp_path: Path) -> None:
    """The runtime API's Unix socket file is gone (HAProxy stopped, or reloaded elsewhere)."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        await dark_then_recovered(warm, tmp_path, proxy, Fault.refuse(),
                                  (f"haproxy: no socket at {path}",
                                   f"stats socket {path} level admin"),
                                  socket_path=path)


async def test_haproxy_hangs(warm: Sandbox, tmp_path: Path) -> None:
    """The socket accepts the command and never answers (HAProxy wedged, or a dead peer)."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        await dark_then_recovered(warm, tmp_path, proxy, Fault.hang(),
                                  (f"haproxy: no answer from {path} within {API_TIMEOUT}",),
                                  socket_path=path)


# ----------------------------------------------------------------------------- bad answers


async def test_haproxy_answers_garbage(warm: Sandbox, tmp_path: Path) -> None:
    """Something that is not HAProxy's runtime API answers on the socket."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        await dark_then_recovered(
            warm, tmp_path, proxy,
            Fault.reply(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            ("haproxy: ", "failed: HTTP/1.1 400 Bad Request"), socket_path=path)


async def test_haproxy_answer_truncated(warm: Sandbox, tmp_path: Path) -> None:
    """HAProxy's real answers, their last 12 bytes lost before the connection closes."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        await dark_then_recovered(warm, tmp_path, proxy, Fault.cut(12),
                                  ("haproxy: ", "cut short"), socket_path=path)


# ----------------------------------------------------------------------------- changes


async def test_haproxy_operator_level_socket_refuses_changes(
    warm: Sandbox, tmp_path: Path
) -> None:
    """A real second stats socket at `level operator`: reads work, `set weight` answers
    "Permission denied". The step is tried, never reported done, and after three failed
    tries the release pauses for a human."""
    config = write_config(warm, tmp_path, socket_path=warm.operator_socket_path)
    session = open_engine(config, tmp_path)
    engine = session.engine
    watch = Watch(engine, warm)
    try:
        mark = await attached(watch)
        await watch.until(paused, polls=12, each=nothing_moved)
        snap = engine.snapshot()
        assert snap.problem("traffic") is None, "reading works at level operator"
        assert snap.pause_reason.startswith("advance to 50% not verified: traffic: haproxy: "
                                            "permission denied"), snap.pause_reason
        assert "level admin" in snap.pause_reason
        assert snap.pause_reason.endswith("check the traffic provider, then resume")
        shown = user_sees(engine)
        assert "error: advance to 50% not verified" in shown, shown
        assert "event pause: paused: advance to 50% not verified" in shown, shown

        records = records_after(engine.journal.records(), mark)
        advances = [r for r in records if r["intent"] == "advance"]
        intents = [r for r in advances if not r.get("outcome")]
        outcomes = [r["outcome"] for r in advances if r.get("outcome")]
        assert len(intents) == len(outcomes) == ADVANCE_FAILURE_LIMIT, advances
        assert all(o.startswith("failed: advance to 50% not verified: traffic: haproxy: "
                                "permission denied") for o in outcomes), outcomes
        pause = records[-1]
        assert pause["intent"] == "pause" and pause["reason"] == snap.pause_reason
        # Paused means paused: no more tries.
        await watch.poll(3)
        nothing_moved(watch)
        assert len([r for r in engine.journal.records() if r["intent"] == "advance"]) == \
            len(advances)
        assert_invariants(engine.journal.records(), real_weights=watch.real_weights)
    finally:
        await session.close()


def drop_second_set(data: bytes) -> bytes:
    """`set weight app/canary 50; set weight app/stable 50` loses its second command."""
    if not data.startswith(b"set weight"):
        return data
    first, _, _rest = data.partition(b";")
    return first.rstrip() + b"\n"


async def test_haproxy_change_half_applied(warm: Sandbox, tmp_path: Path) -> None:
    """The step's command line reaches HAProxy without its second `set weight`: the
    canary server takes its new weight, the stable server keeps its old one."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        session = open_engine(write_config(warm, tmp_path, socket_path=path), tmp_path)
        engine = session.engine
        watch = Watch(engine, warm)
        try:
            mark = await attached(watch)
            proxy.set(Fault.rewrite(drop_second_set))

            def never_50(w: Watch) -> None:
                assert w.haproxy()["stable"] == 80, "the stable server was never changed"

            await watch.until(paused, polls=12, each=never_50)
            # HAProxy's own account: one of two servers changed, 50/(50+80) = 38 %.
            assert warm.weights() == {"stable": 80, "canary": 50}
            assert any(b"set weight app/stable" in r for r in proxy.requests)
            snap = engine.snapshot()
            assert snap.weight == 38, "the console shows the weight HAProxy really applies"
            assert snap.pause_reason.startswith("advance to 50% not verified: "), \
                snap.pause_reason
            assert snap.pause_reason.endswith("check the traffic provider, then resume")
            # HAProxy's own check names the server; the engine's read-back the share.
            assert "stable reports 80, asked 50" in snap.pause_reason, snap.pause_reason
            assert "provider reports 38%" in snap.pause_reason, snap.pause_reason
            shown = user_sees(engine)
            assert "error: advance to 50% not verified" in shown, shown
            assert "phase: PAUSED at 38%" in shown, shown

            records = records_after(engine.journal.records(), mark)
            advances = [r for r in records if r["intent"] == "advance"]
            outcomes = [r["outcome"] for r in advances if r.get("outcome")]
            # Paused on the first try: a half-applied change does not mend itself.
            assert len(outcomes) == 1, advances
            assert outcomes[0].startswith("failed: advance to 50% not verified: "), outcomes
            assert "provider reports 38%" in outcomes[0]
            assert not any(str(r.get("outcome", "")).startswith("verified") for r in records
                           if r["intent"] in ("advance", "promote"))
            assert records[-1]["intent"] == "pause"
            assert_invariants(engine.journal.records(), real_weights=watch.real_weights)
        finally:
            await session.close()
            warm.runtime("set weight app/canary 20; set weight app/stable 80")


# ----------------------------------------------------------------------------- rollback


async def test_haproxy_rollback_during_outage_retries_until_verified(
    warm: Sandbox, tmp_path: Path
) -> None:
    """An operator rolls back while the socket is gone: the rollback is shown NOT
    VERIFIED and retried with growing waits, and verified only once HAProxy itself
    reports the canary at 0."""
    path = tmp_path / "h.sock"
    with FaultProxy(upstream=warm.socket_path, listen_path=path) as proxy:
        session = open_engine(write_config(warm, tmp_path, socket_path=path), tmp_path)
        engine = session.engine
        watch = Watch(engine, warm)
        try:
            mark = await attached(watch)
            proxy.set(Fault.refuse())
            result = await engine.rollback("p99 creeping up; paging payments")
            assert not result.ok
            assert result.message.startswith("ROLLBACK NOT VERIFIED (attempt 1): traffic: "
                                             f"haproxy: no socket at {path}")
            assert result.message.endswith("retrying in 1s")
            assert engine.phase is Phase.ROLLBACK_FAILED
            await watch.until(lambda e: e.snapshot().rollback_attempts >= 2, polls=8,
                              each=nothing_moved)
            shown = user_sees(engine)
            assert "ROLLBACK NOT VERIFIED (attempt 2)" in shown and "retrying in 2s" in shown
            assert "[rollback] stale since" in shown or "error: ROLLBACK NOT VERIFIED" in shown
            assert "rolled back" not in shown
            assert warm.weights() == AT_20, "nothing reached HAProxy"

            proxy.set(Fault.passthrough())  # the engine's own next retry must find it
            await watch.until(lambda e: e.phase is Phase.ROLLED_BACK, polls=8)
            assert warm.runtime("get weight app/canary").startswith("0 (initial 0)")
            assert "rolled back: canary at 0% (verified)" in user_sees(engine)

            records = records_after(engine.journal.records(), mark)
            tries = [(r["intent"], r.get("outcome") or "") for r in records
                     if r["intent"].startswith("rollback")]
            assert tries[0] == ("rollback", "")
            assert records[next(i for i, r in enumerate(records)
                                if r["intent"] == "rollback")]["reason"] == \
                "p99 creeping up; paging payments"
            failed = [o for _, o in tries if o.startswith("failed:")]
            assert len(failed) == 2 and all("no socket at" in o for o in failed)
            assert tries[-1][1] == "verified"
            assert [o for _, o in tries if o.startswith("verified")] == ["verified"]
            assert_invariants(engine.journal.records(), real_weights=watch.real_weights)
        finally:
            await session.close()
