"""Without the host's shared state folder, a driving console says others will not see it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from relconsole.assembly import demo_config, open_session
from relconsole.clock import FastClock
from relconsole.tui.app import ReleaseApp

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RELCONSOLE_STATE_DIR"}
    env.update(HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "home" / "state"),
               RELCONSOLE_SHARED_DIR=str(tmp_path / "no-shared-folder"))
    return env


def test_a_one_shot_action_warns_on_stderr(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relconsole", "pause", "-c", str(ROOT / "config.example.yaml"),
         "--reason", "looking"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=60, cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert "relconsole: warning: the state folder shared by this host's users" in done.stderr
    assert "others on this host will not see that you drive this release" in done.stderr
    assert str(tmp_path / "no-shared-folder") in done.stderr


def test_the_console_shows_the_warning_at_start(tmp_path: Path, monkeypatch) -> None:
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RELCONSOLE_STATE_DIR", raising=False)
    session = open_session(demo_config("healthy"), clock=FastClock())
    assert "will not see that you drive" in session.state_warning
    app = ReleaseApp(session.engine, start_engine=False, notices=(session.state_warning,))

    async def run() -> list[str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            return [str(n.message) for n in app._notifications]

    import asyncio

    shown = asyncio.run(run())
    assert any("will not see that you drive" in text for text in shown)


def test_an_explicit_state_folder_says_nothing(tmp_path: Path, monkeypatch) -> None:
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RELCONSOLE_STATE_DIR", str(tmp_path / "state"))
    session = open_session(demo_config("healthy"), clock=FastClock())
    assert session.state_warning == ""
