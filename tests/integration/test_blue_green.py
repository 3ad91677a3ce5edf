"""Blue-green on the real HAProxy of the sandbox (examples/sandbox): green (the canary
server) checked through the sandbox's preview frontend, the switch with blue drained, a
bake whose gates compare green with blue's last readings, and the rollback — each checked
with HAProxy's own `show servers state` and `get weight`.

The headless releases run `relconsole run --headless --json` as a real process on
`release.strategy: blue-green` with one step, `{weight: 100, bake: 6s}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relconsole.engine.journal import journal_path
from relconsole.providers.base import ProviderError
from relconsole.providers.haproxy import HAProxyTraffic
from relconsole.providers.haproxy import parse_settings as haproxy_settings
from tests.sandbox_stack import Headless, Sandbox, launcher

pytestmark = pytest.mark.integration


@pytest.fixture
def box(strategy_box: Sandbox) -> Sandbox:
    """This module's tests use the strategy sandbox (tests/integration/conftest.py)."""
    return strategy_box
RELEASE_ID = "sandbox-api-1.1.0-sandbox"
DRAIN = "3s"  # short: the sandbox's requests take milliseconds
# Counts need requests: at 5 % a few dozen of green's show the limit holds. The p99 gate
# compares green with blue's last reading (values: a histogram's absolute limit).
GATES = (
    "{metric: error_rate, max: 0.05, failure_limit: 2, inconclusive_limit: 8}",
    "{metric: latency_p99, max: 0.1, max_ratio: 3, failure_limit: 2, inconclusive_limit: 8}",
)


def preview_url(box: Sandbox) -> str:
    return f"http://127.0.0.1:{box.ports.preview}/healthz"


def admin_states(box: Sandbox) -> dict[str, int]:
    """`show servers state app`: each server's admin state (0 ready, bit 0x08 drained)."""
    reply = box.runtime("show servers state app")
    return {row.split()[3]: int(row.split()[6]) for row in reply.splitlines()
            if row[:1].isdigit() and len(row.split()) > 6}


def blue_green_config(box: Sandbox, tmp_path: Path, bake: str = "6s") -> Path:
    text = launcher.relconsole_config(
        box.ports, socket_path=box.socket_path, steps=((100, bake),), auto_advance=True,
        state_dir=str(tmp_path / "state"), gates=GATES)
    text = text.replace("  strategy: canary\n", "  strategy: blue-green\n")
    traffic = "stable: stable, canary: canary}"
    assert text.count(traffic) == 1
    text = text.replace(traffic, f'stable: stable, canary: canary, preview: '
                                 f'"{preview_url(box)}", drain_timeout: {DRAIN}}}')
    path = tmp_path / "relconsole.yaml"
    path.write_text(text)
    return path


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    path = journal_path(tmp_path / "state", RELEASE_ID)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def provider(box: Sandbox) -> HAProxyTraffic:
    return HAProxyTraffic(haproxy_settings(
        {"type": "haproxy", "socket": str(box.socket_path), "backend": "app",
         "stable": "stable", "canary": "canary", "preview": preview_url(box),
         "drain_timeout": DRAIN}, strategy="blue-green", call_timeout=5.0))


# ----------------------------------------------------------------------------- the provider


async def test_the_preview_gates_the_switch_and_both_ways_drain(box: Sandbox) -> None:
    traffic = provider(box)
    try:
        state = await traffic.read()
        assert state.canary_weight == 0
        assert state.note.startswith("green preview: 200 in ")  # through HAProxy, green only

        # Green out of its preview backend: HAProxy answers 503, and the switch is refused.
        box.runtime("set server preview/canary state maint")
        try:
            with pytest.raises(ProviderError, match=r"switch refused, nothing changed: .*got 503"):
                await traffic.set_weight(100, reason="switch")
            assert box.weights() == {"stable": 100, "canary": 0}
            assert admin_states(box) == {"stable": 0, "canary": 0}
        finally:
            box.runtime("set server preview/canary state ready")

        await traffic.set_weight(100, reason="switch to green")
        states = admin_states(box)
        assert states["canary"] == 0 and states["stable"] & 0x08, states  # blue drained
        assert "100 (initial 0)" in box.runtime("get weight app/canary")
        assert (await traffic.read()).note.startswith("last switch: stable ")

        await traffic.set_weight(0, reason="roll back to blue")
        states = admin_states(box)
        assert states["stable"] == 0 and states["canary"] & 0x08, states  # green drained
        assert (await traffic.read()).canary_weight == 0
    finally:
        await traffic.close()


# ----------------------------------------------------------------------------- headless


def test_a_healthy_blue_green_release_switches_bakes_and_is_done(
    box: Sandbox, tmp_path: Path,
) -> None:
    run = Headless(blue_green_config(box, tmp_path))
    try:
        assert run.finish(90) == 0, run.output()
    finally:
        run.close()
    # HAProxy's own account: green takes every user, blue is drained.
    states = admin_states(box)
    assert states["canary"] == 0 and states["stable"] & 0x08, states
    assert "100 (initial 0)" in box.runtime("get weight app/canary")

    records = journal(tmp_path)
    switched = [r for r in records if r["intent"] == "advance" and r.get("outcome")
                and r["after"]["weight"] == 100]
    assert switched, "the switch is journalled as verified"
    # Green was judged against blue's last readings, not against a blue serving nobody.
    reasons = " ".join(str(g.get("reason", "")) for r in records
                       for g in (r.get("data") or {}).get("gates", []))
    assert "blue's last reading" in reasons, reasons[:2000]


def test_a_fault_on_green_in_the_bake_rolls_back_to_blue(box: Sandbox, tmp_path: Path) -> None:
    run = Headless(blue_green_config(box, tmp_path, bake="60s"))
    try:
        run.wait_for(lambda e: e["event"] in ("step", "promoted") and e.get("weight") == 100,
                     timeout=40)
        box.knobs("canary", error_rate=0.3)
        assert run.finish(90) == 3, run.output()
    finally:
        run.close()
    # Back on blue: blue ready, green drained, by HAProxy's own account.
    states = admin_states(box)
    assert states["stable"] == 0 and states["canary"] & 0x08, states
    assert "100 (initial 100)" in box.runtime("get weight app/stable")
    rollback = next(r for r in journal(tmp_path) if r["intent"] == "rollback"
                    and not r.get("outcome"))
    assert rollback["reason"].startswith("gate error_rate failed"), rollback["reason"]
    assert any(e["event"] == "rolled_back" for e in run.events)
