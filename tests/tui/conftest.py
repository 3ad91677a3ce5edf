"""Fixtures for the TUI tests: local time in UTC, no user config or keyring, a sim rig."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rig import Rig, make_rig


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Same pixels on every machine: UTC clock text, no colour overrides, no keyring."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("RELCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path / "state")


@pytest.fixture
def bad_rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path / "state", "bad-canary")


@pytest.fixture
def staging_rig(tmp_path: Path) -> Rig:
    """The demo release outside production: flag changes need no typed key."""
    return make_rig(tmp_path / "state", production=False)
