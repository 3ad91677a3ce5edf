"""Screenshots of the console at 120×40 and 80×24, on the real engine and the simulator.

Time is a FastClock that only moves when the rig advances it, the simulator is seeded,
the engine loop is not started, and local time is UTC (conftest): the SVGs are stable.
Regenerate with `pytest tests/tui --snapshot-update`, then look at every one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rig import Rig, failed_rollback, healthy_mid_release, make_rig, verdict_mix

from relconsole.tui.app import ReleaseApp

SIZES = {"120x40": (120, 40), "80x24": (80, 24)}


def _app(engine, theme: str | None = None) -> ReleaseApp:
    return ReleaseApp(engine, theme=theme, start_engine=False)


@pytest.mark.parametrize("size", SIZES)
def test_healthy_mid_release(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(_app(rig.engine), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_rollback_failed(snap_compare, bad_rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await failed_rollback(bad_rig)

    assert snap_compare(_app(bad_rig.engine), terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_rollback_dialog(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before, press=["r"]
    )


@pytest.mark.parametrize("size", SIZES)
def test_rollback_dialog_refuses_an_empty_reason(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before,
        press=["r", "enter"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before,
        press=["question_mark"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_watch_mode(snap_compare, rig: Rig, size: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # snap_compare starts run_before before the first layout, so how fast the driver's
    # records are written decides whether the watcher's lines arrive in one refresh. With
    # fsync free (as on tmpfs) they do, which is when the journal used to stay scrolled to
    # the top; keep that timing so the panel's anchoring stays tested.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    watcher = rig.watcher()

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)
        await watcher.attach()
        await rig.ticks(1)
        await watcher.tick()

    assert snap_compare(_app(watcher), terminal_size=SIZES[size], run_before=run_before)


def _typed(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


@pytest.mark.parametrize("size", SIZES)
def test_flags_panel_audit_findings(snap_compare, rig: Rig, size: str) -> None:
    """The cursor on a flag with hygiene findings: marker in the table, findings below
    (at 80×24 the table scrolls to it; the line below does not fit there)."""

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before,
        press=["down"] * 5,
    )


@pytest.mark.parametrize("size", SIZES)
def test_kill_dialog_production(snap_compare, rig: Rig, size: str) -> None:
    """Reason given; the flag's key still to be typed, so Kill is disabled."""

    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before,
        press=["k", *_typed("pricing errors"), "enter"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_rollout_dialog(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before, press=["%"]
    )


@pytest.mark.parametrize("size", SIZES)
def test_rollout_dialog_refuses_130(snap_compare, rig: Rig, size: str) -> None:
    async def run_before(pilot) -> None:
        await healthy_mid_release(rig)

    assert snap_compare(
        _app(rig.engine), terminal_size=SIZES[size], run_before=run_before,
        press=["%", "1", "3", "0", "tab", *_typed("ramp up"), "enter"],
    )


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "ansi"])
def test_theme(snap_compare, tmp_path: Path, theme: str) -> None:
    """Every colour that carries meaning at once: PASS, FAIL, INCONCLUSIVE, KILLED, WATCH."""
    rig = make_rig(tmp_path / "state", "bad-canary", blind_gate=True)
    watcher = rig.watcher()

    async def run_before(pilot) -> None:
        await verdict_mix(rig)
        await watcher.attach()

    assert snap_compare(_app(watcher, theme), terminal_size=(120, 40), run_before=run_before)
